package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/myriad-ai/myriad/run"
)

// showRecord prints a run's record for a person: who, where it stands,
// how long, what it used, what it answered, and what it waits for.
func showRecord(w io.Writer, rec *run.Record) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("run", rec.ID)
	if rec.Flow != "" {
		row("flow", rec.Flow)
	} else {
		row("agent", rec.Agent)
	}
	if rec.Instance != "" {
		row("instance", fmt.Sprintf("%s (turn %d)", rec.Instance, rec.Turn))
	}
	if rec.Parent != "" {
		row("parent", rec.Parent)
		row("path", rec.Path)
	}
	status := string(rec.Status)
	if rec.WaitingFor != "" {
		status += " (for " + rec.WaitingFor + ")"
	}
	row("status", status)
	row("created", rec.CreatedAt.Local().Format("2006-01-02 15:04:05"))
	if rec.EndedAt != nil {
		row("ended", rec.EndedAt.Local().Format("2006-01-02 15:04:05")+" (after "+rec.EndedAt.Sub(rec.CreatedAt).Round(time.Millisecond).String()+")")
	}
	row("steps", fmt.Sprint(rec.Steps))
	tokens := fmt.Sprintf("%d in, %d out", rec.Usage.InputTokens, rec.Usage.OutputTokens)
	if rec.Usage.CachedInputTokens > 0 {
		tokens += fmt.Sprintf(" (%d of the input read from the prompt cache)", rec.Usage.CachedInputTokens)
	}
	row("tokens", tokens)
	if c := rec.Cost; c != nil {
		var parts []string
		for _, name := range slices.Sorted(maps.Keys(c.Models)) {
			parts = append(parts, name+" "+dollars(c.Models[name]))
		}
		for _, name := range slices.Sorted(maps.Keys(c.Tools)) {
			parts = append(parts, name+" "+dollars(c.Tools[name]))
		}
		row("cost", fmt.Sprintf("%s (%s)", dollars(c.USD), strings.Join(parts, ", ")))
	}
	for _, k := range sortedKeys(rec.Metadata) {
		row("metadata."+k, rec.Metadata[k])
	}
	row("input", clip(rec.Input, 500))
	if rec.Error != nil {
		row("error", rec.Error.Code+": "+rec.Error.Message)
	}
	tw.Flush()
	if rec.Output != "" {
		fmt.Fprintf(w, "\noutput:\n%s\n", indent(clip(rec.Output, 4000)))
	}
	if next := nextStep(rec); next != "" {
		fmt.Fprintf(w, "\nThis run %s\n", next)
	}
}

// dollars shows an amount to the cent, or to the millionth of a dollar
// below a cent.
func dollars(usd float64) string {
	if usd < 0.01 {
		return fmt.Sprintf("$%.6f", usd)
	}
	return fmt.Sprintf("$%.4f", usd)
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
