package nat

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDifferentialGolden loads testdata/<name>.nft with nft -f into one fresh namespace,
// lets Table.Set build the same Ruleset in another, and compares what nft lists for both:
// the kernel must hold exactly the rules an operator would have written. The listing must
// also equal Format(Render(r)), the unit tests' golden form.
func TestDifferentialGolden(t *testing.T) {
	requireRoot(t, "nft")
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
			nsRun(t, byNft, "nft", "-f", script)
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
