package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/myriad-ai/myriad/api/apitype"
)

// instancesCmd lists, reads and messages agent instances on a server:
// myriad instances list|show|send|broadcast.
func instancesCmd(ctx context.Context, e *env, args []string) error {
	const usage = "instances list [--agent A] [--under PATH] [--limit N] [--cursor C] | show AGENT/KEY | send AGENT/KEY TEXT [--wait D] | broadcast PATTERN TEXT [--from NAME]"
	if len(args) == 0 {
		return &exitError{code: 2, err: errors.New("usage: myriad " + usage)}
	}
	fs := newFlags(e, "instances "+args[0], usage)
	rf := remoteFlags(fs)
	agentFlag := fs.String("agent", "", "list: only this agent's instances")
	under := fs.String("under", "", "list: only instances whose keys are under this path (eu/team-a)")
	limit := fs.Int("limit", 50, "list: page size (1-1000)")
	cursor := fs.String("cursor", "", "list: the next_cursor a previous page printed")
	wait := fs.Duration("wait", 0, "send: wait up to this long (at most 1m) for the answer")
	from := fs.String("from", "", "send, broadcast: the sender's name, told to each recipient")
	idemKey := fs.String("idempotency-key", "", "send, broadcast: send once for this key")
	rest, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	c := rf.client()
	switch args[0] {
	case "list":
		if *limit < 1 || *limit > 1000 {
			return &exitError{code: 2, err: fmt.Errorf("--limit: %d is not between 1 and 1000", *limit)}
		}
		page, err := c.Instances(ctx, *agentFlag, *under, *limit, *cursor)
		if err != nil {
			return err
		}
		if *rf.asJSON {
			return printJSON(e, page)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ADDRESS\tCREATED")
		for _, ie := range page.Instances {
			fmt.Fprintf(tw, "%s\t%s\n", ie.Address, ie.Created.Local().Format(time.DateTime))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if page.NextCursor != "" {
			fmt.Fprintf(e.stdout, "more: --cursor %s\n", page.NextCursor)
		}
		return nil
	case "show":
		if len(rest) != 1 {
			return &exitError{code: 2, err: errors.New("usage: myriad instances show AGENT/KEY")}
		}
		agentName, key, ok := strings.Cut(rest[0], "/")
		if !ok {
			return &exitError{code: 2, err: fmt.Errorf("%q is not an address: write agent/key", rest[0])}
		}
		in, err := c.Instance(ctx, agentName, key)
		if err != nil {
			return err
		}
		if *rf.asJSON {
			return printJSON(e, in)
		}
		fmt.Fprintf(e.stdout, "%s: %d turns, %d done, %d messages kept\n", in.Address, in.Turns, in.Done, in.Messages)
		if in.Current != "" {
			fmt.Fprintf(e.stdout, "running: %s\n", in.Current)
		}
		for _, id := range in.Queued {
			fmt.Fprintf(e.stdout, "queued:  %s\n", id)
		}
		return nil
	case "send":
		if len(rest) != 2 {
			return &exitError{code: 2, err: errors.New("usage: myriad instances send AGENT/KEY TEXT")}
		}
		agentName, key, ok := strings.Cut(rest[0], "/")
		if !ok {
			return &exitError{code: 2, err: fmt.Errorf("%q is not an address: write agent/key", rest[0])}
		}
		text := rest[1]
		md := map[string]string(nil)
		if *from != "" {
			text, md = "Message from "+*from+":\n\n"+text, map[string]string{"from": *from}
		}
		ref, err := c.Submit(ctx, apitype.CreateRunRequest{Agent: agentName, Instance: key, Input: text, Metadata: md}, *idemKey)
		if err != nil {
			return err
		}
		if *wait <= 0 {
			fmt.Fprintln(e.stdout, ref.ID)
			return nil
		}
		rec, err := c.Wait(ctx, ref.ID, min(*wait, time.Minute))
		if err != nil {
			return err
		}
		if *rf.asJSON {
			return printJSON(e, rec)
		}
		if !rec.Status.Terminal() {
			return fmt.Errorf("run %s is %s after %s: follow it with myriad runs follow %s", rec.ID, rec.Status, *wait, rec.ID)
		}
		fmt.Fprintln(e.stdout, rec.Output)
		return nil
	case "broadcast":
		if len(rest) != 2 {
			return &exitError{code: 2, err: errors.New("usage: myriad instances broadcast PATTERN TEXT (PATTERN: agent/team/*, */team/*)")}
		}
		res, err := c.Broadcast(ctx, apitype.BroadcastRequest{To: rest[0], Input: rest[1], From: *from}, *idemKey)
		if err != nil {
			return err
		}
		if *rf.asJSON {
			return printJSON(e, res)
		}
		fmt.Fprintf(e.stdout, "sent to %d instances\n", res.Sent)
		return nil
	}
	return &exitError{code: 2, err: fmt.Errorf("instances: unknown command %q (known: list, show, send, broadcast)", args[0])}
}
