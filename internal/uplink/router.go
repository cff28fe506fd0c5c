package uplink

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/v6edge/v6edge/internal/netif"
)

// Handle is the part of *netlink.Handle that Router uses.
type Handle interface {
	LinkByName(name string) (netlink.Link, error)
	RouteReplace(route *netlink.Route) error
	RouteDel(route *netlink.Route) error
	RouteListFiltered(family int, filter *netlink.Route, filterMask uint64) ([]netlink.Route, error)
	RuleAdd(rule *netlink.Rule) error
	RuleDel(rule *netlink.Rule) error
	RuleList(family int) ([]netlink.Rule, error)
}

var _ Handle = (*netlink.Handle)(nil)

// Router makes the kernel's IPv6 policy rules and uplink tables match a Policy.
//
// It owns the rules with priorities PriorityFirst to PriorityLast, and the routes with
// protocol netif.RouteProtocol in any table but main, local and default. Everything
// else is left alone. It reads the kernel's state on every Set, so it repairs what
// something else changed and cleans up after an earlier run.
type Router struct {
	h     Handle
	log   *slog.Logger
	marks *Marks
}

// NewRouter returns a Router working through h.
func NewRouter(h Handle, log *slog.Logger) *Router {
	return &Router{h: h, log: log}
}

// UseMarks makes Set keep the marks table too (see Marks), before the rules, so that the
// packet marks the fwmark rules look for exist when they take effect.
func (r *Router) UseMarks(m *Marks) { r.marks = m }

// Set makes the kernel match p. It is idempotent: with the kernel already matching, it only
// reads. New rules are added before stale ones are deleted; a rule replaced at the same
// priority (the preferred uplink changing) stays in force until its successor is there,
// since the kernel puts an added rule after the existing ones of equal priority. Errors of
// the parts are joined; the other parts are still applied.
func (r *Router) Set(p Policy) error {
	var errs []error
	if err := p.Check(); err != nil {
		errs = append(errs, err)
	}
	if r.marks != nil {
		if err := r.marks.Set(p); err != nil {
			errs = append(errs, err)
		}
	}
	rules, routes := Render(p)
	// Routes first: a rule pointing at an empty table would let lookups fall through.
	errs = append(errs, r.setRoutes(routes))
	errs = append(errs, r.setRules(rules))
	return errors.Join(errs...)
}

// ruleKey is what identifies a rule of ours.
type ruleKey struct {
	Priority, Table   int
	Mark              uint32
	From              netip.Prefix
	SuppressPrefixlen int
}

func keyOfSpec(s RuleSpec) ruleKey {
	return ruleKey(s)
}

func keyOfRule(nr netlink.Rule) ruleKey {
	k := ruleKey{Priority: nr.Priority, Table: nr.Table, Mark: nr.Mark, SuppressPrefixlen: nr.SuppressPrefixlen}
	if nr.Src != nil {
		if a, ok := netip.AddrFromSlice(nr.Src.IP); ok {
			ones, _ := nr.Src.Mask.Size()
			k.From = netip.PrefixFrom(a.Unmap(), ones)
		}
	}
	return k
}

func ours(nr netlink.Rule) bool {
	return nr.Priority >= PriorityFirst && nr.Priority <= PriorityLast
}

func (r *Router) setRules(want []RuleSpec) error {
	have, err := r.h.RuleList(unix.AF_INET6)
	if err != nil {
		return fmt.Errorf("uplink: listing IPv6 rules: %w", err)
	}
	haveKeys := map[ruleKey]bool{}
	for _, nr := range have {
		if ours(nr) {
			haveKeys[keyOfRule(nr)] = true
		}
	}
	wantKeys := map[ruleKey]bool{}
	var errs []error
	for _, s := range want {
		k := keyOfSpec(s)
		wantKeys[k] = true
		if haveKeys[k] {
			continue
		}
		if err := r.h.RuleAdd(netlinkRule(s)); err != nil {
			errs = append(errs, fmt.Errorf("uplink: adding rule %q: %w", s.String(), err))
			continue
		}
		r.log.Info("policy rule added", "rule", s.String())
	}
	for _, nr := range have {
		if !ours(nr) || wantKeys[keyOfRule(nr)] {
			continue
		}
		nr.Family = unix.AF_INET6
		if err := r.h.RuleDel(&nr); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("uplink: deleting rule %v: %w", nr, err))
			continue
		}
		r.log.Info("policy rule removed", "rule", nr.String())
	}
	return errors.Join(errs...)
}

