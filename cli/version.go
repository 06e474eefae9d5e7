package cli

import (
	"context"
	"fmt"
	"runtime"

	"github.com/myriad-ai/myriad"
)

func version(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "version", "version")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "myriad %s (%s, %s/%s)\n", myriad.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
