package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/myriad-ai/myriad/journal"
)

// Feed delivers every journal entry, of every entity, in stream order from
// a position on, and the live messages of the trees it follows: the one
// feed a node shares among all who follow runs. A live message published
// before a journal entry of its run comes out before that entry.
type Feed struct {
	s     *Store
	cons  jetstream.Consumer
	it    jetstream.MessagesContext
	live  chan *nats.Msg
	jc    chan feedEntry
	stash *journal.Event
	done  chan struct{}
}

type feedEntry struct {
	ev  journal.Event
	err error
}

// FeedItem is one thing a feed delivers: a journal entry or a live
// message.
type FeedItem struct {
	Entry *journal.Event
	Live  *LiveMsg
}

// OpenFeed starts a feed after stream sequence after. Live messages are
// held liveBuffer deep; more are dropped (they are best effort).
func (s *Store) OpenFeed(ctx context.Context, after uint64, liveBuffer int) (*Feed, error) {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{journalPrefix + ">"},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       after + 1,
		InactiveThreshold: 30 * time.Second,
	}
	cons, err := s.js.OrderedConsumer(ctx, JournalStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("journal feed: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return nil, fmt.Errorf("journal feed: %w", err)
	}
	f := &Feed{s: s, cons: cons, it: it, live: make(chan *nats.Msg, liveBuffer), jc: make(chan feedEntry, 64), done: make(chan struct{})}
	go f.pump()
	return f, nil
}

// pump moves journal entries from the consumer to the feed, in order.
// The ordered consumer mends its own gaps and resets; only its end ends
// the pump.
func (f *Feed) pump() {
	for {
		msg, err := f.it.Next()
		var e feedEntry
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				select {
				case <-f.done:
					return
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			e.err = err
		} else if meta, merr := msg.Metadata(); merr != nil {
			continue
		} else if e.ev, err = journal.Decode(meta.Sequence.Stream, msg.Data()); err != nil {
			continue // a corrupt entry: its readers report it
		}
		select {
		case f.jc <- e:
		case <-f.done:
			return
		}
		if e.err != nil {
			return
		}
	}
}

// FollowLive adds a tree's live messages to the feed until stop.
func (f *Feed) FollowLive(tree string) (stop func(), err error) {
	sub, err := f.s.nc.ChanSubscribe(treeLive(tree), f.live)
	if err != nil {
		return nil, err
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Next waits for the next entry or live message.
func (f *Feed) Next(ctx context.Context) (FeedItem, error) {
	if m, ok := f.takeLive(); ok {
		return m, nil
	}
	if f.stash != nil {
		ev := f.stash
		f.stash = nil
		return FeedItem{Entry: ev}, nil
	}
	select {
	case <-ctx.Done():
		return FeedItem{}, ctx.Err()
	case m := <-f.live:
		return liveItem(m), nil
	case e := <-f.jc:
		if e.err != nil {
			if errors.Is(e.err, jetstream.ErrMsgIteratorClosed) {
				return FeedItem{}, ErrClosed
			}
			return FeedItem{}, e.err
		}
		// Live messages that came before this entry are in the channel
		// already: they go first.
		if m, ok := f.takeLive(); ok {
			f.stash = &e.ev
			return m, nil
		}
		return FeedItem{Entry: &e.ev}, nil
	}
}

func (f *Feed) takeLive() (FeedItem, bool) {
	select {
	case m := <-f.live:
		return liveItem(m), true
	default:
		return FeedItem{}, false
	}
}

func liveItem(m *nats.Msg) FeedItem {
	return FeedItem{Live: &LiveMsg{RunID: entityOf(m.Subject), Data: m.Data}}
}

// Stop ends the feed and removes its consumer from the server.
func (f *Feed) Stop() {
	select {
	case <-f.done:
		return
	default:
		close(f.done)
	}
	f.it.Stop()
	if info := f.cons.CachedInfo(); info != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = f.s.js.DeleteConsumer(ctx, JournalStream, info.Name)
		cancel()
	}
}
