package netif

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

// TestTrackerAddressLifetimes: a Want with lifetimes (a DHCPv6 IA_NA
// address) goes on with them, so the kernel drops it by itself if v6edge is
// gone; a renewal refreshes them in place without a new DAD run, and a
// deprecated one keeps its valid lifetime with preferred 0.
func TestTrackerAddressLifetimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFakeHandle("wan0")
		tr := NewTracker(f, discard(), TrackerOptions{Watcher: f, Sysctls: &FakeSysctls{}})
		addr := netip.MustParsePrefix("2001:db8:0:1::1:5/128")
		now := time.Now()
		want := Want{Interface: "wan0", Prefix: addr, PreferredUntil: now.Add(30 * time.Minute), ValidUntil: now.Add(time.Hour)}
		tr.Set([]Want{want})
		stop := runTracker(tr)
		defer stop()

		check := func(what string, pref, valid int) {
			t.Helper()
			p, v, ok := f.Lifetimes("wan0", addr.Addr())
			if !ok || p != pref || v != valid {
				t.Errorf("%s: lifetimes %d/%d (present %v), want %d/%d", what, p, v, ok, pref, valid)
			}
		}
		check("added", 1800, 3600)
		f.FinishDAD("wan0", addr.Addr(), true)
		synctest.Wait()
		adds := f.Calls["AddrAdd"]

		// Ten minutes later the server renews it for another hour.
		time.Sleep(10 * time.Minute)
		want.PreferredUntil, want.ValidUntil = time.Now().Add(30*time.Minute), time.Now().Add(time.Hour)
		tr.Set([]Want{want})
		synctest.Wait()
		check("renewed", 1800, 3600)
		if f.Calls["AddrAdd"] != adds || f.Calls["AddrReplace"] != 1 {
			t.Errorf("renewal: %d more adds and %d replaces, want 0 and 1 (in place)", f.Calls["AddrAdd"]-adds, f.Calls["AddrReplace"])
		}
		if st := f.Addrs("wan0")[addr]; st != StateOK {
			t.Errorf("after the renewal the address is %v, want still ok (no new DAD)", st)
		}

		// The same lifetimes again: nothing to do.
		tr.Set([]Want{want})
		synctest.Wait()
		if f.Calls["AddrReplace"] != 1 {
			t.Errorf("an unchanged Want replaced the address again (%d replaces)", f.Calls["AddrReplace"])
		}

		// The server deprecates it (preferred 0).
		want.PreferredUntil = time.Now()
		tr.Set([]Want{want})
		synctest.Wait()
		check("deprecated", 0, 3600)
	})
}
