package ra

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"
)

// Defaults from RFC 4861 §6.2.1 and RFC 9096 §3 (CE routers).
const (
	// DefaultPreferred is the PIO preferred lifetime RFC 9096 §3.4 asks CE
	// routers not to exceed (45 minutes), so a stale prefix is not used for
	// new connections for hours after a renumbering.
	DefaultPreferred = 2700 * time.Second
	// DefaultValid is the matching valid lifetime (RFC 9096 §3.4: 90 minutes).
	DefaultValid = 5400 * time.Second
	// DefaultMaxInterval is MaxRtrAdvInterval (RFC 4861 §6.2.1: 600 s).
	DefaultMaxInterval = 600 * time.Second
	// DefaultRouterLifetime is what the plan should put in
	// Config.RouterLifetime for a default router: RFC 9096 §3.4 caps it at
	// 2700 s; RFC 4861 §6.2.1 suggests 3 × MaxRtrAdvInterval (1800 s).
	DefaultRouterLifetime = 1800 * time.Second
	// DefaultHopLimit is the Cur Hop Limit advertised when Config.HopLimit is 0
	// (the value radvd and the Linux kernel use).
	DefaultHopLimit = 64

	// maxRouterLifetime is the largest router lifetime RFC 4861 §6.2.1 allows
	// (9000 s).
	maxRouterLifetime = 9000 * time.Second
	// deprecatedValidMax bounds the valid lifetime announced for a prefix
	// that went away. Hosts apply the "two-hour rule" (RFC 4862 §5.5.3 e):
	// they lower a remaining valid lifetime to whatever is advertised only
	// down to 2 h, so announcing more than that is pointless and announcing
	// less still moves them to 2 h.
	deprecatedValidMax = 2 * time.Hour
	// dnsLifetimeFactor: RFC 8106 §5.1 recommends an RDNSS/DNSSL lifetime of
	// at least 3 × MaxRtrAdvInterval so one or two lost RAs do not make hosts
	// forget the resolvers.
	dnsLifetimeFactor = 3
)

// Prefix is one /64 advertised in a Prefix Information option.
type Prefix struct {
	Prefix netip.Prefix // a /64 for SLAAC; masked before use
	// Preferred and Valid are the maximum advertised lifetimes (0 = the
	// RFC 9096 defaults DefaultPreferred and DefaultValid).
	Preferred time.Duration
	Valid     time.Duration
	// PreferredUntil and ValidUntil optionally cap the lifetimes at the end
	// of the lease the prefix comes from (zero = no cap). The advertised
	// lifetimes then count down from RA to RA and reset when a Renew moves
	// the caps forward.
	PreferredUntil time.Time
	ValidUntil     time.Time
	Autonomous     bool // A flag: hosts form addresses with SLAAC
	OnLink         bool // L flag: the prefix is on this link (normally true)
}

// Route is a more-specific route announced with a Route Information option
// (RFC 4191 §2.3).
type Route struct {
	Prefix     netip.Prefix
	Lifetime   time.Duration
	Preference ndp.Preference
}

// Config is everything one interface advertises. The plan hands a fresh
// Config to Advertiser.Update after every event; it is a value, never
// mutated by this package.
type Config struct {
	Interface string
	// IfIndex, when set, is the interface's index: a new one (the
	// interface was deleted and created again) opens a new socket, since
	// the old one stays bound to the deleted interface and never sends.
	IfIndex int
	// Managed (M) and Other (O) flags, RFC 4861 §4.2. See Mode.Flags.
	Managed, Other bool
	// Prefixes are the CURRENT prefixes. A /64 that was in the previous
	// Config and is missing from this one is deprecated (RFC 9096): it keeps
	// being advertised with preferred lifetime 0 and a short valid lifetime.
	Prefixes []Prefix
	RDNSS    []netip.Addr
	DNSSL    []string
	MTU      int   // 0 = no MTU option
	HopLimit uint8 // Cur Hop Limit; 0 = DefaultHopLimit
	// RouterLifetime is sent as is: 0 means "not a default router"
	// (RFC 4861 §4.2). Use DefaultRouterLifetime for a default router. It is
	// capped at 9000 s.
	RouterLifetime time.Duration
	Preference     ndp.Preference // default router preference, RFC 4191 §2.2
	// ReachableTime and RetransTimer are advertised as is (0 = unspecified).
	ReachableTime, RetransTimer time.Duration
	// MinInterval and MaxInterval bound the random interval between
	// unsolicited RAs (RFC 4861 §6.2.1). 0 = 600 s max and 0.33 × max min.
	MinInterval, MaxInterval time.Duration
	Routes                   []Route
	// Source is the address RAs are sent from. Zero = the interface's own
	// link-local; an HA pair uses its virtual link-local (fe80::1), which
	// must already be on the interface.
	Source netip.Addr
	// LinkLayerAddr goes into the Source Link-Layer Address option. Nil =
	// the interface's hardware address, looked up when the socket opens.
	LinkLayerAddr net.HardwareAddr
	// Enabled false sends nothing at all (HA backup). Turning it off sends no
	// final RA: the new master takes over the same source address.
	Enabled bool
	// FinalRA sends one RA with router lifetime 0 (and every prefix with
	// preferred lifetime 0) when Run stops cleanly (RFC 4861 §6.2.5).
	FinalRA bool
	// StateDir keeps ra-<interface>.json: the advertised and deprecated
	// prefixes, so a restart in the middle of a renumbering still deprecates
	// the old /64. Empty = keep nothing on disk.
	StateDir string
}

