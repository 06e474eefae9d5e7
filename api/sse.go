package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/myriad-ai/myriad/engine"
	"github.com/myriad-ai/myriad/journal"
	"github.com/myriad-ai/myriad/run"
)

// Event streams over HTTP/1.1 take over their connection (Hijack) and are
// written from the engine's side (engine.Following.Stream): an idle
// follower holds a connection and a little state, no goroutine and no
// buffers, so one node serves thousands. One goroutine of the server
// sends every stream's keep-alive. (HTTP/2 streams cannot be taken over:
// they are served by their handler, see runEvents.)

// sseWriteTimeout bounds a write to a stream's client: a client that
// reads nothing for this long is dropped (it may reconnect with
// Last-Event-ID).
const sseWriteTimeout = 10 * time.Second

// sseConn is a stream on a connection taken over.
type sseConn struct {
	s      *Server
	conn   net.Conn
	runID  string
	mu     sync.Mutex // one write at a time
	closed bool
	f      *engine.Following
	last   time.Time // when it last sent something
}

// hijackStream takes over the request's connection and writes the
// response head; ok is false when the connection cannot be taken over.
func (s *Server) hijackStream(w http.ResponseWriter) (net.Conn, bool) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, false
	}
	// The body ends when the connection closes: no chunking to write.
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	h := w.Header().Clone()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Connection", "close")
	_ = h.Write(&head)
	head.WriteString("\r\n")
	_ = conn.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	if _, err := conn.Write(head.Bytes()); err != nil {
		conn.Close()
		return nil, true
	}
	_ = rw // its reader may hold a pipelined request: a stream takes no more requests
	return conn, true
}

// stream serves a run's events on a connection taken over, until the
// run ends, the client goes, or the engine stops.
func (s *Server) stream(conn net.Conn, f *engine.Following, id string, after uint64, r *http.Request) {
	c := &sseConn{s: s, conn: conn, runID: id, f: f, last: time.Now()}
	s.addStream(c)
	err := f.Stream(r.Context(), after, c.send)
	if err != nil {
		c.send(run.Update{}, err)
	}
}

// send writes one update; false ends the stream.
func (c *sseConn) send(u run.Update, err error) bool {
	var frame []byte
	end := false
	switch {
	case err != nil:
		frame = fmt.Appendf(nil, "event: error\ndata: %s\n\n", mustJSON(streamError(err)))
		end = true
	case u.Live != nil:
		frame = fmt.Appendf(nil, "event: %s\ndata: %s\n\n", u.Live.Type, u.Live.Data)
	default:
		data, _ := json.Marshal(u.Event)
		frame = fmt.Appendf(nil, "id: %d\nevent: %s\ndata: %s\n\n", u.Event.Seq, u.Event.Type, data)
		// The stream ends with the run's own end; children canceled with
		// it end after.
		end = u.Event.RunID == c.runID && journal.Terminal(u.Event.Type)
	}
	if !c.write(frame, sseWriteTimeout) || end {
		c.close()
		return false
	}
	return true
}

func (c *sseConn) write(b []byte, timeout time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.conn.Write(b); err != nil {
		return false
	}
	c.last = time.Now()
	return true
}

func (c *sseConn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.conn.Close()
	c.mu.Unlock()
	c.f.Close()
	c.s.removeStream(c)
}

// keepAlive sends a comment on a stream quiet for Options.KeepAlive, so
// proxies keep it open and a client that left is noticed.
func (c *sseConn) keepAlive(now time.Time) {
	if !c.mu.TryLock() {
		return // it is writing
	}
	quiet := !c.closed && now.Sub(c.last) >= c.s.opts.KeepAlive
	c.mu.Unlock()
	if quiet && !c.write([]byte(": keep-alive\n\n"), 2*time.Second) {
		c.close()
	}
}

func (s *Server) addStream(c *sseConn) {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	if s.streams == nil {
		s.streams = map[*sseConn]struct{}{}
		go s.keepStreamsAlive()
	}
	s.streams[c] = struct{}{}
}

func (s *Server) removeStream(c *sseConn) {
	s.streamsMu.Lock()
	delete(s.streams, c)
	s.streamsMu.Unlock()
}

// keepStreamsAlive runs while the server has streams on connections
// taken over.
func (s *Server) keepStreamsAlive() {
	t := time.NewTicker(max(s.opts.KeepAlive/4, 10*time.Millisecond))
	defer t.Stop()
	for now := range t.C {
		s.streamsMu.Lock()
		if len(s.streams) == 0 {
			s.streams = nil // the next stream starts another
			s.streamsMu.Unlock()
			return
		}
		cs := make([]*sseConn, 0, len(s.streams))
		for c := range s.streams {
			cs = append(cs, c)
		}
		s.streamsMu.Unlock()
		for _, c := range cs {
			c.keepAlive(now)
		}
	}
}
