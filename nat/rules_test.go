package nat

import (
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables/expr"

	"github.com/v6edge/v6edge/internal/golden"
)

var (
	internal = netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/56")
	ext1     = netip.MustParsePrefix("2001:db8:100::/56")
	ext2     = netip.MustParsePrefix("2001:db8:200::/56")
	ext3     = netip.MustParsePrefix("2001:db8:300::/56")
)

// goldenRulesets are rendered into testdata/<name>.golden; the root differential test
// loads several of them into the kernel too.
var goldenRulesets = []struct {
	name string
	r    Ruleset
}{
	{"empty", Ruleset{Internal: internal, LANs: []string{"lan0"}, Hairpin: true, WANs: []string{"wan0"}}},
	{"one-uplink", Ruleset{Internal: internal, LANs: []string{"lan0"}, WANs: []string{"wan0"},
		Uplinks: []Uplink{{WAN: "wan0", External: ext1, Mark: 1}}}},
	{"hairpin-one-lan", Ruleset{Internal: internal, LANs: []string{"lan0"}, Hairpin: true,
		Uplinks: []Uplink{{WAN: "wan0", External: ext1}}}},
	{"hairpin-two-lans", Ruleset{Internal: internal, LANs: []string{"lan1", "lan0", "lan1"}, Hairpin: true,
		Uplinks: []Uplink{{WAN: "wan0", External: ext1}}}},
	{"hairpin-no-lans", Ruleset{Internal: internal, Hairpin: true,
		Uplinks: []Uplink{{WAN: "wan0", External: ext1}}}},
	{"two-uplinks", Ruleset{Internal: internal, LANs: []string{"lan0"}, Hairpin: true, WANs: []string{"wan1", "wan0"},
		Uplinks: []Uplink{{WAN: "wan0", External: ext1, Mark: 1}, {WAN: "wan1", External: ext2, Mark: 2}}}},
	{"three-uplinks", Ruleset{Internal: internal, LANs: []string{"lan0"},
		Uplinks: []Uplink{{WAN: "wan0", External: ext1, Mark: 1}, {WAN: "wan1", External: ext2}, {WAN: "wan2", External: ext3, Mark: 3}}}},
	{"length-mismatch", Ruleset{Internal: internal, LANs: []string{"lan0"}, Hairpin: true,
		Uplinks: []Uplink{{WAN: "wan0", External: netip.MustParsePrefix("2001:db8:100::/60")}, {WAN: "wan1", External: ext2}}}},
	{"direct-external-lan", Ruleset{Internal: internal, LANs: []string{"lan0"}, Hairpin: true, WANs: []string{"wan0"},
		Direct:  []netip.Prefix{netip.MustParsePrefix("2001:db8:100:1::/64"), netip.MustParsePrefix("2001:db8:999:1::/64")},
		Uplinks: []Uplink{{WAN: "wan0", External: ext1}}}},
	{"narrow-delegation", Ruleset{Internal: internal, LANs: []string{"lan0"}, Hairpin: true, WANs: []string{"wan0"},
		Uplinks: []Uplink{{WAN: "wan0", External: netip.MustParsePrefix("2001:db8:100:40::/60"), Internal: netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/60")}}}},
	{"pd-exclude", Ruleset{Internal: internal, LANs: []string{"lan0"}, WANs: []string{"wan0"},
		Uplinks: []Uplink{{WAN: "wan0", External: ext1, Exclude: []netip.Prefix{netip.MustParsePrefix("2001:db8:100:ff::/64")}}}}},
	{"odd-length", Ruleset{Internal: netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/60"), LANs: []string{"lan0"}, Hairpin: true,
		Uplinks: []Uplink{{WAN: "wan0", External: netip.MustParsePrefix("2001:db8:100:10::/60")}}}},
}

func goldenText(r Ruleset) string {
	var sb strings.Builder
	if err := r.Check(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			sb.WriteString("# check: " + line + "\n")
		}
	}
	sb.WriteString(Format(DefaultName, Render(r)))
	return sb.String()
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range goldenRulesets {
		t.Run("the "+tc.name+" ruleset renders as in testdata/"+tc.name+".golden", func(t *testing.T) {
			got := goldenText(tc.r)
			want := golden.File(t, filepath.Join("testdata", tc.name+".golden"), got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Render mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name       string
		r          Ruleset
		wantErr    bool
		wantLength bool
	}{
		{"an empty ruleset is fine without an internal prefix", Ruleset{}, false, false},
		{"a matching uplink is fine", Ruleset{Internal: internal, Uplinks: []Uplink{{WAN: "wan0", External: ext1}}}, false, false},
		{"a longer external prefix is a length error",
			Ruleset{Internal: internal, Uplinks: []Uplink{{WAN: "wan0", External: netip.MustParsePrefix("2001:db8:100::/60")}}}, true, true},
		{"a shorter external prefix is a length error",
			Ruleset{Internal: internal, Uplinks: []Uplink{{WAN: "wan0", External: netip.MustParsePrefix("2001:db8::/48")}}}, true, true},
		{"an IPv4 internal prefix is refused",
			Ruleset{Internal: netip.MustParsePrefix("10.0.0.0/8"), Uplinks: []Uplink{{WAN: "wan0", External: ext1}}}, true, false},
		{"host bits in the internal prefix are refused",
			Ruleset{Internal: netip.MustParsePrefix("fd00::1/56"), Uplinks: []Uplink{{WAN: "wan0", External: ext1}}}, true, false},
		{"a WAN listed twice is refused",
			Ruleset{Internal: internal, Uplinks: []Uplink{{WAN: "wan0", External: ext1}, {WAN: "wan0", External: ext2}}}, true, false},
		{"an interface name of 16 bytes is refused",
			Ruleset{Internal: internal, Uplinks: []Uplink{{WAN: "wan0123456789abc", External: ext1}}}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Check()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Check() = %v, want error: %v", err, tc.wantErr)
			}
			if got := errors.Is(err, ErrLength); got != tc.wantLength {
				t.Errorf("errors.Is(%v, ErrLength) = %v, want %v", err, got, tc.wantLength)
			}
		})
	}
}

func TestRenderLeavesBadUplinksOut(t *testing.T) {
	r := goldenRulesets[7].r // length-mismatch
	for _, s := range Render(r) {
		if s.Uplink == "wan0" {
			t.Errorf("Render mapped the mismatched uplink: %q", s.Text)
		}
	}
}

func TestRenderExpressionsAgreeWithText(t *testing.T) {
	for _, tc := range goldenRulesets {
		for _, s := range Render(tc.r) {
			if len(s.exprs) == 0 {
				t.Errorf("%s: rule %q has no expressions", tc.name, s.Text)
			}
		}
	}
}

// FuzzRender feeds arbitrary prefixes, interface names and marks to Check and Render: they
// must not panic, Render must leave out exactly the uplinks Check refuses, and every rule's
// expressions must end in a NETMAP or a ct mark.
func FuzzRender(f *testing.F) {
	f.Add("fd00:aaaa:bbbb:cc00::/56", "2001:db8:100::/56", "2001:db8:200::/56", "wan0", "wan1", "lan0,lan1", true, uint32(1))
	f.Add("fd00::/60", "2001:db8:100:10::/60", "2001:db8::/48", "wan0", "wan0", "", true, uint32(0))
	f.Add("fd00::1/128", "2001:db8::1/128", "::ffff:1.2.3.4/128", "", "w", "lan0,,lan0", false, uint32(7))
	f.Fuzz(func(t *testing.T, in, e0, e1, w0, w1, lans string, hairpin bool, mark uint32) {
		p := func(s string) netip.Prefix { x, _ := netip.ParsePrefix(s); return x }
		var lanList []string
		if lans != "" {
			lanList = strings.Split(lans, ",")
		}
		r := Ruleset{Internal: p(in), LANs: lanList, Hairpin: hairpin,
			Uplinks: []Uplink{{WAN: w0, External: p(e0), Mark: mark}, {WAN: w1, External: p(e1), Mark: mark}}}
		_ = r.Check()
		specs := Render(r)
		valid := 0
		if checkInternal(r.Internal) == nil {
			for i := range r.Uplinks {
				if r.checkUplink(i) == nil {
					valid++
				}
			}
		}
		uplinks := map[string]bool{}
		for _, s := range specs {
			if s.Uplink != "" {
				uplinks[s.Uplink] = true
			}
			last := s.exprs[len(s.exprs)-1]
			switch last.(type) {
			case *expr.NAT, *expr.Ct, *expr.Verdict:
			default:
				t.Fatalf("rule %q ends in %T", s.Text, last)
			}
		}
		if len(uplinks) != valid {
			t.Fatalf("Render mapped %d uplinks, Check accepts %d: %+v", len(uplinks), valid, r)
		}
		_ = Format(DefaultName, specs)
	})
}

func TestGuardDropsOnlyUntranslatedInternalSources(t *testing.T) {
	t.Run("before any lease the guard alone is rendered", func(t *testing.T) {
		rules := Render(Ruleset{Internal: internal, WANs: []string{"wan0"}})
		if len(rules) != 1 || rules[0].Chain != ChainGuard || rules[0].Text != `oifname "wan0" ip6 saddr fd00:aaaa:bbbb:cc00::/56 drop` {
			t.Errorf("rules = %+v", rules)
		}
	})
	t.Run("the guard runs after source NAT, so translated packets pass it", func(t *testing.T) {
		if guardPriority <= *nftablesSrcNAT() {
			t.Errorf("guard priority %d does not come after srcnat %d", guardPriority, *nftablesSrcNAT())
		}
	})
	t.Run("a mapping change leaves the guard rules alone", func(t *testing.T) {
		a := groupRules(Ruleset{Internal: internal, WANs: []string{"wan0"}, Uplinks: []Uplink{{WAN: "wan0", External: ext1}}})
		b := groupRules(Ruleset{Internal: internal, WANs: []string{"wan0"}, Uplinks: []Uplink{{WAN: "wan0", External: ext2}}})
		key := func(gs []group) string {
			for _, g := range gs {
				if g.uplink.WAN == "" {
					return g.key
				}
			}
			return ""
		}
		if key(a) == "" || key(a) != key(b) {
			t.Errorf("guard group changed with the prefix:\n%s\n---\n%s", key(a), key(b))
		}
	})
}
