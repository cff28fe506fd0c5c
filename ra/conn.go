package ra

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// Conn is the ICMPv6 socket the Advertiser needs. *ndp.Conn satisfies it.
type Conn interface {
	ReadFrom() (ndp.Message, *ipv6.ControlMessage, netip.Addr, error)
	WriteTo(ndp.Message, *ipv6.ControlMessage, netip.Addr) error
	SetReadDeadline(time.Time) error
	Close() error
}

// rawReader is implemented by conns that hand out the received bytes
// (*ndp.Conn.ReadRaw). The Advertiser prefers it: ndp.ParseMessage drops
// the ICMP code, which RFC 4861 §6.1 asks receivers to check.
type rawReader interface {
	ReadRaw(b []byte) (int, *ipv6.ControlMessage, netip.Addr, error)
}

var (
	_ Conn      = (*ndp.Conn)(nil)
	_ rawReader = (*ndp.Conn)(nil)
)

// ErrSourceMissing means the configured source address is not (or not yet
// usable) on the interface: the HA virtual link-local was not added yet, or
// the link-local is still tentative. It is retryable.
var ErrSourceMissing = errors.New("ra: source address not on the interface")

// link is how the Advertiser reaches the kernel: opening the socket on the
// interface, and checking that the source address is still there. Tests
// replace it with a fake, or with one that opens the socket inside a
// network namespace.
type link interface {
	// Listen opens a Conn on iface sending from src (zero = the interface's
	// link-local), with hop limit control messages on and ff02::2 joined.
	// It returns the chosen source and the interface's hardware address.
	Listen(iface string, src netip.Addr) (Conn, netip.Addr, net.HardwareAddr, error)
	// HasAddr reports whether addr is still assigned to iface.
	HasAddr(iface string, addr netip.Addr) (bool, error)
}

// kernelLink is the real link: an ndp.Conn on a raw ICMPv6 socket.
type kernelLink struct{}

var _ link = kernelLink{}

// allRouters is ff02::2, where hosts send Router Solicitations.
var allRouters = netip.MustParseAddr("ff02::2")

func (kernelLink) Listen(iface string, src netip.Addr) (Conn, netip.Addr, net.HardwareAddr, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, netip.Addr{}, nil, fmt.Errorf("ra: looking up %s: %w", iface, err)
	}
	want := ndp.LinkLocal
	if src.IsValid() {
		want = ndp.Addr(src.WithZone("").String())
	}
	// The socket's address carries the interface as its zone. Go resolves
	// a zone name through a cache refreshed at most once a minute, so a
	// LAN deleted and created again under the same name would bind to the
	// deleted ifindex ("no such device") for up to a minute: name the
	// interface by its index instead.
	byIndex := *ifi
	byIndex.Name = strconv.Itoa(ifi.Index)
	c, chosen, err := ndp.Listen(&byIndex, want)
	if err != nil {
		// ndp.Listen fails when the address is not on the interface; bind
		// fails with EADDRNOTAVAIL while it is tentative (DAD running).
		return nil, netip.Addr{}, nil, fmt.Errorf("ra: opening ICMPv6 socket on %s from %s: %w: %w", iface, want, ErrSourceMissing, err)
	}
	// RS validation needs the received hop limit (RFC 4861 §6.1.1).
	if err := c.SetControlMessage(ipv6.FlagHopLimit, true); err != nil {
		c.Close()
		return nil, netip.Addr{}, nil, fmt.Errorf("ra: enabling hop limit control messages on %s: %w", iface, err)
	}
	// Only RS and RA concern us; the kernel drops the rest before they
	// reach the socket.
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterSolicitation)
	f.Accept(ipv6.ICMPTypeRouterAdvertisement)
	if err := c.SetICMPFilter(&f); err != nil {
		c.Close()
		return nil, netip.Addr{}, nil, fmt.Errorf("ra: setting ICMPv6 filter on %s: %w", iface, err)
	}
	if err := c.JoinGroup(allRouters); err != nil {
		c.Close()
		return nil, netip.Addr{}, nil, fmt.Errorf("ra: joining ff02::2 on %s: %w", iface, err)
	}
	return c, chosen.WithZone(ifi.Name), ifi.HardwareAddr, nil
}

func (kernelLink) HasAddr(iface string, addr netip.Addr) (bool, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return false, fmt.Errorf("ra: looking up %s: %w", iface, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return false, fmt.Errorf("ra: listing addresses of %s: %w", iface, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap() == addr.WithZone("") {
			return true, nil
		}
	}
	return false, nil
}
