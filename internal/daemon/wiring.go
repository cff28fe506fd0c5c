package daemon

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/mdlayher/ndp"
	"net/netip"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/dhcp6pd"
	"github.com/v6edge/v6edge/dhcp6srv"
	"github.com/v6edge/v6edge/ha"
	"github.com/v6edge/v6edge/internal/netif"
	"github.com/v6edge/v6edge/internal/plan"
	"github.com/v6edge/v6edge/ra"
)

// The pure translations between the parts: config and snapshots into plan
// inputs, plan outputs into each applier's own configuration.

// uplinkFrom reduces a client snapshot to what the plan needs now.
func uplinkFrom(w configs.WAN, s dhcp6pd.Snapshot, now time.Time) plan.Uplink {
	up := plan.Uplink{Interface: w.Interface, Healthy: true}
	l := s.Lease
	if l == nil {
		return up
	}
	if p, ok := l.Chosen(w.PrefixLength, now); ok {
		up.Delegated = p.Prefix
		up.PreferredUntil = l.Acquired.Add(p.Preferred)
		up.ValidUntil = l.Acquired.Add(p.Valid)
		up.Exclude = p.Exclude
		// The ISP's options go with a usable delegation only.
		up.DNS, up.Domains = l.DNS, l.Domains
	}
	for _, a := range l.ValidAddresses(now) {
		up.Addresses = append(up.Addresses, plan.LeaseAddr{Addr: a.Addr,
			PreferredUntil: l.Acquired.Add(a.Preferred), ValidUntil: l.Acquired.Add(a.Valid)})
	}
	return up
}

// raConfig turns a LAN's plan into the advertiser's configuration.
func raConfig(cfg *configs.Config, l plan.LAN) ra.Config {
	lc := l.Config
	c := ra.Config{
		Interface: l.Interface, Managed: lc.Managed, Other: lc.Other,
		RDNSS: lc.DNS, DNSSL: lc.Domains, MTU: lc.RA.MTU, HopLimit: uint8(lc.RA.HopLimit),
		RouterLifetime: lc.RA.RouterLifetime, Preference: raPreference(lc.RA.Preference),
		ReachableTime: lc.RA.ReachableTime, RetransTimer: lc.RA.RetransTimer,
		MinInterval: lc.RA.MinInterval, MaxInterval: lc.RA.MaxInterval,
		Source: l.Source, Enabled: l.Advertise, FinalRA: lc.RA.FinalRA && cfg.HA == nil,
		StateDir: cfg.Control.StateDir,
	}
	for _, p := range l.Prefixes {
		c.Prefixes = append(c.Prefixes, ra.Prefix{
			Prefix: p.Prefix, Preferred: p.Preferred, Valid: p.Valid,
			PreferredUntil: p.PreferredUntil, ValidUntil: p.ValidUntil,
			Autonomous: p.Autonomous, OnLink: true,
		})
	}
	// RFC 4191: a route's lifetime is its own, not the router lifetime; a
	// router that is not a default router (lifetime 0) still routes these.
	// Static routes live three RA intervals, like RDNSS (RFC 8106 §5.1).
	for _, r := range lc.RA.Routes {
		c.Routes = append(c.Routes, ra.Route{Prefix: r, Lifetime: staticRouteLifetime(lc.RA.MaxInterval), Preference: raPreference(lc.RA.Preference)})
	}
	return c
}

// staticRouteLifetime is 3 × MaxRtrAdvInterval.
func staticRouteLifetime(maxInterval time.Duration) time.Duration { return 3 * maxInterval }

func raPreference(s string) ndp.Preference {
	switch s {
	case "low":
		return ndp.Low
	case "high":
		return ndp.High
	}
	return ndp.Medium
}

// lanServerConfig is one LAN server's configuration from the plan.
func lanServerConfig(cfg *configs.Config, l plan.LAN) dhcp6srv.Config {
	lc, dh := l.Config, l.DHCP
	return dhcp6srv.Config{
		Interface: l.Interface, DNS: lc.DNS, Domains: lc.Domains,
		Pool: dh.Pool, LifetimeCap: dh.LifetimeCap,
		Preferred: lc.RA.Preferred, Valid: lc.RA.Valid,
		PDPool: dh.PDPool, PDLength: dh.PDLength, PDCount: dh.PDCount, PDExclude: dh.PDExclude,
		StateDir: cfg.Control.StateDir,
	}
}

func wantsOf(addrs []plan.Address) []netif.Want {
	var wants []netif.Want
	for _, a := range addrs {
		wants = append(wants, netif.Want{Interface: a.Interface, Prefix: a.Prefix, NoDAD: a.NoDAD,
			PreferredUntil: a.PreferredUntil, ValidUntil: a.ValidUntil})
	}
	return wants
}

// downstreamRoutes are the downstream delegations as routes via the
// requesting router's link-local.
func downstreamRoutes(dels map[string][]dhcp6srv.Delegation) []netif.Route {
	var rs []netif.Route
	for _, iface := range slices.Sorted(maps.Keys(dels)) {
		for _, dl := range dels[iface] {
			rs = append(rs, netif.Route{Dst: dl.Prefix, Gw: dl.Via, Interface: dl.Interface})
		}
	}
	return rs
}

