// Command library shows Myriad used as a Go library: a model, a Go function
// tool and an agent defined in code, run durably on an embedded NATS server.
//
//	go run ./examples/library
//
// It uses the scripted model so it runs offline; swap in model/openai or
// model/anthropic for a real one.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/myriad-ai/myriad"
	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/model/scripted"
	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/tool"
)

// WordCountArgs are the arguments of the word_count tool; its JSON Schema is
// derived from this struct.
type WordCountArgs struct {
	Text string `json:"text" jsonschema:"the text to count words in"`
}

const rules = `
- when: {last_tool: word_count}
  reply: {text: "That text has {{.LastToolResult}} words."}
- when: {last_user: "(?i)count the words in: (?P<text>.+)"}
  reply:
    tool_calls:
      - name: word_count
        arguments: {text: "{{.Match.text}}"}
- reply: {text: "Ask me to count the words in: <some text>"}
`

func main() {
	if err := count(context.Background(), os.Args[1:]); err != nil {
		log.Fatal(err)
	}
}

func count(ctx context.Context, args []string) error {
	input := "Count the words in: durable agents resume where they stopped"
	if len(args) > 0 {
		input = strings.Join(args, " ")
	}
	rs, err := scripted.ParseRules([]byte(rules))
	if err != nil {
		return err
	}
	m, err := scripted.New(rs)
	if err != nil {
		return err
	}
	wordCount, err := tool.NewFunc("word_count", "Counts the words in a text.",
		func(ctx context.Context, _ *tool.Call, in WordCountArgs) (string, error) {
			return fmt.Sprint(len(strings.Fields(in.Text))), nil
		})
	if err != nil {
		return err
	}
	proj := &myriad.Project{Agents: map[string]*agent.Agent{
		"counter": {Model: m, ModelName: "scripted", Tools: []tool.Tool{wordCount.Idempotent()}, MaxTurns: 4},
	}}
	dir, err := os.MkdirTemp("", "myriad-library-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	node, err := myriad.Open(ctx, proj, myriad.NodeOptions{DataDir: dir})
	if err != nil {
		return err
	}
	defer node.Close()
	rec, _, err := node.Engine.Submit(ctx, engine.SubmitRequest{Agent: "counter", Input: input})
	if err != nil {
		return err
	}
	rec, err = node.Engine.Wait(ctx, rec.ID)
	if err != nil {
		return err
	}
	if rec.Status != run.StatusCompleted {
		return fmt.Errorf("run %s ended %s: %+v", rec.ID, rec.Status, rec.Error)
	}
	fmt.Println(rec.Output)
	return nil
}
