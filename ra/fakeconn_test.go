package ra

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// fakeWire is a link with one host on it. Every fakeConn the fakeLink opens
// reads from and writes to the same wire, so reopening the socket (HA
// role change, source change) is transparent to the test.
type fakeWire struct {
	in  chan packet // host → router
	out chan sent   // router → host
}

// sent is one RA the router wrote.
type sent struct {
	b   []byte
	dst netip.Addr
	at  time.Time
}

func newFakeWire() *fakeWire {
	return &fakeWire{in: make(chan packet, 16), out: make(chan sent, 1024)}
}

// drain discards everything the router has sent so far.
func (w *fakeWire) drain() {
	for {
		select {
		case <-w.out:
		default:
			return
		}
	}
}

// fakeConn is a Conn on a fakeWire. It offers ReadRaw like *ndp.Conn, so
// the Advertiser takes the same receive path as with a real socket.
type fakeConn struct {
	wire   *fakeWire
	closed chan struct{}
	once   sync.Once
}

var (
	_ Conn      = (*fakeConn)(nil)
	_ rawReader = (*fakeConn)(nil)
)

func (c *fakeConn) ReadRaw(b []byte) (int, *ipv6.ControlMessage, netip.Addr, error) {
	select {
	case p := <-c.wire.in:
		return copy(b, p.b), p.cm, p.src, nil
	case <-c.closed:
		return 0, nil, netip.Addr{}, net.ErrClosed
	}
}

func (c *fakeConn) ReadFrom() (ndp.Message, *ipv6.ControlMessage, netip.Addr, error) {
	b := make([]byte, 1500)
	for {
		n, cm, src, err := c.ReadRaw(b)
		if err != nil {
			return nil, nil, netip.Addr{}, err
		}
		if m, err := ndp.ParseMessage(b[:n]); err == nil {
			return m, cm, src, nil
		}
	}
}

func (c *fakeConn) WriteTo(m ndp.Message, _ *ipv6.ControlMessage, dst netip.Addr) error {
	b, err := ndp.MarshalMessage(m)
	if err != nil {
		return err
	}
	select {
	case <-c.closed:
		return net.ErrClosed
	default:
	}
	select {
	case c.wire.out <- sent{b: b, dst: dst, at: time.Now()}:
	default: // a full wire drops, like a real one
	}
	return nil
}

func (c *fakeConn) SetReadDeadline(time.Time) error { return nil }

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// fakeLink opens fakeConns on one wire; the source address is "on the
// interface" while present is true.
type fakeLink struct {
	wire *fakeWire
	src  netip.Addr
	mac  net.HardwareAddr

	mu      sync.Mutex
	missing bool
}

var _ link = (*fakeLink)(nil)

func (l *fakeLink) Listen(iface string, src netip.Addr) (Conn, netip.Addr, net.HardwareAddr, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.missing {
		return nil, netip.Addr{}, nil, ErrSourceMissing
	}
	if !src.IsValid() {
		src = l.src
	}
	return &fakeConn{wire: l.wire, closed: make(chan struct{})}, src, l.mac, nil
}

func (l *fakeLink) HasAddr(iface string, addr netip.Addr) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.missing, nil
}

func (l *fakeLink) setMissing(m bool) {
	l.mu.Lock()
	l.missing = m
	l.mu.Unlock()
}
