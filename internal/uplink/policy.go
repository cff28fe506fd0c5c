package uplink

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/v6edge/v6edge/internal/netif"
)

// Rule priorities: v6edge owns every IPv6 policy rule from PriorityFirst to PriorityLast and
// nothing else. They sit before the kernel's "from all lookup main" (32766) and after
// anything an operator usually adds below 30000.
const (
	PriorityFirst = 30000
	// PrioritySuppress: "lookup main suppress_prefixlength 0". Anything main routes more
	// specifically than by a default route (the LANs, the router itself, the WPD-5
	// unreachable routes, on-link WAN prefixes) keeps using main; only what main would
	// send by a default route goes on to the uplink rules.
	PrioritySuppress = 30000
	// PriorityMark + i: "fwmark <mark of uplink i> lookup <table of uplink i>". Packets of
	// a flow that an uplink carries leave by that uplink: replies to inbound flows, and
	// flows that were opened by it before a failover moved new flows elsewhere.
	PriorityMark = 30010
	// PriorityPreferred: "from <internal prefix> lookup <table of the preferred uplink>".
	// New flows from the LANs.
	PriorityPreferred = 30090
	PriorityLast      = 30099
)

// MaxUplinks is how many uplinks fit in the fwmark rule range.
const MaxUplinks = PriorityPreferred - PriorityMark

// tableMain is RT_TABLE_MAIN.
const tableMain = 254

// Uplink is one uplink as policy routing sees it.
type Uplink struct {
	Interface string
	// Table is the routing table that holds this uplink's default route, e.g. 1000+index.
	// It must be above 255 and unique.
	Table int
	// Mark is the conntrack mark of this uplink's flows (the values nat sets on inbound
	// flows, internal/plan: 0x76650000+index+1). Zero: no fwmark rule.
	Mark uint32
	// Gateway is the default router this WAN learned from Router Advertisements
	// (link-local, from the main table). Invalid: unknown, the table gets no route and
	// the uplink cannot be preferred.
	Gateway netip.Addr
	// Healthy and Preferred come from the Health machines and the configured priorities.
	Healthy   bool
	Preferred bool
}

// Policy is the desired policy routing for every uplink. Uplinks are listed in order of
// preference (the configured priority).
type Policy struct {
	Uplinks []Uplink
	// LANs are the LAN interfaces: packets arriving on them get the conntrack mark of
	// their flow as packet mark (Marks).
	LANs []string
	// Internal is the internal (ULA) prefix the LAN hosts use.
	Internal netip.Prefix
}

// RuleSpec is one IPv6 policy rule v6edge wants.
type RuleSpec struct {
	Priority int
	// Table to look up (tableMain for the suppress rule).
	Table int
	// Mark matches the packet mark (fwmark) when non-zero.
	Mark uint32
	// From matches the source prefix when valid.
	From netip.Prefix
	// SuppressPrefixlen is -1 when unset.
	SuppressPrefixlen int
}

// String prints the rule as `ip -6 rule` does.
func (r RuleSpec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d:\tfrom ", r.Priority)
	if r.From.IsValid() {
		b.WriteString(r.From.String())
	} else {
		b.WriteString("all")
	}
	if r.Mark != 0 {
		fmt.Fprintf(&b, " fwmark %#x", r.Mark)
	}
	if r.Table == tableMain {
		b.WriteString(" lookup main")
	} else {
		fmt.Fprintf(&b, " lookup %d", r.Table)
	}
	if r.SuppressPrefixlen >= 0 {
		fmt.Fprintf(&b, " suppress_prefixlength %d", r.SuppressPrefixlen)
	}
	fmt.Fprintf(&b, " proto %d", netif.RouteProtocol)
	return b.String()
}

// RouteSpec is one route v6edge wants in an uplink's table: the default route via the
// uplink's gateway.
type RouteSpec struct {
	Table     int
	Gateway   netip.Addr
	Interface string
}

// String prints the route as `ip -6 route show table N` does.
func (r RouteSpec) String() string {
	return fmt.Sprintf("default via %v dev %s proto %d metric 1024 pref medium", r.Gateway, r.Interface, netif.RouteProtocol)
}

