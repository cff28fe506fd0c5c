package nat

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/v6edge/v6edge/internal/nstest"
)

// TestDifferentialGolden loads testdata/<name>.nft with nft -f into one fresh namespace,
// lets Table.Set build the same Ruleset in another, and compares what nft lists for both:
// the kernel must hold exactly the rules an operator would have written. The listing must
// also equal Format(Render(r)), the unit tests' golden form.
func TestDifferentialGolden(t *testing.T) {
	nstest.RequireRoot(t, "nft")
	for _, tc := range goldenRulesets {
		path := filepath.Join("testdata", tc.name+".nft")
		if _, err := os.Stat(path); err != nil {
			continue
		}
		t.Run("Set builds what nft -f loads from "+path, func(t *testing.T) {
			script, err := filepath.Abs(path)
			if err != nil {
				t.Fatal(err)
			}
			byNft := newNetns(t, "nft")
			byNft.Run(t, "nft", "-f", script)
			want := listTable(t, byNft)

			bySet := newNetns(t, "set")
			tbl := nsTable(t, bySet)
			if err := tbl.Set(tc.r); err != nil {
				t.Fatalf("Set: %v", err)
			}
			got := listTable(t, bySet)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("nft list after Set differs from nft -f %s (-want +got):\n%s", path, diff)
			}
			if diff := cmp.Diff(want, Format(DefaultName, Render(tc.r))); diff != "" {
				t.Errorf("Format(Render) differs from nft list (-want +got):\n%s", diff)
			}
			if err := tbl.Check(); err != nil || tbl.Status().Restores != 0 {
				t.Errorf("Check on a fresh table: err %v, restores %d (the drift check misreads the kernel)", err, tbl.Status().Restores)
			}
		})
	}
}

// TestTableKeepsToItself checks that Set, a restore and Remove never touch another table,
// and that a table a previous run left behind (with a rule of its own) is replaced whole.
func TestTableKeepsToItself(t *testing.T) {
	nstest.RequireRoot(t, "nft")
	ns := newNetns(t, "own")
	ns.Run(t, "nft", "add table inet filter; add chain inet filter input { type filter hook input priority 0; policy accept; }; add rule inet filter input counter accept")
	foreign := ns.Run(t, "nft", "list", "table", "inet", "filter")
	// A previous run's table with a stale rule in it.
	ns.Run(t, "nft", "add table ip6 v6edge; add chain ip6 v6edge prerouting { type nat hook prerouting priority dstnat; policy accept; }; add rule ip6 v6edge prerouting iifname \"old0\" counter")

	r := goldenRulesets[2].r // hairpin-one-lan
	tbl := nsTable(t, ns)
	if err := tbl.Set(r); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Format(DefaultName, Render(r)), listTable(t, ns)); diff != "" {
		t.Errorf("the previous run's table was not replaced (-want +got):\n%s", diff)
	}
	ns.Run(t, "nft", "delete table ip6 v6edge")
	if err := tbl.Check(); err != nil {
		t.Fatal(err)
	}
	if tbl.Status().Restores != 1 {
		t.Errorf("Restores = %d, want 1", tbl.Status().Restores)
	}
	if err := tbl.Remove(); err != nil {
		t.Fatal(err)
	}
	if out, err := ns.Try("nft", "list", "table", "ip6", DefaultName); err == nil {
		t.Errorf("table still listed after Remove:\n%s", out)
	}
	if diff := cmp.Diff(foreign, ns.Run(t, "nft", "list", "table", "inet", "filter")); diff != "" {
		t.Errorf("the foreign table changed (-want +got):\n%s", diff)
	}
}

// TestSwapsLeaveExactlyTheRenderedRules swaps one uplink of two back and forth in the
// kernel: afterwards the table holds the rendered rules, no more and no fewer (new pairs
// sit at the head of the chains, so only the order may differ from a fresh table).
func TestSwapsLeaveExactlyTheRenderedRules(t *testing.T) {
	nstest.RequireRoot(t, "nft")
	ns := newNetns(t, "swap")
	tbl := nsTable(t, ns)
	r := twoUplinks(ext1, ext2)
	for _, e := range []netip.Prefix{ext2, ext3, ext2, ext3} {
		r.Uplinks[1].External = e
		if err := tbl.Set(r); err != nil {
			t.Fatal(err)
		}
	}
	sorted := func(s string) []string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		slices.Sort(lines)
		return lines
	}
	if diff := cmp.Diff(sorted(Format(DefaultName, Render(r))), sorted(listTable(t, ns))); diff != "" {
		t.Errorf("rules after swaps (-want +got):\n%s", diff)
	}
	if err := tbl.Check(); err != nil || tbl.Status().Restores != 0 {
		t.Errorf("Check after swaps: err %v, restores %d", err, tbl.Status().Restores)
	}
}

// TestCheckRestoresWhatWasChanged changes our table behind the Table's back
// and checks that Check notices, rebuilds it once and leaves it as rendered.
func TestCheckRestoresWhatWasChanged(t *testing.T) {
	nstest.RequireRoot(t, "nft")
	for _, tc := range []struct {
		name, ns string
		r        Ruleset
		nft      string
	}{
		// A rule google/nftables cannot parse (a ct key with a direction)
		// added to our chain: Check must still notice and rebuild.
		{"an unreadable foreign rule", "foreign", goldenRulesets[2].r, // hairpin-one-lan
			"add rule ip6 v6edge postrouting ct original ip6 saddr ::1 counter"},
		// Our prerouting chain's policy turned to drop: Check must put the
		// accepting chain back.
		{"a changed chain policy", "policy", goldenRulesets[1].r, // one-uplink
			"chain ip6 v6edge prerouting { policy drop; }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNetns(t, tc.ns)
			tbl := nsTable(t, ns)
			if err := tbl.Set(tc.r); err != nil {
				t.Fatal(err)
			}
			ns.Run(t, "nft", tc.nft)
			if err := tbl.Check(); err != nil {
				t.Fatal(err)
			}
			if got := tbl.Status().Restores; got != 1 {
				t.Errorf("Restores = %d, want 1", got)
			}
			if diff := cmp.Diff(Format(DefaultName, Render(tc.r)), listTable(t, ns)); diff != "" {
				t.Errorf("table after Check (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSetAfterTheTableVanished deletes our table behind the Table's back: the next Set
// must rebuild it rather than fail until Watch notices.
func TestSetAfterTheTableVanished(t *testing.T) {
	nstest.RequireRoot(t, "nft")
	ns := newNetns(t, "vanish")
	tbl := nsTable(t, ns)
	r := goldenRulesets[1].r // one-uplink
	if err := tbl.Set(r); err != nil {
		t.Fatal(err)
	}
	ns.Run(t, "nft", "delete table ip6 v6edge")
	r.Uplinks = []Uplink{{WAN: "wan0", External: ext2}}
	if err := tbl.Set(r); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if diff := cmp.Diff(Format(DefaultName, Render(r)), listTable(t, ns)); diff != "" {
		t.Errorf("table after Set (-want +got):\n%s", diff)
	}
}
