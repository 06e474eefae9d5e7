package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/myriad-ai/myriad/internal/redact"

	"github.com/myriad-ai/myriad"
	"github.com/myriad-ai/myriad/a2aserver"
	"github.com/myriad-ai/myriad/api"
	"github.com/myriad-ai/myriad/config"
	"github.com/myriad-ai/myriad/console"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/mcpserver"
	"github.com/myriad-ai/myriad/openaiserver"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/telemetry"
)

func serve(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "serve", "serve [--config myriad.yaml] [--data DIR] [--listen ADDR] [--nats URL | --cluster-name N --cluster-listen HOST:PORT --routes HOST:PORT,...]")
	path := fs.String("config", defaultConfig(), "the project file")
	data := fs.String("data", "data", "directory for the embedded NATS server's files")
	listen := fs.String("listen", "", "address to serve the API on (default from the config, else 127.0.0.1:8420)")
	natsURL := fs.String("nats", "", "use this NATS server or cluster instead of the embedded one")
	workers := fs.Int("workers", 0, "runs executed at once on this node (default from the config)")
	clusterOpts := addClusterFlags(fs)
	logs := logFlags(fs, "info")
	accessLog := fs.Bool("access-log", false, "log a line per HTTP request (method, path, status, bytes, duration)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	log, err := logs.logger(e.stderr)
	if err != nil {
		return err
	}
	proj, err := myriad.Load(*path)
	if err != nil {
		return err
	}
	defer proj.Close() // MCP servers started for it stop with the command
	cfg := proj.Config
	addr := cfg.Server.Listen
	if *listen != "" {
		addr = *listen
	}
	token := ""
	if env := cfg.Server.APITokenEnv; env != "" {
		if token = os.Getenv(env); token == "" {
			return fmt.Errorf("server.api_token_env: environment variable %s is empty or unset", env)
		}
	}
	if *workers < 0 {
		return &exitError{code: 2, err: fmt.Errorf("--workers: %d: give the runs this node executes at once, 1 or more (left out: server.workers, else 256)", *workers)}
	}
	cluster, err := clusterOpts.cluster(cfg)
	if err != nil {
		return err
	}
	if cluster != nil && *natsURL != "" {
		return &exitError{code: 2, err: errors.New("--nats joins an external NATS cluster; --cluster-name, --cluster-listen and --routes form one of Myriad nodes: give one or the other")}
	}
	replicas := cfg.Server.Replicas
	if *clusterOpts.replicas != 0 {
		replicas = *clusterOpts.replicas
	}
	if replicas < 0 || replicas > 5 {
		return &exitError{code: 2, err: fmt.Errorf("--replicas %d: give 1 to 5 copies", replicas)}
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--listen %s: not an address: write HOST:PORT, like 127.0.0.1:8420", run.Quote(addr))}
	}
	if token == "" && !loopback(addr) {
		return fmt.Errorf("refusing to listen on %s without authentication: set server.api_token_env in %s, or listen on 127.0.0.1", addr, *path)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (pass another --listen)", addr, err)
	}
	spans, tracesTo, err := telemetry.SpansFromEnv(ctx)
	if err != nil {
		ln.Close()
		return err
	}
	// The SDK's own errors (an unreachable collector) go to the log, in
	// its format, without credentials.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("traces", "err", redact.Text(err.Error())) }))
	tel := telemetry.New(telemetry.Options{Spans: spans, Models: traceModels(cfg), Version: myriad.Version,
		RecordContent: os.Getenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT") == "true"})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			log.Warn("traces not all written", "err", err)
		}
	}()
	if spans != nil {
		log.Info("writing traces over OTLP", "to", tracesTo)
	}
	if cluster != nil {
		log.Info("joining the cluster", "cluster", cluster.Name, "node", cluster.NodeName, "routes_listen", cluster.Listen, "routes", strings.Join(cluster.Routes, ","))
	}
	node, err := myriad.Open(ctx, proj, myriad.NodeOptions{DataDir: *data, NATSURL: *natsURL, Workers: *workers, Logger: log,
		Observers: []engine.Observer{tel}, Cluster: cluster, Replicas: replicas})
	if err != nil {
		ln.Close()
		return err
	}
	defer node.Close()
	tel.Register(node.Engine)
	a2a, err := a2aserver.New(node.Engine, a2aserver.Options{Version: myriad.Version, PublicURL: cfg.Server.PublicURL,
		Default: cfg.Server.A2A.Default, Publish: cfg.Server.A2A.Publish, BearerAuth: token != "", ClientApprovals: cfg.Server.A2A.Approvals == "client", Logger: log})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: api.New(node.Engine, api.Options{Token: token, MaxBodyBytes: cfg.Server.MaxBodyBytes, Logger: log, Version: myriad.Version,
			MCP: mcpserver.Handler(mcpserver.New(node.Engine, mcpserver.Options{Version: myriad.Version, Logger: log}), cfg.Server.MaxBodyBytes), A2A: a2a,
			OpenAI: openaiserver.New(node.Engine, openaiserver.Options{Logger: log}), Metrics: tel.Handler(), Requests: tel.Request, AccessLog: *accessLog, Console: console.Handler()}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	where := "embedded NATS in " + *data
	if *natsURL != "" {
		where = "NATS at " + redact.URL(*natsURL)
	}
	log.Info("myriad serving", "addr", ln.Addr().String(), "agents", len(proj.Agents), "store", where, "version", myriad.Version)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing running steps")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// traceModels says which provider and model id each configured model is,
// as traces name them.
func traceModels(cfg *config.Config) map[string]telemetry.Model {
	out := map[string]telemetry.Model{}
	for name, m := range cfg.Models {
		if m == nil {
			continue
		}
		provider := m.Provider
		if provider == "scripted" {
			provider = "myriad.scripted"
		}
		out[name] = telemetry.Model{Provider: provider, ID: m.Model}
	}
	return out
}

// loopback reports whether addr only accepts local connections.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
