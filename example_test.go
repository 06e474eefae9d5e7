package myriad_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/myriad-ai/myriad"
	"github.com/myriad-ai/myriad/agent"
	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/model/scripted"
	"github.com/myriad-ai/myriad/tool"
)

// counter is an agent with a Go function tool and a scripted model, so the
// examples run offline.
func counter() *agent.Agent {
	rules, err := scripted.ParseRules([]byte(`
- when: {last_tool: word_count}
  reply: {text: "{{.LastToolResult}} words."}
- when: {last_user: "(?i)count: (?P<text>.+)"}
  reply: {tool_calls: [{name: word_count, arguments: {text: "{{.Match.text}}"}}]}
- reply: {text: "Say: count: <some text>"}
`))
	if err != nil {
		log.Fatal(err)
	}
	m, err := scripted.New(rules)
	if err != nil {
		log.Fatal(err)
	}
	type args struct {
		Text string `json:"text" jsonschema:"the text"`
	}
	words, err := tool.NewFunc("word_count", "Counts the words in a text.",
		func(ctx context.Context, _ *tool.Call, in args) (string, error) {
			return fmt.Sprint(len(strings.Fields(in.Text))), nil
		})
	if err != nil {
		log.Fatal(err)
	}
	return &agent.Agent{Model: m, Tools: []tool.Tool{words.Idempotent()}}
}

func ExampleNode_Ask() {
	ctx := context.Background()
	proj := &myriad.Project{Agents: map[string]*agent.Agent{"counter": counter()}}
	node, err := myriad.Open(ctx, proj, myriad.NodeOptions{Memory: true})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	answer, err := node.Ask(ctx, "counter", "count: durable agents resume where they stopped")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(answer)

	_, err = node.Ask(ctx, "countr", "count: typo")
	fmt.Println(errors.Is(err, engine.ErrUnknownAgent))
	// Output:
	// 6 words.
	// true
}

func ExampleNode_Run() {
	ctx := context.Background()
	proj := &myriad.Project{Agents: map[string]*agent.Agent{"counter": counter()}}
	node, err := myriad.Open(ctx, proj, myriad.NodeOptions{Memory: true})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	for u, err := range node.Run(ctx, engine.SubmitRequest{Agent: "counter", Input: "count: one two three"}) {
		if err != nil {
			log.Fatal(err)
		}
		if u.Event != nil {
			fmt.Println(u.Event.Path, u.Event.Type)
		}
	}
	// Output:
	// counter run.started
	// counter model.response
	// counter tool.started
	// counter tool.finished
	// counter model.response
	// counter run.completed
}
