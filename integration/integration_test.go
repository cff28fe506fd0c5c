package integration

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/testbed"
)

// bin is the v6edge binary TestMain built (or $V6EDGE_BIN); skipReason says
// why there is none.
var bin, skipReason string

// demoConfigFile is the demo's config, the one v6edge-lab demo and bench
// run; TestMain reads it into demo, with bin.
const demoConfigFile = "../configs/examples/demo.toml"

// demo is what the demo and the bench run: bin with demoConfigFile.
var demo testbed.V6edge

func TestMain(m *testing.M) {
	// Labs spend their time waiting on DAD, DHCPv6 and RAs, not on the CPU:
	// unless -parallel was given, run more of them at once than GOMAXPROCS.
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "4")
	}
	config, err := os.ReadFile(demoConfigFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		switch {
		case os.Geteuid() != 0:
			skipReason = "needs root: builds network namespaces"
		case len(testbed.Missing()) > 0:
			skipReason = fmt.Sprintf("needs programs that are not installed: %v", testbed.Missing())
		case os.Getenv("V6EDGE_BIN") != "":
			// A binary built already (make test builds bin/v6edge).
			bin = os.Getenv("V6EDGE_BIN")
		default:
			dir, err := os.MkdirTemp("", "v6edge-it-")
			if err != nil {
				skipReason = err.Error()
				break
			}
			defer os.RemoveAll(dir)
			bin, skipReason = buildDaemon(dir)
			if raceEnabled && skipReason == "" {
				// Every daemon the labs start writes its race reports here.
				os.Setenv("GORACE", "log_path="+filepath.Join(dir, "race")+" halt_on_error=0")
			}
		}
		demo = testbed.V6edge{Bin: bin, Config: string(config)}
		code := m.Run()
		if raceEnabled && bin != "" {
			if reports, _ := filepath.Glob(filepath.Join(filepath.Dir(bin), "race.*")); len(reports) > 0 {
				for _, r := range reports {
					b, _ := os.ReadFile(r)
					fmt.Fprintf(os.Stderr, "data race in the daemon (%s):\n%s\n", r, b)
				}
				return 1
			}
		}
		return code
	}()
	os.Exit(code)
}

// buildDaemon builds ./cmd/v6edge once for every test in this package.
func buildDaemon(dir string) (path, skip string) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" {
		return "", fmt.Sprintf("cannot find the module root: %v", err)
	}
	path = filepath.Join(dir, "v6edge")
	args := []string{"build", "-o", path}
	if raceEnabled {
		// The daemon is built with the race detector too: the labs are where
		// its goroutines really run concurrently.
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/v6edge")...)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("cmd/v6edge does not build yet: %v\n%s", err, out)
	}
	return path, ""
}

// startBound builds a lab, runs v6edge with the given LAN mode and waits
// until it reports a delegated prefix. Everything is removed when the test
// ends, also when it fails; the daemon's log goes to the test log on failure.
func startBound(t *testing.T, mode string) (*testbed.Lab, *testbed.Daemon, netip.Prefix) {
	t.Helper()
	return startBoundWith(t, testbed.Options{}, mode)
}

func startBoundWith(t *testing.T, o testbed.Options, mode string) (*testbed.Lab, *testbed.Daemon, netip.Prefix) {
	t.Helper()
	l := newLab(t, "v6it", o)
	d := runDaemon(t, l, daemonConfig(mode), 0)
	return l, d, waitBound(t, d, l.Pool)
}

