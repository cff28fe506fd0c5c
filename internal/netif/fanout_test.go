package netif

import (
	"context"
	"testing"
	"time"
)

// recv reads one event or fails after a bounded wait.
func recv(t *testing.T, ch <-chan Event) (Event, bool) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		return ev, ok
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
		return Event{}, false
	}
}

func TestFanoutSharesOneSubscription(t *testing.T) {
	src := NewFakeHandle()
	f := &Fanout{Source: src, Retry: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, _ := f.Watch(ctx)
	b, _ := f.Watch(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	// The fake emits to its subscribers; wait until Run has subscribed.
	deadline := time.Now().Add(5 * time.Second)
	for {
		src.mu.Lock()
		n := len(src.subs)
		src.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run holds %d source subscriptions, want 1", n)
		}
		time.Sleep(time.Millisecond)
	}
	src.AddLink("wan0")
	for name, ch := range map[string]<-chan Event{"a": a, "b": b} {
		if ev, ok := recv(t, ch); !ok || !ev.Link {
			t.Errorf("subscriber %s got %+v (open %v), want the link event", name, ev, ok)
		}
	}

	// The source subscription ends: both subscribers are told by a closed
	// channel, and a new Watch gets events from the resubscribed source.
	src.EndWatches()
	for name, ch := range map[string]<-chan Event{"a": a, "b": b} {
		if _, ok := recv(t, ch); ok {
			t.Errorf("subscriber %s: channel still open after the source ended", name)
		}
	}
	c, _ := f.Watch(ctx)
	deadline = time.Now().Add(5 * time.Second)
	for got := false; !got; {
		src.AddLink("lan" + time.Now().Format("150405.000000000"))
		select {
		case ev := <-c:
			got = ev.Link
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no event after the source resubscribed")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}
