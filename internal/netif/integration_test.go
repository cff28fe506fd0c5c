package netif

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/v6edge/v6edge/internal/nstest"
)

// These tests run the Tracker and Routes against the real kernel in a pair
// of fresh network namespaces, v6nif-r-<random> (the router) and
// v6nif-h-<random> (a host on the same veth link). They touch nothing
// outside those namespaces.

type lab struct {
	router, host nstest.Netns
	rns          netns.NsHandle
	h            *netlink.Handle // netlink in the router namespace
}

// newLab builds router r0 <-veth-> h0 host. routerMAC may be empty.
// The host side is up; the router side is left down so that a test can
// prepare a conflict before the router's DAD starts.
func newLab(t *testing.T, routerMAC string) *lab {
	t.Helper()
	nstest.RequireRoot(t)
	l := &lab{router: nstest.NewNetns(t, "v6nif-r"), host: nstest.NewNetns(t, "v6nif-h")}
	l.rns = l.router.Handle
	nstest.Veth(t, l.router, "r0", l.host, "h0")
	if routerMAC != "" {
		l.router.IP(t, "link", "set", "r0", "address", routerMAC)
	}
	l.host.IP(t, "link", "set", "h0", "up")
	l.router.IP(t, "link", "set", "lo", "up")
	var err error
	l.h, err = netlink.NewHandleAt(l.rns)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", l.router, err)
	}
	t.Cleanup(l.h.Close)
	return l
}

func (l *lab) tracker(t *testing.T, opts TrackerOptions) (*Tracker, context.CancelFunc) {
	t.Helper()
	opts.Watcher = NetlinkWatcher{Namespace: &l.rns}
	opts.Sysctls = ProcSys{Namespace: &l.rns}
	tr := NewTracker(l.h, nstest.Logger(t, slog.LevelInfo), opts)
	ctx, cancel := context.WithCancel(context.Background())
	nstest.RunTask(t, ctx, "Tracker", tr.Run)
	return tr, cancel
}

// eventually polls cond every 50 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	var last string
	return nstest.Eventually(t, timeout, 50*time.Millisecond, what,
		func() (ok bool) { ok, last = cond(); return ok },
		func() string { return "last seen:\n" + last })
}

func statusOf(tr *Tracker, p netip.Prefix) AddrStatus {
	for _, s := range tr.Status() {
		if s.Address == p {
			return s
		}
	}
	return AddrStatus{}
}

func dump(tr *Tracker) string {
	var b strings.Builder
	for _, s := range tr.Status() {
		fmt.Fprintf(&b, "%s %s %s %s\n", s.Interface, s.Address, s.State, s.Detail)
	}
	return b.String() + strings.Join(tr.Problems(), "\n")
}

