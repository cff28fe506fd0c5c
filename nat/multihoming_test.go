package nat

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/v6edge/v6edge/internal/nstest"
)

// TestIntegrationMultihoming adds a second uplink to the lab: each uplink translates to its
// own prefix, flows opened from an uplink carry its conntrack mark, and renumbering one
// uplink leaves the other's rules (their handles) alone.
func TestIntegrationMultihoming(t *testing.T) {
	l := newLab(t)
	up1 := newNetns(t, "up1")
	up1.NoDAD(t)
	nstest.Veth(t, l.router, "wan1", up1, "u1")
	l.router.Run(t, "ip", "link", "set", "wan1", "up")
	l.router.Run(t, "ip", "-6", "addr", "add", "2001:db8:eeee::1/64", "dev", "wan1", "nodad")
	up1.Run(t, "ip", "link", "set", "lo", "up")
	up1.Run(t, "ip", "link", "set", "u1", "up")
	up1.Run(t, "ip", "-6", "addr", "add", "2001:db8:eeee::2/64", "dev", "u1", "nodad")
	up1.Run(t, "ip", "-6", "route", "add", "2001:db8::/32", "via", "2001:db8:eeee::1")

	r := Ruleset{Internal: internal, LANs: []string{"lan0", "lan1"}, Hairpin: true,
		Uplinks: []Uplink{{WAN: "wan0", External: ext1, Mark: 1}, {WAN: "wan1", External: ext2, Mark: 2}}}
	if err := l.table.Set(r); err != nil {
		t.Fatalf("Set: %v", err)
	}
	a := listenUDP(t, l.host, hostA)
	u0 := listenUDP(t, l.upstream, upstream)
	u1 := listenUDP(t, up1, "2001:db8:eeee::2")

	t.Run("each uplink translates to its own prefix", func(t *testing.T) {
		if seen, _ := exchange(t, a, u0, netip.MustParseAddr(upstream)); seen != mapped(t, hostA, ext1) {
			t.Errorf("upstream 0 saw %v, want %v", seen, mapped(t, hostA, ext1))
		}
		if seen, _ := exchange(t, a, u1, netip.MustParseAddr("2001:db8:eeee::2")); seen != mapped(t, hostA, ext2) {
			t.Errorf("upstream 1 saw %v, want %v", seen, mapped(t, hostA, ext2))
		}
	})

	t.Run("a flow opened from the second uplink carries its conntrack mark", func(t *testing.T) {
		fresh := listenUDP(t, l.host, hostA) // a new port: not the reply of an earlier flow
		seen, _ := exchange(t, u1, fresh, mapped(t, hostA, ext2))
		if seen != netip.MustParseAddr("2001:db8:eeee::2") {
			t.Errorf("host saw %v", seen)
		}
		out := l.router.Run(t, "conntrack", "-L", "-f", "ipv6")
		// The entry whose original direction is upstream 1 → the host's external address.
		line := regexp.MustCompile(`(?m)^udp\s+\d+\s+\d+\s+src=2001:db8:eeee::2 dst=` +
			regexp.QuoteMeta(mapped(t, hostA, ext2).String()) + ` .*$`).FindString(out)
		if !regexp.MustCompile(`mark=2\b`).MatchString(line) {
			t.Errorf("conntrack entry of the inbound flow lacks mark=2:\n%s", out)
		}
	})

	t.Run("renumbering the second uplink leaves the first uplink's rules alone", func(t *testing.T) {
		handles := func() []string {
			var hs []string
			for _, line := range strings.Split(l.router.Run(t, "nft", "-a", "list", "table", "ip6", DefaultName), "\n") {
				if strings.Contains(line, `"wan0"`) || strings.Contains(line, "2001:db8:100::/56") || strings.Contains(line, "chain hairpin") ||
					strings.Contains(line, `iifname "lan`) {
					hs = append(hs, strings.TrimSpace(line))
				}
			}
			return hs
		}
		before := handles()
		if len(before) < 5 || !strings.Contains(before[0]+before[len(before)-1], "# handle") {
			t.Fatalf("could not read wan0's rules with handles: %q", before)
		}
		r.Uplinks[1].External = ext3
		if err := l.table.Set(r); err != nil {
			t.Fatal(err)
		}
		after := handles()
		if strings.Join(before, "\n") != strings.Join(after, "\n") {
			t.Errorf("wan0's and the hairpin rules changed:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
		}
		if seen, _ := exchange(t, a, u1, netip.MustParseAddr("2001:db8:eeee::2")); seen != mapped(t, hostA, ext3) {
			t.Errorf("upstream 1 saw %v after renumbering, want %v", seen, mapped(t, hostA, ext3))
		}
		if seen, _ := exchange(t, a, u0, netip.MustParseAddr(upstream)); seen != mapped(t, hostA, ext1) {
			t.Errorf("upstream 0 saw %v after renumbering the other uplink, want %v", seen, mapped(t, hostA, ext1))
		}
	})
}
