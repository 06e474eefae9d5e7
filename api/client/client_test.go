package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/myriad-ai/myriad/api/client"
	"github.com/myriad-ai/myriad/run"
)

// A follower whose connection breaks connects again, from after the last
// event it saw, and sees every event once.
func TestEventsReconnectsFromTheLastEvent(t *testing.T) {
	var connects atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch connects.Add(1) {
		case 1: // one event, then the connection drops
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "id: 1\nevent: run.started\ndata: {\"seq\":1,\"type\":\"run.started\"}\n\n")
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		case 2: // refused outright: the server hangs up before answering
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		default:
			if got := r.Header.Get("Last-Event-ID"); got != "1" {
				t.Errorf("Last-Event-ID %q, want 1", got)
			}
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "id: 2\nevent: run.completed\ndata: {\"seq\":2,\"type\":\"run.completed\"}\n\n")
		}
	}))
	defer srv.Close()
	var seen []string
	err := client.New(srv.URL, "").Events(context.Background(), "run_1", 0, func(ev run.TreeEvent) bool {
		seen = append(seen, ev.Event.Type)
		return true
	})
	if err != nil || len(seen) != 2 || seen[0] != "run.started" || seen[1] != "run.completed" || connects.Load() != 3 {
		t.Fatalf("events %v, err %v, %d connections", seen, err, connects.Load())
	}
}

// A server that is not there is given up on after a few attempts.
func TestEventsGivesUp(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := client.New(url, "").Events(context.Background(), "run_1", 0, func(run.TreeEvent) bool { return true })
	if err == nil {
		t.Fatal("no error from a server that is gone")
	}
}
