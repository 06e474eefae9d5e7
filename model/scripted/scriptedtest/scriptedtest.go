// Package scriptedtest makes scripted models for tests from rules written
// inline, as YAML.
package scriptedtest

import (
	"testing"

	"github.com/myriad-ai/myriad/model/scripted"
)

// Model parses rules and returns a scripted model answering by them; a
// rule that does not parse fails the test.
func Model(t testing.TB, rules string) *scripted.Model {
	t.Helper()
	rs, err := scripted.ParseRules([]byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	m, err := scripted.New(rs)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
