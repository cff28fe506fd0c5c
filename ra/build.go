package ra

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/idna"
)

// Deprecated is a /64 that was advertised and then left Config.Prefixes. It
// is announced with preferred lifetime 0 and a valid lifetime that counts
// down to Until (at most 2 h after Since, never past what hosts were last
// told), and dropped once Until has passed (RFC 9096 §3.5).
type Deprecated struct {
	Prefix     netip.Prefix // masked /64
	Since      time.Time
	Until      time.Time
	Autonomous bool // the A flag it was advertised with, so stateful LANs do not suddenly get SLAAC addresses
	OnLink     bool
}

// Build returns the Router Advertisement for cfg at now. It is pure:
// prefix lifetimes are clamped to the lease caps as they stand at now, and
// deprecated prefixes that are also current again are left out of the
// deprecated list.
func Build(cfg Config, now time.Time, deprecated []Deprecated) (*ndp.RouterAdvertisement, error) {
	return build(cfg, now, deprecated, false, withdrawal{})
}

// withdrawal lists DNS servers and search domains that left the
// configuration: they are announced with lifetime 0 (RFC 8106 §5.1 "MUST
// no longer be used") in the next few RAs, so hosts drop them at once
// instead of after 3 × MaxInterval.
type withdrawal struct {
	servers []netip.Addr
	domains []string
}

// BuildFinal returns the last RA sent on a clean stop (RFC 4861 §6.2.5):
// router lifetime 0 so hosts stop using this router at once, every prefix
// with preferred lifetime 0, and DNS and route options with lifetime 0 so
// hosts drop what only this router told them.
func BuildFinal(cfg Config, now time.Time, deprecated []Deprecated) (*ndp.RouterAdvertisement, error) {
	return build(cfg, now, deprecated, true, withdrawal{})
}

// PrefixLifetimes returns the preferred and valid lifetimes advertised for
// p at now: the configured maxima, clamped to what is left of the lease,
// truncated to whole seconds (the wire unit), preferred never above valid.
func PrefixLifetimes(p Prefix, now time.Time) (preferred, valid time.Duration) {
	preferred, valid = p.Preferred, p.Valid
	if preferred <= 0 {
		preferred = DefaultPreferred
	}
	if valid <= 0 {
		valid = DefaultValid
	}
	if !p.PreferredUntil.IsZero() {
		preferred = min(preferred, p.PreferredUntil.Sub(now))
	}
	if !p.ValidUntil.IsZero() {
		valid = min(valid, p.ValidUntil.Sub(now))
	}
	valid = max(valid.Truncate(time.Second), 0)
	// RFC 4862 §5.5.3 c): hosts ignore a PIO whose preferred lifetime
	// exceeds its valid lifetime.
	preferred = min(max(preferred.Truncate(time.Second), 0), valid)
	return preferred, valid
}

// deprecatedValid is the valid lifetime announced for d at now (0 once it
// is due to be dropped).
func deprecatedValid(d Deprecated, now time.Time) time.Duration {
	return max(min(d.Until.Sub(now), deprecatedValidMax).Truncate(time.Second), 0)
}

// dnsLifetime is the RDNSS/DNSSL lifetime: 3 × MaxInterval (RFC 8106 §5.1).
// It is not tied to the router lifetime: a router that is not a default
// router may still be the LAN's resolver.
func dnsLifetime(cfg Config) time.Duration {
	_, hi := cfg.intervals()
	return (dnsLifetimeFactor * hi).Truncate(time.Second)
}

