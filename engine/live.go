package engine

import (
	"encoding/json"

	"github.com/myriad-ai/myriad/run"

	"github.com/myriad-ai/myriad/model"
	"github.com/myriad-ai/myriad/tool"
)

// publishProgress returns the hook that publishes a run's tool progress.
func (x *execution) publishProgress(rec *run.Record) func(string, string, tool.Progress) {
	id, path := rec.ID, rec.PathOrAgent()
	return func(callID, name string, p tool.Progress) {
		data, _ := json.Marshal(run.ToolProgress{Type: run.LiveProgress, RunID: id, Path: path, CallID: callID, Tool: name, Progress: p})
		x.e.st.PublishLive(id, data)
	}
}

// publishDelta returns the hook that publishes a run's streamed text.
func (x *execution) publishDelta(rec *run.Record) func(int, model.Delta) {
	id, path := rec.ID, rec.PathOrAgent()
	return func(turn int, d model.Delta) {
		if d.Text == "" {
			return
		}
		data, _ := json.Marshal(run.Delta{Type: run.LiveDelta, RunID: id, Path: path, Turn: turn, Text: d.Text})
		x.e.st.PublishLive(id, data)
	}
}
