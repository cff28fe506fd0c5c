package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// wire is an in-memory link for Nodes: what one fakeConn writes, every
// other open fakeConn reads, with hop limit 255 and the writer's address as
// source.
type wire struct {
	mu    sync.Mutex
	conns []*fakeConn
}

type fakeConn struct {
	w      *wire
	local  netip.Addr
	in     chan received
	closed chan struct{}
	once   sync.Once
	// mute drops everything this conn writes: a crashed or cut-off node.
	mute atomic.Bool
	// down fails every write, like a link that is down.
	down atomic.Bool
}

var _ Conn = (*fakeConn)(nil)

func (w *wire) conn(addr string) *fakeConn {
	c := &fakeConn{w: w, local: netip.MustParseAddr(addr), in: make(chan received, 64), closed: make(chan struct{})}
	w.mu.Lock()
	w.conns = append(w.conns, c)
	w.mu.Unlock()
	return c
}

func (c *fakeConn) ReadFrom(b []byte) (int, netip.Addr, int, error) {
	select {
	case p := <-c.in:
		return copy(b, p.b), p.src, p.hopLimit, nil
	case <-c.closed:
		return 0, netip.Addr{}, 0, net.ErrClosed
	}
}

func (c *fakeConn) WriteTo(b []byte) error {
	if c.down.Load() {
		return syscall.ENETDOWN
	}
	if c.mute.Load() {
		return nil
	}
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	for _, o := range c.w.conns {
		if o != c {
			o.inject(received{b: append([]byte(nil), b...), src: c.local, hopLimit: HopLimit})
		}
	}
	return nil
}

// inject delivers p unless the conn is closed or its queue is full.
func (c *fakeConn) inject(p received) {
	select {
	case <-c.closed:
	case c.in <- p:
	default:
	}
}

func (c *fakeConn) LocalAddr() netip.Addr { return c.local }

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// roleLog records OnRole calls with the (fake) time since start.
type roleLog struct {
	mu    sync.Mutex
	start time.Time
	got   []transition
}

func (l *roleLog) onRole(name string) func(Role, string) {
	return func(r Role, reason string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.got = append(l.got, transition{time.Since(l.start), name, r, reason})
	}
}

