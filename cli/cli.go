// Package cli implements the myriad command, one file per subcommand.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what a subcommand may use of the process.
type env struct {
	stdout, stderr io.Writer
}

func commands() []command {
	return []command{
		{"serve", "serve the HTTP API and execute runs", serve},
		{"mcp", "serve agents and flows as MCP tools on stdin/stdout", mcpCmd},
		{"run", "run an agent or a flow in-process and print its events", runCmd},
		{"runs", "submit, list, show, follow, cancel or resolve runs on a server", runsCmd},
		{"instances", "list, read and message agent instances on a server", instancesCmd},
		{"agents", "list a server's agents", agentsCmd},
		{"storage", "what a server's store holds: runs, and bytes by stream", storageCmd},
		{"flows", "list a server's flows", flowsCmd},
		{"validate", "check a myriad.yaml", validate},
		{"mock-llm", "serve an OpenAI-compatible model driven by scripted rules", mockLLM},
		{"bench", "measure sessions per second against the configured models", bench},
		{"version", "print the version", version},
	}
}

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// Main runs the command line and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, e, args[1:])
			if err == nil {
				return 0
			}
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			var ee *exitError
			if errors.As(err, &ee) {
				if ee.err != nil && ee.err.Error() != "" {
					fmt.Fprintln(stderr, "myriad "+c.name+": "+ee.err.Error())
				}
				return ee.code
			}
			fmt.Fprintln(stderr, "myriad "+c.name+": "+err.Error())
			return 1
		}
	}
	fmt.Fprintf(stderr, "myriad: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Myriad runs, serves and observes durable LLM agents.\n\nUsage: myriad <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'myriad <command> -h' for a command's flags.")
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: myriad %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags, allowing them after positional arguments too.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, flag.ErrHelp // asked for: exit 0
			}
			return nil, &exitError{code: 2, err: errors.New("")}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func defaultConfig() string {
	if v := os.Getenv("MYRIAD_CONFIG"); v != "" {
		return v
	}
	return "myriad.yaml"
}

// dataDir returns the --data directory, or a temporary one (removed by
// cleanup) when none was given and the streams are not kept in memory.
func dataDir(given, command string, memory bool) (dir string, cleanup func(), err error) {
	if given != "" || memory {
		return given, func() {}, nil
	}
	dir, err = os.MkdirTemp("", "myriad-"+command+"-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}
