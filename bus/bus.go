// Package bus owns Myriad's connection to NATS JetStream: it starts the
// embedded server (the default, with file storage under the data directory)
// or connects to an external cluster, and it names every stream, bucket and
// subject Myriad uses, so the layout of the substrate reads in one place.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream, bucket and subject names.
const (
	// JournalStream holds every run's journal, one subject per run.
	JournalStream = "MYRIAD_JOURNAL"
	// JournalPrefix + tree + "." + run id is a run's journal subject (see
	// JournalSubject): a run and all its descendants share the tree token, so
	// one consumer reads a whole tree of runs in order.
	JournalPrefix = "myriad.journal."
	// ScheduleStream holds scheduled messages — run timers and cron
	// schedules — under SchedulePrefix; when one is due the NATS server
	// publishes it under FiredPrefix, where FiredConsumer hands it to a node.
	ScheduleStream = "MYRIAD_SCHEDULES"
	SchedulePrefix = "myriad.sched."
	FiredPrefix    = "myriad.fired."
	FiredConsumer  = "fired"
	// InboxStream holds what child runs report to their parents.
	InboxStream = "MYRIAD_INBOX"
	// InboxPrefix + run id is where a run's children post their outcomes.
	InboxPrefix = "myriad.inbox."
	// QueueStream is the work queue of runs waiting for a worker.
	QueueStream = "MYRIAD_QUEUE"
	// QueuePrefix + run id is a run's entry on the work queue, and
	// QueuePrefix + run id + ".resolve.<step>" the entry that resumes it after
	// a resolution. The stream keeps at most one entry per subject, so
	// enqueueing twice is harmless.
	QueuePrefix = "myriad.queue."
	// WorkersConsumer is the durable consumer every node's workers share.
	WorkersConsumer = "workers"
	// RunsBucket is the key-value bucket of run records (status, output, ...).
	RunsBucket = "myriad_runs"
	// InstancesBucket holds the state of agent instances (agent/key).
	InstancesBucket = "myriad_instances"
	// IdempotencyBucket maps submission idempotency keys to run ids.
	IdempotencyBucket = "myriad_idempotency"
	// SignalPrefix + run id carries cancel signals to the worker running it.
	SignalPrefix = "myriad.signal."
	// LivePrefix + tree + "." + run id carries streamed model text while a
	// run executes (LiveSubject): core NATS, not journaled, for clients
	// watching live.
	LivePrefix = "myriad.live."
)

// JournalSubject is the journal subject of one run.
func JournalSubject(runID string) string { return JournalPrefix + Tree(runID) + "." + runID }

// TimerSubject holds the schedule of one wake-up of a run at t; when it
// fires, the server publishes it on TimerTarget.
func TimerSubject(runID string, t time.Time) string {
	return SchedulePrefix + "timer." + runID + "." + strconv.FormatInt(t.Unix(), 10)
}

// TimerTarget is where a run's timer wake-ups fire.
func TimerTarget(runID string) string { return FiredPrefix + "timer." + runID }

// CronSubject holds a cron schedule; it fires on CronTarget.
func CronSubject(name string) string { return SchedulePrefix + "cron." + name }

// CronTarget is where a cron schedule fires.
func CronTarget(name string) string { return FiredPrefix + "cron." + name }

// LiveSubject carries one run's streamed model text.
func LiveSubject(runID string) string { return LivePrefix + Tree(runID) + "." + runID }

// TreeSubjects matches the journals of every run in a tree.
func TreeSubjects(tree string) string { return JournalPrefix + tree + ".*" }

// TreeLen is how many characters after "run_" name a run's tree: a root
// run's creation time and a counter; child run ids begin with their
// parent's tree.
const TreeLen = 20

// Tree returns the tree token of a run id. Ids that do not have the
// standard shape (tests use short ones) are their own tree.
func Tree(runID string) string {
	if len(runID) >= 4+TreeLen && strings.HasPrefix(runID, "run_") {
		return runID[4 : 4+TreeLen]
	}
	return runID
}

// Options configure a connection.
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
	Logger     *slog.Logger
}

// Bus is a live JetStream connection with Myriad's streams in place.
type Bus struct {
	NC    *nats.Conn
	JS    jetstream.JetStream
	Runs  jetstream.KeyValue
	Insts jetstream.KeyValue
	Idem  jetstream.KeyValue
	Queue jetstream.Consumer
	// Journal is the journal stream's handle, kept to save a lookup per read.
	Journal jetstream.Stream
	// Inbox is the inbox stream's handle.
	Inbox jetstream.Stream
	// Fired delivers due timers and schedules.
	Fired  jetstream.Consumer
	server *server.Server
	opts   Options
	lock   *os.File // held on the data directory while the embedded server runs
}

// IdempotencyTTL is how long a submission's Idempotency-Key is remembered,
// as with most APIs that take one: long enough for any client's retries.
const IdempotencyTTL = 24 * time.Hour

// MaxPayload is the largest message the embedded server accepts.
const MaxPayload = 8 << 20

// AckWait is how long a worker holds a run without heartbeating before
// JetStream hands the run to another worker. It bounds recovery time after a
// crash (the design promises resumption within 5 s of a restart).
const AckWait = 3 * time.Second

