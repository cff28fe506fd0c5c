package netif

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/v6edge/v6edge/internal/nstest"
)

// TestReleaseNetNS runs a Tracker in a fresh namespace v6rel-<random> with a
// veth LAN interface: it adds a DAD-tracked router address and a nodad
// floating address, Release takes the floating one away for good (also
// from the owned file), while Run goes on and after it returned.
func TestReleaseNetNS(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.NewNetns(t, "v6rel")
	h := ns.Handle
	// A veth pair (dummy may not be built): lan0 gets carrier with its peer up.
	ns.IP(t, "link", "add", "lan0", "type", "veth", "peer", "name", "lan0p")
	ns.IP(t, "link", "set", "lan0p", "up")
	ns.IP(t, "link", "set", "lan0", "up")
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nl.Close)

	router := netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::1/64")
	float := netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::f/64")
	dir := t.TempDir()
	tr := NewTracker(nl, slog.New(slog.NewTextHandler(t.Output(), nil)), TrackerOptions{
		StateDir: dir,
		Watcher:  NetlinkWatcher{Namespace: &h},
		Sysctls:  ProcSys{Namespace: &h},
	})
	wants := []Want{{Interface: "lan0", Prefix: router}, {Interface: "lan0", Prefix: float, NoDAD: true}}
	tr.Set(wants)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	stopRun := sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { stopRun() })

	has := func(p netip.Prefix) bool {
		return strings.Contains(ns.IP(t, "-6", "addr", "show", "dev", "lan0"), p.String())
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		nstest.Eventually(t, 5*time.Second, 20*time.Millisecond, what, cond, func() string {
			out, _ := ns.Try("ip", "-6", "addr", "show", "dev", "lan0")
			return out
		})
	}
	waitFor("both addresses are there", func() bool { return has(router) && has(float) })
	if out := ns.IP(t, "-6", "addr", "show", "dev", "lan0"); !strings.Contains(out, float.String()+" scope global nodad") {
		t.Errorf("floating address not added nodad:\n%s", out)
	}

	if err := tr.Release(func(w Want) bool { return w.NoDAD }); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if has(float) {
		t.Fatalf("floating address still there right after Release")
	}
	owned, err := os.ReadFile(filepath.Join(dir, ownedFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(owned), "lan0 "+router.String()+"\n"; got != want {
		t.Errorf("owned file = %q, want %q", got, want)
	}
	// Run sees the deletion event and must not add it again.
	time.Sleep(300 * time.Millisecond)
	if has(float) || !has(router) {
		t.Fatalf("after Run looked again:\n%s", ns.IP(t, "-6", "addr", "show", "dev", "lan0"))
	}

	// After Run: an address of the restarted daemon's earlier run, known
	// only from the owned file and the kernel's nodad flag.
	tr.Set(wants)
	waitFor("the floating address is back", func() bool { return has(float) })
	if err := stopRun(); err != nil {
		t.Fatal(err)
	}
	again := NewTracker(nl, slog.New(slog.NewTextHandler(t.Output(), nil)), TrackerOptions{StateDir: dir,
		Watcher: NetlinkWatcher{Namespace: &h}, Sysctls: ProcSys{Namespace: &h}})
	var seen []Want
	if err := again.Release(func(w Want) bool { seen = append(seen, w); return w.NoDAD }); err != nil {
		t.Fatalf("Release after a restart: %v", err)
	}
	if len(seen) != 2 || seen[0].NoDAD || !seen[1].NoDAD {
		t.Errorf("match saw %+v, want the router address without and the floating one with NoDAD", seen)
	}
	if has(float) || !has(router) {
		t.Errorf("after Release by the restarted Tracker:\n%s", ns.IP(t, "-6", "addr", "show", "dev", "lan0"))
	}
	// The kernel still lists the router address with its DAD done; that
	// one is the restarted Tracker's to keep.
	addrs, err := nl.AddrList(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "lan0", Index: linkIndex(t, nl, "lan0")}}, unix.AF_INET6)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if p, _ := prefixOf(a.IPNet); p == float {
			t.Errorf("netlink still lists %v", p)
		}
	}
}

func linkIndex(t *testing.T, nl *netlink.Handle, name string) int {
	t.Helper()
	l, err := nl.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Index
}
