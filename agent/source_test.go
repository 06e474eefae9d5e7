package agent

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/tool"
)

// changing is a tool source whose tools are replaced by the test.
type changing struct {
	tools   atomic.Pointer[[]tool.Tool]
	version atomic.Uint64
}

func (c *changing) Tools() []tool.Tool { return *c.tools.Load() }
func (c *changing) Version() uint64    { return c.version.Load() }
func (c *changing) set(names ...string) {
	var ts []tool.Tool
	for _, n := range names {
		f, err := tool.NewFunc(n, "test tool", func(context.Context, *tool.Call, struct{}) (string, error) { return n, nil })
		if err != nil {
			panic(err)
		}
		ts = append(ts, f)
	}
	c.tools.Store(&ts)
	c.version.Add(1)
}

type noModel struct{}

func (noModel) Generate(context.Context, *model.Request, func(model.Delta)) (*model.Response, error) {
	return &model.Response{}, nil
}

func TestSourcesChangeTheToolsOffered(t *testing.T) {
	src := &changing{}
	src.set("a")
	ag := &Agent{Name: "x", Model: noModel{}, Sources: []tool.Source{src}}
	if err := ag.Init(); err != nil {
		t.Fatal(err)
	}
	names := func() (out []string) {
		for _, i := range ag.CurrentTools() {
			out = append(out, i.Name)
		}
		return out
	}
	if got := names(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("tools %v", got)
	}
	src.set("a", "b")
	if got := names(); len(got) != 2 || got[1] != "b" {
		t.Fatalf("after a change: %v", got)
	}
	if err := ag.ValidateArguments("b", json.RawMessage(`{}`)); err != nil {
		t.Fatalf("the new tool does not bind: %v", err)
	}
	// A change that does not bind (a duplicate name) keeps the last good set.
	src.set("b", "b")
	if got := names(); len(got) != 2 {
		t.Fatalf("a bad change replaced the tools: %v", got)
	}
}
