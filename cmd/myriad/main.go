// Command myriad runs, serves and benchmarks durable LLM agents.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/myriad-ai/myriad/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
