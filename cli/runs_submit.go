package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/api/client"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

// submitOptions are runs submit's flags.
type submitOptions struct {
	instance, state string
	metadata        map[string]string
	follow, asJSON  bool
}

// submitRun starts a run on a server (myriad runs submit) and, with
// follow, prints its events until it ends or needs a person, with the
// exit status of myriad run: 0 completed, 1 failed, 3 waiting for a person.
func submitRun(ctx context.Context, e *env, c *client.Client, pos []string, o submitOptions) error {
	if len(pos) < 2 {
		return &exitError{code: 2, err: errors.New("runs submit needs AGENT (or FLOW) and INPUT")}
	}
	state, follow, asJSON := o.state, o.follow, o.asJSON
	req := apitype.CreateRunRequest{Agent: pos[0], Input: strings.Join(pos[1:], " "), Instance: o.instance}
	if len(o.metadata) > 0 {
		req.Metadata = o.metadata
	}
	flows, err := c.Flows(ctx)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(flows, func(f apitype.FlowInfo) bool { return f.Name == req.Agent }) {
		req.Agent, req.Flow = "", req.Agent
	}
	if state != "" {
		raw := []byte(state)
		if file, ok := strings.CutPrefix(state, "@"); ok {
			if raw, err = os.ReadFile(file); err != nil {
				return fmt.Errorf("--state: %w", err)
			}
		}
		if !json.Valid(raw) {
			return &exitError{code: 2, err: errors.New("--state: not JSON (give an object, or @FILE)")}
		}
		req.State = raw
	}
	ref, err := c.Submit(ctx, req, "")
	if err != nil {
		return err
	}
	if !follow {
		if asJSON {
			data, _ := json.Marshal(ref)
			fmt.Fprintf(e.stdout, "%s\n", data)
			return nil
		}
		fmt.Fprintf(e.stdout, "%s: %s (follow it with myriad runs events %s)\n", ref.ID, ref.Status, ref.ID)
		return nil
	}
	if !asJSON {
		fmt.Fprintf(e.stderr, "myriad runs: run %s accepted\n", ref.ID)
	}
	var stop error
	err = c.Events(ctx, ref.ID, 0, func(ev run.TreeEvent) bool {
		printEvent(e.stdout, ev, ref.ID, asJSON)
		if ev.RunID != ref.ID {
			return true
		}
		if journal.Terminal(ev.Type) || ev.Type == journal.TypeRunInDoubt || ev.Type == journal.TypeRunWaiting {
			rec, err := c.Get(ctx, ref.ID)
			if err != nil {
				stop = err
				return false
			}
			if rec.Settled() {
				stop = ended(e, rec, asJSON)
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return stop
}

// ended reports a settled run as myriad run does, with its exit status.
func ended(e *env, rec *run.Record, asJSON bool) error {
	switch rec.Status {
	case run.StatusCompleted:
		if !asJSON {
			fmt.Fprintf(e.stdout, "\n%s\n", rec.Output)
		}
		return nil
	case run.StatusFailed:
		return &exitError{code: 1, err: fmt.Errorf("run %s failed: %s: %s", rec.ID, rec.Error.Code, rec.Error.Message)}
	case run.StatusCanceled:
		return &exitError{code: 1, err: fmt.Errorf("run %s was canceled", rec.ID)}
	}
	return &exitError{code: 3, err: fmt.Errorf("run %s %s", rec.ID, nextStep(rec))}
}
