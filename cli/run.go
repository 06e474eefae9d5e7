package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/myriad-ai/myriad"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

func runCmd(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "run", "run [--config myriad.yaml] [--data DIR] [--json] [--state JSON] AGENT|FLOW INPUT")
	path := fs.String("config", defaultConfig(), "the project file")
	data := fs.String("data", "", "keep the embedded NATS data here (default: a temporary directory, removed afterwards)")
	instance := fs.String("instance", "", "continue this instance of the agent (needs --data to persist)")
	asJSON := fs.Bool("json", false, "print events as JSON lines")
	state := fs.String("state", "", "a flow's initial state: a JSON object, or @FILE to read it from a file")
	logs := logFlags(fs, "warn")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("need AGENT (or FLOW) and INPUT")}
	}
	agentName, input := pos[0], strings.Join(pos[1:], " ")
	log, err := logs.logger(e.stderr)
	if err != nil {
		return err
	}
	proj, err := myriad.Load(*path)
	if err != nil {
		return err
	}
	defer proj.Close() // MCP servers started for it stop with the command
	dir, cleanup, err := dataDir(*data, "run", false)
	if err != nil {
		return err
	}
	keep := false // a run that waits for a person keeps its directory
	defer func() {
		if !keep {
			cleanup()
		}
	}()
	node, err := myriad.Open(ctx, proj, myriad.NodeOptions{DataDir: dir, Logger: log})
	if err != nil {
		return err
	}
	defer node.Close()
	req := engine.SubmitRequest{Agent: agentName, Input: input, Instance: *instance}
	if _, isFlow := proj.Flows[agentName]; isFlow {
		req.Agent, req.Flow = "", agentName
	}
	if *state != "" {
		raw := []byte(*state)
		if file, ok := strings.CutPrefix(*state, "@"); ok {
			if raw, err = os.ReadFile(file); err != nil {
				return fmt.Errorf("--state: %w", err)
			}
		}
		req.State = raw
	}
	rec, _, err := node.Engine.Submit(ctx, req)
	if err != nil {
		return err
	}
	// Follow the run and its descendants; stop where the run ends or needs
	// a person.
	var after uint64
	for {
		for u, err := range node.Engine.Watch(ctx, engine.WatchOptions{Run: rec.ID, Tree: true, After: after}) {
			if err != nil {
				var slow *engine.SlowFollowerError
				if errors.As(err, &slow) {
					break // watch again from where it was
				}
				if ctx.Err() != nil {
					return &exitError{code: 130, err: errors.New("interrupted; with --data the run resumes on the next start")}
				}
				return err
			}
			ev := u.Event
			after = ev.Seq
			printEvent(e.stdout, *ev, rec.ID, *asJSON)
			if ev.RunID == rec.ID && (journal.Terminal(ev.Type) || ev.Type == journal.TypeRunInDoubt || waitsForPerson(ev.Event)) {
				break
			}
		}
		if ctx.Err() != nil {
			return &exitError{code: 130, err: errors.New("interrupted; with --data the run resumes on the next start")}
		}
		if rec, err = node.Engine.Wait(ctx, rec.ID); err != nil {
			return err
		}
		if rec.Status.Terminal() || rec.Status == run.StatusInDoubt {
			break
		}
		if rec.Status == run.StatusWaiting && rec.WakeAt != nil {
			// A deadline will decide if nobody does: keep following.
			fmt.Fprintf(e.stderr, "myriad run: waiting for %s until %s; then the default applies (Ctrl-C to stop)\n",
				rec.WaitingFor, rec.WakeAt.Local().Format("15:04:05"))
			continue
		}
		if rec.Settled() {
			break
		}
	}
	if rec.Status == run.StatusWaiting || rec.Status == run.StatusInDoubt {
		// Kept where it is: serve the directory and decide from there.
		keep = true
		return &exitError{code: 3, err: fmt.Errorf("run %s %s\nIt is kept in %s: serve it with\n  myriad serve --config %s --data %s\nthen decide as above (the run goes on there; add --listen ADDR to serve, and --server URL to the runs commands, if port 8420 is taken). Delete the directory when you are done with it.",
			rec.ID, nextStep(rec), dir, *path, dir)}
	}
	if !*asJSON {
		switch rec.Status {
		case run.StatusCompleted:
			fmt.Fprintf(e.stdout, "\n%s\n", rec.Output)
		case run.StatusFailed:
			return &exitError{code: 1, err: fmt.Errorf("run %s failed: %s: %s", rec.ID, rec.Error.Code, rec.Error.Message)}
		default:
			return &exitError{code: 1, err: fmt.Errorf("run %s ended %s", rec.ID, rec.Status)}
		}
	} else if rec.Status != run.StatusCompleted {
		return &exitError{code: 1}
	}
	return nil
}

// waitsForPerson reports a run parking until a person answers or decides
// (not for its children, nor only for a timer).
func waitsForPerson(ev journal.Event) bool {
	if ev.Type != journal.TypeRunWaiting {
		return false
	}
	var w journal.RunWaiting
	return json.Unmarshal(ev.Data, &w) == nil && len(w.Children) == 0 && (len(w.Approvals) > 0 || len(w.Inputs) > 0)
}