// Check reports what makes a Policy unusable as a whole or in part. Render leaves the
// uplinks that fail out.
func (p Policy) Check() error {
	var errs []string
	if len(p.Uplinks) > MaxUplinks {
		errs = append(errs, fmt.Sprintf("%d uplinks, at most %d fit the rule priorities", len(p.Uplinks), MaxUplinks))
	}
	for i := range p.Uplinks {
		if err := p.checkUplink(i); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if p.Internal.IsValid() && (!p.Internal.Addr().Is6() || p.Internal.Masked() != p.Internal) {
		errs = append(errs, fmt.Sprintf("internal prefix %v is not a masked IPv6 prefix", p.Internal))
	}
	if len(errs) > 0 {
		return fmt.Errorf("uplink: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (p Policy) checkUplink(i int) error {
	u := p.Uplinks[i]
	if i >= MaxUplinks {
		return fmt.Errorf("uplink %s: beyond the %d that fit", u.Interface, MaxUplinks)
	}
	if u.Interface == "" || len(u.Interface) >= 16 {
		return fmt.Errorf("uplink %d: %q is not an interface name", i, u.Interface)
	}
	if u.Table < 256 || u.Table >= 1<<31 {
		return fmt.Errorf("uplink %s: table %d is reserved or out of range (use 256 and up)", u.Interface, u.Table)
	}
	for _, prev := range p.Uplinks[:i] {
		switch {
		case prev.Interface == u.Interface:
			return fmt.Errorf("uplink %s listed twice", u.Interface)
		case prev.Table == u.Table:
			return fmt.Errorf("uplink %s: table %d already used by %s", u.Interface, u.Table, prev.Interface)
		case u.Mark != 0 && prev.Mark == u.Mark:
			return fmt.Errorf("uplink %s: mark %#x already used by %s", u.Interface, u.Mark, prev.Interface)
		}
	}
	return nil
}

// usable reports whether an uplink can carry new flows: healthy and with a route.
func (u Uplink) usable() bool { return u.Healthy && u.Gateway.IsValid() }

// Active returns the index of the uplink that new flows from the LANs take: the one marked
// Preferred if it is healthy and has a gateway, else the first such uplink in order; -1
// when there is none (new flows then follow the main table).
func (p Policy) Active() int {
	first := -1
	for i, u := range p.Uplinks {
		if p.checkUplink(i) != nil || !u.usable() {
			continue
		}
		if u.Preferred {
			return i
		}
		if first < 0 {
			first = i
		}
	}
	return first
}

// Render turns a Policy into the rules and routes that make the kernel route by it. Pure.
// Rules come sorted by priority, routes by table.
func Render(p Policy) (rules []RuleSpec, routes []RouteSpec) {
	var valid []Uplink
	for i, u := range p.Uplinks {
		if p.checkUplink(i) == nil {
			valid = append(valid, u)
		}
	}
	if len(valid) == 0 {
		return nil, nil
	}
	rules = append(rules, RuleSpec{Priority: PrioritySuppress, Table: tableMain, SuppressPrefixlen: 0})
	for i, u := range p.Uplinks {
		if p.checkUplink(i) != nil {
			continue
		}
		if u.Mark != 0 {
			rules = append(rules, RuleSpec{Priority: PriorityMark + i, Table: u.Table, Mark: u.Mark, SuppressPrefixlen: -1})
		}
		if u.Gateway.IsValid() {
			routes = append(routes, RouteSpec{Table: u.Table, Gateway: u.Gateway, Interface: u.Interface})
		}
	}
	if a := p.Active(); a >= 0 && p.Internal.IsValid() && p.Internal.Addr().Is6() {
		rules = append(rules, RuleSpec{Priority: PriorityPreferred, Table: p.Uplinks[a].Table,
			From: p.Internal.Masked(), SuppressPrefixlen: -1})
	}
	slices.SortFunc(routes, func(a, b RouteSpec) int { return a.Table - b.Table })
	return rules, routes
}

// RenderText prints what Render and RenderMarks produce the way `ip -6 rule`,
// `ip -6 route show table N` and `nft list table` print it, for golden files and operators.
func RenderText(p Policy) string {
	rules, routes := Render(p)
	var b strings.Builder
	b.WriteString("# ip -6 rule\n")
	for _, r := range rules {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	for _, r := range routes {
		fmt.Fprintf(&b, "# ip -6 route show table %d\n%s\n", r.Table, r)
	}
	b.WriteString(FormatMarks(RenderMarks(p)))
	return b.String()
}

// Failed returns the marks of the uplinks whose flows died between prev and next: healthy
// in prev and unhealthy in next, or gone from next. The daemon passes each to FlushUplink
// after Router.Set, so those flows start over by the uplink now active instead of waiting
// for their conntrack entries to time out.
func Failed(prev, next Policy) []uint32 {
	var marks []uint32
	for _, old := range prev.Uplinks {
		if !old.Healthy || old.Mark == 0 {
			continue
		}
		i := slices.IndexFunc(next.Uplinks, func(u Uplink) bool { return u.Interface == old.Interface })
		if i < 0 || !next.Uplinks[i].Healthy || next.Uplinks[i].Mark != old.Mark {
			marks = append(marks, old.Mark)
		}
	}
	return marks
}
