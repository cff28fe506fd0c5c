package dhcp6pd

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestKeaDNS: Kea's dns-servers and domain-search option-data (RFC 3646
// options 23 and 24, asked for in our ORO) reach the Snapshot's lease.
func TestKeaDNS(t *testing.T) {
	lab := newKeaLab(t, map[string]any{
		"subnet":   "2001:db8::/32",
		"pd-pools": []any{map[string]any{"prefix": "2001:db8:100::", "prefix-len": 40, "delegated-len": 56}},
		"option-data": []any{
			map[string]any{"name": "dns-servers", "data": "2001:db8::53, 2001:db8::54"},
			map[string]any{"name": "domain-search", "data": "isp.example, example.net"},
		},
	}, nil)
	c := lab.client(Config{DUID: DUIDLL(net.HardwareAddr{0x02, 0, 0x5e, 0, 0x02, 0x01}), IAID: 1, PrefixLength: 56},
		netip.MustParseAddr("fe80::1"), nil)
	waitFor(t, "bound", 20*time.Second, func() bool { return c.c.Snapshot().State == StateBound })
	l := c.c.Snapshot().Lease
	want := []netip.Addr{netip.MustParseAddr("2001:db8::53"), netip.MustParseAddr("2001:db8::54")}
	if !slices.Equal(l.DNS, want) {
		t.Errorf("DNS %v, want %v", l.DNS, want)
	}
	if !slices.Equal(l.Domains, []string{"isp.example", "example.net"}) {
		t.Errorf("Domains %v", l.Domains)
	}
	if p, ok := l.Chosen(56, time.Now()); !ok || p.Prefix.Bits() != 56 {
		t.Errorf("chose %s (%v)", p.Prefix, ok)
	}
}
