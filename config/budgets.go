package config

import (
	"time"

	"gopkg.in/yaml.v3"
)

// Budget limits what runs spend together over a rolling window: all runs,
// one agent's, or each value of a metadata key's (a tenant, a user).
type Budget struct {
	// Agent, when set, limits the budget to this agent's calls.
	Agent string `yaml:"agent,omitempty"`
	// MetadataKey, when set, keeps one budget per value of this key of
	// the runs' metadata.
	MetadataKey string `yaml:"metadata_key,omitempty"`
	// USD is the most the runs may spend in any window, in US dollars.
	USD float64 `yaml:"usd"`
	// Window is how far back spend counts: 1h, 24h, 7d, 30d.
	Window Duration             `yaml:"window"`
	Extra  map[string]yaml.Node `yaml:",inline"`
}

func (c *Config) validateBudgets(add func(path, format string, args ...any)) {
	for _, name := range sortedKeys(c.Budgets) {
		b, p := c.Budgets[name], "budgets."+name
		if !namePattern.MatchString(name) || len(name) > 64 {
			add(p, "invalid name: use up to 64 letters, digits, '_' or '-', starting with a letter")
		}
		if b == nil {
			add(p, "empty budget: set usd and window")
			continue
		}
		unknownFields(add, p, b.Extra, *b)
		if !money(b.USD) || b.USD == 0 {
			add(p+".usd", "must be positive: the most the runs may spend in a window, in US dollars")
		}
		switch w := b.Window.Std(); {
		case w == 0:
			add(p+".window", "missing: how far back spend counts, like 1h, 24h or 30d")
		case w < time.Second:
			add(p+".window", "must be 1s or longer")
		}
		if b.Agent != "" && c.Agents[b.Agent] == nil {
			add(p+".agent", "unknown agent %q (known: %s)", b.Agent, list(c.AgentNames()))
		}
		if b.MetadataKey == "traceparent" {
			add(p+".metadata_key", "traceparent differs for every run: name a key like tenant or user")
		}
	}
}
