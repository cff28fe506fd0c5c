package integration

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/testbed"
)

// TestRouterLifetimeFollowsTheWAN: RFC 7084 G-4 on a real host. While Kea
// refuses, the host's rdisc6 shows router lifetime 0 and the host has no
// default route via the router; once the lease and the upstream's default
// route are there, the next RA makes it the host's default router at once;
// when the lease expires (Kea gone), router lifetime 0 again at once.
func TestRouterLifetimeFollowsTheWAN(t *testing.T) {
	t.Parallel()
	l := opsLab(t, testbed.Options{T1: 4 * time.Second, T2: 6 * time.Second, Preferred: 10 * time.Second, Valid: 14 * time.Second})
	ctx := t.Context()
	host := l.Hosts[0]
	if _, err := l.RestartKeaExhausted(ctx); err != nil {
		t.Fatal(err)
	}
	d := opsRun(t, l, daemonConfig("slaac"), "")
	lifetime := func() string {
		out, _ := l.Exec(ctx, host, "rdisc6", "-1", "-w", "1000", testbed.HostIface)
		if ras := testbed.ParseRdisc6(out); len(ras) > 0 {
			return ras[0].Lifetime
		}
		return ""
	}
	hostDefault := func() bool {
		out, _ := l.Exec(ctx, host, "ip", "-6", "route", "show", "default")
		return strings.Contains(out, "dev "+testbed.HostIface)
	}
	var lt string
	err := l.WaitFor(ctx, 15*time.Second, "an RA with router lifetime 0 while Kea refuses", func() (bool, error) {
		lt = lifetime()
		return strings.HasPrefix(lt, "0 "), nil
	})
	if err != nil {
		t.Fatalf("%v: router lifetime %q", err, lt)
	}
	if hostDefault() {
		t.Error("the host has a default route via a router with no way out")
	}

	if err := l.RestartKea(ctx, testbed.DefaultPool, true); err != nil {
		t.Fatal(err)
	}
	deleg := waitBoundWithin(t, d, testbed.DefaultPool, 30*time.Second)
	if _, err := l.WaitNetmap(ctx, l.Router, internal, deleg, netip.Prefix{}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	natAt := time.Now()
	if err := l.WaitFor(ctx, 10*time.Second, "the host's default route via the router", func() (bool, error) { return hostDefault(), nil }); err != nil {
		t.Fatal(err)
	}
	took := time.Since(natAt)
	t.Logf("v6edge: lease and upstream RA arrive: host default route %d ms after the NAT was seen installed", took.Milliseconds())
	if took > time.Second {
		t.Errorf("the host's default route came %v after the NAT, want within 1 s", took)
	}
	if lt := lifetime(); strings.HasPrefix(lt, "0 ") {
		t.Errorf("router lifetime %q while serving", lt)
	}

	// Kea goes away: Renew and Rebind fail, the lease expires.
	if err := l.StopKea(); err != nil {
		t.Fatal(err)
	}
	doc, err := d.WaitStatus(ctx, 30*time.Second, "the lease to expire", func(doc map[string]any) bool {
		return testbed.GetString(doc, "wan", "prefix") == ""
	})
	if err != nil {
		t.Fatal(err)
	}
	expiredAt := time.Now()
	if err := l.WaitFor(ctx, 5*time.Second, "the host to drop its default route", func() (bool, error) { return !hostDefault(), nil }); err != nil {
		t.Fatalf("%v (status %v)", err, doc)
	}
	gone := time.Since(expiredAt)
	t.Logf("v6edge: lease expired: host default route gone %d ms after status showed the expiry", gone.Milliseconds())
	if gone > time.Second {
		t.Errorf("the host kept its default route %v after the expiry, want within 1 s", gone)
	}
}
