package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myriad-ai/myriad/config"
)

const valid = `
models:
  fast:
    provider: openai
    model: gpt-4o-mini
    api_key_env: OPENAI_API_KEY
  local:
    provider: scripted
    rules:
      - reply: {text: hi}
tools:
  lookup:
    type: http
    url: http://127.0.0.1:9000/lookup
    description: Look a customer up.
    parameters:
      type: object
      properties: {id: {type: string}}
    timeout: 5s
    idempotent: true
agents:
  triage:
    model: fast
    instructions: Route the request.
    tools: [lookup, current_time]
    max_turns: 5
`

func TestValidConfig(t *testing.T) {
	c, err := config.Parse([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Tools["lookup"].Timeout.Std().Seconds() != 5 || c.Agents["triage"].MaxTurns != 5 {
		t.Errorf("values not read: %+v %+v", c.Tools["lookup"], c.Agents["triage"])
	}
	if c.Server.Listen != config.DefaultListen || c.Agents["triage"].Timeout.Std() != config.DefaultRunTimeout {
		t.Errorf("defaults not applied: %+v", c.Server)
	}
}

func TestErrorsNameTheFieldAndTheFix(t *testing.T) {
	tests := []struct {
		name, edit, want string
	}{
		{"unknown model", "model: fast\n    instructions", `agents.triage.model: unknown model "fats" (known: fast, local)`},
		{"unknown tool", "tools: [lookup, current_time]", `agents.triage.tools[1]: unknown tool "clock" (known: ask_agent, broadcast_message, current_time, lookup, send_message)`},
		{"bad provider", "provider: openai", `models.fast.provider: unknown provider "opneai" (known: openai, anthropic, scripted)`},
		{"bad url", "url: http://127.0.0.1:9000/lookup", `tools.lookup.url: invalid URL "ftp://x"`},
		{"secret in file", "api_key_env: OPENAI_API_KEY", `models.fast.api_key_env: this looks like a key`},
		{"secret that looks like a name", "api_key_env: OPENAI_API_KEY", `models.fast.api_key_env: this looks like a key`},
		{"not a name", "api_key_env: OPENAI_API_KEY", `models.fast.api_key_env: must be the name of an environment variable`},
		{"bad duration", "timeout: 5s", `invalid duration "5 parsecs"`},
		{"unknown field", "max_turns: 5", "agents.triage.max_turn: unknown field (known: description, model, instructions, tools, max_turns,"},
		{"unknown section", "agents:\n  triage:", "agent: unknown section (known: models, tools, mcp_servers, a2a_agents, agents, flows, schedules, budgets, server)"},
		{"unknown model field", "provider: openai", "models.fast.kind: unknown field (known: provider, model,"},
		{"bad schema", "properties: {id: {type: string}}", "tools.lookup.parameters: invalid JSON Schema"},
		{"bad approval", "idempotent: true", `tools.lookup.approval: unknown value "sometimes" (known: required, never, or a mapping`},
		{"approval cel", "idempotent: true", `tools.lookup.approval.when: invalid CEL "args.amount >"`},
		{"approval default", "idempotent: true", `tools.lookup.approval.on_timeout: unknown value "maybe" (known: approve, deny)`},
		{"bad concurrent input", "max_turns: 5", `agents.triage.concurrent_input: unknown value "drop" (known: queue, reject, interrupt)`},
		{"negative max_concurrent", "max_turns: 5", `agents.triage.max_concurrent: must be positive`},
		{"negative max_backlog", "agents:\n  triage:", `server.max_backlog: must be positive`},
		{"short retention", "max_turns: 5", `agents.triage.retention: must be a minute or more`},
		{"messaging unknown agent", "max_turns: 5", `agents.triage.messaging.to[1]: unknown agent "nobody" (known: triage)`},
		{"messaging not an address", "max_turns: 5", `agents.triage.messaging.to[0]: "triage" is not an address or pattern`},
		{"messaging field", "max_turns: 5", `agents.triage.messaging.ask_timout: unknown field`},
		{"negative cache", "agents:\n  triage:", `server.instance_cache_mb: must be positive, or -1`},
	}
	replacements := map[string]string{
		"unknown model":                 "model: fats\n    instructions",
		"unknown tool":                  "tools: [lookup, clock]",
		"bad provider":                  "provider: opneai",
		"bad url":                       "url: ftp://x",
		"secret in file":                `api_key_env: "sk-123 abc"`,
		"secret that looks like a name": `api_key_env: skproj_AbC123xyz789SECRET`,
		"not a name":                    `api_key_env: "my key"`,
		"bad duration":                  "timeout: 5 parsecs",
		"unknown field":                 "max_turn: 5",
		"unknown section":               "agent: {}\nagents:\n  triage:",
		"unknown model field":           "provider: openai\n    kind: x",
		"bad schema":                    "properties: {id: {type: 12}}",
		"bad approval":                  "idempotent: true\n    approval: sometimes",
		"bad concurrent input":          "max_turns: 5\n    concurrent_input: drop",
		"negative max_concurrent":       "max_turns: 5\n    max_concurrent: -1",
		"negative max_backlog":          "server: {max_backlog: -5}\nagents:\n  triage:",
		"short retention":               "max_turns: 5\n    retention: 10s",
		"messaging unknown agent":       "max_turns: 5\n    messaging: {to: [triage/team/*, nobody/x, '*/team/*']}",
		"messaging not an address":      "max_turns: 5\n    messaging: {to: [triage]}",
		"messaging field":               "max_turns: 5\n    messaging: {ask_timout: 5s}",
		"negative cache":                "server: {instance_cache_mb: -2}\nagents:\n  triage:",
		"approval cel":                  "idempotent: true\n    approval: {when: 'args.amount >'}",
		"approval default":              "idempotent: true\n    approval: {when: 'true', timeout: 1h, on_timeout: maybe}",
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(valid, tc.edit, replacements[tc.name], 1)
			if src == valid {
				t.Fatalf("edit %q did not apply", tc.edit)
			}
			c, err := config.Parse([]byte(src))
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "sk-123") {
				t.Fatalf("the error repeats the secret: %v", err)
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "myriad.yaml")
	if err := os.WriteFile(path, []byte("agents: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "agents: no agents defined") {
		t.Fatalf("got %v", err)
	}
	if _, err := config.Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := config.Parse(nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte("models: {a: {provider: scripted, rules: [{reply: {text: x}}]}}\nagents: {b: {model: a}}"))
	f.Add([]byte("agents: [1, 2]"))
	f.Add([]byte("models:\n  x: &a {provider: openai}\n  y: *a\n"))
	f.Add([]byte("tools: {t: {type: http, url: 'http://[::1]:80', parameters: {type: [1]}}}"))
	f.Add([]byte("models: {a: {provider: scripted, rules: [{reply: {text: x}}]}}\nagents: {b: {model: a, sub_agents: [b, {agent: b, context: summary}], handoffs: [c]}, c: {model: a}}\n" +
		"flows: {f: {state: {s: {merge: append}}, start: [m], nodes: {m: {map: 'state.xs', agent: b, input: '{{.item}}', output: s, next: j}, j: {join: first-2, route: [{when: 'size(state.s) > 1', to: m}]}}}}\n" +
		"schedules: {n: {cron: '@every 1m', flow: f, input: go}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data)
		if err != nil {
			return
		}
		_ = c.Validate()
	})
}

func TestExpandEnv(t *testing.T) {
	t.Setenv("MYRIAD_TEST_MODEL", "fast")
	tests := []struct{ in, want string }{
		{"model: ${MYRIAD_TEST_MODEL}", "model: fast"},
		{"model: ${MYRIAD_TEST_MODEL:-local}", "model: fast"},
		{"model: ${MYRIAD_TEST_UNSET:-local}", "model: local"},
		{"model: ${MYRIAD_TEST_UNSET}", "model: "},
		{"price: $5 and {x}", "price: $5 and {x}"},
	}
	for _, tc := range tests {
		if got := string(config.ExpandEnv([]byte(tc.in))); got != tc.want {
			t.Errorf("ExpandEnv(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTeamFlowAndScheduleErrors(t *testing.T) {
	base := `
models:
  m: {provider: scripted, rules: [{reply: {text: hi}}]}
tools:
  record: {type: http, url: "http://127.0.0.1:1/r", description: records}
  charge: {type: http, url: "http://127.0.0.1:1/c", description: charges, approval: required}
agents:
  lead: {model: m}
  worker: {model: m}
`
	tests := []struct {
		name, extra, want string
	}{
		{"unknown sub-agent", "  boss: {model: m, sub_agents: [wrker]}\n", `agents.boss.sub_agents[0]: unknown agent "wrker" (known: boss, lead, worker)`},
		{"bad context", "  boss: {model: m, sub_agents: [{agent: worker, context: all}]}\n", `agents.boss.sub_agents[0].context: unknown value "all" (known: task, history, summary)`},
		{"sub-agent field", "  boss: {model: m, sub_agents: [{agent: worker, scope: x}]}\n", `agents.boss.sub_agents[0].scope: unknown field (known: agent, description, context, state)`},
		{"self handoff", "  boss: {model: m, handoffs: [boss]}\n", `agents.boss.handoffs[0]: an agent cannot hand the conversation to itself`},
		{"flow unknown agent", "flows:\n  f: {start: a, nodes: {a: {agent: nobody}}}\n", `flows.f.nodes.a.agent: unknown agent "nobody" (known: lead, worker)`},
		{"flow bad cel", "flows:\n  f: {start: a, nodes: {a: {route: [{when: 'state.x >', to: a}]}}}\n", `flows.f.nodes.a.route[0].when: invalid CEL "state.x >"`},
		{"flow unknown next", "flows:\n  f: {start: a, nodes: {a: {next: [b]}}}\n", `flows.f.nodes.a.next[0]: unknown node "b" (nodes: a)`},
		{"flow bad join", "flows:\n  f: {start: a, nodes: {a: {next: [b]}, b: {join: first-0}}}\n", `flows.f.nodes.b.join: "first-0": write first-N with N ≥ 1`},
		{"flow no start", "flows:\n  f: {nodes: {a: {}}}\n", `flows.f.start: name the node(s) to run first (nodes: a)`},
		{"flow unknown tool", "flows:\n  f: {start: a, nodes: {a: {tool: recrd}}}\n", `flows.f.nodes.a.tool: unknown tool "recrd" (known: charge, current_time, record)`},
		{"flow node field", "flows:\n  f: {start: a, nodes: {a: {agnt: lead}}}\n", `flows.f.nodes.a.agnt: unknown field (known: agent, tool,`},
		{"flow two actions", "flows:\n  f: {start: a, nodes: {a: {agent: lead, tool: record}}}\n", `flows.f.nodes.a.agent: a node does one thing`},
		{"flow agent name clash", "flows:\n  lead: {start: a, nodes: {a: {}}}\n", `flows.lead: an agent has the same name`},
		{"flow first-n too big", "flows:\n  f: {start: a, nodes: {a: {next: [b, c]}, b: {next: d}, c: {next: d}, d: {join: first-5}}}\n", `flows.f.nodes.d.join: first-5 waits for more arrivals than the 2 node(s) with an edge to it (b, c)`},
		{"flow negative sleep", "flows:\n  f: {start: a, nodes: {a: {sleep: -3s}}}\n", `flows.f.nodes.a.sleep: must be positive`},
		{"flow unknown output", "flows:\n  f: {start: a, nodes: {a: {agent: lead, output: answer}}, output: answr}\n", `flows.f.output: no node writes "answr" and the state does not declare it (keys: answer, input)`},
		{"flow ask schema type", "flows:\n  f: {start: a, nodes: {a: {ask: {prompt: hi, schema: {type: objekt}}}}}\n", `flows.f.nodes.a.ask.schema: invalid JSON Schema: type "objekt" is not a JSON Schema type`},
		{"mcp unknown server", "  boss: {model: m, tools: [fs.read_*]}\n", `agents.boss.tools[0]: unknown MCP server "fs" in "fs.read_*" (known: none defined)`},
		{"mcp both", "mcp_servers:\n  fs: {command: x, url: 'http://h/mcp'}\n", `mcp_servers.fs: set command (stdio) or url (streamable HTTP), not both`},
		{"mcp secret", "mcp_servers:\n  fs: {command: x, env_from: {TOKEN: ghp_abcdefghijklmnop1234}}\n", `mcp_servers.fs.env_from.TOKEN: this looks like a key`},
		{"mcp context", "  boss: {model: m, mcp_context: [{server: fs, resource: 'mem://x', prompt: p}]}\nmcp_servers:\n  fs: {command: x}\n", `agents.boss.mcp_context[0]: set resource (a URI) or prompt (a name), one of them`},
		{"mcp bad name", "mcp_servers:\n  f__s: {command: x}\n", `mcp_servers.f__s: invalid name`},
		{"mcp oauth on stdio", "mcp_servers:\n  fs: {command: x, oauth: {client_id: c, client_secret_env: S}}\n", `mcp_servers.fs.oauth: oauth is for url servers`},
		{"mcp oauth no secret", "mcp_servers:\n  fs: {url: 'http://h/mcp', oauth: {client_id: c}}\n", `mcp_servers.fs.oauth: set one of client_secret_env, private_key_env and private_key_file`},
		{"mcp oauth no client", "mcp_servers:\n  fs: {url: 'http://h/mcp', oauth: {private_key_file: k.pem}}\n", `mcp_servers.fs.oauth.client_id: missing`},
		{"mcp oauth secret", "mcp_servers:\n  fs: {url: 'http://h/mcp', oauth: {client_id: c, client_secret_env: 'sk-abcdef123456'}}\n", `mcp_servers.fs.oauth.client_secret_env: this looks like a key`},
		{"mcp oauth field", "mcp_servers:\n  fs: {url: 'http://h/mcp', oauth: {client_id: c, client_secret_env: S, flow: x}}\n", `mcp_servers.fs.oauth.flow: unknown field`},
		{"mcp oauth grant", "mcp_servers:\n  fs: {url: 'http://h/mcp', oauth: {grant: password}}\n", `mcp_servers.fs.oauth.grant: unknown value "password" (known: client_credentials, authorization_code)`},
		{"mcp oauth code with a key", "mcp_servers:\n  fs: {url: 'http://h/mcp', oauth: {grant: authorization_code, private_key_file: k.pem}}\n", `mcp_servers.fs.oauth: private keys and audience are for grant: client_credentials`},
		{"mcp oauth plain http", "mcp_servers:\n  fs: {url: 'http://h/mcp', oauth: {grant: authorization_code}}\n", `mcp_servers.fs.url: OAuth needs https`},
		{"mcp oauth client without issuer", "mcp_servers:\n  fs: {url: 'https://h/mcp', oauth: {grant: authorization_code, client_id: c}}\n", `mcp_servers.fs.oauth.issuer: missing`},
		{"mcp oauth token file", "mcp_servers:\n  fs: {url: 'http://h/mcp', oauth: {client_id: c, client_secret_env: S, token_file: t.json}}\n", `mcp_servers.fs.oauth.token_file: is for grant: authorization_code`},
		{"cron fields", "schedules:\n  s: {cron: '* * *', agent: lead, input: go}\n", `schedules.s.cron: "* * *" has 3 fields; write 5`},
		{"cron target", "schedules:\n  s: {cron: '@daily', input: go}\n", `schedules.s: set agent or flow: what the schedule runs`},
		{"flow tool with approval", "flows:\n  f: {start: a, nodes: {a: {tool: charge}}}\n", `flows.f.nodes.a.tool: tool charge needs approval`},
		{"cron zone", "schedules:\n  s: {cron: '@daily', time_zone: Mars/Olympus, agent: lead, input: go}\n", `schedules.s.time_zone: unknown time zone "Mars/Olympus"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(base + tc.extra))
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
	// Every problem of a flow is named, not the first alone; a long name is
	// quoted cut.
	c, err := config.Parse([]byte(base + "  boss: {model: " + strings.Repeat("m", 5000) + "}\nflows:\n  f: {start: [a, z], nodes: {a: {agent: nobody, next: [b]}, b: {tool: recrd}}}\n"))
	if err == nil {
		err = c.Validate()
	}
	for _, want := range []string{`flows.f.start: unknown node "z"`, `flows.f.nodes.a.agent: unknown agent "nobody"`, `flows.f.nodes.b.tool: unknown tool "recrd"`, "agents.boss.model: unknown model"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant it to contain %q", err, want)
		}
	}
	if err != nil && len(err.Error()) > 2000 {
		t.Errorf("a long name echoed whole: %d bytes", len(err.Error()))
	}
	good := base + `flows:
  f:
    state: {seen: {merge: append, initial: []}}
    start: a
    nodes:
      a: {map: state.docs, agent: worker, input: "{{.item}}", output: seen, next: b}
      b: {route: [{when: 'size(state.seen) > 2', to: c}, {to: c}]}
      c: {join: any, sleep: 1s}
schedules:
  nightly: {cron: "0 3 * * *", flow: f, input: go}
`
	c, err = config.Parse([]byte(good))
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		t.Fatalf("a valid flow was refused: %v", err)
	}
}

// Prices are checked: no negative price, a readable date, one price per
// date.
func TestPricesAreChecked(t *testing.T) {
	agents := "agents:\n  a: {model: p}\n"
	model := func(prices string) string {
		return "models:\n  p: {provider: scripted, rules: [{reply: {text: x}}], prices: " + prices + "}\n" + agents
	}
	tests := []struct{ name, yaml, want string }{
		{"negative price", model("[{input: -1, output: 1}]"), `models.p.prices[0]: prices must be numbers of 0 or more`},
		{"a price that is not a number", model("[{input: .nan, output: 1}]"), `models.p.prices[0]: prices must be numbers of 0 or more`},
		{"an infinite price", model("[{input: 1, output: .inf}]"), `models.p.prices[0]: prices must be numbers of 0 or more`},
		{"a budget without prices", "models:\n  p: {provider: scripted, rules: [{reply: {text: x}}]}\nagents:\n  a: {model: p, cost_budget: 5}\n", `agents.a.cost_budget: model p has no prices`},
		{"price date", model("[{input: 1, output: 1, from: 'June'}]"), `models.p.prices[0].from: "June" is not a day (2026-06-01)`},
		{"two prices from one day", model("[{input: 1, output: 1}, {input: 2, output: 2}]"), `models.p.prices[1].from: two prices take effect at ""`},
		{"price field", model("[{inptu: 1}]"), `models.p.prices[0].inptu: unknown field`},
		{"no output price", model("[{input: 1}]"), `models.p.prices[0].output: missing: US dollars per million output tokens (0 if they are free)`},
		{"negative tool price", model("[]") + "tools:\n  t: {type: http, url: 'http://h/t', description: d, price: -0.5}\n", `tools.t.price: must be a number of 0 or more`},
		{"negative MCP price", model("[]") + "mcp_servers:\n  fs: {command: x, price: -1}\n", `mcp_servers.fs.price: must be a number of 0 or more`},
		{"budget without usd", model("[]") + "budgets:\n  b: {window: 1h}\n", `budgets.b.usd: must be positive`},
		{"budget without window", model("[]") + "budgets:\n  b: {usd: 5}\n", `budgets.b.window: missing: how far back spend counts`},
		{"budget window", model("[]") + "budgets:\n  b: {usd: 5, window: 1week}\n", `invalid duration "1week" (write it like 30s, 5m, 1h or 7d)`},
		{"budget agent", model("[]") + "budgets:\n  b: {usd: 5, window: 1h, agent: x}\n", `budgets.b.agent: unknown agent "x" (known: a)`},
		{"budget field", model("[]") + "budgets:\n  b: {usd: 5, window: 1h, tenant: x}\n", `budgets.b.tenant: unknown field`},
		{"budget name", model("[]") + "budgets:\n  b.c: {usd: 5, window: 1h}\n", `budgets.b.c: invalid name`},
		{"budget key", model("[]") + "budgets:\n  b: {usd: 5, window: 1h, metadata_key: traceparent}\n", `budgets.b.metadata_key: traceparent differs for every run`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tc.yaml))
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
	c, err := config.Parse([]byte(model("[{input: 0.25, output: 2, cached_input: 0.025, from: 2026-06-01}, {input: 1, output: 4}]")))
	if err == nil {
		err = c.Validate()
	}
	if err != nil || len(c.Models["p"].PriceList()) != 2 {
		t.Fatalf("valid prices refused: %v", err)
	}
	c, err = config.Parse([]byte(model("[]") + "budgets:\n  daily: {usd: 5, window: 1d12h, agent: a, metadata_key: tenant}\n"))
	if err == nil {
		err = c.Validate()
	}
	if err != nil || c.Budgets["daily"].Window.Std() != 36*time.Hour {
		t.Fatalf("a valid budget refused: %v %+v", err, c.Budgets["daily"])
	}
}

// TestYAMLErrorsNameTheFieldAndTheFix: a value of the wrong type is named
// by its field path, a mis-indented line by its number and what it should
// line up with.
func TestYAMLErrorsNameTheFieldAndTheFix(t *testing.T) {
	head := "models:\n  local: {provider: scripted, rules: [{reply: {text: x}}]}\nagents:\n  worker:\n    model: local\n"
	tests := []struct{ name, yaml, want string }{
		{"string for an integer", head + "    max_turns: six\n", `agents.worker.max_turns: "six" is not an integer (line 6)`},
		{"a fraction for an integer", head + "    max_turns: 2.5\n", `agents.worker.max_turns: 2.5 is not a whole number (line 6)`},
		{"a fraction in a list", "models:\n  m: {provider: scripted, rules: [{reply: {text: hi}}]}\nagents:\n  w: {model: m, max_turns: 3, token_budget: 1e3, timeout: 5s}\n  v: {model: m, token_budget: 0.5}\n", `agents.v.token_budget: 0.5 is not a whole number`},
		{"word for a boolean", head + "    stream: maybe\n", `agents.worker.stream: "maybe" is not true or false (line 6)`},
		{"mapping for text", head + "    instructions: {a: 1}\n", `agents.worker.instructions: a mapping is not text`},
		{"text for a list", head + "    tools: [[a]]\n", `agents.worker.tools[0]: a list is not text`},
		{"a word for a list", head + "    tools: current_time\n", `agents.worker.tools: "current_time" is not a list`},
		{"text for a mapping", "models:\n  local: scripted\n", `models.local: "scripted" is not a mapping`},
		{"bad duration", head + "    timeout: soon\n", `agents.worker.timeout: invalid duration "soon"`},
		{"two at once", head + "    max_turns: six\n    stream: maybe\n", "agents.worker.max_turns: \"six\" is not an integer (line 6)\nagents.worker.stream: \"maybe\" is not true or false (line 7)"},
		{"indented less than its siblings", head + "   instructions: hi\n", `line 6: "instructions: hi" is indented 3 spaces, which lines up with no key above it (line 5 is indented 4, line 4 is indented 2)`},
		{"indented under a value", head + "      instructions: hi\n", `line 6: "instructions: hi" is indented more than line 5, which holds a value, not a block`},
		{"a tab", head + "\tinstructions: hi\n", `line 6: "instructions: hi" is indented with a tab`},
		{"a colon in text", head + "    instructions: do this: that\n", `line 6: mapping values are not allowed in this context ("    instructions: do this: that"): check that each key ends with ": "`},
		{"a block scalar is not mis-indented", head + "    instructions: |\n      a: b\n        c\n    max_turns: x\n", `agents.worker.max_turns: "x" is not an integer (line 9)`},
		{"list items under a key", "agents:\n  w:\n    model: m\n    tools:\n      - a\n     - b\n", `line 6: "- b" is indented 5 spaces, which lines up with no key above it`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}
