package store

// Live messages — streamed model text, tool progress — go to whoever
// follows a run at that moment, on core NATS: they are not journaled and
// not replayed (see Feed.FollowLive).

// PublishLive publishes a live message of run id. Best effort.
func (s *Store) PublishLive(id string, data []byte) { _ = s.nc.Publish(liveSubject(id), data) }

// LiveMsg is a live message of a run.
type LiveMsg struct {
	RunID string
	Data  []byte
}

// Flush waits until the server has seen everything this connection sent
// (subscriptions included).
func (s *Store) Flush() error { return s.nc.Flush() }
