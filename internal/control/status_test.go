package control

import (
	"strings"
	"testing"
	"time"
)

// An operator reads status in the machine's time zone, and the zone is named.
func TestStatusTableTimesAreLocalWithZone(t *testing.T) {
	saved := time.Local
	defer func() { time.Local = saved }()
	time.Local = time.FixedZone("CET", 3600)
	s := Status{WAN: WAN{Interface: "wan0", State: "bound", Prefix: "2001:db8:100::/56", ValidUntil: "2026-12-04T20:00:00Z"}}
	var b strings.Builder
	if err := s.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "2026-12-04 21:00:00 CET") {
		t.Errorf("valid-until not in the local zone with its name:\n%s", out)
	}
}

func TestLookupGroupByNameOrID(t *testing.T) {
	for _, g := range []string{"root", "0"} {
		if gid, err := LookupGroup(g); err != nil || gid != 0 {
			t.Errorf("LookupGroup(%q) = %d, %v; want 0", g, gid, err)
		}
	}
	if _, err := LookupGroup("v6edge-no-such-group"); err == nil {
		t.Error("a missing group resolved")
	}
}