func cmpDuration(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (l *roleLog) take() []transition {
	l.mu.Lock()
	defer l.mu.Unlock()
	got := l.got
	l.got = nil
	// Nodes run in their own goroutines: order simultaneous changes by name
	// so the log does not depend on scheduling.
	slices.SortStableFunc(got, func(a, b transition) int {
		if c := cmpDuration(a.At, b.At); c != 0 {
			return c
		}
		return strings.Compare(a.Node, b.Node)
	})
	return got
}

type runningNode struct {
	*Node
	conn      *fakeConn
	announced chan time.Duration // when each round of unsolicited NAs went out
	cancel    context.CancelFunc
	done      chan error
}

func startNode(t *testing.T, w *wire, log *roleLog, name, addr string, cfg Config) *runningNode {
	t.Helper()
	c := w.conn(addr)
	if cfg.VRID == 0 {
		cfg.VRID = 51
	}
	if cfg.Addrs == nil {
		cfg.Addrs = []netip.Addr{vll, lanRtr}
	}
	announced := make(chan time.Duration, 100)
	n := NewNode(NodeConfig{
		Interface: "lan0",
		Config:    cfg,
		OnRole:    log.onRole(name),
		Listen:    func() (Conn, error) { return c, nil },
		Announce: func(addrs []netip.Addr) error {
			if !slices.Equal(addrs, cfg.Addrs) {
				t.Errorf("announced %v, want %v", addrs, cfg.Addrs)
			}
			announced <- time.Since(log.start)
			return nil
		},
	})
	ctx, cancel := context.WithCancel(t.Context())
	rn := &runningNode{Node: n, conn: c, announced: announced, cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- n.Run(ctx) }()
	return rn
}

func (rn *runningNode) stop(t *testing.T) {
	t.Helper()
	rn.cancel()
	if err := <-rn.done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// startPair starts a (priority 200) and b (priority 100) on one wire,
// advertising every 100 ms.
func startPair(t *testing.T, preempt bool) (log *roleLog, a, b *runningNode) {
	t.Helper()
	w := &wire{}
	log = &roleLog{start: time.Now()}
	interval := 100 * time.Millisecond
	a = startNode(t, w, log, "a", "fe80::a", Config{Priority: 200, AdvertInterval: interval, Preempt: preempt})
	b = startNode(t, w, log, "b", "fe80::b", Config{Priority: 100, AdvertInterval: interval, Preempt: preempt})
	return log, a, b
}

// settledPair is startPair a second on, when a is master and b its backup,
// with the log of that election taken.
func settledPair(t *testing.T, preempt bool) (log *roleLog, a, b *runningNode) {
	t.Helper()
	log, a, b = startPair(t, preempt)
	time.Sleep(time.Second)
	synctest.Wait()
	log.take()
	return log, a, b
}

func TestNodeElectionAndHandover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, a, b := startPair(t, true)
		defer b.stop(t)

		time.Sleep(2 * time.Second)
		synctest.Wait()
		want := []transition{
			{0, "a", RoleBackup, ReasonStartup},
			{0, "b", RoleBackup, ReasonStartup},
			{ms(321.875), "a", RoleMaster, ReasonMasterDown},
		}
		if diff := cmp.Diff(want, log.take()); diff != "" {
			t.Fatalf("election (-want +got):\n%s", diff)
		}
		sa, sb := a.Status(), b.Status()
		if sa.Role != RoleMaster || sb.Role != RoleBackup || sb.Master != netip.MustParseAddr("fe80::a") {
			t.Errorf("status a=%+v b=%+v, want a master and b following fe80::a", sa, sb)
		}
		// a advertised at 321.875 ms and then every 100 ms up to 1921.875 ms.
		if sa.AdvertsSent != 17 || sb.AdvertsReceived != 17 || sb.AdvertsSent != 0 {
			t.Errorf("adverts: a sent %d, b received %d and sent %d; want 17, 17, 0", sa.AdvertsSent, sb.AdvertsReceived, sb.AdvertsSent)
		}

		// The new master announced its addresses at once and twice more a
		// second apart (RFC 4861 §7.2.6); the backup never did.
		var rounds []time.Duration
		for len(a.announced) > 0 {
			rounds = append(rounds, <-a.announced)
		}
		if diff := cmp.Diff([]time.Duration{ms(321.875), ms(1321.875), ms(2321.875)}[:2], rounds); diff != "" {
			t.Errorf("unsolicited NA rounds by 2 s (-want +got):\n%s", diff)
		}
		if n := len(b.announced); n != 0 {
			t.Errorf("the backup announced %d times", n)
		}

		// A graceful stop sends priority 0: b takes over after its Skew_Time,
		// (256-100)/256 * 100 ms.
		stopAt := time.Since(log.start)
		a.stop(t)
		time.Sleep(time.Second)
		synctest.Wait()
		want = []transition{
			{stopAt, "a", RoleBackup, ReasonShutdown},
			{stopAt + ms(60.9375), "b", RoleMaster, ReasonMasterLeft},
		}
		if diff := cmp.Diff(want, log.take()); diff != "" {
			t.Errorf("handover (-want +got):\n%s", diff)
		}
		if got := <-b.announced; got != stopAt+ms(60.9375) {
			t.Errorf("b announced at %v, want at its takeover", got)
		}
		// The stopped master sends no further rounds.
		if n := len(a.announced); n != 0 {
			t.Errorf("a announced %d more times after stopping", n)
		}
	})
}

func TestNodeCrashAndSplitBrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, a, b := settledPair(t, false)
		defer a.stop(t)
		defer b.stop(t)

		// a falls silent right after its advert at 921.875 ms: b takes over
		// Master_Down_Interval (360.9375 ms) after it.
		a.conn.mute.Store(true)
		time.Sleep(time.Second)
		synctest.Wait()
		want := []transition{{ms(921.875 + 360.9375), "b", RoleMaster, ReasonMasterDown}}
		if diff := cmp.Diff(want, log.take()); diff != "" {
			t.Fatalf("takeover (-want +got):\n%s", diff)
		}

		// a never stopped being master: when its adverts get through again,
		// b (lower priority) steps down at the first one.
		a.conn.mute.Store(false)
		time.Sleep(time.Second)
		synctest.Wait()
		// a's adverts kept their schedule (321.875 ms + n × 100 ms): the
		// first after 2 s goes out at 2021.875 ms.
		want = []transition{{ms(2021.875), "b", RoleBackup, ReasonHigherPeer}}
		if diff := cmp.Diff(want, log.take()); diff != "" {
			t.Errorf("after the link healed (-want +got):\n%s", diff)
		}
		if a.Status().Role != RoleMaster {
			t.Errorf("a is %v, want master", a.Status().Role)
		}
	})
}

func TestNodeValidation(t *testing.T) {
	peer := netip.MustParseAddr("fe80::ff")
	advert := func(mod func(*Advert)) []byte {
		a := Advert{Version: 3, Type: 1, VRID: 51, Priority: 254, MaxAdvertInt: 100 * time.Millisecond, Addrs: []netip.Addr{vll, lanRtr}}
		mod(&a)
		b, err := a.Marshal(peer, Group)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	valid := advert(func(*Advert) {})
	tests := []struct {
		name     string
		p        received
		wantKind string
		wantRole Role
	}{
		{"a higher priority advert with hop limit 64 is dropped as off-link", received{valid, peer, 64}, ErrKindHopLimit, RoleMaster},
		{"an advert without a known hop limit is dropped", received{valid, peer, -1}, ErrKindHopLimit, RoleMaster},
		{"an advert with a bad checksum is dropped", received{valid, netip.MustParseAddr("fe80::fe"), 255}, ErrKindChecksum, RoleMaster},
		{"a VRRPv2 advert is dropped", received{advert(func(a *Advert) { a.Version = 2 }), peer, 255}, ErrKindVersion, RoleMaster},
		{"an advert of type 2 is dropped", received{advert(func(a *Advert) { a.Type = 2 }), peer, 255}, ErrKindType, RoleMaster},
		{"a truncated advert is dropped", received{valid[:20], peer, 255}, ErrKindTruncated, RoleMaster},
		{"an advert for another VRID is ignored", received{advert(func(a *Advert) { a.VRID = 52 }), peer, 255}, ErrKindVRID, RoleMaster},
		{"our own advert coming back is ignored", received{valid, netip.MustParseAddr("fe80::b"), 255}, ErrKindOwn, RoleMaster},
		{"a higher priority advert with other addresses is counted and obeyed", received{advert(func(a *Advert) { a.Addrs = a.Addrs[:1] }), peer, 255}, ErrKindAddrMismatch, RoleBackup},
		{"a higher priority advert with another interval is counted and obeyed", received{advert(func(a *Advert) { a.MaxAdvertInt = time.Second }), peer, 255}, ErrKindIntervalDiff, RoleBackup},
		{"a valid higher priority advert makes the master step down", received{valid, peer, 255}, "", RoleBackup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := &wire{}
				log := &roleLog{start: time.Now()}
				n := startNode(t, w, log, "n", "fe80::b", Config{Priority: 100, AdvertInterval: 100 * time.Millisecond})
				defer n.stop(t)
				time.Sleep(time.Second)
				synctest.Wait()
				n.conn.inject(tt.p)
				synctest.Wait()
				s := n.Status()
				want := map[string]uint64{}
				if tt.wantKind != "" {
					want[tt.wantKind] = 1
				}
				if diff := cmp.Diff(want, s.Errors); diff != "" {
					t.Errorf("errors (-want +got):\n%s", diff)
				}
				if s.Role != tt.wantRole {
					t.Errorf("role %v, want %v", s.Role, tt.wantRole)
				}
			})
		})
	}
}

func TestNodeSetPriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, a, b := settledPair(t, true)
		defer a.stop(t)
		defer b.stop(t)

		// a drops to 50 at 1 s and says so at once; b (preempting) ignores
		// that advert and takes over Master_Down_Interval after a's last
		// priority 200 advert at 921.875 ms; a steps down at b's first advert.
		if err := a.SetPriority(50); err != nil {
			t.Fatal(err)
		}
		if err := a.SetPriority(0); err == nil {
			t.Error("SetPriority(0) was accepted")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		want := []transition{
			{ms(921.875 + 360.9375), "a", RoleBackup, ReasonHigherPeer},
			{ms(921.875 + 360.9375), "b", RoleMaster, ReasonPreempt},
		}
		if diff := cmp.Diff(want, log.take()); diff != "" {
			t.Errorf("transitions (-want +got):\n%s", diff)
		}
		if got := a.Status().Priority; got != 50 {
			t.Errorf("a reports priority %d, want 50", got)
		}
	})
}

func TestNodeWaitsForLinkLocal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &wire{}
		c := w.conn("fe80::b")
		tries := 0
		n := NewNode(NodeConfig{
			Interface: "lan0",
			Config:    Config{VRID: 51, Priority: 100, AdvertInterval: time.Second, Addrs: []netip.Addr{vll}},
			Listen: func() (Conn, error) {
				if tries++; tries < 3 {
					return nil, fmt.Errorf("test: %w", ErrNoLinkLocal)
				}
				return c, nil
			},
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- n.Run(ctx) }()
		select {
		case <-n.Ready():
		case err := <-done:
			t.Fatalf("Run returned %v before it was ready", err)
		}
		if got := time.Since(start); got != 2*listenRetry {
			t.Errorf("ready after %v, want two retries (%v)", got, 2*listenRetry)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Run("an invalid config ends Run", func(t *testing.T) {
		n := NewNode(NodeConfig{Config: Config{VRID: 51, Priority: 100}})
		if err := n.Run(t.Context()); err == nil {
			t.Error("Run with a zero advert interval returned nil, want an error")
		}
	})
	t.Run("a permanent listen error ends Run", func(t *testing.T) {
		n := NewNode(NodeConfig{
			Config: Config{VRID: 51, Priority: 100, AdvertInterval: time.Second, Addrs: []netip.Addr{vll}},
			Listen: func() (Conn, error) { return nil, os.ErrPermission },
		})
		if err := n.Run(t.Context()); !errors.Is(err, os.ErrPermission) {
			t.Errorf("Run = %v, want a permission error", err)
		}
	})
}

// countingHandler counts log records by message.
type countingHandler struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs[r.Message]++
	return nil
}

func (h *countingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}

func TestNodeWriteFailuresAreCountedAndLoggedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &wire{}
		c := w.conn("fe80::a")
		c.down.Store(true)
		h := &countingHandler{msgs: map[string]int{}}
		n := NewNode(NodeConfig{
			Interface: "lan0",
			Config:    Config{VRID: 51, Priority: 255, AdvertInterval: 100 * time.Millisecond, Addrs: []netip.Addr{vll}},
			Logger:    slog.New(h),
			Listen:    func() (Conn, error) { return c, nil },
			Announce:  func([]netip.Addr) error { return nil },
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		// The owner is master at once and advertises at 0, 100, ... 950 ms.
		time.Sleep(950 * time.Millisecond)
		synctest.Wait()
		if got := n.Status().Errors[ErrKindWrite]; got != 10 {
			t.Errorf("%d write errors counted, want 10", got)
		}
		if got := h.count("vrrp advert not sent"); got != 1 {
			t.Errorf("the failure was logged %d times, want once", got)
		}
		c.down.Store(false)
		time.Sleep(time.Second)
		synctest.Wait()
		if got := h.count("vrrp adverts sent again"); got != 1 {
			t.Errorf("the recovery was logged %d times, want once", got)
		}
		if got := n.Status().AdvertsSent; got != 10 {
			t.Errorf("%d adverts sent after recovery, want 10", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestStatusJSON(t *testing.T) {
	s := NewNode(NodeConfig{Config: Config{VRID: 51, Priority: 150, AdvertInterval: 100 * time.Millisecond}}).Status()
	s.Master = netip.MustParseAddr("fe80::a")
	s.Errors[ErrKindChecksum] = 2
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"role":"initialize","vrid":51,"priority":150,"master":"fe80::a","master_advert_interval_ns":100000000,"adverts_sent":0,"adverts_received":0,"errors":{"checksum":2}}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}
