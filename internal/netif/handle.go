package netif

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// Handle is the subset of *netlink.Handle that netif uses. A *netlink.Handle
// from netlink.NewHandle (the caller's namespace) or netlink.NewHandleAt (a
// test namespace) satisfies it; FakeHandle is the in-memory stand-in.
type Handle interface {
	LinkByName(name string) (netlink.Link, error)
	LinkByIndex(index int) (netlink.Link, error)
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	AddrAdd(link netlink.Link, addr *netlink.Addr) error
	AddrReplace(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error
	RouteReplace(route *netlink.Route) error
	RouteDel(route *netlink.Route) error
	RouteListFiltered(family int, filter *netlink.Route, filterMask uint64) ([]netlink.Route, error)
}

var _ Handle = (*netlink.Handle)(nil)

// dumpAttempts bounds how often a netlink dump that the kernel interrupted
// (the table changed while it was being read) is repeated.
const dumpAttempts = 5

// addrList lists the IPv6 addresses of link, repeating a dump that the
// kernel marked as interrupted (netlink.ErrDumpInterrupted: its result may be
// inconsistent).
func addrList(h Handle, link netlink.Link) ([]netlink.Addr, error) {
	var err error
	for range dumpAttempts {
		var addrs []netlink.Addr
		addrs, err = h.AddrList(link, netlink.FAMILY_V6)
		if err == nil {
			return addrs, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, fmt.Errorf("listing addresses of %s: %w", link.Attrs().Name, err)
}

// routeList is RouteListFiltered for IPv6 with the same repetition as addrList.
func routeList(h Handle, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	var err error
	for range dumpAttempts {
		var routes []netlink.Route
		routes, err = h.RouteListFiltered(netlink.FAMILY_V6, filter, mask)
		if err == nil {
			return routes, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, fmt.Errorf("listing routes: %w", err)
}

// isLinkNotFound tells whether err says that the link does not exist (yet):
// a retryable condition for the Tracker, not a failure.
func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}
