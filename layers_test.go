package myriad_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/myriad-ai/myriad/config"
	"github.com/myriad-ai/myriad/tool/builtin"
)

// The layers of Myriad, as the imports of its packages (tests aside) must
// keep them:
//
//	doors (api, a2aserver, mcpserver, openaiserver, cli, the root package)
//	  → engine (the only package that reaches the store)
//	    → definitions (agent, flow, policy, config)
//	      → event types and records (journal, run), models, tools
//
// and NATS lives behind store alone.
const module = "github.com/myriad-ai/myriad"

type goPackage struct {
	ImportPath string
	Name       string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// rel is a package's path inside the module ("" for the root).
func rel(importPath string) string {
	return strings.TrimPrefix(strings.TrimPrefix(importPath, module), "/")
}

func under(p string, roots ...string) bool {
	for _, r := range roots {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

func TestLayers(t *testing.T) {
	doors := []string{"api", "a2aserver", "mcpserver", "openaiserver", "telemetry", "console", "cli", "cmd", "examples"}
	definitions := []string{"agent", "flow", "policy", "config"}
	leaves := []string{"journal", "run", "model", "tool"}
	rules := []struct {
		name string
		// applies says whether the rule binds a package; forbidden whether
		// it may not import an import path.
		applies   func(p string) bool
		forbidden func(imp string) bool
	}{
		{"only store imports NATS", func(p string) bool { return !under(p, "store") },
			func(imp string) bool { return strings.HasPrefix(imp, "github.com/nats-io/") }},
		{"only the engine reaches the store", func(p string) bool { return !under(p, "store", "engine") },
			func(imp string) bool { return under(rel(imp), "store") && strings.HasPrefix(imp, module) }},
		{"definitions import no engine or door", func(p string) bool { return under(p, definitions...) },
			func(imp string) bool {
				return strings.HasPrefix(imp, module) && under(rel(imp), append(doors, "engine", "store")...)
			}},
		{"event types, models and tools import no definition, engine or door", func(p string) bool { return under(p, leaves...) },
			func(imp string) bool {
				return strings.HasPrefix(imp, module) && under(rel(imp), append(append(doors, definitions...), "engine", "store")...)
			}},
		{"engine imports no door", func(p string) bool { return under(p, "engine") },
			func(imp string) bool {
				return strings.HasPrefix(imp, module) && (rel(imp) == "" || under(rel(imp), doors...))
			}},
	}
	for _, p := range listPackages(t) {
		r := rel(p.ImportPath)
		for _, rule := range rules {
			if !rule.applies(r) {
				continue
			}
			for _, imp := range p.Imports {
				if rule.forbidden(imp) {
					t.Errorf("%s: %s imports %s", rule.name, p.ImportPath, imp)
				}
			}
		}
	}
}

// TestNoNATSServerBelowTheEngine: agents, flows, configurations and the
// HTTP client link no NATS server.
func TestNoNATSServerBelowTheEngine(t *testing.T) {
	lean := []string{"agent", "flow", "config", "api/client", "journal", "run", "tool", "model"}
	for _, p := range listPackages(t) {
		if !slices.Contains(lean, rel(p.ImportPath)) {
			continue
		}
		for _, d := range p.Deps {
			if strings.HasPrefix(d, "github.com/nats-io/nats-server") {
				t.Errorf("%s links %s", p.ImportPath, d)
			}
		}
	}
}

// TestNoPackageShadowsTheStandardLibrary: a package named like one of the
// standard library's makes every file that needs both rename one.
func TestNoPackageShadowsTheStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "std").Output()
	if err != nil {
		t.Fatalf("go list std: %v", err)
	}
	std := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		std[path.Base(p)] = true
	}
	for _, p := range listPackages(t) {
		if p.Name != "main" && std[p.Name] && !strings.HasSuffix(p.ImportPath, "_test") {
			t.Errorf("package %s is named %s, like the standard library's", p.ImportPath, p.Name)
		}
	}
}

// The configuration knows the built-in tools the runtime has.
func TestBuiltinToolsAreKnownToTheConfiguration(t *testing.T) {
	if got := builtin.Names(); !slices.Equal(got, config.BuiltinTools) {
		t.Fatalf("tool/builtin has %v, config.BuiltinTools %v", got, config.BuiltinTools)
	}
}
