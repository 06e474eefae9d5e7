// Package store is Myriad's one boundary with NATS JetStream: it starts the
// embedded server (the default, with file storage under the data directory)
// or connects to an external cluster, creates every stream, bucket and
// consumer, and offers the engine what it keeps there in Myriad's own terms —
// journals, inputs, the work queue, records, instance snapshots, timers and
// live messages. No other package of Myriad imports NATS.
//
// The layout, in one place:
//
//	MYRIAD_JOURNAL   myriad.journal.<tree>.<entity>  one journal per run or instance (single writer, expected-sequence appends)
//	MYRIAD_INPUT     myriad.input.<tree>.<entity>    every input to a run or instance, in order
//	                 myriad.idem.<hash>              idempotency keys of submissions (expire after a day)
//	MYRIAD_QUEUE     myriad.queue.<entity>           work queue: at most one entry per entity ("doorbell"); a worker holds it while it works
//	MYRIAD_SCHEDULES myriad.sched.> / myriad.fired.> timers and cron schedules the server keeps and fires
//	myriad_runs      KV                              run records (projections of journals, for reading)
//	myriad_instances KV                              instance snapshots (projections of instance journals)
//	myriad_budgets   KV                              spend of shared budgets over their windows (compare-and-set)
//	myriad.poke.<entity>                             core NATS: "an input was stored" for the worker holding the entity
//	myriad.live.<tree>.<entity>                      core NATS: streamed model text and tool progress (not journaled)
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/myriad-ai/myriad/internal/redact"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors the store returns, independent of NATS.
var (
	// ErrNotFound is a record, snapshot or message that does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists is a write that expected nothing there (a new run, a new
	// record) and found something.
	ErrExists = errors.New("store: already exists")
	// ErrTooLarge is a message larger than the NATS server accepts.
	ErrTooLarge = errors.New("store: message larger than the NATS server's max_payload")
)

// Options configure a Store.
type Options struct {
	// URL of an external NATS server or cluster; empty starts an embedded one.
	URL string
	// DataDir holds the embedded server's JetStream files.
	DataDir string
	// Memory stores streams in memory (tests and benchmarks that do not need durability).
	Memory bool
	// Replicas for streams on an external cluster (1 when embedded).
	Replicas int
	// SyncAlways makes the embedded server fsync every write (power-loss safety).
	SyncAlways bool
	// Cluster, when set, makes the embedded server a node of a NATS
	// cluster formed by Myriad nodes routing to each other.
	Cluster *Cluster
	Logger  *slog.Logger
}

// Cluster is how an embedded server joins its peers: NATS routes between
// the nodes, and JetStream clustered over them (streams and buckets
// replicated by Raft).
type Cluster struct {
	// Name is the cluster's, the same on every node.
	Name string
	// NodeName is this node's, unique in the cluster and the same across
	// its restarts (JetStream knows its peers by name).
	NodeName string
	// Listen is the host:port this node's routes listen on.
	Listen string
	// Routes are the host:port route addresses of the nodes; this node's
	// own may be among them.
	Routes []string
	// Secret, when set, authenticates routes: every node must have it.
	Secret string
	// Wait bounds how long Open waits for the cluster's JetStream to
	// have a quorum (default 2 minutes).
	Wait time.Duration
}

// Nodes counts the cluster's nodes: the distinct route addresses, this
// node's included.
func (c *Cluster) Nodes() int {
	seen := map[string]bool{c.Listen: true}
	for _, r := range c.Routes {
		seen[r] = true
	}
	return len(seen)
}

// Store is a live JetStream connection with Myriad's streams in place.
type Store struct {
	nc          *nats.Conn
	js          jetstream.JetStream
	journal     jetstream.Stream
	inputs      jetstream.Stream
	queueStream jetstream.Stream
	schedules   jetstream.Stream
	index       jetstream.Stream
	directory   jetstream.Stream
	runs        jetstream.KeyValue
	insts       jetstream.KeyValue
	budgets     jetstream.KeyValue
	copies      int // replicas of each stream and bucket
	queue       jetstream.Consumer
	router      jetstream.Consumer
	fired       jetstream.Consumer
	batches     *batchMux

	server  *server.Server
	jsCfg   *server.JetStreamConfig
	opts    Options
	log     *slog.Logger
	lock    *os.File // held on the data directory while the embedded server runs
	healMu  sync.Mutex
	failing atomic.Pointer[writeFailure]
	stop    chan struct{}
}

// MaxPayload is the largest message the embedded server accepts.
const MaxPayload = 8 << 20

// PayloadLimit is the largest message the connected NATS server accepts
// (an external server's may be below MaxPayload).
func (s *Store) PayloadLimit() int {
	if mp := s.nc.MaxPayload(); mp > 0 {
		return int(mp)
	}
	return MaxPayload
}

// AckWait is how long a worker holds an entity without heartbeating before
// JetStream hands it to another worker. It bounds recovery time after a
// crash.
const AckWait = 3 * time.Second

