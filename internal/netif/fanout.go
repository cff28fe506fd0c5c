package netif

import (
	"context"
	"sync"
	"time"
)

// Fanout shares one kernel subscription (Source) among several subscribers:
// the address Tracker and the daemon's link handling read the same netlink
// socket instead of one each. It is itself a Watcher. Events are hints, so a
// subscriber that falls behind by more than its buffer loses the surplus,
// not the fact that something changed; when the source subscription ends,
// every subscriber's channel closes so it re-reads what it may have missed,
// exactly as with a direct subscription.
type Fanout struct {
	Source Watcher
	// Retry is the wait before subscribing again after a failure (default 1 s).
	Retry time.Duration

	mu   sync.Mutex
	subs map[chan Event]struct{}
}

var _ Watcher = (*Fanout)(nil)

// fanoutBuffer is each subscriber's queue: an interface flap is a burst of
// address events.
const fanoutBuffer = 256

// Watch implements Watcher. The channel closes when ctx ends or the source
// subscription does.
func (f *Fanout) Watch(ctx context.Context) (<-chan Event, error) {
	ch := make(chan Event, fanoutBuffer)
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[chan Event]struct{}{}
	}
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.drop(ch)
	}()
	return ch, nil
}

func (f *Fanout) drop(ch chan Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[ch]; ok {
		delete(f.subs, ch)
		close(ch)
	}
}

// Run holds the source subscription until ctx ends.
func (f *Fanout) Run(ctx context.Context) error {
	retry := f.Retry
	if retry <= 0 {
		retry = time.Second
	}
	for ctx.Err() == nil {
		events, err := f.Source.Watch(ctx)
		if err == nil {
			for ev := range events {
				f.send(ev)
			}
		}
		// The subscription ended (or never began): every subscriber starts
		// over, as it would after losing its own.
		f.closeAll()
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
	}
	f.closeAll()
	return nil
}

func (f *Fanout) send(ev Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- ev:
		default: // full: it has plenty to look again for
		}
	}
}

func (f *Fanout) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		delete(f.subs, ch)
		close(ch)
	}
}

func (f *Fanout) String() string { return "netlink link and address events" }
