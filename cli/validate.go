package cli

import (
	"context"
	"fmt"

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
		if _, err := myriad.Build(cfg); err != nil {
			return &exitError{code: 1, err: err}
		}
	}
	fmt.Fprintf(e.stdout, "%s: ok (%d models, %d tools, %d agents, %d flows, %d schedules)\n", *path,
		len(cfg.Models), len(cfg.Tools), len(cfg.Agents), len(cfg.Flows), len(cfg.Schedules))
	return nil
}
