package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/myriad-ai/myriad/mockllm"
	"github.com/myriad-ai/myriad/model/scripted"
)

func mockLLM(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "mock-llm", "mock-llm --rules FILE [--listen 127.0.0.1:8421] [--latency 0] [--fail-first N] [--fail-rate F]")
	listen := fs.String("listen", "127.0.0.1:8421", "address to serve on")
	rulesPath := fs.String("rules", "", "scripted rules file (see docs/scripted-model.md)")
	latency := fs.Duration("latency", 0, "wait this long before each answer")
	failFirst := fs.Int("fail-first", 0, "fail the first N chat requests")
	failRate := fs.Float64("fail-rate", 0, "fail this fraction (0..1) of chat requests")
	failStatus := fs.Int("fail-status", 500, "HTTP status of injected failures")
	retryAfter := fs.Duration("retry-after", 0, "send Retry-After with injected failures")
	seed := fs.Int64("seed", 1, "seed of the --fail-rate choice, for repeatable runs")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *rulesPath == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("--rules is required")}
	}
	if *failRate < 0 || *failRate > 1 {
		return &exitError{code: 2, err: fmt.Errorf("--fail-rate: %v is not between 0 and 1", *failRate)}
	}
	rules, err := scripted.LoadRules(*rulesPath)
	if err != nil {
		return err
	}
	srv, err := mockllm.New(mockllm.Options{Rules: rules, Latency: *latency, FailFirst: *failFirst, FailRate: *failRate,
		FailStatus: *failStatus, RetryAfter: *retryAfter, Seed: *seed})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (pass another --listen)", *listen, err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(e.stderr, "mock-llm: OpenAI-compatible API at http://%s/v1 (%d rules, latency %s); stats at /stats\n", ln.Addr(), len(rules), *latency)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hs.Shutdown(shutdownCtx)
}
