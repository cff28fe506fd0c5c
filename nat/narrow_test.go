package nat

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/v6edge/v6edge/internal/nstest"
)

func TestMapPrefix(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		x, from, to, want string
	}{
		{"2001:db8:100:ff::/64", "2001:db8:100::/56", "fd00:aaaa:bbbb:cc00::/56", "fd00:aaaa:bbbb:ccff::/64"},
		{"2001:db8:100:4f::/64", "2001:db8:100:40::/60", "fd00:aaaa:bbbb:cc00::/60", "fd00:aaaa:bbbb:cc0f::/64"},
		{"2001:db8:100:4f::1/128", "2001:db8:100:40::/60", "fd00::/60", "fd00:0:0:f::1/128"},
	} {
		if got := MapPrefix(p(tc.x), p(tc.from), p(tc.to)); got != p(tc.want) {
			t.Errorf("MapPrefix(%s, %s, %s) = %v, want %s", tc.x, tc.from, tc.to, got, tc.want)
		}
	}
	for _, tc := range [][3]string{
		{"2001:db8:200::/64", "2001:db8:100::/56", "fd00::/56"}, // not inside
		{"2001:db8:100::/48", "2001:db8:100::/56", "fd00::/56"}, // shorter
		{"2001:db8:100::/64", "2001:db8:100::/56", "fd00::/60"}, // lengths differ
	} {
		if got := MapPrefix(p(tc[0]), p(tc[1]), p(tc[2])); got.IsValid() {
			t.Errorf("MapPrefix(%v) = %v, want invalid", tc, got)
		}
	}
}

// TestRenumberOntoNarrowDelegation: an ISP that moves the router from a /56 to
// a /60 (or back) renumbers like any other change, and the kernel ends up with
// exactly the golden rules of the new state, the narrow uplink's own hairpin
// translation ahead of the generic one.
func TestRenumberOntoNarrowDelegation(t *testing.T) {
	nstest.RequireRoot(t, "nft")
	var wide, narrow Ruleset
	for _, tc := range goldenRulesets {
		switch tc.name {
		case "narrow-delegation":
			narrow = tc.r
		}
	}
	wide = narrow
	wide.Uplinks = []Uplink{{WAN: "wan0", External: ext1}}
	ns := newNetns(t, "narrow")
	tbl := nsTable(t, ns)
	for i, r := range []Ruleset{wide, narrow, wide, narrow} {
		if err := tbl.Set(r); err != nil {
			t.Fatalf("Set #%d: %v", i, err)
		}
		if diff := cmp.Diff(Format(DefaultName, Render(r)), listTable(t, ns)); diff != "" {
			t.Fatalf("after Set #%d the kernel differs from the rendering (-want +got):\n%s", i, diff)
		}
	}
}
