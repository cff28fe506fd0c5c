package dhcp6pd

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestKeaPDExclude: Kea 2.2's excluded-prefix in a pd-pool (RFC 6603)
// reaches the Snapshot as Prefix.Exclude: the pool's excluded /64 (subnet
// ID ff after the /56) applied to whichever /56 we get.
func TestKeaPDExclude(t *testing.T) {
	lab := newKeaLab(t, map[string]any{
		"subnet": "2001:db8::/32",
		"pd-pools": []any{map[string]any{"prefix": "2001:db8:100::", "prefix-len": 48, "delegated-len": 56,
			"excluded-prefix": "2001:db8:100:ff::", "excluded-prefix-len": 64}},
	}, nil)
	c := lab.client(Config{DUID: DUIDLL(net.HardwareAddr{0x02, 0, 0x5e, 0, 0x03, 0x01}), IAID: 1, PrefixLength: 56},
		netip.MustParseAddr("fe80::1"), nil)
	waitFor(t, "bound", 20*time.Second, func() bool { return c.c.Snapshot().State == StateBound })
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