// errNoWAN: the WAN whose MAC makes the DUID does not exist (yet).
var errNoWAN = errors.New("the interface does not exist")

// duidFor builds the client DUID of an uplink. DUID-LL from a MAC is the
// default because two HA nodes sharing one WAN MAC then are one client to the
// upstream and keep one prefix across failover.
func duidFor(cfg *configs.Config, w configs.WAN, links Links, now time.Time) ([]byte, error) {
	switch w.DUIDKind {
	case configs.DUIDRaw, configs.DUIDEN:
		return w.DUIDRaw, nil
	}
	mac := w.DUIDMAC
	if mac == nil && cfg.HA != nil && cfg.HA.WANMAC != nil {
		mac = cfg.HA.WANMAC
	}
	if mac == nil {
		link, err := links.LinkByName(w.Interface)
		if err != nil {
			return nil, fmt.Errorf("wan %s: %w: %w", w.Interface, errNoWAN, err)
		}
		mac = link.Attrs().HardwareAddr
	}
	if len(mac) != 6 {
		return nil, fmt.Errorf("wan %s has no Ethernet MAC for a DUID-LL; set wan.duid_mac or wan.duid", w.Interface)
	}
	if w.DUIDKind == configs.DUIDLLT {
		return dhcp6pd.LoadOrCreateDUIDLLT(cfg.Control.StateDir, mac, now)
	}
	return dhcp6pd.DUIDLL(mac), nil
}

// sameLease reports whether a synced lease says nothing new.
func sameLease(a, b *dhcp6pd.Lease) bool {
	if len(a.Prefixes) != len(b.Prefixes) {
		return false
	}
	for i := range a.Prefixes {
		if a.Prefixes[i].Prefix != b.Prefixes[i].Prefix || a.Prefixes[i].Valid != b.Prefixes[i].Valid {
			return false
		}
	}
	return a.Acquired.Sub(b.Acquired).Abs() < 2*time.Second
}

func syncFromLease(wan string, l *dhcp6pd.Lease) ha.SyncedLease {
	s := ha.SyncedLease{WAN: wan, IAID: l.IAID, ServerID: l.ServerID, ServerAddr: l.ServerAddr,
		T1: l.T1, T2: l.T2, Acquired: l.Acquired, Hint: l.Hint, DNS: l.DNS, Domains: l.Domains}
	for _, p := range l.Prefixes {
		s.Prefixes = append(s.Prefixes, ha.SyncedPrefix{Prefix: p.Prefix, Preferred: p.Preferred, Valid: p.Valid, Exclude: p.Exclude})
	}
	for _, a := range l.Addresses {
		s.Addresses = append(s.Addresses, ha.SyncedAddress{Addr: a.Addr, Preferred: a.Preferred, Valid: a.Valid})
	}
	return s
}

// leaseFromSync turns the master's lease into the client's, dropping what
// the client itself would not accept from a server.
func leaseFromSync(s ha.SyncedLease) *dhcp6pd.Lease {
	l := &dhcp6pd.Lease{IAID: s.IAID, ServerID: s.ServerID, ServerAddr: s.ServerAddr,
		T1: s.T1, T2: s.T2, Acquired: s.Acquired, Hint: s.Hint}
	for _, p := range s.Prefixes {
		x := p.Exclude
		if x.IsValid() && dhcp6pd.CheckExclude(p.Prefix, x) != nil {
			x = netip.Prefix{}
		}
		l.Prefixes = append(l.Prefixes, dhcp6pd.Prefix{Prefix: p.Prefix, Preferred: p.Preferred, Valid: p.Valid, Exclude: x})
	}
	for _, a := range s.Addresses {
		if dhcp6pd.CheckAddress(a.Addr) == nil {
			l.Addresses = append(l.Addresses, dhcp6pd.Address{Addr: a.Addr, Preferred: a.Preferred, Valid: a.Valid})
		}
	}
	for _, a := range s.DNS {
		if dhcp6pd.CheckDNSServer(a) == nil && len(l.DNS) < dhcp6pd.MaxDNSServers {
			l.DNS = append(l.DNS, a)
		}
	}
	for _, dn := range s.Domains {
		if dhcp6pd.CheckDomain(dn) == nil && len(l.Domains) < dhcp6pd.MaxDomains {
			l.Domains = append(l.Domains, dn)
		}
	}
	return l
}

// countingConn counts the DHCPv6 messages a client sends and receives by
// type, for the metrics. It reads only the first byte (the message type), so
// it adds nothing to the parse path that validation guards.
type countingConn struct {
	dhcp6pd.Conn
	stats *messageStats
	iface string
}

func (c *countingConn) WriteTo(b []byte, to netip.AddrPort) error {
	err := c.Conn.WriteTo(b, to)
	if err == nil && len(b) > 0 {
		c.stats.count(c.iface, "sent", dhcpv6.MessageType(b[0]).String())
	}
	return err
}

func (c *countingConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	n, from, err := c.Conn.ReadFrom(b)
	if err == nil && n > 0 {
		c.stats.count(c.iface, "received", dhcpv6.MessageType(b[0]).String())
	}
	return n, from, err
}
