package ha

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Conn sends and receives VRRP adverts (IPv6 next header 112) on one link.
// Node uses it; tests replace it with an in-memory fake.
type Conn interface {
	// ReadFrom reads one VRRP payload (without the IPv6 header), its source
	// and the hop limit it arrived with.
	ReadFrom(b []byte) (n int, src netip.Addr, hopLimit int, err error)
	// WriteTo sends one VRRP payload to Group with hop limit 255 from
	// LocalAddr.
	WriteTo(b []byte) error
	// LocalAddr is the router's own link-local, the source of its adverts
	// and the address the checksum pseudo-header is computed over.
	LocalAddr() netip.Addr
	Close() error
}

var _ Conn = (*RawConn)(nil)

// ErrNoLinkLocal means the interface has no usable link-local yet; it is
// retryable: a fresh link-local is tentative for a second or two while
// Duplicate Address Detection runs, and the kernel refuses it as a source
// until then.
var ErrNoLinkLocal = errors.New("no usable link-local address")

// RawConn is a raw IPv6 socket for protocol 112 bound to one interface.
type RawConn struct {
	pc    *ipv6.PacketConn
	c     net.PacketConn
	ifi   *net.Interface
	local netip.Addr
}

// Listen opens a raw IPv6 socket for VRRP on ifname: bound to the device,
// joined to ff02::12, sending with hop limit 255 and no multicast loopback,
// and reporting the hop limit of every received packet so that off-link
// packets can be dropped (RFC 5798 §7.1). The source of its adverts is the
// interface's own link-local, never a virtual one: see OwnLinkLocal.
func Listen(ifname string) (Conn, error) {
	src, err := OwnLinkLocal(ifname)
	if err != nil {
		return nil, err
	}
	return ListenFrom(ifname, src)
}

// ListenFrom is Listen with an explicit source address, which must be a
// link-local already on ifname.
func ListenFrom(ifname string, src netip.Addr) (*RawConn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("ha: looking up %s: %w", ifname, err)
	}
	if !src.Is6() || !src.IsLinkLocalUnicast() {
		return nil, fmt.Errorf("ha: source %v on %s is not an IPv6 link-local", src, ifname)
	}
	// Bound to the device, the socket sees only this link's adverts even
	// when another interface runs VRRP with the same VRID.
	lc := boundToDevice(ifname)
	c, err := lc.ListenPacket(context.Background(), "ip6:"+strconv.Itoa(Protocol), "::")
	if err != nil {
		return nil, fmt.Errorf("ha: opening raw socket on %s: %w", ifname, err)
	}
	pc := ipv6.NewPacketConn(c)
	// A router must not hear its own adverts: they would look like a peer
	// with the same priority and address.
	if err := joinLink(pc, ifi, Group, ipv6.FlagHopLimit|ipv6.FlagSrc|ipv6.FlagDst|ipv6.FlagInterface); err != nil {
		c.Close()
		return nil, fmt.Errorf("ha: %w", err)
	}
	return &RawConn{pc: pc, c: c, ifi: ifi, local: src}, nil
}

// boundToDevice opens sockets bound to ifname (SO_BINDTODEVICE).
func boundToDevice(ifname string) net.ListenConfig {
	return net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname)
		})
		return errors.Join(err, serr)
	}}
}

// joinLink readies pc for one link: joined to group on ifi, multicasting
// there with hop limit 255 and without loopback, and reporting flags in
// the control messages of what it reads.
func joinLink(pc *ipv6.PacketConn, ifi *net.Interface, group netip.Addr, flags ipv6.ControlFlags) error {
	for _, s := range []struct {
		what string
		err  func() error
	}{
		{"joining " + group.String(), func() error { return pc.JoinGroup(ifi, &net.IPAddr{IP: group.AsSlice()}) }},
		{"setting the multicast interface", func() error { return pc.SetMulticastInterface(ifi) }},
		{"setting hop limit 255", func() error { return pc.SetMulticastHopLimit(HopLimit) }},
		{"disabling multicast loopback", func() error { return pc.SetMulticastLoopback(false) }},
		{"asking for hop limits", func() error { return pc.SetControlMessage(flags, true) }},
	} {
		if err := s.err(); err != nil {
			return fmt.Errorf("%s on %s: %w", s.what, ifi.Name, err)
		}
	}
	return nil
}

// OwnLinkLocal returns the link-local of ifname that VRRP should send from
// (RFC 5798 §5.1.2.1: the primary address, never a virtual one): one that
// finished DAD and is not in exclude (pass the virtual addresses), preferring
// addresses not added with nodad, because virtual link-locals (ours and
// keepalived's) are always added with nodad.
func OwnLinkLocal(ifname string, exclude ...netip.Addr) (netip.Addr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("ha: looking up %s: %w", ifname, err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("ha: listing addresses of %s: %w", ifname, err)
	}
	var best netip.Addr
	bestNoDAD := true
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || !ip.IsLinkLocalUnicast() || a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 || slices.Contains(exclude, ip) {
			continue
		}
		noDAD := a.Flags&unix.IFA_F_NODAD != 0
		if !best.IsValid() || (bestNoDAD && !noDAD) {
			best, bestNoDAD = ip, noDAD
		}
	}
	if !best.IsValid() {
		return netip.Addr{}, fmt.Errorf("ha: %s: %w", ifname, ErrNoLinkLocal)
	}
	return best, nil
}

// ReadFrom implements Conn.
func (c *RawConn) ReadFrom(b []byte) (int, netip.Addr, int, error) {
	n, cm, src, err := c.pc.ReadFrom(b)
	if err != nil {
		return 0, netip.Addr{}, 0, err
	}
	var from netip.Addr
	if ia, ok := src.(*net.IPAddr); ok {
		from, _ = netip.AddrFromSlice(ia.IP)
	}
	hopLimit := -1 // unknown: dropped as off-link
	if cm != nil {
		hopLimit = cm.HopLimit
	}
	return n, from, hopLimit, nil
}

// WriteTo implements Conn.
func (c *RawConn) WriteTo(b []byte) error {
	cm := &ipv6.ControlMessage{Src: c.local.AsSlice(), IfIndex: c.ifi.Index, HopLimit: HopLimit}
	_, err := c.pc.WriteTo(b, cm, &net.IPAddr{IP: Group.AsSlice(), Zone: c.ifi.Name})
	return err
}

// LocalAddr implements Conn.
func (c *RawConn) LocalAddr() netip.Addr { return c.local }

// Close implements Conn.
func (c *RawConn) Close() error { return c.c.Close() }
