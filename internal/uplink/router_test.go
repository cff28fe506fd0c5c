package uplink

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/v6edge/v6edge/internal/netif"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// state prints the fake kernel's rules and our routes, sorted, for comparisons.
func state(t *testing.T, f *FakeHandle) []string {
	t.Helper()
	rules, _ := f.RuleList(unix.AF_INET6)
	var out []string
	for _, r := range rules {
		out = append(out, RuleSpec(keyOfRule(r)).String())
	}
	for _, r := range f.Routes() {
		if r.Protocol != netif.RouteProtocol || !ownedTable(r.Table) {
			continue
		}
		link, _ := f.LinkByIndex(r.LinkIndex)
		out = append(out, RouteSpec{Table: r.Table, Gateway: addrOf(r.Gw), Interface: link.Attrs().Name}.String()+" table "+strconv.Itoa(r.Table))
	}
	sort.Strings(out)
	return out
}

// want renders p the way state prints the kernel.
func want(p Policy) []string {
	rules, routes := Render(p)
	var out []string
	for _, r := range rules {
		out = append(out, r.String())
	}
	for _, r := range routes {
		out = append(out, r.String()+" table "+strconv.Itoa(r.Table))
	}
	sort.Strings(out)
	return out
}

func TestRouterSet(t *testing.T) {
	two := Policy{Uplinks: uplinks(2), LANs: []string{"lan0"}, Internal: internal}
	failed := Policy{Uplinks: uplinks(2), LANs: []string{"lan0"}, Internal: internal}
	failed.Uplinks[0].Healthy = false
	regw := Policy{Uplinks: uplinks(2), LANs: []string{"lan0"}, Internal: internal}
	regw.Uplinks[1].Gateway = netip.MustParseAddr("fe80::99")
	one := Policy{Uplinks: uplinks(1), LANs: []string{"lan0"}, Internal: internal}

	tests := []struct {
		name       string
		steps      []Policy
		wantWrites []int // writes of each step
	}{
		{"a second Set with the same policy sends nothing", []Policy{two, two}, []int{6, 0}},
		{"a failover rewrites only the rule of new flows", []Policy{two, failed, failed}, []int{6, 2, 0}},
		{"a new gateway replaces only that uplink's route", []Policy{two, regw}, []int{6, 1}},
		{"removing an uplink removes its rule and its route", []Policy{two, one}, []int{6, 2}},
		{"an empty policy removes everything of ours", []Policy{two, {}}, []int{6, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFakeHandle("wan0", "wan1", "wan2", "lan0")
			r := NewRouter(f, discard())
			for i, p := range tt.steps {
				before := f.Writes
				if err := r.Set(p); err != nil {
					t.Fatalf("step %d: Set: %v", i, err)
				}
				if got := f.Writes - before; got != tt.wantWrites[i] {
					t.Errorf("step %d: %d writes, want %d", i, got, tt.wantWrites[i])
				}
				if diff := cmp.Diff(want(p), state(t, f)); diff != "" {
					t.Errorf("step %d: kernel (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func TestRouterLeavesOthersAlone(t *testing.T) {
	t.Run("rules outside our range and routes of others survive every Set", func(t *testing.T) {
		f := NewFakeHandle("wan0", "wan1", "lan0")
		foreign := netlink.Rule{Family: unix.AF_INET6, Priority: 100, Table: 500, SuppressPrefixlen: -1}
		f.PutRule(foreign)
		wan0, _ := f.LinkByName("wan0")
		other := netlink.Route{Family: unix.AF_INET6, Table: 1000, Protocol: 4, LinkIndex: wan0.Attrs().Index,
			Dst: &net.IPNet{IP: net.ParseIP("2001:db8:1::"), Mask: net.CIDRMask(48, 128)}}
		f.PutRoute(other)
		mainOurs := netlink.Route{Family: unix.AF_INET6, Table: unix.RT_TABLE_MAIN, Protocol: netif.RouteProtocol,
			Type: unix.RTN_UNREACHABLE, Dst: &net.IPNet{IP: net.ParseIP("fd00::"), Mask: net.CIDRMask(56, 128)}}
		f.PutRoute(mainOurs)
		r := NewRouter(f, discard())
		for _, p := range []Policy{{Uplinks: uplinks(2), Internal: internal}, {}} {
			if err := r.Set(p); err != nil {
				t.Fatal(err)
			}
		}
		rules, _ := f.RuleList(unix.AF_INET6)
		if diff := cmp.Diff([]netlink.Rule{foreign}, rules); diff != "" {
			t.Errorf("rules (-want +got):\n%s", diff)
		}
		var tables []int
		for _, rt := range f.Routes() {
			tables = append(tables, rt.Table)
		}
		sort.Ints(tables)
		if diff := cmp.Diff([]int{254, 1000}, tables); diff != "" {
			t.Errorf("tables of the remaining routes (-want +got):\n%s", diff)
		}
	})
	t.Run("leftovers of an earlier run are cleaned up", func(t *testing.T) {
		f := NewFakeHandle("wan0", "wan1", "lan0")
		f.PutRule(netlink.Rule{Family: unix.AF_INET6, Priority: PriorityPreferred, Table: 1007, SuppressPrefixlen: -1})
		f.PutRoute(netlink.Route{Family: unix.AF_INET6, Table: 1007, Protocol: netif.RouteProtocol, Gw: net.ParseIP("fe80::7")})
		p := Policy{Uplinks: uplinks(2), Internal: internal}
		if err := NewRouter(f, discard()).Set(p); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want(p), state(t, f)); diff != "" {
			t.Errorf("kernel (-want +got):\n%s", diff)
		}
	})
}
