package netif

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var (
	internal  = netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/56")
	delegated = netip.MustParsePrefix("2001:db8:100::/56")
)

// ownedDsts lists the destinations of the routes with v6edge's protocol.
func ownedDsts(f *FakeHandle) []string {
	var out []string
	for _, r := range f.Routes() {
		if r.Protocol == RouteProtocol {
			p, _ := prefixOf(r.Dst)
			kind := "unicast"
			if r.Type == unix.RTN_UNREACHABLE {
				kind = "unreachable"
			}
			out = append(out, kind+" "+p.String())
		}
	}
	slices.Sort(out)
	return out
}

func TestRoutes(t *testing.T) {
	t.Run("setting the same unreachable prefixes twice leaves one route each", func(t *testing.T) {
		f := NewFakeHandle("lan0")
		r := NewRoutes(f, discard())
		for range 2 {
			if err := r.SetUnreachable([]netip.Prefix{internal, delegated}); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{"unreachable 2001:db8:100::/56", "unreachable fd00:aaaa:bbbb:cc00::/56"}
		if diff := cmp.Diff(want, ownedDsts(f)); diff != "" {
			t.Errorf("routes (-want +got):\n%s", diff)
		}
		if n := f.Calls["RouteDel"]; n != 0 {
			t.Errorf("RouteDel called %d times, want 0", n)
		}
	})
	t.Run("a prefix no longer wanted is removed, others are kept", func(t *testing.T) {
		f := NewFakeHandle("lan0")
		r := NewRoutes(f, discard())
		r.SetUnreachable([]netip.Prefix{internal, delegated})
		if err := r.SetUnreachable([]netip.Prefix{internal}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"unreachable fd00:aaaa:bbbb:cc00::/56"}, ownedDsts(f)); diff != "" {
			t.Errorf("routes (-want +got):\n%s", diff)
		}
	})
	t.Run("a leftover of an earlier run is removed but other protocols' routes are not", func(t *testing.T) {
		f := NewFakeHandle("lan0")
		old := netip.MustParsePrefix("2001:db8:999::/56")
		f.PutRoute(netlink.Route{Dst: ipNet(old), Type: unix.RTN_UNREACHABLE, Protocol: RouteProtocol, Table: 100})
		f.PutRoute(netlink.Route{Dst: ipNet(delegated), Type: unix.RTN_UNREACHABLE, Protocol: unix.RTPROT_STATIC})
		r := NewRoutes(f, discard())
		if err := r.SetUnreachable([]netip.Prefix{internal}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"unreachable fd00:aaaa:bbbb:cc00::/56"}, ownedDsts(f)); diff != "" {
			t.Errorf("owned routes (-want +got):\n%s", diff)
		}
		if len(f.Routes()) != 2 {
			t.Errorf("routes = %v, want the static one kept", f.Routes())
		}
	})
	t.Run("generic routes and unreachable routes do not remove each other", func(t *testing.T) {
		f := NewFakeHandle("lan0")
		r := NewRoutes(f, discard())
		r.SetUnreachable([]netip.Prefix{internal})
		pd := Route{Dst: netip.MustParsePrefix("fd00:aaaa:bbbb:cc10::/60"), Gw: netip.MustParseAddr("fe80::2"), Interface: "lan0"}
		if err := r.SetRoutes([]Route{pd}); err != nil {
			t.Fatal(err)
		}
		r.SetRoutes([]Route{pd})
		want := []string{"unicast fd00:aaaa:bbbb:cc10::/60", "unreachable fd00:aaaa:bbbb:cc00::/56"}
		if diff := cmp.Diff(want, ownedDsts(f)); diff != "" {
			t.Errorf("routes (-want +got):\n%s", diff)
		}
		r.SetUnreachable(nil)
		if diff := cmp.Diff([]string{"unicast fd00:aaaa:bbbb:cc10::/60"}, ownedDsts(f)); diff != "" {
			t.Errorf("routes after SetUnreachable(nil) (-want +got):\n%s", diff)
		}
		r.SetRoutes(nil)
		if got := ownedDsts(f); len(got) != 0 {
			t.Errorf("routes after SetRoutes(nil) = %v", got)
		}
	})
	t.Run("another owner's table is left alone", func(t *testing.T) {
		// internal/uplink keeps a default route per uplink table under the
		// same protocol number; SetRoutes must not take them for leftovers.
		f := NewFakeHandle("lan0", "wan0")
		f.PutRoute(netlink.Route{Dst: ipNet(netip.MustParsePrefix("::/0")), Gw: netip.MustParseAddr("fe80::1").AsSlice(),
			LinkIndex: 3, Protocol: RouteProtocol, Table: 1000})
		r := NewRoutes(f, discard())
		if err := r.SetRoutes(nil); err != nil {
			t.Fatal(err)
		}
		if got := ownedDsts(f); len(got) != 1 || got[0] != "unicast ::/0" {
			t.Errorf("routes after SetRoutes(nil) = %v, want the uplink table's default kept", got)
		}
	})
	t.Run("a unicast route without interface or gateway is refused", func(t *testing.T) {
		r := NewRoutes(NewFakeHandle(), discard())
		if err := r.SetRoutes([]Route{{Dst: internal}}); err == nil {
			t.Error("no error")
		}
	})
}

func TestDefaultRouter(t *testing.T) {
	f := NewFakeHandle("wan0")
	if _, ok, err := DefaultRouter(f, "wan0"); ok || err != nil {
		t.Fatalf("without a route: ok=%v err=%v", ok, err)
	}
	f.PutRoute(netlink.Route{LinkIndex: 2, Gw: netip.MustParseAddr("fe80::1").AsSlice(), Protocol: unix.RTPROT_RA})
	gw, ok, err := DefaultRouter(f, "wan0")
	if err != nil || !ok || gw != netip.MustParseAddr("fe80::1") {
		t.Errorf("DefaultRouter = %v, %v, %v; want fe80::1", gw, ok, err)
	}
}

func TestLinkLocal(t *testing.T) {
	tests := []struct {
		name  string
		addrs map[netip.Prefix]int
		want  netip.Addr
		state AddrState
	}{
		{"no link-local is missing", nil, netip.Addr{}, StateMissing},
		{"a tentative one is reported tentative", map[netip.Prefix]int{ll: tentative}, ll.Addr(), StateTentative},
		{"a usable one wins over a failed one",
			map[netip.Prefix]int{ll: failed, netip.MustParsePrefix("fe80::2/64"): ready},
			netip.MustParseAddr("fe80::2"), StateOK},
		{"global addresses do not count", map[netip.Prefix]int{lanAddr: ready}, netip.Addr{}, StateMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFakeHandle("lan0")
			for p, fl := range tt.addrs {
				f.PutAddr("lan0", p, fl)
			}
			a, s, err := LinkLocal(f, "lan0")
			if err != nil || a != tt.want || s != tt.state {
				t.Errorf("LinkLocal = %v, %v, %v; want %v, %v", a, s, err, tt.want, tt.state)
			}
		})
	}
}
