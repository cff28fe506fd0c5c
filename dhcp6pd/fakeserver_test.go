package dhcp6pd

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// fakeServer is an in-memory DHCPv6 server that delegates one prefix. It
// decodes the client's real bytes and answers with real bytes.
// serverAFor is server A delegating 2001:db8:100::/56 with these T1, T2
// and lifetimes.
func serverAFor(t1, t2, pref, valid time.Duration) *fakeServer {
	return &fakeServer{duid: serverA, prefix: netip.MustParsePrefix("2001:db8:100::/56"), t1: t1, t2: t2, pref: pref, valid: valid}
}

type fakeServer struct {
	duid     []byte
	prefix   netip.Prefix
	t1, t2   time.Duration
	pref     time.Duration
	valid    time.Duration
	silent   bool     // answers nothing
	extra    []Prefix // more IA_PREFIXes, after prefix
	mu       sync.Mutex
	received []dhcpv6.MessageType
}

func (s *fakeServer) seen() []dhcpv6.MessageType {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]dhcpv6.MessageType(nil), s.received...)
}

func (s *fakeServer) count(t dhcpv6.MessageType) int {
	n := 0
	for _, x := range s.seen() {
		if x == t {
			n++
		}
	}
	return n
}

func (s *fakeServer) handle(b []byte) []byte {
	msg, err := dhcpv6.MessageFromBytes(b)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	s.received = append(s.received, msg.Type())
	silent := s.silent
	s.mu.Unlock()
	if silent {
		return nil
	}
	var typ dhcpv6.MessageType
	switch msg.Type() {
	case dhcpv6.MessageTypeSolicit:
		typ = dhcpv6.MessageTypeAdvertise
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind, dhcpv6.MessageTypeRelease:
		typ = dhcpv6.MessageTypeReply
	default:
		return nil
	}
	cid := msg.GetOneOption(dhcpv6.OptionClientID)
	if cid == nil {
		return nil
	}
	out := &dhcpv6.Message{MessageType: typ, TransactionID: msg.TransactionID}
	out.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionClientID, OptionData: cid.ToBytes()})
	out.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionServerID, OptionData: s.duid})
	if msg.Type() != dhcpv6.MessageTypeRelease {
		pd := msg.Options.OneIAPD()
		if pd == nil {
			return nil
		}
		reply := &dhcpv6.OptIAPD{IaId: pd.IaId, T1: s.t1, T2: s.t2}
		reply.Options.Add(&dhcpv6.OptIAPrefix{
			PreferredLifetime: s.pref,
			ValidLifetime:     s.valid,
			Prefix:            &net.IPNet{IP: net.IP(s.prefix.Addr().AsSlice()), Mask: net.CIDRMask(s.prefix.Bits(), 128)},
		})
		for _, p := range s.extra {
			reply.Options.Add(&dhcpv6.OptIAPrefix{
				PreferredLifetime: p.Preferred,
				ValidLifetime:     p.Valid,
				Prefix:            &net.IPNet{IP: net.IP(p.Prefix.Addr().AsSlice()), Mask: net.CIDRMask(p.Prefix.Bits(), 128)},
			})
		}
		out.AddOption(reply)
	}
	return out.ToBytes()
}

// fakeConn connects a Client to a fakeServer in memory.
type fakeConn struct {
	srv    *fakeServer
	in     chan []byte
	done   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	sentTo []netip.AddrPort
}

var _ Conn = (*fakeConn)(nil)

func newFakeConn(s *fakeServer) *fakeConn {
	return &fakeConn{srv: s, in: make(chan []byte, 64), done: make(chan struct{})}
}

var errClosed = errors.New("fake conn closed")

func (c *fakeConn) WriteTo(b []byte, to netip.AddrPort) error {
	select {
	case <-c.done:
		return errClosed
	default:
	}
	c.mu.Lock()
	c.sentTo = append(c.sentTo, to)
	c.mu.Unlock()
	if r := c.srv.handle(b); r != nil {
		select {
		case c.in <- r:
		default:
		}
	}
	return nil
}

func (c *fakeConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	select {
	case r := <-c.in:
		return copy(b, r), netip.AddrPortFrom(netip.MustParseAddr("fe80::1"), ServerPort), nil
	case <-c.done:
		return 0, netip.AddrPort{}, errClosed
	}
}

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}
