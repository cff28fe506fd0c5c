package ha

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"golang.org/x/net/ipv6"
)

// ErrSyncOffLink is returned by SyncConn.Receive for a datagram that did not
// arrive with hop limit 255, so did not come from this link. Like VRRP
// (RFC 5798 §7.1) and NDP, the sender sets 255 and routers decrement it,
// which makes an off-link forgery detectable without any key.
var ErrSyncOffLink = errors.New("ha sync: datagram from off link")

// SyncConn carries lease-sync messages (SealSync envelopes) as UDP
// datagrams to [SyncGroup%iface]:SyncPort on one link.
type SyncConn struct {
	c   net.PacketConn
	pc  *ipv6.PacketConn
	ifi *net.Interface
}

// ListenSync opens the lease-sync socket on ifname: bound to the device and
// to SyncGroup (so unicast to the port is not received), joined to the
// group, sending with hop limit 255 and without loopback.
func ListenSync(ifname string) (*SyncConn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("ha sync: looking up %s: %w", ifname, err)
	}
	lc := boundToDevice(ifname)
	addr := net.JoinHostPort(SyncGroup.String()+"%"+ifname, strconv.Itoa(SyncPort))
	c, err := lc.ListenPacket(context.Background(), "udp6", addr)
	if err != nil {
		return nil, fmt.Errorf("ha sync: listening on %s: %w", addr, err)
	}
	pc := ipv6.NewPacketConn(c)
	if err := joinLink(pc, ifi, SyncGroup, ipv6.FlagHopLimit); err != nil {
		c.Close()
		return nil, fmt.Errorf("ha sync: %w", err)
	}
	return &SyncConn{c: c, pc: pc, ifi: ifi}, nil
}

// Send multicasts one sealed message to the link.
func (c *SyncConn) Send(msg []byte) error {
	dst := &net.UDPAddr{IP: SyncGroup.AsSlice(), Port: SyncPort, Zone: c.ifi.Name}
	if _, err := c.pc.WriteTo(msg, nil, dst); err != nil {
		return fmt.Errorf("ha sync: sending on %s: %w", c.ifi.Name, err)
	}
	return nil
}

// Receive reads one datagram into b. It returns ErrSyncOffLink (and the
// source) for a datagram whose hop limit is not 255; the caller then goes on
// reading. Pass what it returns to OpenSync.
func (c *SyncConn) Receive(b []byte) (n int, src netip.Addr, err error) {
	n, cm, from, err := c.pc.ReadFrom(b)
	if err != nil {
		return 0, netip.Addr{}, err
	}
	if ua, ok := from.(*net.UDPAddr); ok {
		src, _ = netip.AddrFromSlice(ua.IP)
	}
	if cm == nil || cm.HopLimit != HopLimit {
		return 0, src, ErrSyncOffLink
	}
	return n, src, nil
}

// Close closes the socket; a blocked Receive returns net.ErrClosed.
func (c *SyncConn) Close() error { return c.c.Close() }