// RouteAckWait is how long an input handed to a router, or a timer's firing,
// stays with it without a word before another node's router is handed it:
// what a crashed node was routing is routed again this soon after. Routing
// is idempotent, so a slow router handed back its input does no harm.
const RouteAckWait = 5 * time.Second

// IdempotencyTTL is how long a submission's idempotency key is remembered,
// as with most APIs that take one: long enough for any client's retries.
const IdempotencyTTL = 24 * time.Hour

// Open starts or connects to NATS and creates the streams Myriad needs.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Store{opts: o, log: o.Logger, stop: make(chan struct{})}
	var err error
	if o.URL == "" {
		if err := s.startEmbedded(); err != nil {
			s.Close()
			return nil, err
		}
		s.nc, err = nats.Connect("", nats.InProcessServer(s.server), nats.Name("myriad"), nats.Token(localToken))
	} else {
		s.nc, err = nats.Connect(o.URL, nats.Name("myriad"), nats.MaxReconnects(-1))
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to NATS: %w", redact.Error(err))
	}
	s.copies = s.countReplicas()
	s.js, err = jetstream.New(s.nc, jetstream.WithPublishAsyncMaxPending(65536))
	if err != nil {
		s.Close()
		return nil, err
	}
	if mp := s.nc.MaxPayload(); mp < MaxPayload {
		o.Logger.Warn("the NATS server's max_payload is below what Myriad expects: very long inputs, outputs or histories will fail runs with payload_too_large",
			"max_payload", mp, "recommended", MaxPayload)
	}
	if s.batches, err = newBatchMux(s.nc); err != nil {
		s.Close()
		return nil, err
	}
	ensure := s.ensure
	if o.Cluster != nil || s.copies > 1 {
		// A cluster may still be electing its leaders: wait for them.
		ensure = s.ensureClustered
	}
	if err := ensure(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if s.server != nil && o.Cluster == nil {
		// A clustered node's JetStream is not restarted from here: its
		// peers keep the streams going while it cannot write.
		go s.watchHealth()
	}
	return s, nil
}

