package a2aserver

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/a2aproject/a2a-go/a2a"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/internal/a2a1"
	"github.com/myriad-ai/myriad/run"
)

// Page sizes of ListTasks, as A2A 1.0 sets them.
const (
	defaultPageSize = 50
	maxPageSize     = 100
)

// list1 answers ListTasks (A2A 1.0): the tasks sent to this endpoint,
// newest first, a page at a time. A page token is the id of the last
// task of the page before. Runs of the same agent started through other
// doors are not its A2A tasks and are left out, as GetTask leaves them.
func (e *endpoint) list1(ctx context.Context, p a2a1.ListTasksRequest) (*a2a1.ListTasksResponse, error) {
	size := defaultPageSize
	if p.PageSize != nil {
		if *p.PageSize < 1 || *p.PageSize > maxPageSize {
			return nil, fmt.Errorf("%w: pageSize: %d is out of range (1 to %d)", a2a.ErrInvalidParams, *p.PageSize, maxPageSize)
		}
		size = *p.PageSize
	}
	if p.PageToken != "" && !engine.ValidRunID(p.PageToken) {
		return nil, fmt.Errorf("%w: pageToken: %s is not a token this server gave", a2a.ErrInvalidParams, a2a1.Quote(p.PageToken))
	}
	var state a2a.TaskState
	if p.Status != "" && p.Status != "TASK_STATE_UNSPECIFIED" {
		if state = a2a1.ParseState(p.Status); state == a2a.TaskStateUnknown {
			return nil, fmt.Errorf("%w: status: %s is not a task state (TASK_STATE_WORKING, TASK_STATE_COMPLETED, ...)", a2a.ErrInvalidParams, a2a1.Quote(p.Status))
		}
	}
	var after time.Time
	if p.StatusTimestampAfter != "" {
		t, err := time.Parse(time.RFC3339Nano, p.StatusTimestampAfter)
		if err != nil {
			return nil, fmt.Errorf("%w: statusTimestampAfter: %s is not an ISO 8601 time (2026-10-27T10:00:00Z)", a2a.ErrInvalidParams, a2a1.Quote(p.StatusTimestampAfter))
		}
		after = t
	}
	f := run.Filter{Roots: true, Limit: 1000}
	if e.flow {
		f.Flow = e.name
	} else {
		f.Agent = e.name
		if p.ContextID != "" {
			f.Instance = instanceOf(p.ContextID)
		}
	}
	out := &a2a1.ListTasksResponse{Tasks: []*a2a1.Task{}, PageSize: size}
	for {
		recs, next, err := e.s.rt.List(ctx, f)
		if err != nil {
			return nil, internal(err)
		}
		for _, rec := range recs {
			if rec.Metadata[metaEndpoint] != e.name || p.ContextID != "" && rec.Metadata[metaContext] != p.ContextID {
				continue
			}
			filtered := state != "" || !after.IsZero()
			shown := len(out.Tasks) < size && (p.PageToken == "" || rec.ID < p.PageToken)
			if !filtered && !shown {
				out.TotalSize++ // counted without the cost of its view
				if len(out.Tasks) == size && out.NextPageToken == "" {
					out.NextPageToken = out.Tasks[size-1].ID
				}
				continue
			}
			task, err := e.task(ctx, rec)
			if err != nil {
				return nil, err
			}
			if state != "" && task.Status.State != state || !after.IsZero() && task.Status.Timestamp.Before(after) {
				continue
			}
			out.TotalSize++
			switch {
			case shown:
				out.Tasks = append(out.Tasks, listed(task, p))
			case len(out.Tasks) == size && out.NextPageToken == "":
				out.NextPageToken = out.Tasks[size-1].ID
			}
		}
		if next == "" {
			return out, nil
		}
		f.Cursor = next
	}
}

// listed is a task as ListTasks shows it: artifacts only when asked for,
// history cut to historyLength.
func listed(task *a2a.Task, p a2a1.ListTasksRequest) *a2a1.Task {
	if !p.IncludeArtifacts {
		task.Artifacts = nil
	}
	if p.HistoryLength != nil && *p.HistoryLength < len(task.History) {
		task.History = task.History[len(task.History)-max(*p.HistoryLength, 0):]
	}
	return a2a1.FromTask(task)
}

// listQuery reads ListTasks' params from the query of GET /tasks.
func listQuery(q url.Values) (a2a1.ListTasksRequest, error) {
	p := a2a1.ListTasksRequest{ContextID: q.Get("contextId"), Status: q.Get("status"), PageToken: q.Get("pageToken"),
		StatusTimestampAfter: q.Get("statusTimestampAfter")}
	for name, to := range map[string]**int{"pageSize": &p.PageSize, "historyLength": &p.HistoryLength} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return p, fmt.Errorf("%w: %s: %s is not a number", a2a.ErrInvalidParams, name, a2a1.Quote(v))
			}
			*to = &n
		}
	}
	if v := q.Get("includeArtifacts"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return p, fmt.Errorf("%w: includeArtifacts: %s is not true or false", a2a.ErrInvalidParams, a2a1.Quote(v))
		}
		p.IncludeArtifacts = b
	}
	return p, nil
}
