// Package myriad runs durable LLM agents: defined in a myriad.yaml or in Go,
// executed on an embedded NATS JetStream server (or a NATS cluster), every
// step journaled before the next one starts, so a killed process resumes
// each run where it stopped.
//
// # A first agent
//
// An agent is a model, instructions and tools. Build one in Go, put it in a
// Project, open a Node and ask it something:
//
//	m, _ := openai.New(openai.Config{Model: "gpt-4.1-mini"}) // reads OPENAI_API_KEY
//	words, _ := tool.NewFunc("word_count", "Counts the words in a text.",
//		func(ctx context.Context, _ *tool.Call, in struct{ Text string `json:"text"` }) (string, error) {
//			return fmt.Sprint(len(strings.Fields(in.Text))), nil
//		})
//	proj := &myriad.Project{Agents: map[string]*agent.Agent{
//		"counter": {Model: m, Instructions: "Count words with word_count.", Tools: []tool.Tool{words.Idempotent()}},
//	}}
//	node, err := myriad.Open(ctx, proj, myriad.NodeOptions{DataDir: "data"})
//	if err != nil {
//		return err
//	}
//	defer node.Close()
//	answer, err := node.Ask(ctx, "counter", "How many words in: durable agents resume")
//
// Ask waits for the run's answer. A run that fails, is canceled, or stops
// for a person returns a *RunError that says so; a definition that does not
// exist is engine.ErrUnknownAgent, a bad request engine.ErrInvalid.
//
// The scripted model (model/scripted) answers from rules instead of a
// provider: the examples and tests here use it to run offline.
//
// # Watching a run
//
// Run submits a run and yields what happens in it as it happens: each
// journal entry — the model's responses, tool calls and results, its
// sub-agents' steps with their paths — and, for agents with Stream set,
// the model's text as it is generated:
//
//	for u, err := range node.Run(ctx, engine.SubmitRequest{Agent: "counter", Input: "..."}) {
//		if err != nil {
//			return err // a *RunError, or the engine's
//		}
//		if u.Event != nil {
//			fmt.Println(u.Event.Path, u.Event.Type)
//		}
//	}
//
// # From a myriad.yaml
//
// Load reads a configuration file — models, tools (HTTP, MCP servers, A2A
// agents, sandboxed commands), agents, flows, schedules — and builds the
// same Project:
//
//	proj, err := myriad.Load("myriad.yaml")
//
// # Durability
//
// With a DataDir, the node embeds a NATS server that keeps its streams on
// disk: open the node again after a crash and every run that was under way
// resumes from its journal — a model call that finished is not made again,
// and a tool call that may have happened and is not safe to repeat stops
// its run "in doubt" for an operator. With NATSURL, nodes share a NATS
// server or cluster and its work.
//
// # Steering runs
//
// Node.Engine is the engine every door of the server uses: Submit (with an
// idempotency key, an agent instance that keeps a conversation across
// runs, metadata), Get, List, Wait, Watch, Cancel, Decide on a tool call
// that needs approval, ProvideInput to a question, Resolve a run in doubt. Serve it
// over HTTP with package api, over MCP with mcpserver, over A2A with
// a2aserver, as myriad serve does.
package myriad
