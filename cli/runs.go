package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/myriad-ai/myriad/api/apitype"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

func runsCmd(ctx context.Context, e *env, args []string) error {
	const synopsis = "runs <submit|list|show|events|cancel|delete|resolve|fork|approvals|decide|answer> [--server URL] ..."
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(e.stderr, "Usage: myriad "+synopsis+`

  submit   AGENT|FLOW INPUT [--instance K] [--state JSON|@FILE] [--metadata K=V]... [--follow]   start a run (--follow: print its events to the end)
  list     [--agent A|--flow F] [--status S] [--parent ID|--roots] [--metadata K=V]... [--from DAY] [--to DAY] [--limit N] [--cursor C]
                                                               runs, newest first
  show     RUN-ID                                              a run's record (--json: as the API gives it)
  events   RUN-ID [--after EVENT-ID]                           follow a run's events until it ends
  cancel   RUN-ID                                              ask a run to stop
  delete   RUN-ID                                              delete a root run that ended, with its children
  resolve  RUN-ID --action retry|skip|fail [--result R] [--reason W]   decide a run in doubt
  fork     RUN-ID --step N [--tool-call ID --tool-result TEXT] [--instructions TEXT] [--model NAME]
                                                               a new run from a step of this one (see runs events for steps)
  approvals [--agent A]                                        tool calls waiting for a person
  decide   RUN-ID APPROVAL-ID --decision approve|deny [--reason W] [--arguments JSON]
  answer   RUN-ID KEY VALUE                                    answer a flow's question (KEY: node#visit; VALUE: JSON)

Every subcommand takes --server URL (or MYRIAD_SERVER), --token-env NAME and --json.`)
		if len(args) == 0 {
			return &exitError{code: 2, err: errors.New("missing subcommand")}
		}
		return nil
	}
	sub, args := args[0], args[1:]
	fs := newFlags(e, "runs "+sub, synopsis)
	rf := remoteFlags(fs)
	asJSON := rf.asJSON
	agent := fs.String("agent", "", "list: only runs of this agent")
	status := fs.String("status", "", "list: only runs in this status")
	flowName := fs.String("flow", "", "list: only runs of this flow")
	parent := fs.String("parent", "", "list: only the child runs of this run")
	roots := fs.Bool("roots", false, "list: only runs without a parent")
	instance := fs.String("instance", "", "list: only the turns of the instances with this key; submit: make the run a turn of this instance")
	state := fs.String("state", "", "submit: a flow's initial state, a JSON object or @FILE")
	follow := fs.Bool("follow", false, "submit: print the run's events until it ends or needs a person")
	limit := fs.Int("limit", 20, "list: page size")
	cursor := fs.String("cursor", "", "list: the next_cursor of the previous page")
	after := fs.Uint64("after", 0, "events: resume after this event id (the seq field of --json output, not the [step] shown in text)")
	action := fs.String("action", "", "resolve: retry, skip or fail")
	result := fs.String("result", "", "resolve: the tool result to use with skip")
	reason := fs.String("reason", "", "resolve, decide: why")
	decision := fs.String("decision", "", "decide: approve or deny")
	arguments := fs.String("arguments", "", "decide: JSON arguments that replace the model's (with approve)")
	step := fs.Int("step", 0, "fork: the step to go on from (the [step] runs events shows)")
	toolCall := fs.String("tool-call", "", "fork: the call id of a tool result to change (with --tool-result)")
	toolResult := fs.String("tool-result", "", "fork: the tool result the fork goes on with")
	instructions := fs.String("instructions", "", "fork: instructions the agent goes on with instead of its own")
	modelName := fs.String("model", "", "fork: a configured model the agent goes on with instead of its own")
	metadata := metadataFlag{}
	fs.Var(metadata, "metadata", "submit: metadata of the run; list: only runs with it (KEY=VALUE, repeatable)")
	from := fs.String("from", "", "list: only runs created at or after this day or time")
	to := fs.String("to", "", "list: only runs created before this day or time")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := flagsOf(fs, sub); err != nil {
		return err
	}
	c := rf.client()
	needID := func() (string, error) {
		if len(pos) != 1 {
			return "", &exitError{code: 2, err: fmt.Errorf("runs %s needs one run id", sub)}
		}
		return pos[0], nil
	}
	show := func(v any) error { return printJSON(e, v) }
	switch sub {
	case "submit":
		return submitRun(ctx, e, c, pos, submitOptions{instance: *instance, state: *state, metadata: metadata, follow: *follow, asJSON: *asJSON})
	case "list":
		if *agent != "" && *flowName != "" {
			return &exitError{code: 2, err: errors.New("runs list: give --agent or --flow, not both (a run is of one or the other)")}
		}
		if *limit < 1 || *limit > 1000 {
			return &exitError{code: 2, err: fmt.Errorf("runs list: --limit must be a number from 1 to 1000, not %d", *limit)}
		}
		f := run.Filter{Agent: *agent, Flow: *flowName, Status: run.Status(*status), Parent: *parent,
			Roots: *roots, Instance: *instance, Metadata: metadata, Limit: *limit, Cursor: *cursor}
		if f.From, err = dayOrTime("from", *from); err != nil {
			return err
		}
		if f.To, err = dayOrTime("to", *to); err != nil {
			return err
		}
		l, err := c.List(ctx, f)
		if err != nil {
			return err
		}
		if *asJSON {
			return show(l)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tAGENT/FLOW\tSTATUS\tCREATED\tTOKENS\tPATH")
		for _, r := range l.Runs {
			who := r.Agent
			if r.Flow != "" {
				who = "flow " + r.Flow
			}
			status := string(r.Status)
			if r.WaitingFor != "" {
				status += " (" + r.WaitingFor + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, who, status, r.CreatedAt.Format("2006-01-02 15:04:05"), r.Usage.Total(), r.Path)
		}
		tw.Flush()
		if l.NextCursor != "" {
			fmt.Fprintf(e.stdout, "more: --cursor %s\n", l.NextCursor)
		}
		return nil
	case "show":
		id, err := needID()
		if err != nil {
			return err
		}
		rec, err := c.Get(ctx, id)
		if err != nil {
			return err
		}
		if *asJSON {
			return show(rec)
		}
		showRecord(e.stdout, rec)
		return nil
	case "events":
		id, err := needID()
		if err != nil {
			return err
		}
		err = c.Events(ctx, id, *after, func(ev run.TreeEvent) bool {
			printEvent(e.stdout, ev, id, *asJSON)
			if ev.RunID == id && ev.Type == journal.TypeRunWaiting {
				// Say what it waits for: the stream stays open until it ends.
				if rec, err := c.Get(ctx, id); err == nil && rec.Settled() {
					fmt.Fprintf(e.stderr, "myriad runs events: %s %s\n(still following: Ctrl-C to stop)\n", id, nextStep(rec))
				}
			}
			return true
		})
		if err != nil {
			return err
		}
		// The stream ended with the run: its exit status is myriad run's.
		if rec, err := c.Get(ctx, id); err == nil && rec.Status.Terminal() {
			return ended(e, rec, true) // the events printed the output already
		}
		return nil
	case "cancel":
		id, err := needID()
		if err != nil {
			return err
		}
		rec, err := c.Cancel(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case rec.Status == run.StatusCanceled:
			fmt.Fprintf(e.stdout, "%s: canceled\n", rec.ID)
		case rec.Status.Terminal():
			fmt.Fprintf(e.stdout, "%s: already %s; nothing to cancel\n", rec.ID, rec.Status)
		default:
			fmt.Fprintf(e.stdout, "%s: %s, cancel requested (it stops at its next step)\n", rec.ID, rec.Status)
		}
		return nil
	case "delete":
		id, err := needID()
		if err != nil {
			return err
		}
		if err := c.Delete(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: deleted\n", id)
		return nil
	case "resolve":
		id, err := needID()
		if err != nil {
			return err
		}
		rec, err := c.Resolve(ctx, id, run.Resolution{Action: *action, Result: *result, Reason: *reason})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", rec.ID, rec.Status)
		return nil
	case "fork":
		id, err := needID()
		if err != nil {
			return err
		}
		if *step == 0 {
			return &exitError{code: 2, err: errors.New("runs fork: --step N is required: the step to go on from (the [step] runs events shows)")}
		}
		req := apitype.ForkRequest{Step: *step, Instructions: *instructions, Model: *modelName}
		if (*toolCall == "") != (*toolResult == "") {
			return &exitError{code: 2, err: errors.New("runs fork: give --tool-call and --tool-result together")}
		}
		if *toolCall != "" {
			req.ToolResult = &journal.ForkToolResult{CallID: *toolCall, Content: *toolResult}
		}
		ref, err := c.Fork(ctx, id, req)
		if err != nil {
			return err
		}
		if *asJSON {
			return show(ref)
		}
		fmt.Fprintf(e.stdout, "%s: forked from %s at step %d (follow it with myriad runs events %s)\n", ref.ID, id, *step, ref.ID)
		return nil
	case "approvals":
		l, err := c.Approvals(ctx, *agent)
		if err != nil {
			return err
		}
		if *asJSON {
			return show(l)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tAPPROVAL\tAGENT\tTOOL\tARGUMENTS")
		for _, a := range l.Approvals {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.RunID, a.ApprovalID, a.Agent, a.Name, clip(string(a.Arguments), 80))
		}
		return tw.Flush()
	case "decide":
		if len(pos) != 2 {
			return &exitError{code: 2, err: errors.New("runs decide needs RUN-ID and APPROVAL-ID")}
		}
		if *decision == "" {
			return &exitError{code: 2, err: errors.New("runs decide needs --decision approve or --decision deny")}
		}
		d := run.Decision{Decision: *decision, Reason: *reason}
		if *arguments != "" {
			d.Arguments = json.RawMessage(*arguments)
		}
		rec, err := c.Decide(ctx, pos[0], pos[1], d)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", rec.ID, rec.Status)
		return nil
	case "answer":
		if len(pos) != 3 {
			return &exitError{code: 2, err: errors.New("runs answer needs RUN-ID, KEY (node#visit, from the run's input_requests) and VALUE (JSON; quote text: '\"yes\"')")}
		}
		if !json.Valid([]byte(pos[2])) {
			return &exitError{code: 2, err: fmt.Errorf("VALUE %q is not JSON: quote text as '\"yes\"'", pos[2])}
		}
		rec, err := c.ProvideInput(ctx, pos[0], pos[1], json.RawMessage(pos[2]))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", rec.ID, rec.Status)
		return nil
	}
	return &exitError{code: 2, err: fmt.Errorf("unknown subcommand %q (known: submit, list, show, events, cancel, resolve, fork, approvals, decide, answer)", sub)}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// runsFlags are the flags each runs subcommand takes, beside --server,
// --token-env and --json.
var runsFlags = map[string][]string{
	"submit":    {"instance", "state", "follow", "metadata"},
	"list":      {"agent", "flow", "status", "parent", "roots", "instance", "metadata", "from", "to", "limit", "cursor"},
	"show":      {},
	"events":    {"after"},
	"cancel":    {},
	"resolve":   {"action", "result", "reason"},
	"fork":      {"step", "tool-call", "tool-result", "instructions", "model"},
	"approvals": {"agent"},
	"decide":    {"decision", "reason", "arguments"},
	"answer":    {},
}

// flagsOf refuses a flag the subcommand does not take, rather than ignore it.
func flagsOf(fs *flag.FlagSet, sub string) error {
	takes, known := runsFlags[sub]
	if !known {
		return nil // an unknown subcommand is named below
	}
	var wrong []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "server" && f.Name != "token-env" && f.Name != "json" && !slices.Contains(takes, f.Name) {
			wrong = append(wrong, "--"+f.Name)
		}
	})
	if len(wrong) == 0 {
		return nil
	}
	its := "none beside --server, --token-env and --json"
	if len(takes) > 0 {
		its = "--" + strings.Join(takes, ", --")
	}
	return &exitError{code: 2, err: fmt.Errorf("runs %s does not take %s (its flags: %s)", sub, strings.Join(wrong, ", "), its)}
}