func netlinkRule(s RuleSpec) *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = unix.AF_INET6
	nr.Priority = s.Priority
	nr.Table = s.Table
	nr.Mark = s.Mark
	nr.SuppressPrefixlen = s.SuppressPrefixlen
	nr.Protocol = uint8(netif.RouteProtocol)
	if s.From.IsValid() {
		nr.Src = &net.IPNet{IP: s.From.Addr().AsSlice(), Mask: net.CIDRMask(s.From.Bits(), 128)}
	}
	return nr
}

// ownedTable reports whether routes of ours in table t belong to Router (netif owns those
// in main).
func ownedTable(t int) bool {
	return t != unix.RT_TABLE_MAIN && t != unix.RT_TABLE_LOCAL && t != unix.RT_TABLE_DEFAULT && t != unix.RT_TABLE_UNSPEC
}

func (r *Router) setRoutes(want []RouteSpec) error {
	have, err := r.h.RouteListFiltered(unix.AF_INET6,
		&netlink.Route{Protocol: netif.RouteProtocol, Table: unix.RT_TABLE_UNSPEC},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("uplink: listing routes: %w", err)
	}
	have = slices.DeleteFunc(have, func(rt netlink.Route) bool { return !ownedTable(rt.Table) })
	var errs []error
	wanted := map[int]bool{} // tables that get a default route
	for _, s := range want {
		link, err := r.h.LinkByName(s.Interface)
		if err != nil {
			errs = append(errs, fmt.Errorf("uplink: default route of table %d: %w", s.Table, err))
			continue
		}
		wanted[s.Table] = true
		rt := netlink.Route{
			Family:    unix.AF_INET6,
			Table:     s.Table,
			Dst:       &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
			Gw:        s.Gateway.AsSlice(),
			LinkIndex: link.Attrs().Index,
			Protocol:  netif.RouteProtocol,
		}
		if slices.ContainsFunc(have, func(h netlink.Route) bool { return sameRoute(h, rt) }) {
			continue
		}
		if err := r.h.RouteReplace(&rt); err != nil {
			if errors.Is(err, unix.ENETDOWN) {
				// The kernel refuses routes through a link that is down, and removes
				// them when it goes down. Not an error: the uplink is unhealthy now,
				// and the Set that follows the link coming back adds the route.
				r.log.Debug("uplink link down, route deferred", "iface", s.Interface, "table", s.Table)
				continue
			}
			errs = append(errs, fmt.Errorf("uplink: default route via %v dev %s in table %d: %w",
				s.Gateway, s.Interface, s.Table, err))
			continue
		}
		r.log.Info("uplink route set", "iface", s.Interface, "table", s.Table, "gateway", s.Gateway)
	}
	for _, h := range have {
		if wanted[h.Table] && isDefault(h) {
			// Either it is the wanted route, or RouteReplace has just overwritten it
			// (the kernel keys a route by table, destination and metric).
			continue
		}
		if err := r.h.RouteDel(&h); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("uplink: deleting route %v: %w", h, err))
			continue
		}
		r.log.Info("uplink route removed", "table", h.Table, "gateway", addrOf(h.Gw))
	}
	return errors.Join(errs...)
}

func isDefault(rt netlink.Route) bool {
	if rt.Dst == nil {
		return true
	}
	ones, _ := rt.Dst.Mask.Size()
	return ones == 0
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

func sameRoute(have, want netlink.Route) bool {
	return have.Table == want.Table && isDefault(have) && addrOf(have.Gw) == addrOf(want.Gw) &&
		have.LinkIndex == want.LinkIndex
}
