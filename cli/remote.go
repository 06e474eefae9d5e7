package cli

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/myriad-ai/myriad/api/client"
	"github.com/myriad-ai/myriad/run"
)

// remote are the flags of a command that talks to a server: --server,
// --token-env and --json.
type remote struct {
	server, tokenEnv *string
	asJSON           *bool
}

func remoteFlags(fs *flag.FlagSet) remote {
	return remote{
		server:   fs.String("server", envOr("MYRIAD_SERVER", "http://127.0.0.1:8420"), "the server's base URL"),
		tokenEnv: fs.String("token-env", "MYRIAD_API_TOKEN", "environment variable holding the API token"),
		asJSON:   fs.Bool("json", false, "print JSON"),
	}
}

func (r remote) client() *client.Client {
	c := client.New(*r.server, os.Getenv(*r.tokenEnv))
	c.TokenFrom = "the environment variable " + *r.tokenEnv + " (--token-env names another)"
	return c
}

// nextStep says what a settled run waits for and, as commands, how a
// person moves it on ("waits for approval: decide with …"), or ""
// when it needs no one.
func nextStep(rec *run.Record) string {
	switch {
	case rec.Status == run.StatusInDoubt:
		return fmt.Sprintf("is in doubt over a %s call: decide with myriad runs resolve %s --action retry|skip|fail", callName(rec), rec.ID)
	case rec.Status != run.StatusWaiting:
		return ""
	case len(rec.PendingApprovals()) > 0:
		var lines []string
		for _, a := range rec.PendingApprovals() {
			lines = append(lines, fmt.Sprintf("myriad runs decide %s %s --decision approve|deny   (%s %s)", rec.ID, a.ApprovalID, a.Name, clip(string(a.Arguments), 80)))
		}
		return "waits for approval: decide with\n  " + strings.Join(lines, "\n  ")
	case len(rec.InputRequests) > 0:
		var lines []string
		for _, q := range rec.InputRequests {
			lines = append(lines, fmt.Sprintf("myriad runs answer %s %s VALUE   (%s)", rec.ID, q.Key, clip(q.Prompt, 80)))
		}
		return "waits for a person's input: answer with\n  " + strings.Join(lines, "\n  ")
	case rec.WaitingFor == run.WaitChildren:
		return fmt.Sprintf("waits for its child runs: myriad runs list --parent %s", rec.ID)
	case rec.WakeAt != nil:
		return "waits until " + rec.WakeAt.Local().Format("2006-01-02 15:04:05")
	}
	return "waits for " + rec.WaitingFor
}

func callName(rec *run.Record) string {
	if rec.InDoubt != nil {
		return rec.InDoubt.Name
	}
	return "tool"
}
