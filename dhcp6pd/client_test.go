package dhcp6pd

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

// waitFor polls cond every 10 ms until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitBound waits up to 5 s until the client is bound.
func (rc *runningClient) waitBound(t *testing.T) {
	t.Helper()
	waitFor(t, "bound", 5*time.Second, func() bool { return rc.c.Snapshot().State == StateBound })
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func fastTune(m *Machine) {
	m.SolMaxDelay = 10 * time.Millisecond
	m.SolTimeout = 50 * time.Millisecond
	m.ReqTimeout = 50 * time.Millisecond
	m.RenTimeout = 100 * time.Millisecond
	m.RebTimeout = 100 * time.Millisecond
	m.RelTimeout = 50 * time.Millisecond
}

type runningClient struct {
	c      *Client
	conn   *fakeConn
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	mu     sync.Mutex
	notes  []Snapshot
}

func startClient(t *testing.T, srv *fakeServer, cfg Config) *runningClient {
	t.Helper()
	rc := &runningClient{conn: newFakeConn(srv), done: make(chan error, 1)}
	cfg.Interface = "wan0"
	cfg.DUID = clientDUID
	cfg.IAID = testIAID
	cfg.PrefixLength = 56
	cfg.Logger = testLogger(t)
	cfg.Tune = fastTune
	cfg.Listen = func(context.Context) (Conn, error) { return rc.conn, nil }
	cfg.Notify = func(s Snapshot) {
		rc.mu.Lock()
		rc.notes = append(rc.notes, s)
		rc.mu.Unlock()
	}
	rc.c = NewClient(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	rc.cancel = cancel
	go func() { rc.done <- rc.c.Run(ctx) }()
	t.Cleanup(func() { rc.stop(t) })
	return rc
}

func (rc *runningClient) stop(t *testing.T) {
	rc.once.Do(func() {
		rc.cancel()
		select {
		case err := <-rc.done:
			if err != nil {
				t.Errorf("Run returned %v, want nil on cancel", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	})
}

func TestClientSolicitBoundRenew(t *testing.T) {
	srv := serverAFor(1*time.Second, 2*time.Second, 10*time.Second, 20*time.Second)
	dir := t.TempDir()
	rc := startClient(t, srv, Config{StateDir: dir})

	rc.waitBound(t)
	first := rc.c.Snapshot()
	if p, _ := first.Lease.Chosen(56, time.Now()); p.Prefix != srv.prefix {
		t.Fatalf("bound to %v, want %s", first.Lease, srv.prefix)
	}
	// The lease is saved right after the daemon is told, not before.
	waitFor(t, "the lease saved", 2*time.Second, func() bool {
		saved, err := LoadLease(dir, "wan0", testIAID)
		return err == nil && saved != nil
	})
	waitFor(t, "a Renew at T1 and bound again", 5*time.Second, func() bool {
		s := rc.c.Snapshot()
		return srv.count(dhcpv6.MessageTypeRenew) > 0 && s.State == StateBound && s.Lease.Acquired.After(first.Lease.Acquired)
	})
	want := []dhcpv6.MessageType{dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew}
	if diff := cmp.Diff(want, srv.seen()[:3]); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	rc.mu.Lock()
	var states []State
	for _, n := range rc.notes {
		if len(states) == 0 || states[len(states)-1] != n.State {
			states = append(states, n.State)
		}
	}
	rc.mu.Unlock()
	if diff := cmp.Diff([]State{StateSoliciting, StateRequesting, StateBound, StateRenewing, StateBound}, states[:5]); diff != "" {
		t.Errorf("notified states (-want +got):\n%s", diff)
	}
}

func TestClientRestartRebindsSavedLease(t *testing.T) {
	srv := serverAFor(100*time.Second, 160*time.Second, 200*time.Second, 300*time.Second)
	dir := t.TempDir()
	rc := startClient(t, srv, Config{StateDir: dir})
	rc.waitBound(t)
	rc.stop(t)

	srv2 := &fakeServer{duid: serverA, prefix: srv.prefix, t1: srv.t1, t2: srv.t2, pref: srv.pref, valid: srv.valid}
	rc2 := startClient(t, srv2, Config{StateDir: dir})
	waitFor(t, "bound after restart", 5*time.Second, func() bool {
		s := rc2.c.Snapshot()
		return s.State == StateBound && srv2.count(dhcpv6.MessageTypeRebind) > 0
	})
	if n := srv2.count(dhcpv6.MessageTypeSolicit); n != 0 {
		t.Errorf("restart sent %d Solicits; want Rebind only", n)
	}
}

func TestClientReleaseOnStop(t *testing.T) {
	for _, release := range []bool{false, true} {
		name := "without ReleaseOnStop a stop sends nothing"
		if release {
			name = "with ReleaseOnStop a stop sends one Release"
		}
		t.Run(name, func(t *testing.T) {
			srv := serverAFor(100*time.Second, 160*time.Second, 200*time.Second, 300*time.Second)
			rc := startClient(t, srv, Config{ReleaseOnStop: release})
			rc.waitBound(t)
			rc.stop(t)
			want := 0
			if release {
				want = 1
			}
			if got := srv.count(dhcpv6.MessageTypeRelease); got != want {
				t.Errorf("%d Releases, want %d", got, want)
			}
		})
	}
}

func TestClientStandbySendsNothing(t *testing.T) {
	srv := serverAFor(1*time.Second, 2*time.Second, 3*time.Second, 4*time.Second)
	rc := startClient(t, srv, Config{ReleaseOnStop: true})
	rc.waitBound(t)
	rc.c.SetStandby(true, nil)
	waitFor(t, "standby", 5*time.Second, func() bool { return rc.c.Snapshot().State == StateStandby })
	n := len(srv.seen())
	rc.c.Renew()
	rc.c.Release()
	// Past T1, T2 and the valid lifetime: nothing may go out.
	time.Sleep(1500 * time.Millisecond)
	rc.stop(t)
	if got := srv.seen()[n:]; len(got) != 0 {
		t.Errorf("standby sent %v", got)
	}
}

func TestClientStandbyBeforeRun(t *testing.T) {
	srv := serverAFor(1*time.Second, 2*time.Second, 3*time.Second, 4*time.Second)
	rc := &runningClient{conn: newFakeConn(srv), done: make(chan error, 1)}
	rc.c = NewClient(Config{Interface: "wan0", DUID: clientDUID, IAID: testIAID, PrefixLength: 56, Tune: fastTune,
		Listen: func(context.Context) (Conn, error) { return rc.conn, nil }})
	rc.c.SetStandby(true, nil)
	ctx, cancel := context.WithCancel(context.Background())
	rc.cancel = cancel
	go func() { rc.done <- rc.c.Run(ctx) }()
	t.Cleanup(func() { rc.stop(t) })
	waitFor(t, "standby", 5*time.Second, func() bool { return rc.c.Snapshot().State == StateStandby })
	time.Sleep(200 * time.Millisecond) // longer than SOL_MAX_DELAY and SOL_TIMEOUT here
	if got := srv.seen(); len(got) != 0 {
		t.Fatalf("a backup sent %v", got)
	}
	rc.c.SetStandby(false, nil)
	waitFor(t, "bound after leaving standby", 5*time.Second, func() bool { return rc.c.Snapshot().State == StateBound })
}

func TestClientReopensADeadSocket(t *testing.T) {
	srv := serverAFor(100*time.Second, 160*time.Second, 200*time.Second, 300*time.Second)
	var mu sync.Mutex
	var conns []*fakeConn
	c := NewClient(Config{Interface: "wan0", DUID: clientDUID, IAID: testIAID, PrefixLength: 56, Tune: fastTune,
		Logger: testLogger(t),
		Listen: func(context.Context) (Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			fc := newFakeConn(srv)
			conns = append(conns, fc)
			return fc, nil
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "bound", 5*time.Second, func() bool { return c.Snapshot().State == StateBound })
	mu.Lock()
	conns[0].Close() // as if the device vanished under the socket
	mu.Unlock()
	waitFor(t, "a second socket", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(conns) == 2
	})
	c.Renew()
	waitFor(t, "a Renew through the new socket", 5*time.Second, func() bool {
		return srv.count(dhcpv6.MessageTypeRenew) > 0 && c.Snapshot().State == StateBound
	})
}

func TestClientSavedLeaseExpiresWhileNoSocket(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	saved := &Lease{IAID: testIAID, ServerID: serverA, T1: 5 * time.Second, T2: 8 * time.Second, Acquired: now.Add(-19 * time.Second),
		Prefixes: []Prefix{{Prefix: netip.MustParsePrefix("2001:db8:100::/56"), Preferred: 15 * time.Second, Valid: 20 * time.Second}}}
	if err := SaveLease(dir, "wan0", saved); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var notes []Snapshot
	c := NewClient(Config{Interface: "wan0", DUID: clientDUID, IAID: testIAID, PrefixLength: 56, StateDir: dir,
		Listen: func(ctx context.Context) (Conn, error) { <-ctx.Done(); return nil, ctx.Err() }, // the WAN never comes
		Notify: func(s Snapshot) { mu.Lock(); notes = append(notes, s); mu.Unlock() }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the saved lease published", 2*time.Second, func() bool { return c.Snapshot().Lease != nil })
	waitFor(t, "the saved lease withdrawn at its valid lifetime", 5*time.Second, func() bool { return c.Snapshot().Lease == nil })
	if s := c.Snapshot(); s.State != StateExpired {
		t.Errorf("state %s, want expired", s.State)
	}
	waitFor(t, "the expired lease removed from disk", 2*time.Second, func() bool {
		l, err := LoadLease(dir, "wan0", testIAID)
		return l == nil && err == nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(notes) != 2 || notes[0].Lease == nil || notes[1].Lease != nil {
		t.Errorf("notifications %+v, want the lease then none", notes)
	}
}
