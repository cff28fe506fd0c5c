package integration

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/testbed"
)

// Daemon-level tests of the operational promises: address hygiene (DAD),
// the LAN DHCPv6 server against dhcpcd, hook scripts and metrics across a
// renumbering, restarts (kill -9, SIGHUP) and the reaction to a renumbering
// at the next Renew. Each builds its own lab and runs the real binary.

var (
	opsRouterLAN = lanRouter // the LAN RDNSS opsConfig sets by default
	opsNewPool   = netip.MustParsePrefix("2001:db8:200::/40")
)

// opsLab builds a lab that Close removes when the test ends.
func opsLab(t *testing.T, o testbed.Options) *testbed.Lab {
	t.Helper()
	return newLab(t, "v6ops", o)
}

// opsRun starts v6edge; its log goes to the test log if the test fails.
func opsRun(t *testing.T, l *testbed.Lab, config, controlExtra string) *testbed.Daemon {
	t.Helper()
	d, err := l.OpsRunDaemon(t.Context(), bin, config, controlExtra)
	if err != nil {
		t.Fatal(err)
	}
	logOnFailure(t, d, 60)
	return d
}

// opsRestart starts v6edge again on d's config and state_dir.
func opsRestart(t *testing.T, l *testbed.Lab, d *testbed.Daemon) *testbed.Daemon {
	t.Helper()
	nd, err := l.OpsRestartDaemon(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	logOnFailure(t, nd, 60)
	return nd
}

// opsAddrState returns the state status reports for a managed address
// ("" when it is not listed).
func opsAddrState(doc map[string]any, iface string, addr netip.Addr) string {
	list, _ := testbed.Get(doc, "addresses").([]any)
	for i := range list {
		p, err := netip.ParsePrefix(testbed.GetString(list[i], "address"))
		if err == nil && p.Addr() == addr && testbed.GetString(list[i], "interface") == iface {
			return testbed.GetString(list[i], "state")
		}
	}
	return ""
}

// opsProblemNaming returns the first problem that mentions s.
func opsProblemNaming(doc map[string]any, s string) string {
	list, _ := testbed.Get(doc, "problems").([]any)
	for _, p := range list {
		if str, ok := p.(string); ok && strings.Contains(str, s) {
			return str
		}
	}
	return ""
}

// opsRA waits for an RA on the host (rdisc6) that satisfies ok.
func opsRA(t *testing.T, l *testbed.Lab, host string, timeout time.Duration, what string, ok func(testbed.RA) bool) testbed.RA {
	t.Helper()
	ctx := t.Context()
	var got testbed.RA
	var out string
	err := l.WaitFor(ctx, timeout, what, func() (bool, error) {
		var err error
		out, err = l.Exec(ctx, host, "rdisc6", "-1", "-w", "1000", testbed.HostIface)
		for _, ra := range testbed.ParseRdisc6(out) {
			if ok(ra) {
				got = ra
				return true, nil
			}
		}
		return false, err
	})
	if err != nil {
		t.Fatalf("%v\nlast rdisc6 output:\n%s", err, out)
	}
	return got
}

// TestOpsDADFailureOfTheRoutersLANAddress: a host already holds the
// router's LAN address. The router reports it, keeps no dadfailed leftover,
// keeps NAT and RAs going, and takes the address back by itself once the
// host lets go of it.
func TestOpsDADFailureOfTheRoutersLANAddress(t *testing.T) {
	t.Parallel()
	l := opsLab(t, testbed.Options{})
	ctx := t.Context()
	host := l.Hosts[0]
	routerAddr := netip.PrefixFrom(opsRouterLAN, 64).String()
	// nodad: the host holds the address at once, as a host that has had it
	// for days would.
	if _, err := l.Exec(ctx, host, "ip", "-6", "addr", "add", routerAddr, "dev", testbed.HostIface, "nodad"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	d := opsRun(t, l, opsConfig(opsOptions{dad: &testbed.DAD{RetryMin: time.Second, RetryMax: 4 * time.Second}}), `metrics = "[::1]:9430"`)

	t.Run("within 5 s status shows the address dadfailed and a problem naming it", func(t *testing.T) {
		doc, err := d.WaitStatus(ctx, 5*time.Second, "lan0 "+opsRouterLAN.String()+" dadfailed", func(doc map[string]any) bool {
			return opsAddrState(doc, testbed.LANIface, opsRouterLAN) == "dadfailed" && opsProblemNaming(doc, opsRouterLAN.String()) != ""
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("reported %v after start: %q", time.Since(start).Round(time.Millisecond), opsProblemNaming(doc, opsRouterLAN.String()))
		if p := opsProblemNaming(doc, opsRouterLAN.String()); !strings.Contains(p, testbed.LANIface) {
			t.Errorf("the problem %q does not name %s", p, testbed.LANIface)
		}
		if n, _ := testbed.Get(doc, "dad_failures").(float64); n < 1 {
			t.Errorf("dad_failures = %v, want ≥ 1", testbed.Get(doc, "dad_failures"))
		}
	})

	t.Run("metrics show the failure", func(t *testing.T) {
		label := `address="` + routerAddr + `"`
		var text string
		err := l.WaitFor(ctx, 5*time.Second, "address_state dadfailed 1 and problems ≥ 1", func() (bool, error) {
			var err error
			text, err = l.OpsScrape(ctx, l.Router, "http://[::1]:9430/metrics")
			if err != nil {
				return false, err
			}
			state, ok1 := opsMetric(text, "v6edge_address_state", label, `state="dadfailed"`)
			probs, ok2 := opsMetric(text, "v6edge_problems")
			fails, ok3 := opsMetric(text, "v6edge_dad_failures_total")
			return ok1 && ok2 && ok3 && state == 1 && probs >= 1 && fails >= 1, nil
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, opsGrep(text, "v6edge_address_state", "v6edge_problems", "v6edge_dad_failures_total"))
		}
	})

	t.Run("v6edge status exits 1", func(t *testing.T) {
		out, code, err := d.Ctl(ctx, "status")
		if err != nil || code != 1 {
			t.Errorf("v6edge status: exit %d, %v, want exit 1\n%s", code, err, out)
		}
		if !strings.Contains(out, opsRouterLAN.String()) {
			t.Errorf("the human status does not name %s:\n%s", opsRouterLAN, out)
		}
	})

	t.Run("the daemon log names the interface and the address", func(t *testing.T) {
		var found bool
		for _, line := range strings.Split(d.Log(), "\n") {
			if strings.Contains(line, "duplicate address detection") && strings.Contains(line, testbed.LANIface) &&
				strings.Contains(line, opsRouterLAN.String()) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no log line names both %s and %s:\n%s", testbed.LANIface, opsRouterLAN, lastLines(d.Log(), 30))
		}
	})

	t.Run("no dadfailed address stays on the router", func(t *testing.T) {
		// The daemon retries with backoff, so a retry may be in DAD (and
		// fail again) at any moment; what must not happen is a failed
		// address that stays. Several consecutive clean samples prove it.
		clean := 0
		var out string
		err := l.WaitFor(ctx, 8*time.Second, "three clean samples of `ip -6 addr show dadfailed` in a row", func() (bool, error) {
			var err error
			out, err = l.Exec(ctx, l.Router, "ip", "-6", "addr", "show", "dadfailed")
			if err != nil {
				return false, err
			}
			if strings.TrimSpace(out) == "" {
				clean++
			} else {
				clean = 0
			}
			return clean >= 3, nil
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})

	deleg := waitBoundWithin(t, d, l.Pool, 30*time.Second)
	t.Run("NAT is installed for the delegated prefix regardless", func(t *testing.T) {
		netmapPresent(t, l, deleg)
	})
	t.Run("the host still receives RAs with the LAN prefix", func(t *testing.T) {
		opsRA(t, l, host, 15*time.Second, "an RA carrying "+subnet1.String(), func(ra testbed.RA) bool {
			for _, p := range ra.Prefixes {
				if p.Prefix == subnet1 {
					return true
				}
			}
			return false
		})
	})

	t.Run("once the host lets go the router takes the address back and status exits 0", func(t *testing.T) {
		if _, err := l.Exec(ctx, host, "ip", "-6", "addr", "del", routerAddr, "dev", testbed.HostIface); err != nil {
			t.Fatal(err)
		}
		released := time.Now()
		// Backoff at most retry_max (4 s) plus DAD (~1-2 s).
		doc, err := d.WaitStatus(ctx, 12*time.Second, "the address ok and no problems", func(doc map[string]any) bool {
			probs, _ := testbed.Get(doc, "problems").([]any)
			return opsAddrState(doc, testbed.LANIface, opsRouterLAN) == "ok" && len(probs) == 0
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("address back %v after the host released it", time.Since(released).Round(time.Millisecond))
		if _, code, err := d.Status(ctx); err != nil || code != 0 {
			t.Errorf("v6edge status -json: exit %d, %v, want 0; problems %v", code, err, testbed.Get(doc, "problems"))
		}
		addrs, err := l.IfaceAddrs(ctx, l.Router, testbed.LANIface, subnet1)
		if err != nil {
			t.Fatal(err)
		}
		if len(addrs) != 1 || addrs[0].Prefix.Addr() != opsRouterLAN || addrs[0].Tentative || addrs[0].DADFailed {
			t.Errorf("router lan0 addresses in %s = %+v, want %s usable", subnet1, addrs, opsRouterLAN)
		}
	})
}

// TestOpsLinkLocalCollisionIsReportedAndHealed: a host holds the router's
// LAN link-local (a cloned VM). Without heal_link_local the failure is
// reported and left alone; a daemon started with heal_link_local = true
// gives lan0 a fresh, different link-local.
func TestOpsLinkLocalCollisionIsReportedAndHealed(t *testing.T) {
	t.Parallel()
	l := opsLab(t, testbed.Options{})
	ctx := t.Context()
	host := l.Hosts[0]
	lls, err := l.IfaceAddrs(ctx, l.Router, testbed.LANIface, netip.MustParsePrefix("fe80::/10"))
	if err != nil || len(lls) != 1 {
		t.Fatalf("router lan0 link-locals = %+v, %v; want one", lls, err)
	}
	old := lls[0].Prefix
	if _, err := l.Exec(ctx, host, "ip", "-6", "addr", "add", old.String(), "dev", testbed.HostIface, "nodad"); err != nil {
		t.Fatal(err)
	}
	d := opsRun(t, l, opsConfig(opsOptions{dad: &testbed.DAD{HealLinkLocal: testbed.Bool(false)}}), "")
	if _, err := d.WaitStatus(ctx, 10*time.Second, "the daemon serving", func(doc map[string]any) bool {
		return opsAddrState(doc, testbed.LANIface, opsRouterLAN) == "ok"
	}); err != nil {
		t.Fatal(err)
	}
	// The kernel runs DAD for the link-local again when the link comes up.
	for _, s := range []string{"down", "up"} {
		if _, err := l.Exec(ctx, l.Router, "ip", "link", "set", testbed.LANIface, s); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("without heal_link_local the failed link-local is reported and left in place", func(t *testing.T) {
		doc, err := d.WaitStatus(ctx, 10*time.Second, "a problem naming "+old.Addr().String(), func(doc map[string]any) bool {
			return opsProblemNaming(doc, old.Addr().String()) != "" && opsAddrState(doc, testbed.LANIface, old.Addr()) == "dadfailed"
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("problem: %q", opsProblemNaming(doc, old.Addr().String()))
		if p := opsProblemNaming(doc, old.Addr().String()); !strings.Contains(p, testbed.LANIface) {
			t.Errorf("the problem %q does not name %s", p, testbed.LANIface)
		}
		if _, code, _ := d.Status(ctx); code != 1 {
			t.Errorf("v6edge status exit %d, want 1", code)
		}
		// Not healing means not touching: the kernel still flags it.
		out, err := l.Exec(ctx, l.Router, "ip", "-6", "addr", "show", "dev", testbed.LANIface, "dadfailed")
		if err != nil || !strings.Contains(out, old.Addr().String()) {
			t.Errorf("lan0 no longer shows %s dadfailed (%v):\n%s", old, err, out)
		}
	})

	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := d.OpsWriteConfig(opsConfig(opsOptions{dad: &testbed.DAD{HealLinkLocal: testbed.Bool(true)}}), ""); err != nil {
		t.Fatal(err)
	}
	healStart := time.Now()
	d = opsRestart(t, l, d)

	t.Run("with heal_link_local a new, different, usable link-local appears within 10 s", func(t *testing.T) {
		var now []testbed.HostAddr
		err := l.WaitFor(ctx, 10*time.Second, "a fresh usable link-local on lan0", func() (bool, error) {
			var err error
			now, err = l.IfaceAddrs(ctx, l.Router, testbed.LANIface, netip.MustParsePrefix("fe80::/10"))
			if err != nil {
				return false, err
			}
			fresh := false
			for _, a := range now {
				if a.Prefix.Addr() == old.Addr() {
					return false, nil // the failed one must be gone
				}
				fresh = fresh || !a.Tentative && !a.DADFailed
			}
			return fresh, nil
		})
		if err != nil {
			t.Fatalf("%v; lan0 link-locals %+v", err, now)
		}
		var fresh []netip.Prefix
		for _, a := range now {
			fresh = append(fresh, a.Prefix)
		}
		t.Logf("healed %v after the daemon started: %s replaced by %v", time.Since(healStart).Round(time.Millisecond), old, fresh)
		if _, err := d.WaitStatus(ctx, 5*time.Second, "no problem naming the old link-local", func(doc map[string]any) bool {
			return opsProblemNaming(doc, old.Addr().String()) == ""
		}); err != nil {
			t.Error(err)
		}
	})
}

// TestOpsLANDHCPv6AgainstDhcpcd runs dhcpcd as the LAN host's DHCPv6
// client against v6edge's LAN server.
func TestOpsLANDHCPv6AgainstDhcpcd(t *testing.T) {
	t.Parallel()
	t.Run("in stateless mode dhcpcd learns the DNS server and search domain", func(t *testing.T) {
		t.Parallel()
		l := opsLab(t, testbed.Options{})
		ctx := t.Context()
		d := opsRun(t, l, opsConfig(opsOptions{mode: "stateless"}), "")
		waitBoundWithin(t, d, l.Pool, 30*time.Second)
		// No ia_* lines: dhcpcd follows the RA, whose O flag makes it send
		// an Information-Request.
		c, err := l.OpsStartDhcpcd(ctx, l.Hosts[0], "dhcpcd-stateless", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Exit() })
		env := opsDhcpcdEvent(t, l, c, 20*time.Second, "INFORM6")
		if got := env["new_dhcp6_name_servers"]; got != opsRouterLAN.String() {
			t.Errorf("dhcpcd got name servers %q, want %s", got, opsRouterLAN)
		}
		if got := env["new_dhcp6_domain_search"]; got != "lan.example" {
			t.Errorf("dhcpcd got domain search %q, want lan.example", got)
		}
	})

	t.Run("in stateful mode dhcpcd gets an address and a /60 that survive a restart of v6edge", func(t *testing.T) {
		t.Parallel()
		l := opsLab(t, testbed.Options{})
		ctx := t.Context()
		host := l.Hosts[0]
		d := opsRun(t, l, opsConfig(opsOptions{mode: "stateful", pdLength: 60}), "")
		waitBoundWithin(t, d, l.Pool, 30*time.Second)
		conf := "noipv6rs\ninterface eth0\n\tia_na 1\n\tia_pd 2 nosuch0/0/60\n"
		c, err := l.OpsStartDhcpcd(ctx, host, "dhcpcd-stateful", conf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Exit() })
		env := opsDhcpcdEvent(t, l, c, 20*time.Second, "BOUND6")
		addr, err := netip.ParseAddr(env["new_dhcp6_ia_na1_ia_addr1"])
		if err != nil || !subnet1.Contains(addr) {
			t.Fatalf("dhcpcd got address %q, want one in %s; env %v", env["new_dhcp6_ia_na1_ia_addr1"], subnet1, env)
		}
		pd, err := netip.ParsePrefix(env["new_dhcp6_ia_pd1_prefix1"] + "/" + env["new_dhcp6_ia_pd1_prefix1_length"])
		if err != nil || pd.Bits() != 60 || !internal.Contains(pd.Addr()) || pd.Overlaps(subnet1) {
			t.Fatalf("dhcpcd got prefix %s (%v), want a /60 inside %s apart from the LAN's %s", pd, err, internal, subnet1)
		}
		t.Logf("dhcpcd: address %s, prefix %s", addr, pd)

		hostLL, err := l.IfaceAddrs(ctx, host, testbed.HostIface, netip.MustParsePrefix("fe80::/10"))
		if err != nil || len(hostLL) == 0 {
			t.Fatalf("host link-local: %+v, %v", hostLL, err)
		}
		t.Run("the router routes the /60 via the host's link-local", func(t *testing.T) {
			var out string
			want := "via " + hostLL[0].Prefix.Addr().String() + " dev " + testbed.LANIface
			err := l.WaitFor(ctx, 5*time.Second, "a route for "+pd.String(), func() (bool, error) {
				var err error
				out, err = l.Exec(ctx, l.Router, "ip", "-6", "route", "show", pd.String())
				return strings.Contains(out, want), err
			})
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
		t.Run("status counts the lease and the delegation", func(t *testing.T) {
			doc, err := d.WaitStatus(ctx, 5*time.Second, "lan[0].dhcp.leases ≥ 1", func(doc map[string]any) bool {
				n, _ := testbed.Get(doc, "lan", 0, "dhcp", "leases").(float64)
				return n >= 1
			})
			if err != nil {
				t.Fatal(err)
			}
			if s := fmt.Sprint(testbed.Get(doc, "lan", 0, "dhcp", "delegations")); !strings.Contains(s, pd.String()) {
				t.Errorf("lan[0].dhcp.delegations = %s, want %s listed", s, pd)
			}
		})

		t.Run("after SIGTERM and a start on the same state_dir the lease is kept", func(t *testing.T) {
			if err := d.Stop(); err != nil {
				t.Fatal(err)
			}
			d2 := opsRestart(t, l, d)
			// Before dhcpcd says anything: the leases come from state_dir.
			if _, err := d2.WaitStatus(ctx, 10*time.Second, "the restarted server with its saved lease", func(doc map[string]any) bool {
				n, _ := testbed.Get(doc, "lan", 0, "dhcp", "leases").(float64)
				return n >= 1
			}); err != nil {
				t.Fatal(err)
			}
			before := len(c.Reasons())
			if out, err := c.Ctl(ctx, "-6", "-N"); err != nil {
				t.Fatalf("dhcpcd -N: %v\n%s", err, out)
			}
			var reason string
			err := l.WaitFor(ctx, 20*time.Second, "a dhcpcd event after the renew", func() (bool, error) {
				if rs := c.Reasons(); len(rs) > before {
					reason = rs[len(rs)-1]
					return true, nil
				}
				return false, nil
			})
			if err != nil {
				t.Fatalf("%v; reasons %v\n%s", err, c.Reasons(), lastLines(c.Log(), 20))
			}
			env := c.Event(reason)
			got := env["new_dhcp6_ia_na1_ia_addr1"]
			gotPD := env["new_dhcp6_ia_pd1_prefix1"] + "/" + env["new_dhcp6_ia_pd1_prefix1_length"]
			if got != addr.String() || gotPD != pd.String() {
				t.Errorf("after the restart dhcpcd (%s) holds %s and %s, want %s and %s", reason, got, gotPD, addr, pd)
			}
			t.Logf("dhcpcd event after the restart: %s", reason)
		})
	})
}

// opsDhcpcdEvent waits for dhcpcd's hook to report reason.
func opsDhcpcdEvent(t *testing.T, l *testbed.Lab, c *testbed.OpsDhcpcd, timeout time.Duration, reason string) map[string]string {
	t.Helper()
	var env map[string]string
	err := l.WaitFor(t.Context(), timeout, "dhcpcd event "+reason, func() (bool, error) {
		select {
		case <-c.Done():
			return false, fmt.Errorf("dhcpcd exited: %s", lastLines(c.Log(), 10))
		default:
		}
		env = c.Event(reason)
		return env != nil, nil
	})
	if err != nil {
		t.Fatalf("%v; reasons so far %v\n%s", err, c.Reasons(), lastLines(c.Log(), 30))
	}
	return env
}

// opsGrep returns the lines of text that start with one of the prefixes.
func opsGrep(text string, prefixes ...string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// opsMetric returns the value of the sample of name whose labels include
// every one of labels (`k="v"`), and whether there is one.
func opsMetric(text, name string, labels ...string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, lb := range labels {
			ok = ok && strings.Contains(line, lb)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			return v, true
		}
	}
	return 0, false
}

// TestOpsHookAndMetricsFollowARenumbering: the wan.hook script and the
// Prometheus endpoint see the first binding and a real renumbering.
func TestOpsHookAndMetricsFollowARenumbering(t *testing.T) {
	t.Parallel()
	l := opsLab(t, testbed.Options{})
	ctx := t.Context()
	events := filepath.Join(t.TempDir(), "events")
	script := filepath.Join(t.TempDir(), "hook.sh")
	body := fmt.Sprintf("#!/bin/sh\necho \"$reason $interface $new_dhcp6_ia_pd1_prefix1/$new_dhcp6_ia_pd1_prefix1_length $old_dhcp6_ia_pd1_prefix1\" >> %q\n", events)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	d := opsRun(t, l, opsConfig(opsOptions{hook: script}), `metrics = "[::1]:9430"`)
	old := waitBoundWithin(t, d, l.Pool, 30*time.Second)
	const url = "http://[::1]:9430/metrics"

	waitLine := func(t *testing.T, want string) {
		t.Helper()
		var got string
		err := l.WaitFor(ctx, 10*time.Second, "the hook to write "+want, func() (bool, error) {
			b, _ := os.ReadFile(events)
			got = string(b)
			for _, line := range strings.Split(got, "\n") {
				if strings.TrimSpace(line) == want {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("%v; the script saw:\n%s", err, got)
		}
	}
	t.Run("the hook sees BOUND6 with the delegated prefix", func(t *testing.T) {
		waitLine(t, fmt.Sprintf("BOUND6 %s %s", testbed.WANIface, old))
	})

	var swapsBefore float64
	t.Run("metrics show bound, NAT installed, RAs and a Solicit", func(t *testing.T) {
		var text string
		checks := []metricCheck{
			{"v6edge_wan_state", []string{`state="bound"`}, func(v float64) bool { return v == 1 }, "1"},
			{"v6edge_nat_installed", nil, func(v float64) bool { return v == 1 }, "1"},
			{"v6edge_ra_sent_total", nil, func(v float64) bool { return v > 0 }, "> 0"},
			{"v6edge_dhcp6_messages_total", []string{`kind="sent"`, `type="SOLICIT"`}, func(v float64) bool { return v >= 1 }, "≥ 1"},
		}
		// RAs and NAT settle just after the lease: poll until all hold.
		text = waitMetrics(t, l, url, checks)
		swapsBefore, _ = opsMetric(text, "v6edge_nat_swaps_total")
	})

	if err := l.RestartKea(ctx, opsNewPool, true); err != nil {
		t.Fatal(err)
	}
	if out, code, err := d.Ctl(ctx, "renew"); err != nil || code != 0 {
		t.Fatalf("v6edge renew: exit %d, %v: %s", code, err, out)
	}
	deleg := waitBoundWithin(t, d, opsNewPool, 30*time.Second)
	t.Logf("renumbered from %s to %s", old, deleg)

	t.Run("the hook sees BOUND6 with the new prefix and the old one", func(t *testing.T) {
		waitLine(t, fmt.Sprintf("BOUND6 %s %s %s", testbed.WANIface, deleg, old.Addr()))
	})
	t.Run("metrics count the prefix change and a NAT swap", func(t *testing.T) {
		var text string
		err := l.WaitFor(ctx, 10*time.Second, "prefix_changes_total ≥ 1 and more NAT swaps", func() (bool, error) {
			var err error
			text, err = l.OpsScrape(ctx, l.Router, url)
			if err != nil {
				return false, err
			}
			changes, ok1 := opsMetric(text, "v6edge_prefix_changes_total", `interface="wan0"`)
			swaps, ok2 := opsMetric(text, "v6edge_nat_swaps_total")
			return ok1 && ok2 && changes >= 1 && swaps > swapsBefore, nil
		})
		if err != nil {
			changes, _ := opsMetric(text, "v6edge_prefix_changes_total")
			swaps, _ := opsMetric(text, "v6edge_nat_swaps_total")
			t.Fatalf("%v: prefix_changes_total %v, nat_swaps_total %v (before %v)", err, changes, swaps, swapsBefore)
		}
	})

	t.Run("after a restart on the same state_dir the hook sees REBOOT6 with the kept prefix", func(t *testing.T) {
		if err := d.Stop(); err != nil {
			t.Fatal(err)
		}
		d2 := opsRestart(t, l, d)
		if got := waitBoundWithin(t, d2, opsNewPool, 30*time.Second); got != deleg {
			t.Fatalf("prefix after the restart %s, want %s", got, deleg)
		}
		waitLine(t, fmt.Sprintf("REBOOT6 %s %s", testbed.WANIface, deleg))
	})
}

// opsRDNSS returns, for each RA in rdisc6 output, its RDNSS addresses
// with their lifetimes in seconds.
func opsRDNSS(out string) []map[netip.Addr]int {
	var ras []map[netip.Addr]int
	cur := map[netip.Addr]int{}
	var last netip.Addr
	for _, line := range strings.Split(out, "\n") {
		key, val, _ := strings.Cut(line, ":")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch {
		case strings.HasPrefix(strings.TrimSpace(line), "from "):
			ras = append(ras, cur)
			cur, last = map[netip.Addr]int{}, netip.Addr{}
		case key == "Recursive DNS server":
			if a, err := netip.ParseAddr(val); err == nil {
				cur[a], last = -1, a
			}
		case key == "DNS server lifetime" && last.IsValid():
			if f := strings.Fields(val); len(f) > 0 {
				if n, err := strconv.Atoi(f[0]); err == nil {
					cur[last] = n
				}
			}
		}
	}
	return ras
}

// opsDHCPv6Types lists the DHCPv6 message types tcpdump saw, in order.
func opsDHCPv6Types(pkts []testbed.Packet) []string {
	var types []string
	for _, p := range pkts {
		if _, after, ok := strings.Cut(p.Line, "dhcp6 "); ok {
			types = append(types, strings.TrimRight(strings.Fields(after)[0], ":,"))
		}
	}
	return types
}

// TestOpsRestartKeepsTheLease: after kill -9 a daemon started on the same
// state_dir Renews or Rebinds the saved lease instead of Soliciting, and
// reinstalls exactly one NETMAP pair; SIGHUP changes the RA's RDNSS
// without a DHCPv6 exchange.
func TestOpsRestartKeepsTheLease(t *testing.T) {
	t.Parallel()
	l := opsLab(t, testbed.Options{})
	ctx := t.Context()
	host := l.Hosts[0]
	d := opsRun(t, l, opsConfig(opsOptions{}), "")
	deleg := waitBoundWithin(t, d, l.Pool, 30*time.Second)
	rulesBefore := netmapPresent(t, l, deleg)

	capture, err := l.Capture(ctx, l.Upstream, testbed.UpstreamIface, "udp port 547")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WaitLeaseSaved(ctx, deleg, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	d = opsRestart(t, l, d)
	got := waitBoundWithin(t, d, l.Pool, 30*time.Second)
	took := time.Since(start)
	t.Logf("restart → bound: %v (status polled every 50 ms)", took.Round(time.Millisecond))
	if first, _, ok := opsLogTime(d.Log(), "level="); ok {
		if bound, _, ok := opsLogTime(d.Log(), "lease changed", "state=bound"); ok {
			t.Logf("restart → bound in the daemon's own log: first line → 'lease changed state=bound' %v", bound.Sub(first))
		}
	}
	pkts, err := capture.Stop()
	if err != nil {
		t.Fatal(err)
	}
	types := opsDHCPv6Types(pkts)

	t.Run("the restarted daemon Renews or Rebinds, never Solicits", func(t *testing.T) {
		t.Logf("DHCPv6 after the restart: %v", types)
		var refreshed bool
		for _, ty := range types {
			switch ty {
			case "solicit":
				t.Errorf("a Solicit after the restart: %v", types)
			case "renew", "rebind":
				refreshed = true
			}
		}
		if !refreshed {
			t.Errorf("no Renew or Rebind after the restart: %v", types)
		}
	})
	t.Run("status shows the same prefix", func(t *testing.T) {
		if got != deleg {
			t.Errorf("prefix after the restart %s, want %s", got, deleg)
		}
	})
	t.Run("the NAT table is the one before the kill, with one snat and one dnat rule for the WAN", func(t *testing.T) {
		out := netmapPresent(t, l, deleg)
		if out != rulesBefore {
			t.Errorf("the table changed across the restart:\nbefore:\n%s\nafter:\n%s", rulesBefore, out)
		}
		for _, verb := range []string{"snat", "dnat"} {
			n := 0
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, `"`+testbed.WANIface+`"`) && strings.Contains(line, verb+" ") {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d %s rules for %s, want 1:\n%s", n, verb, testbed.WANIface, out)
			}
		}
	})

	t.Run("SIGHUP with a new dns puts it in the next RA without a DHCPv6 exchange", func(t *testing.T) {
		before, _, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		newDNS := netip.MustParseAddr("fd00:aaaa:bbbb:cc01::53")
		if err := d.OpsWriteConfig(opsConfig(opsOptions{dns: newDNS}), ""); err != nil {
			t.Fatal(err)
		}
		c, err := l.Capture(ctx, l.Upstream, testbed.UpstreamIface, "udp port 547")
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(d.Pid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		hup := time.Now()
		// The first RA after the reload carries the new server; the old
		// one, if still listed, only with lifetime 0 (RFC 8106 §5.1: a
		// withdrawal). Later RAs drop the old one.
		var first map[netip.Addr]int
		var out string
		err = l.WaitFor(ctx, 5*time.Second, "an RA with RDNSS "+newDNS.String(), func() (bool, error) {
			var err error
			out, err = l.Exec(ctx, host, "rdisc6", "-1", "-w", "1000", testbed.HostIface)
			for _, ra := range opsRDNSS(out) {
				if _, ok := ra[newDNS]; ok {
					first = ra
					return true, nil
				}
			}
			return false, err
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		t.Logf("SIGHUP → RA with the new RDNSS on the host: %v; RDNSS lifetimes %v", time.Since(hup).Round(time.Millisecond), first)
		if first[newDNS] <= 0 {
			t.Errorf("the new RDNSS %s has lifetime %d", newDNS, first[newDNS])
		}
		if lt, ok := first[opsRouterLAN]; ok && lt != 0 {
			t.Errorf("the old RDNSS %s is still advertised with lifetime %d", opsRouterLAN, lt)
		}
		var last map[netip.Addr]int
		err = l.WaitFor(ctx, 20*time.Second, "RAs without the old RDNSS", func() (bool, error) {
			var err error
			out, err = l.Exec(ctx, host, "rdisc6", "-1", "-w", "1000", testbed.HostIface)
			for _, ra := range opsRDNSS(out) {
				last = ra
				_, old := ra[opsRouterLAN]
				return len(ra) == 1 && !old, nil
			}
			return false, err
		})
		if err != nil {
			t.Errorf("%v; last RDNSS %v", err, last)
		}
		t.Logf("SIGHUP → RAs list only the new RDNSS: %v", time.Since(hup).Round(time.Millisecond))
		pkts, err := c.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if types := opsDHCPv6Types(pkts); len(types) > 0 {
			t.Errorf("DHCPv6 messages after SIGHUP: %v", types)
		}
		after, _, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"prefix", "valid_until", "state"} {
			if a, b := testbed.GetString(before, "wan", k), testbed.GetString(after, "wan", k); a != b {
				t.Errorf("wan.%s changed across SIGHUP: %s → %s", k, a, b)
			}
		}
		if !strings.Contains(d.Log(), "config reloaded") {
			t.Errorf("the log does not say the config was reloaded")
		}
	})
}

var opsTimeField = regexp.MustCompile(`time=(\S+)`)

// opsLogTime returns the time= of the first log line that contains every
// one of parts, and the line.
func opsLogTime(log string, parts ...string) (time.Time, string, bool) {
	for _, line := range strings.Split(log, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if !ok {
			continue
		}
		if m := opsTimeField.FindStringSubmatch(line); m != nil {
			if ts, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
				return ts, line, true
			}
		}
	}
	return time.Time{}, "", false
}

// TestOpsRenumberingAtTheNextRenew: with short upstream timers the ISP
// renumbers (a new pool, bindings forgotten); at its next Renew the daemon
// moves the NAT to the new prefix by itself, the host keeps its ULA address
// and leaves from the new prefix, and no conntrack entry keeps the old one.
func TestOpsRenumberingAtTheNextRenew(t *testing.T) {
	t.Parallel()
	l := opsLab(t, testbed.Options{T1: 4 * time.Second, T2: 6 * time.Second, Preferred: 15 * time.Second, Valid: 20 * time.Second})
	ctx := t.Context()
	host := l.Hosts[0]
	d := opsRun(t, l, opsConfig(opsOptions{}), "")
	old := waitBoundWithin(t, d, l.Pool, 30*time.Second)
	hostAddr := hostSLAAC(t, l, host, subnet1)
	netmapPresent(t, l, old)
	// A flow through the old mapping, so conntrack has something to clean.
	if out, err := l.Exec(ctx, host, "ping", "-c", "2", "-i", "0.2", "-W", "2", testbed.InternetAddr.String()); err != nil {
		t.Fatalf("ping before renumbering: %v\n%s", err, out)
	}
	if n := opsConntrackWith(t, l, old); n == 0 {
		t.Fatalf("no conntrack entry with %s after the ping; the check after renumbering would prove nothing", old)
	}

	// The router's side of the wire: when the Reply with the new prefix
	// arrived.
	replies, err := l.Capture(ctx, l.Router, testbed.WANIface, "udp dst port 546")
	if err != nil {
		t.Fatal(err)
	}
	renumbered := time.Now()
	if err := l.RestartKea(ctx, opsNewPool, true); err != nil {
		t.Fatal(err)
	}
	// No `v6edge renew`: the client's own T1 (4 s) must find the change.
	deleg := waitBoundWithin(t, d, opsNewPool, 20*time.Second)
	t.Logf("moved from %s to %s %v after the upstream renumbered", old, deleg, time.Since(renumbered).Round(time.Millisecond))
	pkts, err := replies.Stop()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("the NAT swapped right after the Reply", func(t *testing.T) {
		doc := opsNATInstalledStatus(t, d)
		swapAt, err := time.Parse(time.RFC3339Nano, testbed.GetString(doc, "nat", "last_swap"))
		if err != nil {
			t.Fatalf("nat.last_swap %q: %v", testbed.GetString(doc, "nat", "last_swap"), err)
		}
		leaseAt, line, ok := opsLogTime(d.Log(), "lease changed", deleg.String())
		if !ok {
			t.Fatalf("no 'lease changed' log line for %s:\n%s", deleg, lastLines(d.Log(), 30))
		}
		reaction := swapAt.Sub(leaseAt)
		t.Logf("lease logged → NAT swapped: %v (nat.last_swap_seconds %v); log: %s", reaction,
			testbed.Get(doc, "nat", "last_swap_seconds"), line)
		if reaction < -time.Millisecond || reaction > time.Second {
			t.Errorf("NAT swapped %v after the lease changed, want within 1 s", reaction)
		}
		// The last Reply that reached wan0 before the swap is the one that
		// carried the new prefix.
		var replyAt time.Time
		for _, p := range pkts {
			if strings.Contains(p.Line, "dhcp6 reply") && !p.Time.After(swapAt) {
				replyAt = p.Time
			}
		}
		if replyAt.IsZero() {
			t.Fatalf("no Reply on %s before the swap at %s: %v", testbed.WANIface, swapAt, opsDHCPv6Types(pkts))
		}
		t.Logf("Reply on the wire → NAT swapped: %v (DHCPv6 seen: %v)", swapAt.Sub(replyAt), opsDHCPv6Types(pkts))
		if swapAt.Sub(replyAt) > time.Second {
			t.Errorf("NAT swapped %v after the Reply arrived, want within 1 s", swapAt.Sub(replyAt))
		}
		out := netmapPresent(t, l, deleg)
		if strings.Contains(out, old.String()) {
			t.Errorf("the old prefix %s is still in the NAT table:\n%s", old, out)
		}
	})
	t.Run("the host's ULA address never changes", func(t *testing.T) {
		addrs, err := l.HostAddrs(ctx, host, subnet1)
		if err != nil || len(addrs) != 1 || addrs[0].Prefix.Addr() != hostAddr || addrs[0].Deprecated {
			t.Fatalf("host addresses in %s = %+v, %v; want %s kept, preferred", subnet1, addrs, err, hostAddr)
		}
	})
	t.Run("pings from the host leave with the new prefix", func(t *testing.T) {
		want := testbed.MapAddr(hostAddr, internal, deleg)
		for _, s := range pingUpstream(t, l, host) {
			if s != want {
				t.Errorf("upstream saw source %s, want %s", s, want)
			}
		}
	})
	t.Run("conntrack in the router has no entry with the old prefix", func(t *testing.T) {
		if n := opsConntrackWith(t, l, old); n > 0 {
			t.Errorf("%d conntrack entries still name the old prefix %s", n, old)
		}
	})
}

// opsConntrackWith counts the router's IPv6 conntrack entries that name
// an address inside p (logging each).
func opsConntrackWith(t *testing.T, l *testbed.Lab, p netip.Prefix) int {
	t.Helper()
	out, err := l.Exec(t.Context(), l.Router, "conntrack", "-L", "-f", "ipv6")
	if err != nil {
		t.Fatalf("conntrack -L: %v\n%s", err, out)
	}
	n := 0
	for _, line := range strings.Split(out, "\n") {
		for _, f := range strings.Fields(line) {
			_, v, _ := strings.Cut(f, "=")
			if a, err := netip.ParseAddr(v); err == nil && p.Contains(a) {
				t.Logf("conntrack entry with %s: %s", p, line)
				n++
				break
			}
		}
	}
	return n
}

// opsNATInstalledStatus returns the status once nat.installed is true for
// the current prefix.
func opsNATInstalledStatus(t *testing.T, d *testbed.Daemon) map[string]any {
	t.Helper()
	doc, err := d.WaitStatus(t.Context(), 5*time.Second, "nat installed for the new prefix", func(doc map[string]any) bool {
		return testbed.Get(doc, "nat", "installed") == true && testbed.GetString(doc, "nat", "external") == testbed.GetString(doc, "wan", "prefix") &&
			testbed.GetString(doc, "nat", "last_swap") != ""
	})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// opsSeconds reads rdisc6's "2700 (0x00000a8c) seconds" (-1 if it is not a
// number, e.g. "infinite").
func opsSeconds(s string) int {
	f := strings.Fields(s)
	if len(f) == 0 {
		return -1
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return -1
	}
	return n
}

// opsPIO returns the RA's Prefix Information option for p.
func opsPIO(ra testbed.RA, p netip.Prefix) (testbed.RAPrefix, bool) {
	for _, pi := range ra.Prefixes {
		if pi.Prefix == p {
			return pi, true
		}
	}
	return testbed.RAPrefix{}, false
}

// TestOpsRestartDuringRenumberingKeepsDeprecatingTheOldPrefix: with the
// delegated /64 advertised, a renumbering deprecates the old /64 (RFC 9096
// §3.5: preferred lifetime 0); a daemon killed and started again in the
// middle of it still deprecates the old /64, from the history it keeps in
// state_dir, instead of silently dropping it from its RAs.
func TestOpsRestartDuringRenumberingKeepsDeprecatingTheOldPrefix(t *testing.T) {
	t.Parallel()
	l := opsLab(t, testbed.Options{})
	ctx := t.Context()
	host := l.Hosts[0]
	config := opsConfig(opsOptions{advertise: "both"})
	d := opsRun(t, l, config, "")
	old := waitBoundWithin(t, d, l.Pool, 30*time.Second)
	oldLAN := opsSubnet(t, old, 1)
	opsRA(t, l, host, 15*time.Second, "an RA with "+oldLAN.String()+" preferred", func(ra testbed.RA) bool {
		pi, ok := opsPIO(ra, oldLAN)
		return ok && opsSeconds(pi.Preferred) > 0
	})

	if err := l.RestartKea(ctx, opsNewPool, true); err != nil {
		t.Fatal(err)
	}
	if out, code, err := d.Ctl(ctx, "renew"); err != nil || code != 0 {
		t.Fatalf("v6edge renew: exit %d, %v: %s", code, err, out)
	}
	deleg := waitBoundWithin(t, d, opsNewPool, 30*time.Second)
	newLAN := opsSubnet(t, deleg, 1)
	deprecates := func(ra testbed.RA) bool {
		o, okOld := opsPIO(ra, oldLAN)
		n, okNew := opsPIO(ra, newLAN)
		return okOld && okNew && opsSeconds(o.Preferred) == 0 && opsSeconds(o.Valid) > 0 && opsSeconds(n.Preferred) > 0
	}
	t.Run("after the renumbering the RA deprecates the old /64 next to the new one", func(t *testing.T) {
		ra := opsRA(t, l, host, 15*time.Second, "an RA deprecating "+oldLAN.String(), deprecates)
		t.Logf("RA prefixes: %+v", ra.Prefixes)
	})

	if err := d.WaitLeaseSaved(ctx, deleg, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	d = opsRestart(t, l, d)
	if got := waitBoundWithin(t, d, opsNewPool, 30*time.Second); got != deleg {
		t.Fatalf("prefix after the restart %s, want %s", got, deleg)
	}
	t.Run("after kill -9 and a restart the RA still deprecates the old /64", func(t *testing.T) {
		ra := opsRA(t, l, host, 15*time.Second, "an RA deprecating "+oldLAN.String()+" after the restart", deprecates)
		t.Logf("RA prefixes: %+v", ra.Prefixes)
		doc, _, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s := fmt.Sprint(testbed.Get(doc, "lan", 0, "deprecated")); !strings.Contains(s, oldLAN.String()) {
			t.Errorf("status lan[0].deprecated = %s, want %s listed", s, oldLAN)
		}
	})
}

// opsSubnet is the n-th /64 of a delegated prefix.
func opsSubnet(t *testing.T, p netip.Prefix, n int) netip.Prefix {
	t.Helper()
	a := p.Masked().Addr().As16()
	a[7] |= byte(n) // n < 256 and p no longer than /56
	s, err := netip.AddrFrom16(a).Prefix(64)
	if err != nil || p.Bits() > 56 {
		t.Fatalf("subnet %d of %s: %v", n, p, err)
	}
	return s
}