func (s *Store) startEmbedded() error {
	dir := s.opts.DataDir
	if dir == "" && !s.opts.Memory {
		return errors.New("an embedded NATS server needs a data directory (--data DIR)")
	}
	storeDir := ""
	if dir != "" {
		storeDir = filepath.Join(dir, "nats")
		if err := os.MkdirAll(storeDir, 0o750); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		lock, err := lockDir(dir)
		if err != nil {
			return err
		}
		s.lock = lock
	}
	opts := &server.Options{
		ServerName:         "myriad",
		DontListen:         true, // clients connect in process; routes listen apart
		JetStream:          true,
		StoreDir:           storeDir,
		NoSigs:             true,
		JetStreamMaxMemory: -1,
		JetStreamMaxStore:  -1,
		SyncAlways:         s.opts.SyncAlways,
		// Room for long inputs, outputs and histories in one record or
		// journal entry (the NATS default is 1 MiB).
		MaxPayload: MaxPayload,
	}
	if c := s.opts.Cluster; c != nil {
		if err := clusterOptions(opts, c); err != nil {
			return err
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("embedded NATS: %w", err)
	}
	srv.SetLoggerV2(natsLog{s.log}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return errors.New("embedded NATS did not start within 30s")
	}
	s.server = srv
	s.jsCfg = &server.JetStreamConfig{StoreDir: storeDir, MaxMemory: -1, MaxStore: -1, SyncAlways: s.opts.SyncAlways}
	return nil
}

func (s *Store) storage() jetstream.StorageType {
	if s.opts.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// replicas is how many copies streams and buckets keep (worked out once,
// on connecting: it is read on every read of a stream).
func (s *Store) replicas() int { return s.copies }

// countReplicas is how many copies streams and buckets keep: as asked on
// a cluster, else three on a cluster of three nodes or more.
func (s *Store) countReplicas() int {
	switch {
	case s.opts.URL == "" && s.opts.Cluster == nil:
		return 1
	case s.opts.Replicas >= 1:
		return s.opts.Replicas
	case s.opts.Cluster != nil && s.opts.Cluster.Nodes() >= 3:
		return 3
	case s.opts.Cluster == nil && s.nc != nil && len(s.nc.Servers()) >= 3:
		// An external cluster: its servers gossip their addresses.
		return 3
	}
	return 1
}

// ensure creates (or updates) every stream, bucket and consumer.
func (s *Store) ensure(ctx context.Context) error {
	var err error
	// A direct get may be answered by a replica that has not applied the
	// latest writes: fine for journals (a stale read fails the next
	// expected-sequence append), not for inputs a writer must see.
	direct := s.replicas() == 1
	s.journal, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        JournalStream,
		Description: "Myriad journals, one subject per run or instance",
		Subjects:    []string{journalPrefix + ">"},
		Storage:     s.storage(),
		Replicas:    s.replicas(),
		AllowDirect: direct,
		Discard:     jetstream.DiscardOld,
		// On a cluster each append carries a message id, for a second
		// attempt after its leader dropped it (publish): seconds later at
		// most, so a short window keeps the server's id table small.
		Duplicates: 20 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", JournalStream, err)
	}
	s.inputs, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        InputStream,
		Description: "Inputs to Myriad runs and instances, one subject per entity, and submission idempotency keys",
		Subjects:    []string{inputPrefix + ">", idemPrefix + ">"},
		Storage:     s.storage(),
		Replicas:    s.replicas(),
		AllowDirect: direct,
		AllowMsgTTL: true,
		// A child that reports twice (its settle was retried), a timer
		// fired twice: stored once.
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", InputStream, err)
	}
	if s.index, err = s.js.CreateOrUpdateStream(ctx, s.indexConfig()); err != nil {
		return fmt.Errorf("create stream %s: %w", IndexStream, err)
	}
	if s.directory, err = s.js.CreateOrUpdateStream(ctx, s.directoryConfig()); err != nil {
		return fmt.Errorf("create stream %s: %w", DirectoryStream, err)
	}
	if s.queueStream, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        QueueStream,
		Description: "Myriad entities with work waiting for a worker, new runs with their submissions",
		Subjects:    []string{queuePrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     s.storage(),
		Replicas:    s.replicas(),
		AllowDirect: direct,
		// One entry per entity: a second ring of an entity whose entry is
		// waiting or held is refused by the server.
		MaxMsgsPerSubject:    1,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
	}); err != nil {
		return fmt.Errorf("create stream %s: %w", QueueStream, err)
	}
	if s.queue, err = s.js.CreateOrUpdateConsumer(ctx, QueueStream, jetstream.ConsumerConfig{
		Durable:       workersConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AckWait,
		MaxAckPending: -1,
		MaxDeliver:    -1,
	}); err != nil {
		return fmt.Errorf("create consumer %s: %w", workersConsumer, err)
	}
	if s.router, err = s.js.CreateOrUpdateConsumer(ctx, InputStream, jetstream.ConsumerConfig{
		Durable:        routerConsumer,
		FilterSubjects: []string{inputPrefix + ">", idemPrefix + ">"},
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        RouteAckWait,
		MaxAckPending:  -1,
		MaxDeliver:     -1,
	}); err != nil {
		return fmt.Errorf("create consumer %s: %w", routerConsumer, err)
	}
	s.schedules, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        ScheduleStream,
		Description: "Myriad timers and cron schedules, kept and fired by the NATS server",
		Subjects:    []string{schedulePrefix + ">", firedPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     s.storage(),
		Replicas:    s.replicas(),
		// Scheduling a subject again replaces its schedule.
		MaxMsgsPerSubject: 1,
		AllowMsgSchedules: true,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", ScheduleStream, err)
	}
	if s.fired, err = s.js.CreateOrUpdateConsumer(ctx, ScheduleStream, jetstream.ConsumerConfig{
		Durable:       firedConsumer,
		FilterSubject: firedPrefix + ">",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       2 * RouteAckWait,
		MaxAckPending: -1,
		MaxDeliver:    -1,
	}); err != nil {
		return fmt.Errorf("create consumer %s: %w", firedConsumer, err)
	}
	kv := func(name, desc string) (jetstream.KeyValue, error) {
		b, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: name, Description: desc, Storage: s.storage(), Replicas: s.replicas(),
		})
		if err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", name, err)
		}
		return b, nil
	}
	if s.runs, err = kv(RunsBucket, "Myriad run records"); err != nil {
		return err
	}
	if s.insts, err = kv(InstancesBucket, "Myriad instance snapshots"); err != nil {
		return err
	}
	if s.budgets, err = kv(BudgetsBucket, "Myriad budget ledgers: spend over each budget's window"); err != nil {
		return err
	}
	return nil
}

// Embedded reports whether the store runs its own NATS server.
func (s *Store) Embedded() bool { return s.server != nil }

// Close drains the connection and stops the embedded server.
func (s *Store) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	if s.batches != nil {
		s.batches.close()
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.server != nil {
		s.server.Shutdown()
		s.server.WaitForShutdown()
	}
	if s.lock != nil {
		s.lock.Close() // releases the flock
	}
}

// lockDir takes an exclusive lock on a data directory: two embedded servers
// on one directory would each believe they own its streams, and runs
// accepted by one would be invisible to, and lost by, the other.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "myriad.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("data directory %s is in use by another myriad process (pid %s): stop it, or pass another --data",
			dir, strings.TrimSpace(string(owner)))
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// apiError reports a JetStream API error with one of the given codes.
func apiError(err error, codes ...jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	for _, c := range codes {
		if apiErr.ErrorCode == c {
			return true
		}
	}
	return false
}

// wrongLastSequence reports an expected-sequence check that failed.
func wrongLastSequence(err error) bool {
	return apiError(err, jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// tooLarge maps a payload refused for its size onto ErrTooLarge.
func tooLarge(err error) error {
	if errors.Is(err, nats.ErrMaxPayload) || apiError(err, jetstream.JSErrCodeStreamMessageExceedsMaximum) {
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	return err
}