func TestIntegrationDADFailureIsRemovedAndRetried(t *testing.T) {
	l := newLab(t, "")
	taken := netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::1/64")
	free := netip.MustParsePrefix("fd00:aaaa:bbbb:cc02::1/64")
	l.host.IP(t, "addr", "add", taken.String(), "dev", "h0", "nodad")
	l.router.IP(t, "link", "set", "r0", "up")

	start := time.Now()
	tr, _ := l.tracker(t, TrackerOptions{RetryMin: 500 * time.Millisecond, RetryMax: 2 * time.Second})
	tr.Set([]Want{{Interface: "r0", Prefix: taken}, {Interface: "r0", Prefix: free}})

	eventually(t, 5*time.Second, "the taken address reported dadfailed", func() (bool, string) {
		return statusOf(tr, taken).State == StateDADFailed, dump(tr)
	})
	t.Logf("dadfailed reported %v after start", time.Since(start).Round(time.Millisecond))
	if !slicesContains(tr.Problems(), "r0: fd00:aaaa:bbbb:cc01::1 failed duplicate address detection (another host uses it)") {
		t.Errorf("problems = %q", tr.Problems())
	}
	eventually(t, 5*time.Second, "the free address ok", func() (bool, string) {
		return statusOf(tr, free).State == StateOK, dump(tr)
	})
	// The failed address and its prefix route are gone from the router
	// while it waits for the retry (500 ms, then 1 s, 2 s, 2 s ...).
	eventually(t, 2*time.Second, "no dadfailed leftover and no route for the failed /64", func() (bool, string) {
		addrs := l.router.IP(t, "-6", "addr", "show", "dev", "r0")
		routes := l.router.IP(t, "-6", "route", "show", "table", "all")
		ok := !strings.Contains(addrs, "dadfailed") && !strings.Contains(routes, "cc01") && strings.Contains(routes, "cc02::/64")
		return ok, addrs + routes
	})
	if tr.DADFailures() < 1 {
		t.Errorf("DADFailures = %d", tr.DADFailures())
	}

	// The conflict goes away: the address comes back by itself.
	l.host.IP(t, "addr", "del", taken.String(), "dev", "h0")
	back := eventually(t, 10*time.Second, "the address back after the host dropped it", func() (bool, string) {
		return statusOf(tr, taken).State == StateOK, dump(tr)
	})
	t.Logf("address ok again %v after the conflict ended", back.Round(time.Millisecond))
	addrs := l.router.IP(t, "-6", "addr", "show", "dev", "r0")
	if !strings.Contains(addrs, "fd00:aaaa:bbbb:cc01::1/64") || strings.Contains(addrs, "tentative") && strings.Contains(addrs, "cc01::1/64 scope global tentative") {
		t.Errorf("router addresses:\n%s", addrs)
	}
	if len(tr.Problems()) != 0 {
		t.Errorf("problems after recovery: %q", tr.Problems())
	}
}

