package netif

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtocol marks the routes v6edge owns (rtm_protocol). 0x76 ('v') is
// not among iproute2's rt_protos (0-18 and 42, 99, 186-192) nor the kernel's
// RTPROT_* values, so `ip -6 route show proto 118` lists exactly ours, and
// a restarted v6edge finds what an earlier run left behind.
const RouteProtocol netlink.RouteProtocol = 0x76

// Route is one route v6edge wants. Type is unix.RTN_UNICAST (the zero
// value means unicast) or unix.RTN_UNREACHABLE; Table 0 is the main table.
type Route struct {
	Dst       netip.Prefix
	Gw        netip.Addr
	Interface string
	Table     int
	Type      int
}

// Routes keeps the routes v6edge owns in line with what is wanted. Every Set
// call is declarative: it replaces the wanted routes of its kind and removes
// owned routes of that kind that are no longer wanted.
type Routes struct {
	h   Handle
	log *slog.Logger

	mu          sync.Mutex
	unreachable []Route // wanted via SetUnreachable
	routes      []Route // wanted via SetRoutes
}

// NewRoutes returns a Routes working through h.
func NewRoutes(h Handle, log *slog.Logger) *Routes {
	return &Routes{h: h, log: log}
}

// SetUnreachable makes each prefix an unreachable route in the main table
// (RFC 7084 WPD-5: a CE router must not forward traffic for unused parts of
// its delegated prefix upstream, where the ISP's route would send it back in
// a loop; the kernel answers it with ICMPv6 destination unreachable). More
// specific routes (the LANs' /64s) still win.
func (r *Routes) SetUnreachable(prefixes []netip.Prefix) error {
	want := make([]Route, 0, len(prefixes))
	for _, p := range prefixes {
		want = append(want, Route{Dst: p.Masked(), Type: unix.RTN_UNREACHABLE})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.converge(&r.unreachable, want, func(rt netlink.Route) bool { return rt.Type == unix.RTN_UNREACHABLE })
}

// SetRoutes sets the other owned routes (e.g. a downstream delegated prefix
// via the requesting router's link-local).
func (r *Routes) SetRoutes(routes []Route) error {
	want := slices.Clone(routes)
	for i := range want {
		want[i].Dst = want[i].Dst.Masked()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.routes
	return r.converge(&r.routes, want, func(rt netlink.Route) bool {
		if rt.Type != unix.RTN_UNREACHABLE {
			// Only the main table and tables this group used: the uplink
			// policy's tables share the protocol number but are
			// internal/uplink's (deleting their default routes sent every
			// flow by the main table, seen in the multihoming lab).
			same := func(p Route) bool { return tableOf(p.Table) == tableOf(rt.Table) }
			return tableOf(rt.Table) == unix.RT_TABLE_MAIN || slices.ContainsFunc(prev, same) || slices.ContainsFunc(want, same)
		}
		// Unreachable routes belong to SetUnreachable unless this group
		// asked for them earlier.
		return slices.ContainsFunc(prev, func(p Route) bool { return routeKeyOf(p) == routeKeyNL(rt) })
	})
}

// routeKey identifies an IPv6 route for ownership: table, destination and
// kind (the metric stays the kernel's default).
type routeKey struct {
	table int
	dst   netip.Prefix
}

func tableOf(t int) int {
	if t == 0 {
		return unix.RT_TABLE_MAIN
	}
	return t
}

func routeKeyOf(r Route) routeKey { return routeKey{tableOf(r.Table), r.Dst.Masked()} }

func routeKeyNL(r netlink.Route) routeKey {
	p, ok := prefixOf(r.Dst)
	if !ok {
		p = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	return routeKey{tableOf(r.Table), p.Masked()}
}

// converge installs want (RouteReplace is idempotent) and deletes the owned
// routes that belong to this group and that neither group wants any more.
func (r *Routes) converge(group *[]Route, want []Route, belongs func(netlink.Route) bool) error {
	var errs []error
	var installed []Route
	for _, w := range want {
		nr, err := r.netlinkRoute(w)
		if err == nil {
			err = r.h.RouteReplace(nr)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("installing route %s: %w", describeRoute(w), err))
			continue
		}
		installed = append(installed, w)
	}
	*group = want

	wanted := map[routeKey]bool{}
	for _, w := range r.unreachable {
		wanted[routeKeyOf(w)] = true
	}
	for _, w := range r.routes {
		wanted[routeKeyOf(w)] = true
	}
	existing, err := routeList(r.h, &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_UNSPEC},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, rt := range existing {
		if rt.Protocol != RouteProtocol || wanted[routeKeyNL(rt)] || !belongs(rt) {
			continue
		}
		if err := r.h.RouteDel(&rt); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("removing route %s: %w", rt.Dst, err))
			continue
		}
		r.log.Info("removed a route that is no longer wanted", "prefix", rt.Dst.String(), "table", rt.Table)
	}
	if len(installed) > 0 {
		r.log.Debug("routes in place", "count", len(installed))
	}
	return errors.Join(errs...)
}

func (r *Routes) netlinkRoute(w Route) (*netlink.Route, error) {
	if !w.Dst.IsValid() || !w.Dst.Addr().Is6() {
		return nil, fmt.Errorf("destination %v is not an IPv6 prefix", w.Dst)
	}
	nr := &netlink.Route{
		Family:   netlink.FAMILY_V6,
		Dst:      ipNet(w.Dst.Masked()),
		Table:    tableOf(w.Table),
		Protocol: RouteProtocol,
		Type:     cmp.Or(w.Type, unix.RTN_UNICAST),
	}
	if nr.Type == unix.RTN_UNREACHABLE {
		return nr, nil
	}
	if w.Interface != "" {
		link, err := r.h.LinkByName(w.Interface)
		if err != nil {
			return nil, fmt.Errorf("looking up %s: %w", w.Interface, err)
		}
		nr.LinkIndex = link.Attrs().Index
	}
	if w.Gw.IsValid() {
		nr.Gw = w.Gw.AsSlice()
	}
	if nr.LinkIndex == 0 && nr.Gw == nil {
		return nil, errors.New("a unicast route needs an interface or a gateway")
	}
	return nr, nil
}

func describeRoute(w Route) string {
	s := w.Dst.String()
	if w.Type == unix.RTN_UNREACHABLE {
		s = "unreachable " + s
	}
	if w.Gw.IsValid() {
		s += " via " + w.Gw.String()
	}
	if w.Interface != "" {
		s += " dev " + w.Interface
	}
	if w.Table != 0 {
		s += fmt.Sprintf(" table %d", w.Table)
	}
	return s
}
