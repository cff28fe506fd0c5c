package nft

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/v6edge/v6edge/internal/nstest"
)

func TestKeeperCheck(t *testing.T) {
	var logs nstest.SyncBuffer
	answers := []struct {
		what string
		err  error
	}{{"", nil}, {"table t missing", nil}, {"", errors.New("EPERM")}, {"chain c missing", errors.New("ENOBUFS")}}
	i := 0
	k := NewKeeper("test table", "t", slog.New(slog.NewTextHandler(&logs, nil)), func() (string, error) {
		a := answers[i]
		i++
		return a.what, a.err
	})
	for range answers {
		_ = k.Check()
	}
	if k.Restores() != 1 {
		t.Errorf("Restores() = %d, want 1: only a restore without error counts", k.Restores())
	}
	if !strings.Contains(logs.String(), `msg="test table restored" table=t problem="table t missing"`) {
		t.Errorf("log lacks the restore:\n%s", logs.String())
	}
	k.Restored("by Set")
	if k.Restores() != 2 {
		t.Errorf("Restores() = %d after Restored, want 2", k.Restores())
	}
}

// fakeMonitor hands out one events channel the test controls.
type fakeMonitor struct {
	events  chan struct{}
	stopped atomic.Bool
	err     error
}

func (f *fakeMonitor) subscribe() (<-chan struct{}, func(), error) {
	if f.err != nil {
		return nil, nil, f.err
	}
	return f.events, func() { f.stopped.Store(true) }, nil
}

func TestKeeperWatch(t *testing.T) {
	t.Run("with events: one check per settled burst, the backstop every 30 intervals", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var checks atomic.Int32
			k := NewKeeper("test table", "t", nil, func() (string, error) { checks.Add(1); return "", nil })
			mon := &fakeMonitor{events: make(chan struct{}, 1)}
			k.SetMonitor(mon.subscribe)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- k.Watch(ctx, time.Second) }()
			synctest.Wait()
			for range 5 { // a burst
				mon.events <- struct{}{}
				time.Sleep(time.Millisecond)
			}
			time.Sleep(monitorSettle)
			synctest.Wait()
			if n := checks.Load(); n != 1 {
				t.Errorf("%d checks after a burst, want 1", n)
			}
			time.Sleep(29 * time.Second)
			synctest.Wait()
			if n := checks.Load(); n != 1 {
				t.Errorf("%d checks before the backstop, want 1", n)
			}
			time.Sleep(time.Second)
			synctest.Wait()
			if n := checks.Load(); n != 2 {
				t.Errorf("%d checks after the backstop, want 2", n)
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Watch() = %v", err)
			}
			if !mon.stopped.Load() {
				t.Error("the monitor was not stopped")
			}
		})
	})
	t.Run("events that stop, or never start, fall back to polling", func(t *testing.T) {
		for _, stops := range []bool{true, false} {
			synctest.Test(t, func(t *testing.T) {
				// Inside the bubble: a channel made outside would not block durably.
				broken := &fakeMonitor{err: errors.New("EPERM")}
				if stops {
					broken = &fakeMonitor{events: make(chan struct{})}
				}
				var checks atomic.Int32
				var logs nstest.SyncBuffer
				k := NewKeeper("test table", "t", slog.New(slog.NewTextHandler(&logs, nil)),
					func() (string, error) { checks.Add(1); return "", nil })
				k.SetMonitor(broken.subscribe)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error)
				go func() { done <- k.Watch(ctx, time.Second) }()
				synctest.Wait()
				if broken.events != nil {
					close(broken.events)
				}
				time.Sleep(3*time.Second + time.Millisecond)
				synctest.Wait()
				if n := checks.Load(); n != 3 {
					t.Errorf("%d checks in 3 s, want 3", n)
				}
				if !strings.Contains(logs.String(), "checking the table periodically instead") {
					t.Errorf("no warning logged:\n%s", logs.String())
				}
				cancel()
				<-done
			})
		}
	})
	t.Run("a failed check is logged and the watch goes on", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var checks atomic.Int32
			var logs nstest.SyncBuffer
			k := NewKeeper("test table", "t", slog.New(slog.NewTextHandler(&logs, nil)),
				func() (string, error) { checks.Add(1); return "", errors.New("EPERM") })
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- k.Watch(ctx, 0) }() // 1 s
			time.Sleep(2*time.Second + time.Millisecond)
			synctest.Wait()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Watch() = %v", err)
			}
			if checks.Load() != 2 || !strings.Contains(logs.String(), `msg="test table check failed" table=t err=EPERM`) {
				t.Errorf("%d checks, log:\n%s", checks.Load(), logs.String())
			}
		})
	})
}
