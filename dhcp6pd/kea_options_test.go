package dhcp6pd

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestKeaDNS: Kea's dns-servers and domain-search option-data (RFC 3646
// options 23 and 24, asked for in our ORO) reach the Snapshot's lease.
func TestKeaDNS(t *testing.T) {
	c := boundKeaClient(t, map[string]any{
		"subnet":   "2001:db8::/32",
		"pd-pools": []any{map[string]any{"prefix": "2001:db8:100::", "prefix-len": 40, "delegated-len": 56}},
		"option-data": []any{
			map[string]any{"name": "dns-servers", "data": "2001:db8::53, 2001:db8::54"},
			map[string]any{"name": "domain-search", "data": "isp.example, example.net"},
		},
	}, net.HardwareAddr{0x02, 0, 0x5e, 0, 0x02, 0x01})
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

// TestKeaAddress: with request_address "try" and an address pool, Kea
// gives an IA_NA address beside the prefix (RFC 7084 WAA-4, WPD-6); it is
// in the Snapshot and in Kea's lease file, renewed with the prefix and
// released with it.
func TestKeaAddress(t *testing.T) {
	lab := newKeaLab(t, map[string]any{
		"subnet":   "2001:db8::/32",
		"pools":    []any{map[string]any{"pool": "2001:db8:ffff::100-2001:db8:ffff::1ff"}},
		"pd-pools": []any{map[string]any{"prefix": "2001:db8:100::", "prefix-len": 40, "delegated-len": 56}},
	}, nil)
	c := lab.client(Config{DUID: DUIDLL(net.HardwareAddr{0x02, 0, 0x5e, 0, 0x02, 0x02}), IAID: 1, PrefixLength: 56, RequestAddress: AddressTry},
		netip.MustParseAddr("fe80::1"), nil)
	waitFor(t, "bound with an address", 20*time.Second, func() bool {
		s := c.c.Snapshot()
		return s.State == StateBound && len(s.Lease.Addresses) == 1
	})
	l := c.c.Snapshot().Lease
	a := l.Addresses[0]
	pool := netip.MustParsePrefix("2001:db8:ffff::/112")
	if !pool.Contains(a.Addr) || a.Valid != 20*time.Second || a.Preferred != 15*time.Second {
		t.Errorf("address %+v, want one from %s with Kea's lifetimes", a, pool)
	}
	if _, ok := l.Chosen(56, time.Now()); !ok {
		t.Error("no prefix beside the address")
	}
	t.Logf("bound %s and %s", l.Prefixes[0].Prefix, a.Addr)
	waitFor(t, "the address in Kea's lease file", 5*time.Second, func() bool {
		return strings.Contains(lab.leaseFile(), a.Addr.String()+",")
	})
	waitFor(t, "a Renew keeping the address", 10*time.Second, func() bool {
		s := c.c.Snapshot()
		return s.State == StateBound && s.Lease.Acquired.After(l.Acquired) && len(s.Lease.Addresses) == 1 && s.Lease.Addresses[0].Addr == a.Addr
	})
	c.c.Release()
	waitFor(t, "released", 5*time.Second, func() bool { return c.c.Snapshot().State == StateReleased })
	// Kea's memfile appends the released lease with valid lifetime 0 (or
	// marks it expired-reclaimed): the last line for the address says so.
	waitFor(t, "Kea released the address", 5*time.Second, func() bool {
		var last string
		for _, line := range strings.Split(lab.leaseFile(), "\n") {
			if strings.HasPrefix(line, a.Addr.String()+",") {
				last = line
			}
		}
		f := strings.Split(last, ",")
		return len(f) > 3 && (f[2] == "0" || (len(f) > 13 && f[13] != "0"))
	})
}

// TestKeaPDExclude: Kea 2.2's excluded-prefix in a pd-pool (RFC 6603)
// reaches the Snapshot as Prefix.Exclude: the pool's excluded /64 (subnet
// ID ff after the /56) applied to whichever /56 we get.
func TestKeaPDExclude(t *testing.T) {
	c := boundKeaClient(t, map[string]any{
		"subnet": "2001:db8::/32",
		"pd-pools": []any{map[string]any{"prefix": "2001:db8:100::", "prefix-len": 48, "delegated-len": 56,
			"excluded-prefix": "2001:db8:100:ff::", "excluded-prefix-len": 64}},
	}, net.HardwareAddr{0x02, 0, 0x5e, 0, 0x03, 0x01})
	p, ok := c.c.Snapshot().Lease.Chosen(56, time.Now())
	if !ok {
		t.Fatal("no prefix")
	}
	a := p.Prefix.Addr().As16()
	a[7] = 0xff
	want := netip.PrefixFrom(netip.AddrFrom16(a), 64)
	if p.Exclude != want {
		t.Errorf("delegated %s, Exclude %s, want %s; problems %q", p.Prefix, p.Exclude, want, c.c.Snapshot().Problems)
	}
}

// boundKeaClient runs a client with the DUID-LL of mac and IAID 1, asking
// for a /56, against a Kea serving subnet, and waits until it is bound.
func boundKeaClient(t *testing.T, subnet map[string]any, mac net.HardwareAddr) *labClient {
	t.Helper()
	lab := newKeaLab(t, subnet, nil)
	c := lab.client(Config{DUID: DUIDLL(mac), IAID: 1, PrefixLength: 56}, netip.MustParseAddr("fe80::1"), nil)
	waitFor(t, "bound", 20*time.Second, func() bool { return c.c.Snapshot().State == StateBound })
	return c
}
