package nat

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/nstest"
)

// benchSwap alternates r between two external prefixes on a fresh table in its own
// namespace. ns/op is the whole Set (batch 1, read-back, batch 2); live-ns/op is the part
// until the new mapping is in force (Status().LastSwapDuration).
func benchSwap(b *testing.B, r Ruleset, s strategy) {
	nstest.RequireRoot(b, "nft")
	ns := newNetns(b, "bench")
	tbl := nsTable(b, ns)
	tbl.SetConntrackFlusher(nil) // measure the rules alone
	tbl.strategy = s
	exts := []netip.Prefix{ext1, ext2}
	if err := tbl.Set(r); err != nil {
		b.Fatal(err)
	}
	var live time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r.Uplinks[0].External = exts[i%2]
		if err := tbl.Set(r); err != nil {
			b.Fatal(err)
		}
		live += tbl.Status().LastSwapDuration
	}
	b.ReportMetric(float64(live.Nanoseconds())/float64(b.N), "live-ns/op")
	b.ReportMetric(float64(tbl.Status().LastCleanupDuration.Nanoseconds()), "last-cleanup-ns")
}

var strategies = []struct {
	name string
	s    strategy
}{{"insert-then-delete", insertThenDelete}, {"flush-and-add", flushAndAdd}}

// BenchmarkSwap1 swaps the prefix of one uplink (with hairpin for one LAN).
func BenchmarkSwap1(b *testing.B) {
	for _, s := range strategies {
		b.Run(s.name, func(b *testing.B) {
			benchSwap(b, Ruleset{Internal: internal, LANs: []string{"lan0"}, Hairpin: true,
				Uplinks: []Uplink{{WAN: "wan0", External: ext1}}}, s.s)
		})
	}
}

// lans256 is a LAN list of 256 interfaces: with hairpin, 256 hairpin rules per uplink.
func lans256() []string {
	lans := make([]string, 256)
	for i := range lans {
		lans[i] = fmt.Sprintf("lan%d", i)
	}
	return lans
}

// BenchmarkSwap256 swaps the prefix of one uplink whose pair carries hairpin rules for 256
// LAN interfaces: 259 rules replaced per swap.
func BenchmarkSwap256(b *testing.B) {
	for _, s := range strategies {
		b.Run(s.name, func(b *testing.B) {
			benchSwap(b, Ruleset{Internal: internal, LANs: lans256(), Hairpin: true,
				Uplinks: []Uplink{{WAN: "wan0", External: ext1}}}, s.s)
		})
	}
}

// BenchmarkSwapScript is the seed's approach for comparison: fork/exec `nft -f -` with a
// flush-and-add script per swap, in the namespace, same one-uplink ruleset as BenchmarkSwap1.
func BenchmarkSwapScript(b *testing.B) {
	nstest.RequireRoot(b)
	nftPath := nstest.Program(b, "nft")
	ns := newNetns(b, "bench")
	r := Ruleset{Internal: internal, LANs: []string{"lan0"}, Hairpin: true, Uplinks: []Uplink{{WAN: "wan0", External: ext1}}}
	scripts := make([]string, 2)
	for i, ext := range []netip.Prefix{ext1, ext2} {
		r.Uplinks[0].External = ext
		scripts[i] = "table ip6 v6edge\nflush table ip6 v6edge\n" + Format(DefaultName, Render(r))
	}
	run := func(script string) {
		// The child is forked from this thread, which sits in ns: no `ip netns exec`
		// wrapper in the measurement.
		nstest.In(b, ns, func() error {
			cmd := exec.Command(nftPath, "-f", "-")
			cmd.Stdin = strings.NewReader(script)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("nft -f: %v: %s", err, out)
			}
			return nil
		})
	}
	run(scripts[0])
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		run(scripts[(i+1)%2])
	}
}

func BenchmarkRender(b *testing.B) {
	r := Ruleset{Internal: internal, LANs: lans256(), Hairpin: true,
		Uplinks: []Uplink{{WAN: "wan0", External: ext1}, {WAN: "wan1", External: ext2, Mark: 2}}}
	for b.Loop() {
		Render(r)
	}
}
