package netif

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/v6edge/v6edge/internal/nstest"
)

// TestAddressLifetimesNetNS: in the kernel, an address the Tracker adds
// with lifetimes has them, a refresh moves them in place, and the address
// stays out of DAD (not tentative) across the refresh.
func TestAddressLifetimesNetNS(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.NewNetns(t, "v6lft")
	ns.IP(t, "link", "add", "wan0", "type", "veth", "peer", "name", "wan0p")
	ns.IP(t, "link", "set", "wan0p", "up")
	ns.IP(t, "link", "set", "wan0", "up")
	ns.NoDAD(t)
	nl, err := netlink.NewHandleAt(ns.Handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nl.Close)
	tr := NewTracker(nl, slog.New(slog.NewTextHandler(t.Output(), nil)), TrackerOptions{
		Watcher: NetlinkWatcher{Namespace: &ns.Handle}, Sysctls: ProcSys{Namespace: &ns.Handle},
	})
	addr := netip.MustParsePrefix("2001:db8:0:1::1:5/128")
	now := time.Now()
	want := Want{Interface: "wan0", Prefix: addr, PreferredUntil: now.Add(30 * time.Minute), ValidUntil: now.Add(time.Hour)}
	tr.Set([]Want{want})
	nstest.RunTask(t, context.Background(), "tracker", tr.Run)

	type kernelAddr struct {
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
		Valid     int    `json:"valid_life_time"`
		Preferred int    `json:"preferred_life_time"`
		Tentative bool   `json:"tentative"`
	}
	lookup := func() (kernelAddr, bool) {
		out := ns.IP(t, "-j", "-6", "addr", "show", "dev", "wan0")
		var links []struct {
			AddrInfo []kernelAddr `json:"addr_info"`
		}
		if err := json.Unmarshal([]byte(out), &links); err != nil {
			t.Fatalf("ip -j addr: %v\n%s", err, out)
		}
		for _, l := range links {
			for _, a := range l.AddrInfo {
				if a.Local == addr.Addr().String() {
					return a, true
				}
			}
		}
		return kernelAddr{}, false
	}
	near := func(got, want int) bool { return got <= want && got >= want-5 }
	var got kernelAddr
	nstest.Eventually(t, 5*time.Second, 20*time.Millisecond, "the address with its lifetimes", func() bool {
		var ok bool
		got, ok = lookup()
		return ok && near(got.Valid, 3600) && near(got.Preferred, 1800) && got.Prefixlen == 128
	}, func() string { return "kernel has " + ns.IP(t, "-6", "addr", "show", "dev", "wan0") })

	// The server renews for two hours.
	want.PreferredUntil, want.ValidUntil = time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)
	tr.Set([]Want{want})
	nstest.Eventually(t, 5*time.Second, 20*time.Millisecond, "the renewed lifetimes", func() bool {
		var ok bool
		got, ok = lookup()
		return ok && near(got.Valid, 7200) && near(got.Preferred, 3600) && !got.Tentative
	}, func() string { return "kernel has " + ns.IP(t, "-6", "addr", "show", "dev", "wan0") })
}
