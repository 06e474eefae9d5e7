package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/myriad-ai/myriad"
	"github.com/myriad-ai/myriad/config"
)

func validate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "validate", "validate [--config myriad.yaml] [--env]")
	path := fs.String("config", defaultConfig(), "the project file")
	checkEnv := fs.Bool("env", false, "also check that the secrets' environment variables are set")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if *checkEnv {
		proj, err := myriad.Build(cfg)
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		proj.Close() // --env connects to MCP servers: stop them again
	}
	parts := []string{count(len(cfg.Models), "model"), count(len(cfg.Tools), "tool"), count(len(cfg.Agents), "agent"),
		count(len(cfg.Flows), "flow"), count(len(cfg.Schedules), "schedule")}
	if len(cfg.Budgets) > 0 {
		parts = append(parts, count(len(cfg.Budgets), "budget"))
	}
	fmt.Fprintf(e.stdout, "%s: ok (%s)\n", *path, strings.Join(parts, ", "))
	return nil
}

// count writes "1 model" or "3 models".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