func slicesContains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestIntegrationClonedLinkLocal(t *testing.T) {
	// The host already holds the link-local that the router's MAC gives
	// (EUI-64 flips the U/L bit: 02:00:00:00:00:01 → fe80::ff:fe00:1): the
	// situation of a cloned VM.
	l := newLab(t, "02:00:00:00:00:01")
	clone := netip.MustParsePrefix("fe80::ff:fe00:1/64")
	l.host.IP(t, "addr", "add", clone.String(), "dev", "h0", "nodad")
	l.router.IP(t, "link", "set", "r0", "up")
	lan := Want{Interface: "r0", Prefix: netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::1/64"), NoDAD: true}

	t.Run("the failed link-local is reported with its likely cause", func(t *testing.T) {
		tr, stop := l.tracker(t, TrackerOptions{})
		defer stop()
		tr.Set([]Want{lan})
		eventually(t, 5*time.Second, "link-local problem", func() (bool, string) {
			return slicesContains(tr.Problems(), "r0: link-local fe80::ff:fe00:1 failed duplicate address detection"), dump(tr)
		})
		if !slicesContains(tr.Problems(), "cloned VM") {
			t.Errorf("problems = %q, want the cloned VM named", tr.Problems())
		}
		if s := statusOf(tr, clone); s.State != StateDADFailed || !s.LinkLocal {
			t.Errorf("status of the link-local = %+v", s)
		}
	})

	t.Run("with healing a new stable link-local replaces it within seconds", func(t *testing.T) {
		dir := t.TempDir()
		tr, stop := l.tracker(t, TrackerOptions{HealLinkLocal: true, StateDir: dir})
		defer stop()
		tr.Set([]Want{lan})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		got, err := WaitLinkLocal(ctx, l.h, "r0")
		if err != nil {
			t.Fatalf("no usable link-local: %v\n%s", err, dump(tr))
		}
		t.Logf("new link-local %s usable %v after the heal started", got, time.Since(start).Round(time.Millisecond))
		if got == clone.Addr() {
			t.Fatalf("link-local is still the cloned %s", got)
		}
		addrs := l.router.IP(t, "-6", "addr", "show", "dev", "r0")
		if strings.Contains(addrs, "dadfailed") || !strings.Contains(addrs, "stable-privacy") {
			t.Errorf("router addresses:\n%s", addrs)
		}
		saved, err := os.ReadFile(filepath.Join(dir, "stable_secret-r0"))
		if err != nil {
			t.Fatalf("secret not saved: %v", err)
		}
		kernel, err := ProcSys{Namespace: &l.rns}.Get("r0", "stable_secret")
		if err != nil {
			t.Fatal(err)
		}
		if netip.MustParseAddr(strings.TrimSpace(string(saved))) != netip.MustParseAddr(kernel) {
			t.Errorf("saved secret %q, kernel has %q", saved, kernel)
		}
		eventually(t, 2*time.Second, "no problems after healing", func() (bool, string) {
			return len(tr.Problems()) == 0, dump(tr)
		})

		// A restart re-applies the saved secret; the link-local, already
		// derived from it, stays as it is.
		stop()
		tr2, _ := l.tracker(t, TrackerOptions{HealLinkLocal: true, StateDir: dir})
		tr2.Set([]Want{lan})
		eventually(t, 2*time.Second, "the restarted tracker sees the healed link-local", func() (bool, string) {
			return statusOf(tr2, netip.PrefixFrom(got, 64)).State == StateOK, dump(tr2)
		})
		if again, state, err := LinkLocal(l.h, "r0"); err != nil || again != got || state != StateOK {
			t.Errorf("after a restart the link-local is %v (%v, %v), want %v kept", again, state, err, got)
		}
	})
}

func TestIntegrationUnreachableRoutes(t *testing.T) {
	l := newLab(t, "")
	r := NewRoutes(l.h, nstest.Logger(t, slog.LevelInfo))
	want := []netip.Prefix{netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/56"), netip.MustParsePrefix("2001:db8:100::/56")}
	for range 2 {
		if err := r.SetUnreachable(want); err != nil {
			t.Fatal(err)
		}
	}
	out := l.router.IP(t, "-6", "route", "show", "type", "unreachable")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(out, "unreachable fd00:aaaa:bbbb:cc00::/56") ||
		!strings.Contains(out, "unreachable 2001:db8:100::/56") || strings.Count(out, "proto 118") != 2 {
		t.Errorf("after setting twice, ip -6 route show type unreachable:\n%s", out)
	}
	if err := r.SetUnreachable(want[:1]); err != nil {
		t.Fatal(err)
	}
	out = l.router.IP(t, "-6", "route", "show", "type", "unreachable")
	if strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, "fd00:aaaa:bbbb:cc00::/56") {
		t.Errorf("after dropping one, ip -6 route show type unreachable:\n%s", out)
	}
	// A restarted daemon (new Routes) removes what the old one left.
	if err := NewRoutes(l.h, nstest.Logger(t, slog.LevelInfo)).SetUnreachable(nil); err != nil {
		t.Fatal(err)
	}
	if out := l.router.IP(t, "-6", "route", "show", "type", "unreachable"); strings.TrimSpace(out) != "" {
		t.Errorf("leftovers after a restart:\n%s", out)
	}
}

func TestIntegrationStuckTentative(t *testing.T) {
	l := newLab(t, "")
	// The host end is down, so the router's end has no carrier and the
	// kernel cannot run DAD: the address stays tentative.
	l.host.IP(t, "link", "set", "h0", "down")
	l.router.IP(t, "link", "set", "r0", "up")
	p := netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::1/64")
	tr, _ := l.tracker(t, TrackerOptions{StuckAfter: time.Second})
	tr.Set([]Want{{Interface: "r0", Prefix: p}})
	eventually(t, 5*time.Second, "stuck tentative reported", func() (bool, string) {
		return slicesContains(tr.Problems(), "r0: fd00:aaaa:bbbb:cc01::1 is still tentative after") &&
			slicesContains(tr.Problems(), "r0 has no carrier"), dump(tr)
	})
	l.host.IP(t, "link", "set", "h0", "up")
	eventually(t, 5*time.Second, "ok once the link has carrier", func() (bool, string) {
		return statusOf(tr, p).State == StateOK && len(tr.Problems()) == 0, dump(tr)
	})
}

func TestIntegrationLinkFlapReAddsTheAddress(t *testing.T) {
	l := newLab(t, "")
	l.router.IP(t, "link", "set", "r0", "up")
	p := netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::1/64")
	tr, _ := l.tracker(t, TrackerOptions{})
	tr.Set([]Want{{Interface: "r0", Prefix: p}})
	eventually(t, 5*time.Second, "address ok", func() (bool, string) { return statusOf(tr, p).State == StateOK, dump(tr) })
	// With keep_addr_on_down=0 (the default) the kernel flushes the
	// address when the link goes down; the Tracker puts it back.
	l.router.IP(t, "link", "set", "r0", "down")
	eventually(t, 2*time.Second, "address back (tentative) while the link is down", func() (bool, string) {
		out := l.router.IP(t, "-6", "addr", "show", "dev", "r0")
		return strings.Contains(out, "fd00:aaaa:bbbb:cc01::1/64"), out
	})
	l.router.IP(t, "link", "set", "r0", "up")
	eventually(t, 5*time.Second, "address ok after the flap", func() (bool, string) {
		return statusOf(tr, p).State == StateOK, dump(tr)
	})
}

func TestIntegrationDuplicateMACDisablesIPv6(t *testing.T) {
	l := newLab(t, "02:00:00:00:00:07")
	if err := (ProcSys{Namespace: &l.rns}).Set("r0", "accept_dad", "2"); err != nil {
		t.Fatal(err)
	}
	l.host.IP(t, "addr", "add", "fe80::ff:fe00:7/64", "dev", "h0", "nodad")
	l.router.IP(t, "link", "set", "r0", "up")
	tr, _ := l.tracker(t, TrackerOptions{})
	tr.Set([]Want{{Interface: "r0", Prefix: netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::1/64"), NoDAD: true}})
	eventually(t, 5*time.Second, "disabled IPv6 reported", func() (bool, string) {
		return slicesContains(tr.Problems(), "r0: IPv6 is disabled on r0 (disable_ipv6=1); with accept_dad=2") &&
			slicesContains(tr.Problems(), "same MAC address"), dump(tr)
	})
}

func TestIntegrationSysctlsAndDefaultRouter(t *testing.T) {
	l := newLab(t, "")
	l.router.IP(t, "link", "set", "r0", "up")
	sys := ProcSys{Namespace: &l.rns}
	// The plain helpers act on the caller's namespace: run them inside the
	// router's, as the daemon (started in its namespace) does.
	err := InNamespace(l.rns, func() error {
		return errors.Join(SetForwarding("r0", true), SetAcceptRA("r0", 2), SetSysctl("r0", "dad_transmits", "2"))
	})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"forwarding": "1", "accept_ra": "2", "dad_transmits": "2"} {
		if got, err := sys.Get("r0", key); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", key, got, err, want)
		}
	}
	if _, ok, err := DefaultRouter(l.h, "r0"); ok || err != nil {
		t.Fatalf("before any RA: ok=%v err=%v", ok, err)
	}
	l.router.IP(t, "-6", "route", "add", "default", "via", "fe80::1", "dev", "r0", "proto", "ra")
	gw, ok, err := DefaultRouter(l.h, "r0")
	if err != nil || !ok || gw != netip.MustParseAddr("fe80::1") {
		t.Errorf("DefaultRouter = %v, %v, %v; want fe80::1", gw, ok, err)
	}
}

func TestIntegrationUnusedSubnetIsAnsweredUnreachable(t *testing.T) {
	l := newLab(t, "")
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("needs ping")
	}
	l.router.IP(t, "link", "set", "r0", "up")
	l.router.IP(t, "addr", "add", "fd00:aaaa:bbbb:cc01::1/64", "dev", "r0", "nodad")
	l.host.IP(t, "addr", "add", "fd00:aaaa:bbbb:cc01::2/64", "dev", "h0", "nodad")
	l.host.IP(t, "-6", "route", "add", "default", "via", "fd00:aaaa:bbbb:cc01::1")
	if err := InNamespace(l.rns, func() error { return SetForwardingAll(true) }); err != nil {
		t.Fatal(err)
	}
	if err := NewRoutes(l.h, nstest.Logger(t, slog.LevelInfo)).SetUnreachable(
		[]netip.Prefix{netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/56")}); err != nil {
		t.Fatal(err)
	}
	// cc05::/64 is inside the internal /56 but on no LAN: the router answers
	// ICMPv6 "no route" (RFC 7084 WPD-5) instead of sending it anywhere.
	out, _ := exec.Command("ip", "netns", "exec", l.host.Name, "ping", "-6", "-n", "-c", "1", "-W", "2",
		"fd00:aaaa:bbbb:cc05::1").CombinedOutput()
	if !strings.Contains(string(out), "Destination unreachable: No route") {
		t.Errorf("ping into an unused /64:\n%s", out)
	}
	// The LAN's own /64 is more specific and still reachable.
	if out, err := exec.Command("ip", "netns", "exec", l.host.Name, "ping", "-6", "-n", "-c", "1", "-W", "2",
		"fd00:aaaa:bbbb:cc01::1").CombinedOutput(); err != nil {
		t.Errorf("ping the router's LAN address: %v\n%s", err, out)
	}
}

func TestIntegrationOwnedRoutesInATable(t *testing.T) {
	l := newLab(t, "")
	l.router.IP(t, "link", "set", "r0", "up")
	r := NewRoutes(l.h, nstest.Logger(t, slog.LevelInfo))
	pd := Route{Dst: netip.MustParsePrefix("fd00:aaaa:bbbb:cc10::/60"), Gw: netip.MustParseAddr("fe80::2"), Interface: "r0", Table: 100}
	for range 2 {
		if err := r.SetRoutes([]Route{pd}); err != nil {
			t.Fatal(err)
		}
	}
	out := l.router.IP(t, "-6", "route", "show", "table", "100")
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "fd00:aaaa:bbbb:cc10::/60 via fe80::2 dev r0 proto 118") {
		t.Errorf("table 100 after setting twice:\n%s", out)
	}
	if err := r.SetRoutes(nil); err != nil {
		t.Fatal(err)
	}
	if out := l.router.IP(t, "-6", "route", "show", "table", "100"); strings.TrimSpace(out) != "" {
		t.Errorf("table 100 after SetRoutes(nil):\n%s", out)
	}
}

func TestIntegrationNetlinkWatcher(t *testing.T) {
	l := newLab(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := NetlinkWatcher{Namespace: &l.rns, OnError: func(err error) { t.Errorf("subscription error: %v", err) }}.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	link, err := l.h.LinkByName("r0")
	if err != nil {
		t.Fatal(err)
	}
	l.router.IP(t, "addr", "add", "fd00:aaaa:bbbb:cc01::1/64", "dev", "r0", "nodad")
	l.router.IP(t, "link", "set", "r0", "up")
	want := netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::1/64")
	sawAddr, sawLink := false, false
	deadline := time.After(5 * time.Second)
	for !sawAddr || !sawLink {
		select {
		case ev := <-events:
			if ev.LinkIndex != link.Attrs().Index {
				continue
			}
			sawAddr = sawAddr || ev.Address == want && !ev.Deleted
			sawLink = sawLink || ev.Link
		case <-deadline:
			t.Fatalf("events within 5s: address %v, link %v", sawAddr, sawLink)
		}
	}
	// Cancelling ends the subscription: the channel is closed promptly.
	cancel()
	timeout := time.After(2 * time.Second)
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("event channel still open 2s after cancel")
		}
	}
}
