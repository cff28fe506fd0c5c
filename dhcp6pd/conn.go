package dhcp6pd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Ports of RFC 8415 §7.2.
const (
	ClientPort = 546
	ServerPort = 547
)

// Conn is the datagram socket the Client talks through. Close must make a
// blocked ReadFrom return.
type Conn interface {
	WriteTo(b []byte, to netip.AddrPort) error
	ReadFrom(b []byte) (int, netip.AddrPort, error)
	Close() error
}

var _ Conn = (*udpConn)(nil)

// ErrNoLinkLocal means the interface has no usable (non-tentative)
// link-local address yet: retry later.
var ErrNoLinkLocal = errors.New("no non-tentative link-local address")

// udpConn is a UDP socket bound to [link-local%ifname]:546.
type udpConn struct {
	c      *net.UDPConn
	ifname string
	zone   string // the interface's index, for link-local destinations
}

// ListenUDP opens the client socket on ifname: bound to the interface's
// link-local address, port 546, and to the device itself (SO_BINDTODEVICE),
// since RFC 8415 §13.1 wants link-local sources and replies come back to
// that address. A link-local still doing DAD is "tentative" and bind fails
// with EADDRNOTAVAIL; ListenUDP polls with backoff until it is usable or
// ctx ends.
func ListenUDP(ctx context.Context, ifname string) (Conn, error) {
	backoff := 50 * time.Millisecond
	for {
		c, err := listenOnce(ifname)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, ErrNoLinkLocal) && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return nil, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("waiting for a link-local address on %s: %w (last: %w)", ifname, ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// ListenUDPFrom is ListenUDP bound to one given link-local address, waiting
// (polling every 50 ms) until it is on ifname. An HA master sources its
// DHCPv6 messages from the link-local of the shared WAN MAC, so that the
// upstream's replies and its route for the delegated prefix follow the
// MAC to whichever node holds it; a backup's client waits here, silent,
// until it becomes master and the address appears.
func ListenUDPFrom(ctx context.Context, ifname string, ll netip.Addr) (Conn, error) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		c, err := bindUDP(ifname, ll)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s on %s: %w", ll, ifname, ctx.Err())
		case <-t.C:
		}
	}
}

func listenOnce(ifname string) (*udpConn, error) {
	ll, err := linkLocal(ifname)
	if err != nil {
		return nil, err
	}
	return bindUDP(ifname, ll)
}

func bindUDP(ifname string, ll netip.Addr) (*udpConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname)
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	// The interface goes into the address as its index, not its name: Go
	// resolves zone names through a cache refreshed at most once a minute,
	// so a WAN deleted and created again under the same name would bind and
	// send to the deleted ifindex.
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("finding interface %s: %w", ifname, err)
	}
	zone := strconv.Itoa(ifi.Index)
	addr := netip.AddrPortFrom(ll.WithZone(zone), ClientPort)
	pc, err := lc.ListenPacket(context.Background(), "udp6", addr.String())
	if err != nil {
		return nil, fmt.Errorf("binding %s: %w", addr, err)
	}
	return &udpConn{c: pc.(*net.UDPConn), ifname: ifname, zone: zone}, nil
}

// linkLocal returns the first non-tentative, non-DAD-failed link-local
// address of ifname.
func linkLocal(ifname string) (netip.Addr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("finding interface %s: %w", ifname, err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("listing addresses of %s: %w", ifname, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || !ip.IsLinkLocalUnicast() {
			continue
		}
		if a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			continue
		}
		return ip, nil
	}
	return netip.Addr{}, fmt.Errorf("%s: %w", ifname, ErrNoLinkLocal)
}

func (u *udpConn) WriteTo(b []byte, to netip.AddrPort) error {
	a := to.Addr()
	if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() {
		// The socket is bound to one interface: that is the zone, by index.
		to = netip.AddrPortFrom(a.WithZone(u.zone), to.Port())
	}
	_, err := u.c.WriteToUDPAddrPort(b, to)
	return err
}

func (u *udpConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	n, from, err := u.c.ReadFromUDPAddrPort(b)
	return n, from, err
}

func (u *udpConn) Close() error { return u.c.Close() }
