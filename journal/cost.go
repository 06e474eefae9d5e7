package journal

import (
	"bytes"
	"encoding/json"
	"math"
)

// Cost is what a run's work cost, in US dollars, in all and by configured
// model and by tool. A run's cost includes its child runs'.
type Cost struct {
	USD    float64            `json:"usd"`
	Models map[string]float64 `json:"models,omitempty"`
	Tools  map[string]float64 `json:"tools,omitempty"`
}

func (c *Cost) model(name string, usd float64) {
	if usd == 0 {
		return
	}
	if c.Models == nil {
		c.Models = map[string]float64{}
	}
	c.Models[name] += usd
	c.USD += usd
}

func (c *Cost) tool(name string, usd float64) {
	if usd == 0 {
		return
	}
	if c.Tools == nil {
		c.Tools = map[string]float64{}
	}
	c.Tools[name] += usd
	c.USD += usd
}

// Add adds o's cost to c's.
func (c *Cost) Add(o *Cost) {
	if o == nil {
		return
	}
	for name, usd := range o.Models {
		c.model(name, usd)
	}
	for name, usd := range o.Tools {
		c.tool(name, usd)
	}
}

// CostOf is what a journal's run spent: its model calls and tool calls at
// their prices then, and what its children reported; nil when nothing had
// a price.
func CostOf(events []Event) *Cost {
	var c Cost
	for _, ev := range events {
		if !bytes.Contains(ev.Data, []byte(`"cost`)) {
			continue // nothing priced: no need to decode it
		}
		switch ev.Type {
		case TypeModelResponse, TypeContextSummarized:
			var d struct {
				Model     string  `json:"model"`
				ModelName string  `json:"model_name"`
				CostUSD   float64 `json:"cost_usd"`
			}
			if json.Unmarshal(ev.Data, &d) == nil && d.CostUSD != 0 {
				name := d.ModelName
				if name == "" {
					name = d.Model
				}
				c.model(name, d.CostUSD)
			}
		case TypeToolFinished, TypeNodeFinished:
			var d struct {
				Tool    string  `json:"tool"`
				Name    string  `json:"name"`
				CostUSD float64 `json:"cost_usd"`
			}
			if json.Unmarshal(ev.Data, &d) == nil {
				if ev.Type == TypeNodeFinished {
					d.Name = d.Tool
				}
				c.tool(d.Name, d.CostUSD)
			}
		case TypeChildrenReported:
			var d ChildrenReported
			if json.Unmarshal(ev.Data, &d) == nil {
				for _, rep := range d.Reports {
					c.Add(rep.Cost)
				}
			}
		}
	}
	if c.USD == 0 {
		return nil
	}
	c.round()
	return &c
}

// round drops the noise float sums leave (0.21200000000000002): a
// millionth of a cent is far below any price.
func (c *Cost) round() {
	r := func(v float64) float64 { return math.Round(v*1e10) / 1e10 }
	c.USD = r(c.USD)
	for k, v := range c.Models {
		c.Models[k] = r(v)
	}
	for k, v := range c.Tools {
		c.Tools[k] = r(v)
	}
}
