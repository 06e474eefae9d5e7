package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/myriad-ai/myriad/run"
	"github.com/myriad-ai/myriad/store"
)

// The instance directory (store.DirectoryStream) lists agent instances by
// address: an instance's writer adds it the first time it works, so the
// instances under a part of the hierarchy ("support/eu/*") are read a page
// at a time, whatever else is stored. Broadcasts read it to find their
// recipients.

// InstanceEntry is an instance as the directory lists it.
type InstanceEntry struct {
	Agent string `json:"agent"`
	Key   string `json:"key"`
	// Created is when the instance first worked.
	Created time.Time `json:"created"`
}

// Address is the entry's instance address.
func (e InstanceEntry) Address() Address { return Address{Agent: e.Agent, Key: e.Key} }

// addToDirectory lists an instance the first time it works (and an
// instance from before the directory, the first time it works again).
func (w *instanceWork) addToDirectory(ctx context.Context) error {
	if w.in.Listed || w.in.Agent == "" {
		return nil
	}
	entry := InstanceEntry{Agent: w.in.Agent, Key: w.in.Key, Created: time.Now().UTC()}
	if err := w.e.st.AddToDirectory(ctx, w.in.Agent, w.in.Key, mustJSON(entry)); err != nil {
		return err
	}
	w.in.Listed = true
	return nil
}

// InstanceFilter selects instances.
type InstanceFilter struct {
	// Agent keeps one agent's instances ("" for every agent's).
	Agent string
	// Under keeps the instances whose keys are under this path ("eu/team-a"
	// keeps "eu/team-a/alice" and "eu/team-a/x/bob"), "" for all.
	Under string
	// Limit bounds the page (default 50, at most 1000).
	Limit int
	// Cursor is a previous page's NextCursor.
	Cursor string
}

// InstancePage is one page of a listing of instances, oldest first.
type InstancePage struct {
	Instances []InstanceEntry `json:"instances"`
	// NextCursor continues the listing ("" at its end).
	NextCursor string `json:"next_cursor,omitempty"`
}

// Pattern reads a broadcast pattern: "agent/path/*" (every instance of the
// agent under path), "*/path/*" (every agent's), "agent/*" (all of the
// agent's instances) or a single address.
func ParsePattern(s string) (f InstanceFilter, one *Address, err error) {
	body, wild := strings.CutSuffix(s, "/*")
	if !wild {
		a, err := ParseAddress(s)
		if err != nil {
			return InstanceFilter{}, nil, err
		}
		return InstanceFilter{}, &a, nil
	}
	agentName, under, _ := strings.Cut(body, "/")
	if agentName == "" {
		return InstanceFilter{}, nil, fmt.Errorf("%s is not a pattern: write agent/team/* or */team/*", run.Quote(run.CutText(s, 300)))
	}
	if agentName == "*" {
		agentName = ""
	}
	if under != "" {
		if err := CheckInstanceKey(under); err != nil {
			return InstanceFilter{}, nil, fmt.Errorf("pattern %s: %w", run.Quote(run.CutText(s, 300)), err)
		}
	}
	return InstanceFilter{Agent: agentName, Under: under}, nil, nil
}

// ListInstances lists instances from the directory, oldest first, a page
// at a time.
func (e *Engine) ListInstances(ctx context.Context, f InstanceFilter) (InstancePage, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	if limit > 1000 {
		return InstancePage{}, fmt.Errorf("%w: limit: at most 1000", ErrInvalid)
	}
	if f.Under != "" {
		if err := CheckInstanceKey(f.Under); err != nil {
			return InstancePage{}, fmt.Errorf("%w: under: %w", ErrInvalid, err)
		}
	}
	var after uint64
	if f.Cursor != "" {
		n, err := strconv.ParseUint(f.Cursor, 10, 64)
		if err != nil {
			return InstancePage{}, fmt.Errorf("%w: cursor: not a cursor from this API (pass the next_cursor of the previous page)", ErrInvalid)
		}
		after = n
	}
	entries, more, err := e.st.ReadDirectory(ctx, store.DirectoryFilter(f.Agent, f.Under), after, limit)
	if err != nil {
		return InstancePage{}, err
	}
	page := InstancePage{Instances: make([]InstanceEntry, 0, len(entries))}
	for _, d := range entries {
		var ie InstanceEntry
		if err := json.Unmarshal(d.Data, &ie); err != nil {
			return InstancePage{}, fmt.Errorf("instance directory entry %d: %w", d.Seq, err)
		}
		page.Instances = append(page.Instances, ie)
	}
	if more && len(entries) > 0 {
		page.NextCursor = strconv.FormatUint(entries[len(entries)-1].Seq, 10)
	}
	return page, nil
}

// HasAgent reports whether the engine runs an agent of this name.
func (e *Engine) HasAgent(name string) bool { return e.agents[name] != nil }
