package testbed

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ISP varieties of the upstream's Kea (issue 15): what Options'
// ExcludedPrefix, AddressPool, DNS and Domains add to keaConfig's subnet.

// ExcludedLen is the length of the prefix Options.ExcludedPrefix excludes
// from every delegated prefix.
const ExcludedLen = 64

// ExcludedOf is the prefix an Options.ExcludedPrefix lab excludes from the
// delegated prefix deleg (RFC 6603): its last /64. It is invalid when deleg
// is not shorter than a /64.
func ExcludedOf(deleg netip.Prefix) netip.Prefix {
	if !deleg.IsValid() || !deleg.Addr().Is6() || deleg.Bits() >= ExcludedLen {
		return netip.Prefix{}
	}
	b := deleg.Masked().Addr().As16()
	for bit := deleg.Bits(); bit < ExcludedLen; bit++ {
		b[bit/8] |= 0x80 >> (bit % 8)
	}
	return netip.PrefixFrom(netip.AddrFrom16(b), ExcludedLen)
}

// keaISP adds the ISP options of o to subnet, the subnet6 entry keaConfig
// built (with its one pd-pool).
//
// Kea 2.2 configures the excluded prefix once per pd-pool, as a prefix
// inside the pool: the option it sends (only when the client's ORO asks
// for option 67) carries the bits between delegated-len and
// excluded-prefix-len, so every delegated prefix gets the same relative
// exclusion. Naming the last /64 of the pool's first delegated prefix thus
// excludes the last /64 of each one.
func keaISP(subnet map[string]any, o Options) error {
	if o.ExcludedPrefix {
		pools, _ := subnet["pd-pools"].([]any)
		if len(pools) != 1 {
			return errors.New("lab: excluded prefix: no pd-pool")
		}
		pool, _ := pools[0].(map[string]any)
		addr, err := netip.ParseAddr(fmt.Sprint(pool["prefix"]))
		if err != nil {
			return fmt.Errorf("lab: excluded prefix: %w", err)
		}
		x := ExcludedOf(netip.PrefixFrom(addr, o.Delegated))
		if !x.IsValid() {
			return fmt.Errorf("lab: excluded prefix: a delegated /%d has no /%d to exclude", o.Delegated, ExcludedLen)
		}
		pool["excluded-prefix"] = x.Addr().String()
		pool["excluded-prefix-len"] = x.Bits()
	}
	if o.AddressPool.IsValid() {
		link := UpstreamAddr.Masked()
		p := o.AddressPool
		if p != p.Masked() || !p.Addr().Is6() || p.Bits() < link.Bits() || !link.Contains(p.Addr()) || p.Contains(UpstreamAddr.Addr()) {
			return fmt.Errorf("lab: address pool %s is not a prefix inside %s without %s", p, link, UpstreamAddr.Addr())
		}
		subnet["pools"] = []any{map[string]any{"pool": p.String()}}
	}
	var data []any
	if od, ok := subnet["option-data"].([]any); ok {
		data = od
	}
	if len(o.DNS) > 0 {
		var s []string
		for _, a := range o.DNS {
			if !a.Is6() || a.Is4In6() {
				return fmt.Errorf("lab: DNS server %v is not an IPv6 address", a)
			}
			s = append(s, a.String())
		}
		data = append(data, map[string]any{"name": "dns-servers", "data": strings.Join(s, ", ")})
	}
	if len(o.Domains) > 0 {
		for _, d := range o.Domains {
			if d == "" || strings.ContainsAny(d, ", \t") {
				return fmt.Errorf("lab: search domain %q", d)
			}
		}
		data = append(data, map[string]any{"name": "domain-search", "data": strings.Join(o.Domains, ", ")})
	}
	if len(data) > 0 {
		subnet["option-data"] = data
	}
	return nil
}
