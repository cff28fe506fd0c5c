package integration

import (
	"slices"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/testbed"
)

// TestBenchOpsMeasuresBothSetups runs one round of the operations bench
// (idle CPU, renumbering, restart) against v6edge and the incumbent in one
// lab, and checks that each measured what the table reports.
func TestBenchOpsMeasuresBothSetups(t *testing.T) {
	parallel(t)
	ctx := t.Context()
	l := newLab(t, "v6bops", testbed.Options{})
	for _, which := range []string{testbed.SetupV6edge, testbed.SetupIncumbent} {
		t.Run(which+" renumbers, restarts and idles measurably", func(t *testing.T) {
			before := l.Pool
			res, err := testbed.MeasureOps(ctx, l, which, demo, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", res)
			if !res.Renumber.OK || before.Contains(res.Renumber.Prefix.Addr()) {
				t.Errorf("renumbering from %s: %+v, want a Reply with a prefix from the other pool", before, res.Renumber)
			}
			if !res.Restart.OK || !res.Kept || slices.Contains(res.Restart.Client, "Solicit") {
				t.Errorf("restart: %+v (kept %v), want a Reply with the same prefix and no Solicit", res.Restart, res.Kept)
			}
			if res.IdleWindow != 2*time.Second || res.IdleRun <= 0 && which == testbed.SetupV6edge {
				t.Errorf("idle: %v of CPU (%v by schedstat) over %v; a Go daemon's runtime wakes within 2 s", res.IdleCPU, res.IdleRun, res.IdleWindow)
			}
		})
	}
}
