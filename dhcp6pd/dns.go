package dhcp6pd

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Bounds on what a server may hand us for DNS: a resolver is given at
// most this many servers and search domains, whatever the ISP sends.
const (
	MaxDNSServers = 8
	MaxDomains    = 8
)

// parseDNSServers decodes OPTION_DNS_SERVERS (RFC 3646 §3): a non-empty
// list of 16-byte addresses. Each must be a usable unicast address (see
// CheckDNSServer); duplicates are dropped, and at most MaxDNSServers kept.
func parseDNSServers(b []byte) ([]netip.Addr, error) {
	if len(b) == 0 || len(b)%16 != 0 {
		return nil, fmt.Errorf("length %d is not a positive multiple of 16", len(b))
	}
	out := []netip.Addr{}
	for off := 0; off < len(b); off += 16 {
		a := netip.AddrFrom16([16]byte(b[off : off+16]))
		if err := CheckDNSServer(a); err != nil {
			return nil, err
		}
		if len(out) < MaxDNSServers && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// CheckDNSServer accepts an IPv6 unicast address a resolver can use
// without a zone: global unicast or ULA, not link-local, loopback,
// multicast, unspecified or IPv4-mapped.
func CheckDNSServer(a netip.Addr) error {
	switch {
	case !a.Is6() || a.Is4In6():
		return fmt.Errorf("DNS server %s is not an IPv6 address", a)
	case a.Zone() != "":
		return fmt.Errorf("DNS server %s has a zone", a)
	case !a.IsGlobalUnicast():
		return fmt.Errorf("DNS server %s is not a global or unique-local unicast address", a)
	}
	return nil
}

// parseDomainList decodes OPTION_DOMAIN_LIST (RFC 3646 §4): uncompressed
// RFC 1035 names, one after another. Every name must pass CheckDomain;
// duplicates are dropped and at most MaxDomains kept. A malformed list is
// refused whole.
func parseDomainList(b []byte) ([]string, error) {
	if len(b) == 0 {
		return nil, errors.New("empty domain list")
	}
	out := []string{}
	for off := 0; off < len(b); {
		var labels []string
		for {
			if off >= len(b) {
				return nil, errors.New("name runs past the end of the option")
			}
			n := int(b[off])
			off++
			if n == 0 {
				break
			}
			if n > 63 {
				return nil, fmt.Errorf("label of length %d (compressed or malformed)", n)
			}
			if off+n > len(b) {
				return nil, errors.New("label runs past the end of the option")
			}
			labels = append(labels, string(b[off:off+n]))
			off += n
		}
		if len(labels) == 0 {
			continue // the root: nothing to search
		}
		name := strings.ToLower(strings.Join(labels, "."))
		if err := CheckDomain(name); err != nil {
			return nil, err
		}
		if len(out) < MaxDomains && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// CheckDomain accepts a search domain an operator would recognise: at
// most 253 characters without the final dot, labels of 1 to 63 letters,
// digits, hyphens or underscores, no label starting or ending with a
// hyphen.
func CheckDomain(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("domain %q: length %d outside 1..253", name, len(name))
	}
	for _, l := range strings.Split(name, ".") {
		if len(l) == 0 || len(l) > 63 {
			return fmt.Errorf("domain %q: label of length %d", name, len(l))
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("domain %q: label %q starts or ends with a hyphen", name, l)
		}
		for _, c := range []byte(l) {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return fmt.Errorf("domain %q: character %q", name, c)
			}
		}
	}
	return nil
}