func TestDaemonInLab(t *testing.T) {
	t.Parallel()
	l, d, deleg := startBound(t, "slaac")
	ctx := t.Context()
	host := l.Hosts[0]

	t.Run("kea's lease file holds the delegated prefix under the WAN MAC's DUID-LL", func(t *testing.T) {
		leases, err := l.KeaLeases()
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, le := range leases {
			if le.Type == "IA_PD" && le.Prefix == deleg {
				found = true
				if want := "00:03:00:01:02:00:5e:00:01:33"; le.DUID != want {
					t.Errorf("lease DUID = %s, want %s", le.DUID, want)
				}
			}
		}
		if !found {
			t.Errorf("no IA_PD lease for %s in %+v", deleg, leases)
		}
	})

	t.Run("the router's ruleset has both NETMAP rules for the delegated prefix", func(t *testing.T) {
		var out string
		err := l.WaitFor(ctx, 5*time.Second, "NETMAP rules", func() (bool, error) {
			var err error
			out, err = l.Exec(ctx, l.Router, "nft", "list", "ruleset")
			return testbed.HasNetmap(out, internal, deleg), err
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})

	t.Run("the router learned its default route from the upstream's RAs", func(t *testing.T) {
		if err := l.WaitWANDefaultRoute(ctx, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	var hostAddr netip.Addr
	t.Run("the host configures a SLAAC address in the LAN's ULA /64 and a default route via the router", func(t *testing.T) {
		var err error
		if hostAddr, err = l.WaitHostSLAAC(ctx, host, subnet1, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		ll, err := l.IfaceAddrs(ctx, l.Router, testbed.LANIface, netip.MustParsePrefix("fe80::/10"))
		if err != nil || len(ll) == 0 {
			t.Fatalf("router lan0 link-local: %v, %v", ll, err)
		}
		routerLL := ll[0].Prefix.Addr().String()
		var out string
		err = l.WaitFor(ctx, 10*time.Second, "the host's default route via "+routerLL, func() (bool, error) {
			out, err = l.Exec(ctx, host, "ip", "-6", "route", "show", "default")
			return strings.Contains(out, "via "+routerLL+" "), err
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	if !hostAddr.IsValid() {
		t.Fatal("no host address; the traffic tests cannot run")
	}

	t.Run("a ping from the host reaches the upstream from inside the delegated prefix", func(t *testing.T) {
		want := testbed.MapAddr(hostAddr, internal, deleg)
		for _, s := range pingUpstream(t, l, host) {
			if s != want {
				t.Errorf("upstream saw source %s, want %s (the host's address mapped into %s)", s, want, deleg)
			}
		}
	})

	t.Run("the upstream reaches the host at its mapped global address", func(t *testing.T) {
		mapped := testbed.MapAddr(hostAddr, internal, deleg)
		out, err := l.Exec(ctx, l.Upstream, "ping", "-c", "2", "-i", "0.2", "-W", "2", mapped.String())
		if err != nil {
			t.Fatalf("ping %s from upstream: %v\n%s", mapped, err, out)
		}
	})

	t.Run("status -json has the fields SPEC.md promises and exit code 0", func(t *testing.T) {
		doc, code, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if code != 0 {
			t.Errorf("exit code %d, want 0; problems: %v", code, testbed.Get(doc, "problems"))
		}
		want := map[string]any{
			"wan.interface":           "wan0",
			"wan.state":               "bound",
			"wan.duid":                "00:03:00:01:02:00:5e:00:01:33",
			"wan.prefix":              deleg.String(),
			"nat.internal":            internal.String(),
			"nat.external":            deleg.String(),
			"nat.installed":           true,
			"lan.0.interface":         "lan0",
			"lan.0.managed":           false,
			"lan.0.other":             false,
			"lan.0.prefixes.0.prefix": subnet1.String(),
			"ha.role":                 "standalone",
		}
		for path, w := range want {
			if got := testbed.Get(doc, splitPath(path)...); got != w {
				t.Errorf("%s = %v, want %v", path, got, w)
			}
		}
		for _, path := range []string{"wan.preferred_until", "wan.valid_until", "wan.server_duid"} {
			s := testbed.GetString(doc, splitPath(path)...)
			if s == "" {
				t.Errorf("%s is empty", path)
			}
			if strings.HasSuffix(path, "_until") {
				if _, err := time.Parse(time.RFC3339, s); err != nil {
					t.Errorf("%s = %q is not RFC 3339", path, s)
				}
			}
		}
		for _, path := range []string{"lan.0.prefixes.0.preferred_s", "lan.0.prefixes.0.valid_s"} {
			if v, ok := testbed.Get(doc, splitPath(path)...).(float64); !ok || v <= 0 {
				t.Errorf("%s = %v, want a positive number", path, testbed.Get(doc, splitPath(path)...))
			}
		}
		for _, key := range []string{"addresses", "problems"} {
			if _, ok := doc[key]; !ok {
				t.Errorf("status has no %q", key)
			}
		}
	})
}

// splitPath turns "lan.0.prefixes" into testbed.Get's path.
func splitPath(s string) []any {
	var p []any
	for _, f := range strings.Split(s, ".") {
		var i int
		if _, err := fmt.Sscan(f, &i); err == nil {
			p = append(p, i)
		} else {
			p = append(p, f)
		}
	}
	return p
}

func TestRAModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode           string
		managed, other bool
		autonomous     bool
	}{
		{"slaac", false, false, true},
		{"stateless", false, true, true},
		// SPEC.md and OpenStack's dhcpv6-stateful: M=1 A=0, O left clear
		// (with M=1 the O flag is redundant, RFC 4861 §4.2).
		{"stateful", true, false, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("in %s mode the host's rdisc6 shows M=%v O=%v A=%v, RDNSS and DNSSL", tt.mode, tt.managed, tt.other, tt.autonomous), func(t *testing.T) {
			t.Parallel()
			l, d, _ := startBound(t, tt.mode)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var ra testbed.RA
			var out string
			err := l.WaitFor(ctx, 15*time.Second, "an RA on the host", func() (bool, error) {
				var err error
				out, err = l.Exec(ctx, l.Hosts[0], "rdisc6", "-1", "-w", "1000", testbed.HostIface)
				ras := testbed.ParseRdisc6(out)
				if len(ras) == 0 {
					return false, err
				}
				ra = ras[0]
				return true, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if ra.Managed != tt.managed || ra.Other != tt.other {
				t.Errorf("M=%v O=%v, want M=%v O=%v\n%s", ra.Managed, ra.Other, tt.managed, tt.other, out)
			}
			doc, _, err := d.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if testbed.Get(doc, "lan", 0, "managed") != ra.Managed || testbed.Get(doc, "lan", 0, "other") != ra.Other {
				t.Errorf("status says managed=%v other=%v, the RA M=%v O=%v", testbed.Get(doc, "lan", 0, "managed"), testbed.Get(doc, "lan", 0, "other"), ra.Managed, ra.Other)
			}
			var pi *testbed.RAPrefix
			for i := range ra.Prefixes {
				if ra.Prefixes[i].Prefix == subnet1 {
					pi = &ra.Prefixes[i]
				}
			}
			if pi == nil {
				t.Fatalf("no prefix %s in the RA\n%s", subnet1, out)
			}
			if pi.Autonomous != tt.autonomous {
				t.Errorf("A=%v, want %v\n%s", pi.Autonomous, tt.autonomous, out)
			}
			if want := netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1"); len(ra.RDNSS) != 1 || ra.RDNSS[0] != want {
				t.Errorf("RDNSS = %v, want [%s]", ra.RDNSS, want)
			}
			if len(ra.DNSSL) != 1 || ra.DNSSL[0] != "lan.example" {
				t.Errorf("DNSSL = %v, want [lan.example]", ra.DNSSL)
			}
		})
	}
}

// BenchmarkStartup measures, in one lab, process start → NETMAP rules and
// → first RA on the host for v6edge and for dhcpcd+hook+radvd. Run it with
// -benchtime=5x; it reports the medians as custom metrics.
func BenchmarkStartup(b *testing.B) {
	if skipReason != "" {
		b.Skip(skipReason)
	}
	l, err := testbed.New(b.Context(), testbed.Options{Name: "v6bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for _, which := range []string{testbed.SetupV6edge, testbed.SetupIncumbent} {
		b.Run(which, func(b *testing.B) {
			var nat, ra []time.Duration
			for b.Loop() {
				s, err := testbed.MeasureStartup(b.Context(), l, which, demo)
				if err != nil {
					b.Fatal(err)
				}
				nat, ra = append(nat, s.NAT), append(ra, s.RA)
			}
			b.ReportMetric(float64(testbed.Median(nat))/1e6, "nat-ms")
			b.ReportMetric(float64(testbed.Median(ra))/1e6, "ra-ms")
		})
	}
}

func TestRenumberingKeepsTheLANAndMovesTheNAT(t *testing.T) {
	t.Parallel()
	l, d, old := startBound(t, "slaac")
	ctx := t.Context()
	host := l.Hosts[0]
	hostAddr := hostSLAAC(t, l, host, subnet1)

	// The ISP renumbers: a new pool, the old binding forgotten.
	newPool := netip.MustParsePrefix("2001:db8:200::/40")
	if err := l.RestartKea(ctx, newPool, true); err != nil {
		t.Fatal(err)
	}
	if out, code, err := d.Ctl(ctx, "renew"); err != nil || code != 0 {
		t.Fatalf("v6edge renew: exit %d, %v: %s", code, err, out)
	}
	deleg := waitBound(t, d, newPool)
	t.Logf("renumbered from %s to %s", old, deleg)

	t.Run("the NAT maps the unchanged ULA onto the new prefix", func(t *testing.T) {
		out, err := l.WaitNetmap(ctx, l.Router, internal, deleg, old, 5*time.Second)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})

	t.Run("the host keeps its address and leaves from the new prefix", func(t *testing.T) {
		addrs, err := l.HostAddrs(ctx, host, subnet1)
		if err != nil || len(addrs) == 0 || addrs[0].Prefix.Addr() != hostAddr {
			t.Fatalf("host addresses in %s = %+v, %v; want %s kept", subnet1, addrs, err, hostAddr)
		}
		want := testbed.MapAddr(hostAddr, internal, deleg)
		for _, s := range pingUpstream(t, l, host) {
			if s != want {
				t.Errorf("upstream saw source %s, want %s", s, want)
			}
		}
	})

	t.Run("kea's lease file holds only the new prefix", func(t *testing.T) {
		leases, err := l.KeaLeases()
		if err != nil {
			t.Fatal(err)
		}
		for _, le := range leases {
			if le.Type == "IA_PD" && le.Prefix != deleg {
				t.Errorf("unexpected lease %+v", le)
			}
		}
	})
}

func TestHairpinBetweenTwoHostsThroughTheExternalPrefix(t *testing.T) {
	t.Parallel()
	l, _, deleg := startBoundWith(t, testbed.Options{Hosts: 2}, "slaac")
	ctx := t.Context()
	var addrs []netip.Addr
	for _, h := range l.Hosts {
		addrs = append(addrs, hostSLAAC(t, l, h, subnet1))
	}
	target := testbed.MapAddr(addrs[1], internal, deleg)
	c, err := l.Capture(ctx, l.Hosts[1], testbed.HostIface, "icmp6 and ip6[40] == 128")
	if err != nil {
		t.Fatal(err)
	}
	out, perr := l.Exec(ctx, l.Hosts[0], "ping", "-c", "2", "-i", "0.2", "-W", "2", target.String())
	pkts, err := c.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if perr != nil {
		t.Fatalf("host 1 pinging host 2 at %s: %v\n%s", target, perr, out)
	}
	// With hairpin NAT host 2 sees host 1's external address, so its reply
	// goes back through the router and is translated back, not sent
	// directly on the LAN where host 1 would drop it.
	want := testbed.MapAddr(addrs[0], internal, deleg)
	if len(pkts) == 0 || pkts[0].Src != want || pkts[0].Dst != addrs[1] {
		t.Errorf("host 2 saw %+v, want %s -> %s", pkts, want, addrs[1])
	}
}

func TestDemoShowsTheWholePathAndCleansUp(t *testing.T) {
	parallel(t)
	var out strings.Builder
	if err := testbed.Demo(t.Context(), &out, demo); err != nil {
		t.Fatalf("Demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"=== 3. The prefix the ISP delegated",
		"Stateful address conf.",
		"inside the delegated 2001:db8:1",
		"table ip6 v6edge",
		"=== Done",
		"Namespaces, processes and files removed.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out.String())
	}
}

// TestBenchTable prints the startup comparison (testbed.Bench) when
// V6EDGE_BENCH=1; it takes about a minute, so it is not part of the suite.
func TestBenchTable(t *testing.T) {
	if os.Getenv("V6EDGE_BENCH") != "1" {
		t.Skip("set V6EDGE_BENCH=1 to run the startup comparison")
	}
	if skipReason != "" {
		t.Skip(skipReason)
	}
	var out strings.Builder
	if err := testbed.Bench(t.Context(), &out, demo, 5); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
}

// TestBenchOpsMeasuresBothSetups runs one round of the operations bench
// (idle CPU, renumbering, restart) against v6edge and the incumbent in one
// lab, and checks that each measured what the table reports.
func TestBenchOpsMeasuresBothSetups(t *testing.T) {
	parallel(t)
	ctx := t.Context()
	l := newLab(t, "v6bops", testbed.Options{})
	for _, which := range []string{testbed.SetupV6edge, testbed.SetupIncumbent} {
		t.Run(which+" renumbers, restarts and idles measurably", func(t *testing.T) {
			before := l.Pool
			res, err := testbed.MeasureOps(ctx, l, which, demo, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", res)
			if !res.Renumber.OK || before.Contains(res.Renumber.Prefix.Addr()) {
				t.Errorf("renumbering from %s: %+v, want a Reply with a prefix from the other pool", before, res.Renumber)
			}
			if !res.Restart.OK || !res.Kept || slices.Contains(res.Restart.Client, "Solicit") {
				t.Errorf("restart: %+v (kept %v), want a Reply with the same prefix and no Solicit", res.Restart, res.Kept)
			}
			if res.IdleWindow != 2*time.Second || res.IdleRun <= 0 && which == testbed.SetupV6edge {
				t.Errorf("idle: %v of CPU (%v by schedstat) over %v; a Go daemon's runtime wakes within 2 s", res.IdleCPU, res.IdleRun, res.IdleWindow)
			}
		})
	}
}

func TestHAFailoverKeepsThePrefixAndTheHostsAddress(t *testing.T) {
	parallel(t)
	ctx := t.Context()
	l := newLab(t, "v6it", testbed.Options{Routers: 2})
	nodes := runNodes(t, l, haConfig, 150, 100)
	master, backup := nodes[0], nodes[1]
	deleg := waitMasterBound(t, nodes)
	host := l.Hosts[0]
	hostAddr := waitHostThroughPair(t, l)
	want := testbed.MapAddr(hostAddr, internal, deleg)
	for _, s := range pingUpstream(t, l, host) {
		if s != want {
			t.Fatalf("before failover the upstream saw %s, want %s", s, want)
		}
	}

	// Node 1 dies: the daemon is killed and the box drops off both links,
	// as with a power cut (a killed process alone would leave fe80::1 and
	// the WAN MAC answering from the dead node's kernel).
	start := time.Now()
	if err := master.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, ifc := range []string{testbed.WANIface, testbed.LANIface} {
		if _, err := l.Exec(ctx, l.Routers[0], "ip", "link", "set", ifc, "down"); err != nil {
			t.Fatal(err)
		}
	}
	// The host keeps trying throughout, as a real one would; the upstream
	// side is watched for LAN sources that leave untranslated.
	up, err := l.Capture(ctx, l.Upstream, testbed.UpstreamIface, "icmp6 and ip6[40] == 128")
	if err != nil {
		t.Fatal(err)
	}
	waitInternet(t, l, host, 15*time.Second, "the host reaching the internet through node 2")
	t.Logf("the host reached the internet again %v after node 1 died", time.Since(start).Round(time.Millisecond))
	pkts, err := up.Stop()
	if err != nil {
		t.Fatal(err)
	}
	var leaked int
	for _, p := range pkts {
		if internal.Contains(p.Src) {
			leaked++
		}
	}
	if leaked > 0 {
		// The backup holds the mapping before it takes over, and the guard
		// chain drops anything a missing mapping would let through.
		t.Errorf("%d echo requests reached the upstream untranslated (ULA source) during the failover", leaked)
	}

	t.Run("node 2 is master with the same delegated prefix", func(t *testing.T) {
		doc, _, err := backup.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r, p := testbed.GetString(doc, "ha", "role"), testbed.GetString(doc, "wan", "prefix"); r != "master" || p != deleg.String() {
			t.Errorf("node 2: role %s prefix %s, want master %s", r, p, deleg)
		}
	})
	t.Run("the host keeps its address and leaves from the same mapped source", func(t *testing.T) {
		addrs, err := l.HostAddrs(ctx, host, subnet1)
		if err != nil || len(addrs) == 0 || addrs[0].Prefix.Addr() != hostAddr || addrs[0].Deprecated {
			t.Fatalf("host addresses = %+v, %v; want %s kept", addrs, err, hostAddr)
		}
		for _, s := range pingUpstream(t, l, host) {
			if s != want {
				t.Errorf("after failover the upstream saw %s, want %s", s, want)
			}
		}
	})
}
