package cli

import (
	"fmt"
	"strings"
	"time"
)

// metadataFlag collects repeated --metadata KEY=VALUE flags.
type metadataFlag map[string]string

func (m metadataFlag) String() string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

// Set takes one KEY=VALUE; a key given twice is an error (a run has one
// value for it).
func (m metadataFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	switch {
	case !ok || k == "":
		return fmt.Errorf("write KEY=VALUE, like tenant=acme")
	case m.has(k):
		return fmt.Errorf("%s given twice", k)
	}
	m[k] = v
	return nil
}

func (m metadataFlag) has(k string) bool { _, ok := m[k]; return ok }

// dayOrTime reads --from and --to: a day (UTC) or an RFC 3339 time.
func dayOrTime(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, &exitError{code: 2, err: fmt.Errorf("--%s %q: give a day (2026-06-01) or a time (2026-06-01T15:04:05Z)", flag, v)}
	}
	return t, nil
}
