package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/myriad-ai/myriad/internal/redact"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// localToken guards a clustered node's loopback client port: the node's
// own connection is the only client.
var localToken = func() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}()

// routeUser is the user routes authenticate as when the cluster has a
// secret (NATS route authorization takes a user and a password).
const routeUser = "myriad"

// clusterOptions sets an embedded server's options to join c.
func clusterOptions(opts *server.Options, c *Cluster) error {
	if c.Name == "" || c.NodeName == "" {
		return errors.New("a cluster needs a name and a node name")
	}
	host, port, err := splitPort(c.Listen)
	if err != nil {
		return fmt.Errorf("cluster listen address %q: %w", c.Listen, err)
	}
	// NATS starts routes only once its client listener is up, so a
	// clustered node listens for clients too: on loopback, on a free
	// port, behind a token only this process knows.
	opts.DontListen, opts.Host, opts.Port = false, "127.0.0.1", server.RANDOM_PORT
	opts.Authorization = localToken
	opts.ServerName = c.NodeName
	opts.Cluster = server.ClusterOpts{Name: c.Name, Host: host, Port: port}
	if c.Secret != "" {
		opts.Cluster.Username, opts.Cluster.Password = routeUser, c.Secret
	}
	for _, r := range c.Routes {
		if _, _, err := splitPort(r); err != nil {
			return fmt.Errorf("route %q: %w", r, err)
		}
		u := &url.URL{Scheme: "nats-route", Host: r}
		if c.Secret != "" {
			u.User = url.UserPassword(routeUser, c.Secret)
		}
		opts.Routes = append(opts.Routes, u)
	}
	return nil
}

func splitPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, errors.New("write it HOST:PORT, like 10.0.0.1:6222")
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, errors.New("the port must be a number from 1 to 65535")
	}
	return host, port, nil
}

// DefaultClusterWait is how long Open waits for a cluster's JetStream.
const DefaultClusterWait = 2 * time.Minute

// ensureClustered creates Myriad's streams once the cluster's JetStream
// can: until enough nodes are up for a quorum, every request fails, and
// Open waits, saying so now and then.
func (s *Store) ensureClustered(ctx context.Context) error {
	c := s.opts.Cluster
	wait := DefaultClusterWait
	if c != nil && c.Wait > 0 {
		wait = c.Wait
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	began, told := time.Now(), time.Now()
	for {
		// Until a meta leader is elected, requests go unanswered: try
		// again soon rather than wait on them.
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		err := s.ensure(attempt)
		if err == nil {
			err = s.led(attempt)
		}
		cancelAttempt()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			if c == nil {
				return fmt.Errorf("the NATS cluster's JetStream at %s was not ready within %s (a meta leader, and a leader for each stream: are a majority of its servers up?): %w",
					redact.URL(s.opts.URL), wait, err)
			}
			return fmt.Errorf("the cluster's JetStream was not ready within %s (%d of %d nodes reachable: start at least %d, with routes to each other): %w",
				wait, s.peers(), c.Nodes(), c.Nodes()/2+1, err)
		}
		if time.Since(told) >= 5*time.Second {
			if c == nil {
				s.log.Info("waiting for the NATS cluster", "waited", time.Since(began).Round(time.Second).String(), "err", err)
			} else {
				s.log.Info("waiting for the cluster", "nodes_reachable", s.peers(), "nodes", c.Nodes(), "waited", time.Since(began).Round(time.Second).String(), "err", err)
			}
			told = time.Now()
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// led checks that every stream and consumer Myriad uses has a leader: a
// node serves only once its work can move.
func (s *Store) led(ctx context.Context) error {
	streams := map[string]jetstream.Stream{JournalStream: s.journal, InputStream: s.inputs, QueueStream: s.queueStream, ScheduleStream: s.schedules, IndexStream: s.index, DirectoryStream: s.directory}
	for name, st := range streams {
		info, err := st.Info(ctx)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return fmt.Errorf("stream %s has no leader yet", name)
		}
	}
	for _, c := range []jetstream.Consumer{s.queue, s.router, s.fired} {
		info, err := c.Info(ctx)
		if err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return fmt.Errorf("consumer %s has no leader yet", info.Name)
		}
	}
	for _, kv := range []jetstream.KeyValue{s.runs, s.insts, s.budgets} {
		st, err := kv.Status(ctx)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", kv.Bucket(), err)
		}
		if info := st.(*jetstream.KeyValueBucketStatus).StreamInfo(); info.Cluster == nil || info.Cluster.Leader == "" {
			return fmt.Errorf("bucket %s has no leader yet", kv.Bucket())
		}
	}
	return nil
}

// peers counts the nodes this one is routed to, itself included.
func (s *Store) peers() int {
	if s.server == nil {
		return 0
	}
	return s.server.NumRemotes() + 1
}

// natsLog writes the embedded server's warnings and errors to the node's
// log (its notices at debug level): route failures and elections are an
// operator's business on a cluster.
type natsLog struct{ log *slog.Logger }

func (l natsLog) Noticef(format string, v ...any) {
	l.log.Debug(redact.Text(fmt.Sprintf(format, v...)), "component", "nats")
}
func (l natsLog) Warnf(format string, v ...any) {
	l.log.Warn(redact.Text(fmt.Sprintf(format, v...)), "component", "nats")
}
func (l natsLog) Fatalf(format string, v ...any) {
	l.log.Error(redact.Text(fmt.Sprintf(format, v...)), "component", "nats")
}
func (l natsLog) Errorf(format string, v ...any) {
	// Mostly a peer that cannot be reached, which a cluster rides out.
	l.log.Warn(redact.Text(fmt.Sprintf(format, v...)), "component", "nats")
}
func (l natsLog) Debugf(string, ...any) {}
func (l natsLog) Tracef(string, ...any) {}
