package netif

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddrState is what the kernel made of an address.
type AddrState string

const (
	// StateOK: DAD finished (or was skipped with nodad); the address is usable.
	StateOK AddrState = "ok"
	// StateTentative: DAD is still running (or has not started: the link is
	// down). The kernel refuses to bind a tentative address (EADDRNOTAVAIL).
	StateTentative AddrState = "tentative"
	// StateDADFailed: another node answered for the address (IFA_F_DADFAILED).
	StateDADFailed AddrState = "dadfailed"
	// StateMissing: the address is not on the interface (or the interface or
	// its IPv6 is gone).
	StateMissing AddrState = "missing"
)

// stateOf maps IFA_F_* flags to an AddrState. An optimistic address (RFC
// 4429) is usable but its DAD has not finished, so it counts as tentative.
func stateOf(flags int) AddrState {
	switch {
	case flags&unix.IFA_F_DADFAILED != 0:
		return StateDADFailed
	case flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_OPTIMISTIC) != 0:
		return StateTentative
	default:
		return StateOK
	}
}

// prefixOf converts a netlink address to a netip.Prefix (address plus
// prefix length, not masked).
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	// A non-contiguous mask (Size 0, 0) or one that does not fit the
	// address family is not an address we can name.
	if bits == 0 || bits != a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}

// ipNet converts a netip.Prefix to the *net.IPNet netlink wants, keeping the
// host bits (an address, not a network).
func ipNet(p netip.Prefix) *net.IPNet {
	a := p.Addr()
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}

// LinkLocal returns the best link-local address of ifname and its state:
// a usable one if any, else a tentative one, else a failed one. Without any
// it returns the zero Addr and StateMissing.
func LinkLocal(h Handle, ifname string) (netip.Addr, AddrState, error) {
	link, err := h.LinkByName(ifname)
	if err != nil {
		return netip.Addr{}, StateMissing, fmt.Errorf("looking up %s: %w", ifname, err)
	}
	addrs, err := addrList(h, link)
	if err != nil {
		return netip.Addr{}, StateMissing, err
	}
	rank := map[AddrState]int{StateOK: 3, StateTentative: 2, StateDADFailed: 1}
	best, bestState := netip.Addr{}, StateMissing
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		if !ok || !p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if s := stateOf(a.Flags); rank[s] > rank[bestState] {
			best, bestState = p.Addr(), s
		}
	}
	return best, bestState, nil
}

// waitLinkLocalPoll is how often WaitLinkLocal looks again. DAD takes about
// a second (RFC 4862 §5.1 defaults: 1 transmit, RetransTimer 1 s), so this
// adds little.
const waitLinkLocalPoll = 50 * time.Millisecond

// WaitLinkLocal waits until ifname has a link-local address that passed DAD
// and returns it: sockets bound to a tentative link-local fail with
// EADDRNOTAVAIL. It gives up with ctx (wrapping ctx.Err()). An interface that
// does not exist yet is waited for too.
func WaitLinkLocal(ctx context.Context, h Handle, ifname string) (netip.Addr, error) {
	t := time.NewTicker(waitLinkLocalPoll)
	defer t.Stop()
	var last error
	for {
		a, state, err := LinkLocal(h, ifname)
		if err == nil && state == StateOK {
			return a, nil
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("link-local of %s is %s", ifname, state)
		}
		select {
		case <-ctx.Done():
			return netip.Addr{}, fmt.Errorf("waiting for a link-local on %s: %w", ifname, errors.Join(ctx.Err(), last))
		case <-t.C:
		}
	}
}

// DefaultRouter returns the gateway of the default route that the kernel
// learned from Router Advertisements on ifname (proto ra). ok is false when
// there is none, e.g. accept_ra is not 2 on a forwarding interface.
func DefaultRouter(h Handle, ifname string) (gw netip.Addr, ok bool, err error) {
	link, err := h.LinkByName(ifname)
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("looking up %s: %w", ifname, err)
	}
	routes, err := routeList(h, &netlink.Route{LinkIndex: link.Attrs().Index, Protocol: unix.RTPROT_RA},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("default router on %s: %w", ifname, err)
	}
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		if g, ok := netip.AddrFromSlice(r.Gw); ok {
			return g.Unmap(), true, nil
		}
	}
	return netip.Addr{}, false, nil
}
