package hook

import (
	"net/netip"
	"testing"
	"time"
)

func TestAnnouncer(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	p1 := Prefix{Prefix: netip.MustParsePrefix("2001:db8:1::/56"), Preferred: time.Hour, Valid: 2 * time.Hour}
	p2 := Prefix{Prefix: netip.MustParsePrefix("2001:db8:2::/56"), Preferred: time.Hour, Valid: 2 * time.Hour}
	type step struct {
		l      Lease
		reason string // "" = no event
		old    netip.Prefix
	}
	for _, tc := range []struct {
		name     string
		restored netip.Prefix
		steps    []step
	}{
		{"a first lease is BOUND6, its renewal RENEW6, a repeat nothing", netip.Prefix{}, []step{
			{Lease{State: "soliciting"}, "", netip.Prefix{}},
			{Lease{State: "bound", Prefix: p1, Acquired: t0}, Bound, netip.Prefix{}},
			{Lease{State: "bound", Prefix: p1, Acquired: t0}, "", netip.Prefix{}},
			{Lease{State: "bound", Prefix: p1, Acquired: t0.Add(time.Hour)}, Renew, netip.Prefix{}},
		}},
		{"a moved prefix is BOUND6 with the old one, loss EXPIRE6", netip.Prefix{}, []step{
			{Lease{State: "bound", Prefix: p1, Acquired: t0}, Bound, netip.Prefix{}},
			{Lease{State: "bound", Prefix: p2, Acquired: t0.Add(time.Hour)}, Bound, p1.Prefix},
			{Lease{State: "expired"}, Expire, p2.Prefix},
			{Lease{State: "soliciting"}, "", netip.Prefix{}},
		}},
		{"the saved lease confirmed after a restart is REBOOT6", p1.Prefix, []step{
			{Lease{State: "rebinding", Prefix: p1, Acquired: t0}, "", netip.Prefix{}},
			{Lease{State: "bound", Prefix: p1, Acquired: t0.Add(time.Minute)}, Reboot, netip.Prefix{}},
		}},
		{"a release is RELEASE6", netip.Prefix{}, []step{
			{Lease{State: "bound", Prefix: p1, Acquired: t0}, Bound, netip.Prefix{}},
			{Lease{State: "released"}, Release, p1.Prefix},
		}},
		{"a lease held in standby is no news", netip.Prefix{}, []step{
			{Lease{State: "standby", Prefix: p1, Acquired: t0}, "", netip.Prefix{}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Announcer{Interface: "wan0", IAID: 7}
			if tc.restored.IsValid() {
				a.Restored(tc.restored, t0)
			}
			for i, s := range tc.steps {
				ev, ok := a.Observe(s.l)
				if got := ev.Reason; ok != (s.reason != "") || got != s.reason {
					t.Fatalf("step %d (%+v): event %q (%v), want %q", i, s.l, got, ok, s.reason)
				}
				if !ok {
					continue
				}
				if ev.Interface != "wan0" || ev.IAID != 7 {
					t.Errorf("step %d: event for %s/%d", i, ev.Interface, ev.IAID)
				}
				var old netip.Prefix
				if len(ev.Old) > 0 {
					old = ev.Old[0].Prefix
				}
				if old != s.old {
					t.Errorf("step %d: old prefix %v, want %v", i, old, s.old)
				}
				if s.l.Prefix.Prefix.IsValid() && (len(ev.New) != 1 || ev.New[0] != s.l.Prefix) {
					t.Errorf("step %d: new %v, want %v", i, ev.New, s.l.Prefix)
				}
			}
		})
	}
}
