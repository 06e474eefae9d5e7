package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
)

// agentsCmd lists a server's agents: myriad agents.
func agentsCmd(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "agents", "agents [--server URL] [--token-env NAME] [--json]")
	rf := remoteFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	agents, err := rf.client().Agents(ctx)
	if err != nil {
		return err
	}
	if *rf.asJSON {
		return printJSON(e, agents)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if len(agents) == 0 {
		fmt.Fprintln(e.stdout, "no agents")
		return nil
	}
	fmt.Fprintln(tw, "AGENT\tMODEL\tTOOLS\tSUB-AGENTS\tHANDOFFS\tDESCRIPTION")
	for _, a := range agents {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Model, orDash(clip(strings.Join(a.Tools, ", "), 60)),
			orDash(strings.Join(a.SubAgents, ", ")), orDash(strings.Join(a.Handoffs, ", ")), clip(a.Description, 80))
	}
	return tw.Flush()
}

// flowsCmd lists a server's flows: myriad flows.
func flowsCmd(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "flows", "flows [--server URL] [--token-env NAME] [--json]")
	rf := remoteFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	flows, err := rf.client().Flows(ctx)
	if err != nil {
		return err
	}
	if *rf.asJSON {
		return printJSON(e, flows)
	}
	if len(flows) == 0 {
		fmt.Fprintln(e.stdout, "no flows")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLOW\tSTART\tNODES\tDESCRIPTION")
	for _, f := range flows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, strings.Join(f.Start, ", "), clip(strings.Join(f.Nodes, ", "), 60), clip(f.Description, 80))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printJSON(e *env, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s\n", data)
	return nil
}