func build(cfg Config, now time.Time, deprecated []Deprecated, final bool, wd withdrawal) (*ndp.RouterAdvertisement, error) {
	hop := cfg.HopLimit
	if hop == 0 {
		hop = DefaultHopLimit
	}
	ra := &ndp.RouterAdvertisement{
		CurrentHopLimit:           hop,
		ManagedConfiguration:      cfg.Managed,
		OtherConfiguration:        cfg.Other,
		RouterSelectionPreference: cfg.Preference,
		RouterLifetime:            min(max(cfg.RouterLifetime, 0), maxRouterLifetime).Truncate(time.Second),
		ReachableTime:             max(cfg.ReachableTime, 0),
		RetransmitTimer:           max(cfg.RetransTimer, 0),
	}
	if ra.RouterLifetime == 0 || final {
		// RFC 4191 §2.2: the preference MUST be 0 (medium) when the router
		// lifetime is 0.
		ra.RouterSelectionPreference = ndp.Medium
	}
	if final {
		ra.RouterLifetime = 0
	}

	if len(cfg.LinkLayerAddr) > 0 {
		ra.Options = append(ra.Options, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: cfg.LinkLayerAddr})
	}
	if cfg.MTU > 0 {
		if int64(cfg.MTU) > math.MaxUint32 {
			return nil, fmt.Errorf("ra: mtu %d does not fit the MTU option", cfg.MTU)
		}
		ra.Options = append(ra.Options, ndp.NewMTU(uint32(cfg.MTU)))
	}

	current := make(map[netip.Prefix]bool, len(cfg.Prefixes))
	for _, p := range cfg.Prefixes {
		if !p.Prefix.IsValid() || !p.Prefix.Addr().Is6() || p.Prefix.Addr().Is4In6() {
			return nil, fmt.Errorf("ra: prefix %s is not an IPv6 prefix", p.Prefix)
		}
		masked := p.Prefix.Masked()
		if current[masked] {
			continue
		}
		current[masked] = true
		pref, valid := PrefixLifetimes(p, now)
		if final {
			pref = 0
		}
		ra.Options = append(ra.Options, &ndp.PrefixInformation{
			PrefixLength:                   uint8(masked.Bits()),
			OnLink:                         p.OnLink,
			AutonomousAddressConfiguration: p.Autonomous,
			PreferredLifetime:              pref,
			ValidLifetime:                  valid,
			Prefix:                         masked.Addr(),
		})
	}
	for _, d := range deprecated {
		masked := d.Prefix.Masked()
		valid := deprecatedValid(d, now)
		if current[masked] || valid <= 0 || !masked.Addr().Is6() {
			continue
		}
		current[masked] = true
		ra.Options = append(ra.Options, &ndp.PrefixInformation{
			PrefixLength:                   uint8(masked.Bits()),
			OnLink:                         d.OnLink,
			AutonomousAddressConfiguration: d.Autonomous,
			PreferredLifetime:              0,
			ValidLifetime:                  valid,
			Prefix:                         masked.Addr(),
		})
	}

	for _, r := range cfg.Routes {
		if !r.Prefix.IsValid() || !r.Prefix.Addr().Is6() {
			return nil, fmt.Errorf("ra: route %s is not an IPv6 prefix", r.Prefix)
		}
		lt := max(r.Lifetime, 0).Truncate(time.Second)
		if final {
			lt = 0
		}
		ra.Options = append(ra.Options, &ndp.RouteInformation{
			PrefixLength:  uint8(r.Prefix.Bits()),
			Preference:    r.Preference,
			RouteLifetime: lt,
			Prefix:        r.Prefix.Masked().Addr(),
		})
	}

	dnsLT := dnsLifetime(cfg)
	if final {
		dnsLT = 0
	}
	if len(cfg.RDNSS) > 0 {
		ra.Options = append(ra.Options, &ndp.RecursiveDNSServer{Lifetime: dnsLT, Servers: slices.Clone(cfg.RDNSS)})
	}
	for _, d := range cfg.DNSSL {
		if err := checkDomain(d); err != nil {
			return nil, err
		}
	}
	if len(cfg.DNSSL) > 0 {
		ra.Options = append(ra.Options, &ndp.DNSSearchList{Lifetime: dnsLT, DomainNames: slices.Clone(cfg.DNSSL)})
	}

	if len(wd.servers) > 0 {
		ra.Options = append(ra.Options, &ndp.RecursiveDNSServer{Lifetime: 0, Servers: slices.Clone(wd.servers)})
	}
	if len(wd.domains) > 0 {
		ra.Options = append(ra.Options, &ndp.DNSSearchList{Lifetime: 0, DomainNames: slices.Clone(wd.domains)})
	}

	// Marshal once here so a bad value (an invalid preference, a search
	// domain that is not a name) is reported by Build, not at send time.
	if _, err := ndp.MarshalMessage(ra); err != nil {
		return nil, fmt.Errorf("ra: building router advertisement: %w", err)
	}
	return ra, nil
}

// checkDomain rejects search domains that the DNSSL encoding (RFC 8106
// §5.2, RFC 1035 §3.1 labels) cannot carry or that no resolver would use.
// ndp encodes whatever it is given, so a 64-byte label would silently
// produce a corrupt option.
func checkDomain(d string) error {
	a, err := idna.Lookup.ToASCII(strings.TrimSuffix(d, "."))
	if err != nil {
		return fmt.Errorf("ra: search domain %q: %w", d, err)
	}
	if a == "" || len(a) > 253 {
		return fmt.Errorf("ra: search domain %q: empty or longer than 253 bytes", d)
	}
	for _, label := range strings.Split(a, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("ra: search domain %q: labels must be 1 to 63 bytes", d)
		}
		for _, c := range []byte(label) {
			if !(c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return fmt.Errorf("ra: search domain %q: %q is not a letter, digit or hyphen", d, c)
			}
		}
	}
	return nil
}