// Mode is the address configuration mode of a LAN (SPEC.md `mode`).
type Mode string

// The modes an operator chooses from.
const (
	SLAAC     Mode = "slaac"     // A=1 M=0 O=0
	Stateless Mode = "stateless" // A=1 M=0 O=1: addresses by SLAAC, DNS by DHCPv6 too
	Stateful  Mode = "stateful"  // A=0 M=1 O=1: addresses by DHCPv6
)

// Flags returns the M and O flags and the PIO A flag for a mode.
// RFC 4861 §4.2: when M is set, O is redundant, but we set it anyway because
// some hosts only ask DHCPv6 for DNS when O is set.
func (m Mode) Flags() (managed, other, autonomous bool, err error) {
	switch m {
	case SLAAC:
		return false, false, true, nil
	case Stateless:
		return false, true, true, nil
	case Stateful:
		return true, true, false, nil
	}
	return false, false, false, fmt.Errorf("ra: unknown mode %q (want slaac, stateless or stateful)", string(m))
}

// intervals returns the effective MinInterval and MaxInterval with the
// RFC 4861 §6.2.1 defaults applied.
func (c Config) intervals() (lo, hi time.Duration) {
	hi = c.MaxInterval
	if hi <= 0 {
		hi = DefaultMaxInterval
	}
	lo = c.MinInterval
	if lo <= 0 || lo > hi {
		// §6.2.1: default MinRtrAdvInterval = 0.33 × MaxRtrAdvInterval.
		lo = hi * 33 / 100
	}
	return lo, hi
}

// Validate checks the ranges RFC 4861 §6.2.1 sets. Build and the Advertiser
// do not call it, so tests may shrink the intervals far below the RFC
// minimum; the config loader should.
func (c Config) Validate() error {
	var errs []error
	lo, hi := c.intervals()
	if hi < 4*time.Second || hi > 1800*time.Second {
		errs = append(errs, fmt.Errorf("ra: max interval %s outside 4s..1800s (RFC 4861 §6.2.1)", hi))
	}
	if lo < 3*time.Second || lo > hi*3/4 {
		errs = append(errs, fmt.Errorf("ra: min interval %s outside 3s..0.75×max (RFC 4861 §6.2.1)", lo))
	}
	if c.RouterLifetime != 0 && (c.RouterLifetime < hi || c.RouterLifetime > maxRouterLifetime) {
		errs = append(errs, fmt.Errorf("ra: router lifetime %s must be 0 or between max interval and 9000s (RFC 4861 §6.2.1)", c.RouterLifetime))
	}
	if c.MTU != 0 && (c.MTU < 1280 || c.MTU > 65535) {
		errs = append(errs, fmt.Errorf("ra: mtu %d outside 1280..65535", c.MTU))
	}
	for _, p := range c.Prefixes {
		if !p.Prefix.IsValid() || !p.Prefix.Addr().Is6() || p.Prefix.Addr().Is4In6() {
			errs = append(errs, fmt.Errorf("ra: prefix %s is not an IPv6 prefix", p.Prefix))
			continue
		}
		if p.Autonomous && p.Prefix.Bits() != 64 {
			errs = append(errs, fmt.Errorf("ra: prefix %s: SLAAC needs a /64 (RFC 4862 §5.5.3)", p.Prefix))
		}
	}
	for _, a := range c.RDNSS {
		if !a.Is6() || a.Is4In6() {
			errs = append(errs, fmt.Errorf("ra: dns server %s is not IPv6", a))
		}
	}
	return errors.Join(errs...)
}
