package daemon

import (
	"testing"

	"github.com/v6edge/v6edge/dhcp6srv"
	"github.com/v6edge/v6edge/internal/control"
)

// TestDropReasonsAddUpToDropped: the reasons of the status document add up
// to dropped, the unnamed ones as "other", and a reason read ahead of
// Dropped never wraps "other" around.
func TestDropReasonsAddUpToDropped(t *testing.T) {
	m := dropReasons(dhcp6srv.Stats{Dropped: 10, RateLimited: 4, Malformed: 3, Invalid: 1, NotForUs: 1})
	var sum uint64
	for _, r := range control.DropReasons {
		v, ok := m[r]
		if !ok {
			t.Errorf("no %q in %v", r, m)
		}
		sum += v
	}
	if sum != 10 || m["other"] != 1 || len(m) != len(control.DropReasons) {
		t.Errorf("dropReasons = %v (sum %d), want other 1, sum 10", m, sum)
	}
	if m := dropReasons(dhcp6srv.Stats{Dropped: 1, RateLimited: 2}); m["other"] != 0 {
		t.Errorf("other = %d with a reason ahead of Dropped, want 0", m["other"])
	}
}
