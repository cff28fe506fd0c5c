package dhcp6srv

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// fakeConn is a Conn fed and drained by the test.
type fakeConn struct {
	in     chan datagram
	out    chan datagram
	closed chan struct{}
	once   sync.Once
}

type datagram struct {
	b    []byte
	addr netip.AddrPort
}

var _ Conn = (*fakeConn)(nil)

func newFakeConn() *fakeConn {
	return &fakeConn{in: make(chan datagram, 16), out: make(chan datagram, 16), closed: make(chan struct{})}
}

func (f *fakeConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-f.in:
		return copy(b, d.b), d.addr, nil
	case <-f.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (f *fakeConn) WriteTo(b []byte, to netip.AddrPort) error {
	select {
	case f.out <- datagram{append([]byte(nil), b...), to}:
		return nil
	case <-f.closed:
		return net.ErrClosed
	}
}

func (f *fakeConn) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

// ask sends b from client and waits (bounded) for the reply.
func (f *fakeConn) ask(t *testing.T, b []byte, from netip.Addr) summary {
	t.Helper()
	src := netip.AddrPortFrom(from.WithZone("lan0"), 546)
	f.in <- datagram{b, src}
	select {
	case d := <-f.out:
		if d.addr != src {
			t.Errorf("reply went to %s, want %s", d.addr, src)
		}
		return summarize(t, d.b)
	case <-time.After(5 * time.Second):
		t.Fatal("no reply within 5 s")
		return summary{}
	}
}

// runServer runs s until the test ends or stop is called; stop returns
// Run's error.
func runServer(t *testing.T, s *Server) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				err = errors.New("Run did not return within 5 s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestServerRestartKeepsLeases(t *testing.T) {
	c := &clock{now: t0}
	dir := t.TempDir()
	pdCalls := make(chan []Delegation, 8)
	cfg := testConfig(c)
	cfg.StateDir = dir
	cfg.OnPD = func(d []Delegation) { pdCalls <- d }

	conn := newFakeConn()
	cfg.Listen = func(context.Context) (Conn, error) { return conn, nil }
	s := NewServer(cfg)
	stop := runServer(t, s)
	first := conn.ask(t, msg(t, dhcpv6.MessageTypeRequest, 1, ours(), na(1), pd(2)), hostA)
	select {
	case d := <-pdCalls:
		if len(d) != 1 || d[0].Via != hostA || d[0].Interface != "lan0" {
			t.Errorf("OnPD got %+v, want one delegation via %s on lan0", d, hostA)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnPD not called within 5 s")
	}
	conn.in <- datagram{[]byte{1, 2, 3, 4, 0, 1}, netip.AddrPortFrom(hostB, 546)} // malformed: dropped
	conn.ask(t, msg(t, dhcpv6.MessageTypeInformationRequest, 3), hostB)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := s.Stats()
	if st.Received != 3 || st.Replied != 2 || st.Malformed != 1 || st.Leases != 2 || st.Delegations != 1 {
		t.Errorf("stats %+v; want 3 received, 2 replied, 1 malformed, 2 leases, 1 delegation", st)
	}
	if _, err := os.Stat(LeasePath(dir, "lan0")); err != nil {
		t.Fatalf("lease file not written: %v", err)
	}

	// A new server over the same state directory: the client's Renew finds
	// its binding, and a Solicit from a newcomer does not get its address.
	conn2 := newFakeConn()
	cfg.Listen = func(context.Context) (Conn, error) { return conn2, nil }
	s2 := NewServer(cfg)
	runServer(t, s2)
	addr, prefix := leaseOf(t, first, "NA"), leaseOf(t, first, "PD")
	rn := conn2.ask(t, msg(t, dhcpv6.MessageTypeRenew, 1, ours(), na(1, addr), pd(2, prefix)), hostA)
	if leaseOf(t, rn, "NA") != addr || leaseOf(t, rn, "PD") != prefix || rn.IAs[0].Status != "" {
		t.Errorf("Renew after restart: %+v; want %s and %s extended", rn, addr, prefix)
	}
}

func TestServerUpdateMovesDelegations(t *testing.T) {
	c := &clock{now: t0}
	pdCalls := make(chan []Delegation, 8)
	cfg := testConfig(c)
	cfg.OnPD = func(d []Delegation) { pdCalls <- d }
	conn := newFakeConn()
	cfg.Listen = func(context.Context) (Conn, error) { return conn, nil }
	s := NewServer(cfg)
	runServer(t, s)
	next := func() []Delegation {
		t.Helper()
		select {
		case d := <-pdCalls:
			return d
		case <-time.After(5 * time.Second):
			t.Fatal("OnPD not called within 5 s")
			return nil
		}
	}
	conn.ask(t, msg(t, dhcpv6.MessageTypeRequest, 1, ours(), pd(1)), hostA)
	if d := next(); len(d) != 1 || !pdPoolA.Contains(d[0].Prefix.Addr()) {
		t.Fatalf("OnPD after Request = %+v", d)
	}
	cfg.PDPool = netip.MustParsePrefix("2001:db8:200::/56")
	s.Update(cfg)
	if d := next(); len(d) != 1 || !cfg.PDPool.Contains(d[0].Prefix.Addr()) || d[0].Via != hostA {
		t.Errorf("OnPD after Update = %+v, want the delegation moved into %s", d, cfg.PDPool)
	}
}
