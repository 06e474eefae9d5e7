// Package builtin holds the few tools every agent may opt into by name,
// without defining them in myriad.yaml.
package builtin

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/myriad-ai/myriad/tool"
)

// CurrentTimeArgs are the arguments of current_time.
type CurrentTimeArgs struct {
	// Timezone is an IANA zone name; empty means UTC.
	Timezone string `json:"timezone,omitempty" jsonschema:"IANA time zone name such as Europe/Paris; UTC when empty"`
}

// CurrentTime tells the model the date and time; models do not know it.
func CurrentTime() tool.Tool {
	t, err := tool.NewFunc("current_time", "Returns the current date and time in RFC 3339 format.",
		func(ctx context.Context, _ *tool.Call, in CurrentTimeArgs) (string, error) {
			loc := time.UTC
			if in.Timezone != "" {
				l, err := time.LoadLocation(in.Timezone)
				if err != nil {
					return "", fmt.Errorf("unknown timezone %q: use an IANA name such as Europe/Paris", in.Timezone)
				}
				loc = l
			}
			return time.Now().In(loc).Format(time.RFC3339), nil
		})
	if err != nil {
		panic(err) // the name and type are fixed: this cannot fail at run time
	}
	return t.Idempotent()
}

var all = map[string]func() tool.Tool{"current_time": CurrentTime,
	"send_message": SendMessage, "ask_agent": AskAgent, "broadcast_message": BroadcastMessage}

// Lookup returns the built-in tool with the given name.
func Lookup(name string) (tool.Tool, bool) {
	f, ok := all[name]
	if !ok {
		return nil, false
	}
	return f(), true
}

// Names lists the built-in tools.
func Names() []string {
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