// Open starts or connects to NATS and creates the streams Myriad needs.
func Open(ctx context.Context, o Options) (*Bus, error) {
	b := &Bus{opts: o}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	var err error
	if o.URL == "" {
		if err := b.startEmbedded(); err != nil {
			b.Close()
			return nil, err
		}
		b.NC, err = nats.Connect("", nats.InProcessServer(b.server), nats.Name("myriad"))
	} else {
		b.NC, err = nats.Connect(o.URL, nats.Name("myriad"), nats.MaxReconnects(-1))
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	b.JS, err = jetstream.New(b.NC, jetstream.WithPublishAsyncMaxPending(65536))
	if err != nil {
		b.Close()
		return nil, err
	}
	if mp := b.NC.MaxPayload(); mp < MaxPayload {
		o.Logger.Warn("the NATS server's max_payload is below what Myriad expects: very long inputs, outputs or histories will fail runs with payload_too_large",
			"max_payload", mp, "recommended", MaxPayload)
	}
	if err := b.ensureStreams(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Bus) startEmbedded() error {
	dir := b.opts.DataDir
	if dir == "" && !b.opts.Memory {
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
		b.lock = lock
	}
	opts := &server.Options{
		ServerName:         "myriad",
		DontListen:         true,
		JetStream:          true,
		StoreDir:           storeDir,
		NoSigs:             true,
		JetStreamMaxMemory: -1,
		JetStreamMaxStore:  -1,
		SyncAlways:         b.opts.SyncAlways,
		// Room for long inputs, outputs and histories in one record or
		// journal entry (the NATS default is 1 MiB).
		MaxPayload: MaxPayload,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("embedded NATS: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return errors.New("embedded NATS did not start within 30s")
	}
	b.server = s
	return nil
}

func (b *Bus) storage() jetstream.StorageType {
	if b.opts.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

func (b *Bus) replicas() int {
	if b.opts.URL == "" || b.opts.Replicas < 1 {
		return 1
	}
	return b.opts.Replicas
}

func (b *Bus) ensureStreams(ctx context.Context) error {
	var err error
	b.Journal, err = b.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        JournalStream,
		Description: "Myriad run journals, one subject per run",
		Subjects:    []string{JournalPrefix + ">"},
		Storage:     b.storage(),
		Replicas:    b.replicas(),
		AllowDirect: true,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", JournalStream, err)
	}
	b.Inbox, err = b.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        InboxStream,
		Description: "Outcomes of child runs, one subject per parent run",
		Subjects:    []string{InboxPrefix + ">"},
		Storage:     b.storage(),
		Replicas:    b.replicas(),
		// A direct get may be answered by a replica that has not applied a
		// report yet; a woken parent must see every report before it.
		AllowDirect: b.replicas() == 1,
		// A child that reports twice (its settle was retried) is stored once.
		Duplicates: 10 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", InboxStream, err)
	}
	_, err = b.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        QueueStream,
		Description: "Myriad runs waiting for a worker",
		Subjects:    []string{QueuePrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     b.storage(),
		Replicas:    b.replicas(),
		// One entry per run: a second enqueue of a run still waiting is
		// refused by the server, whenever it comes.
		MaxMsgsPerSubject:    1,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", QueueStream, err)
	}
	b.Queue, err = b.JS.CreateOrUpdateConsumer(ctx, QueueStream, jetstream.ConsumerConfig{
		Durable:       WorkersConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AckWait,
		MaxAckPending: -1,
		MaxDeliver:    -1,
	})
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", WorkersConsumer, err)
	}
	_, err = b.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        ScheduleStream,
		Description: "Myriad timers and cron schedules, kept and fired by the NATS server",
		Subjects:    []string{SchedulePrefix + ">", FiredPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     b.storage(),
		Replicas:    b.replicas(),
		// Scheduling a subject again replaces its schedule.
		MaxMsgsPerSubject: 1,
		AllowMsgSchedules: true,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", ScheduleStream, err)
	}
	b.Fired, err = b.JS.CreateOrUpdateConsumer(ctx, ScheduleStream, jetstream.ConsumerConfig{
		Durable:       FiredConsumer,
		FilterSubject: FiredPrefix + ">",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: -1,
		MaxDeliver:    -1,
	})
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", FiredConsumer, err)
	}
	kv := func(name, desc string, ttl time.Duration) (jetstream.KeyValue, error) {
		s, err := b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      name,
			Description: desc,
			Storage:     b.storage(),
			Replicas:    b.replicas(),
			TTL:         ttl,
		})
		if err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", name, err)
		}
		return s, nil
	}
	if b.Runs, err = kv(RunsBucket, "Myriad run records", 0); err != nil {
		return err
	}
	if b.Insts, err = kv(InstancesBucket, "Myriad agent instances", 0); err != nil {
		return err
	}
	if b.Idem, err = kv(IdempotencyBucket, "Myriad submission idempotency keys", IdempotencyTTL); err != nil {
		return err
	}
	return nil
}

// Embedded reports whether the bus runs its own NATS server.
func (b *Bus) Embedded() bool { return b.server != nil }

// Close drains the connection and stops the embedded server.
func (b *Bus) Close() {
	if b.NC != nil {
		b.NC.Close()
	}
	if b.server != nil {
		b.server.Shutdown()
		b.server.WaitForShutdown()
	}
	if b.lock != nil {
		b.lock.Close() // releases the flock
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
