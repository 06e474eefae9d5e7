// Command library shows Myriad used as a Go library: a model, a Go function
// tool and an agent defined in code, run durably on an embedded NATS server.
//
//	go run ./examples/library
//
// It uses the scripted model so it runs offline; swap in model/openai or
// model/anthropic for a real one.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/myriad-ai/myriad"
	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/model/scripted"
	"github.com/myriad-ai/myriad/tool"
)

// WordCountArgs are the arguments of the word_count tool; its JSON Schema is
// derived from this struct.
type WordCountArgs struct {
	Text string `json:"text" jsonschema:"the text to count words in"`
}

const rules = `
- when: {last_tool: word_count}
  reply: {text: "That text has {{.LastToolResult}} words."}
- when: {last_user: "(?i)count the words in: (?P<text>.+)"}
  reply:
    tool_calls:
      - name: word_count
        arguments: {text: "{{.Match.text}}"}
- reply: {text: "Ask me to count the words in: <some text>"}
`

func main() {
	if err := count(context.Background(), os.Args[1:]); err != nil {
		log.Fatal(err)
	}
}

func count(ctx context.Context, args []string) error {
	input := "Count the words in: durable agents resume where they stopped"
	if len(args) > 0 {
		input = strings.Join(args, " ")
	}
	rs, err := scripted.ParseRules([]byte(rules))
	if err != nil {
		return err
	}
	m, err := scripted.New(rs)
	if err != nil {
		return err
	}
	wordCount, err := tool.NewFunc("word_count", "Counts the words in a text.",
		func(ctx context.Context, _ *tool.Call, in WordCountArgs) (string, error) {
			return fmt.Sprint(len(strings.Fields(in.Text))), nil
		})
	if err != nil {
		return err
	}
	proj := &myriad.Project{Agents: map[string]*agent.Agent{
		"counter": {Model: m, ModelName: "scripted", Tools: []tool.Tool{wordCount.Idempotent()}, MaxTurns: 4},
	}}
	dir, err := os.MkdirTemp("", "myriad-library-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// An embedded NATS server keeps every step on disk in dir: a process
	// killed mid-run resumes it when it opens the node again.
	node, err := myriad.Open(ctx, proj, myriad.NodeOptions{DataDir: dir})
	if err != nil {
		return err
	}
	defer node.Close()
	// Run yields each step as it is journaled, and ends with the run: an
	// error is a *myriad.RunError (failed, canceled, waiting for a person)
	// or the engine's (engine.ErrUnknownAgent, engine.ErrInvalid).
	for u, err := range node.Run(ctx, engine.SubmitRequest{Agent: "counter", Input: input}) {
		if err != nil {
			return err
		}
		switch ev := u.Event; {
		case ev == nil:
		case ev.Type == journal.TypeToolStarted:
			fmt.Fprintln(os.Stderr, "calling a tool:", string(ev.Data))
		case ev.Type == journal.TypeRunCompleted:
			var done journal.RunCompleted
			if err := json.Unmarshal(ev.Data, &done); err != nil {
				return err
			}
			fmt.Println(done.Output)
		}
	}
	return nil
}
