package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
)

// storageCmd reports what a server's store holds: myriad storage.
func storageCmd(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "storage", "storage [--server URL] [--token-env NAME] [--json]")
	rf := remoteFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	u, err := rf.client().Storage(ctx)
	if err != nil {
		return err
	}
	if *rf.asJSON {
		return printJSON(e, u)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tBYTES\t")
	for _, st := range u.Streams {
		fmt.Fprintf(tw, "%s\t%d\t%s\t\n", st.Name, st.Messages, humanSize(st.Bytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	copies := ""
	if u.Replicas > 1 {
		copies = fmt.Sprintf(" (one copy of %d)", u.Replicas)
	}
	fmt.Fprintf(e.stdout, "%d runs, %s in all%s\n", u.Runs, humanSize(u.Bytes), copies)
	return nil
}

// humanSize writes a byte count in KiB, MiB or GiB.
func humanSize(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
