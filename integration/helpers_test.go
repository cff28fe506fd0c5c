package integration

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/testbed"
)

// Helpers every system test here shares: building a lab, running the
// daemon in it with its log kept for a failure, waiting for a lease.

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// parallel skips t when the system tests cannot run here, and else lets it
// run in parallel with the others.
func parallel(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	t.Parallel()
}

// newLab builds a lab called name whose progress goes to the test log and
// that Close removes when the test ends, also when it fails. It skips the
// test where no lab can be built (skipReason).
func newLab(t *testing.T, name string, o testbed.Options) *testbed.Lab {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	o.Name, o.Log = name, testLog{t}
	l, err := testbed.New(t.Context(), o)
	if err != nil {
		t.Fatalf("testbed.New: %v", err)
	}
	closeAtEnd(t, l)
	return l
}

// closeAtEnd closes c (a lab) when the test ends and fails the test if
// that does not remove everything.
func closeAtEnd(t *testing.T, c interface{ Close() error }) {
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// runDaemon starts bin in l's router namespace with config; see
// logOnFailure for lines.
func runDaemon(t *testing.T, l *testbed.Lab, config string, lines int) *testbed.Daemon {
	t.Helper()
	return runDaemonOn(t, l, l.Router, config, lines)
}

// runDaemonOn is runDaemon in the router namespace router.
func runDaemonOn(t *testing.T, l *testbed.Lab, router, config string, lines int) *testbed.Daemon {
	t.Helper()
	d, err := l.RunDaemonOn(t.Context(), router, bin, config)
	if err != nil {
		t.Fatal(err)
	}
	logOnFailure(t, d, lines)
	return d
}

// runNodes starts one v6edge per router of l, node i with
// config(priorities[i]); their logs go to the test log on failure.
func runNodes(t *testing.T, l *testbed.Lab, config func(priority int) string, priorities ...int) []*testbed.Daemon {
	t.Helper()
	var nodes []*testbed.Daemon
	for i, prio := range priorities {
		d, err := l.RunDaemonOn(t.Context(), l.Routers[i], bin, config(prio))
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, d)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, d := range nodes {
				t.Logf("node %d log (last lines):\n%s", i+1, lastLines(d.Log(), 40))
			}
		}
	})
	return nodes
}

// logOnFailure puts d's log into the test log if the test fails: the last
// lines lines, or all of it when lines is 0.
func logOnFailure(t *testing.T, d *testbed.Daemon, lines int) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		if lines == 0 {
			t.Logf("%s log:\n%s", d.Name, d.Log())
			return
		}
		t.Logf("%s log (last lines):\n%s", d.Name, lastLines(d.Log(), lines))
	})
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitBound waits until the daemon is bound to a prefix from pool.
func waitBound(t *testing.T, d *testbed.Daemon, pool netip.Prefix) netip.Prefix {
	t.Helper()
	return waitBoundWithin(t, d, pool, 30*time.Second)
}

// waitBoundWithin is waitBound with a deadline.
func waitBoundWithin(t *testing.T, d *testbed.Daemon, pool netip.Prefix, timeout time.Duration) netip.Prefix {
	t.Helper()
	var deleg netip.Prefix
	_, err := d.WaitStatus(t.Context(), timeout, "a delegated prefix from "+pool.String()+" in status", func(doc map[string]any) bool {
		p, err := netip.ParsePrefix(testbed.GetString(doc, "wan", "prefix"))
		deleg = p
		return err == nil && testbed.GetString(doc, "wan", "state") == "bound" && pool.Contains(p.Addr())
	})
	if err != nil {
		t.Fatal(err)
	}
	return deleg
}

// waitMasterBound waits until the first node of a pair is master and
// bound, then until the second is backup with the master's lease (ha
// sync), and returns the delegated prefix.
func waitMasterBound(t *testing.T, nodes []*testbed.Daemon) netip.Prefix {
	t.Helper()
	ctx := t.Context()
	doc, err := nodes[0].WaitStatus(ctx, 30*time.Second, "node 1 master and bound", func(doc map[string]any) bool {
		return testbed.GetString(doc, "ha", "role") == "master" && testbed.GetString(doc, "wan", "state") == "bound"
	})
	if err != nil {
		t.Fatal(err)
	}
	deleg := netip.MustParsePrefix(testbed.GetString(doc, "wan", "prefix"))
	// The backup learns the master's lease, so that after a takeover it
	// translates at once instead of asking the server again.
	syncStart := time.Now()
	if _, err := nodes[1].WaitStatus(ctx, 15*time.Second, "node 2 backup with the master's lease", func(doc map[string]any) bool {
		return testbed.GetString(doc, "ha", "role") == "backup" && testbed.GetString(doc, "wan", "prefix") == deleg.String()
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("node 2 showed the master's lease %v after node 1 was bound", time.Since(syncStart).Round(time.Millisecond))
	return deleg
}

// waitHostThroughPair waits until the LAN host has a SLAAC address in
// subnet1, a default route via the pair's virtual link-local, and reaches
// the internet through the master; it returns the host's address.
func waitHostThroughPair(t *testing.T, l *testbed.Lab) netip.Addr {
	t.Helper()
	ctx := t.Context()
	host := l.Hosts[0]
	hostAddr := hostSLAAC(t, l, host, subnet1)
	err := l.WaitFor(ctx, 10*time.Second, "the host's default route via "+pairVirtualLL.String(), func() (bool, error) {
		out, err := l.Exec(ctx, host, "ip", "-6", "route", "show", "default")
		return strings.Contains(out, "via "+pairVirtualLL.String()+" "), err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitInternet(t, l, host, 10*time.Second, "the host reaching the internet through node 1")
	return hostAddr
}

// pingUpstream pings the internet address from host and returns the
// sources the upstream saw; it fails the test if the upstream saw none.
func pingUpstream(t *testing.T, l *testbed.Lab, host string) []netip.Addr {
	t.Helper()
	seen := pingSources(t, l, host, netip.Addr{})
	if len(seen) == 0 {
		t.Fatal("the upstream saw no echo request")
	}
	return seen
}

// pingSources pings the internet address from host, from src when it is
// valid, and returns the sources the upstream saw the echo requests come
// from.
func pingSources(t *testing.T, l *testbed.Lab, host string, src netip.Addr) []netip.Addr {
	t.Helper()
	ctx := t.Context()
	c, err := l.Capture(ctx, l.Upstream, testbed.UpstreamIface, "icmp6 and ip6[40] == 128")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"ping", "-c", "2", "-i", "0.2", "-W", "2"}
	from := host
	if src.IsValid() {
		args, from = append(args, "-I", src.String()), src.String()
	}
	out, perr := l.Exec(ctx, host, append(args, testbed.InternetAddr.String())...)
	pkts, err := c.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if perr != nil {
		t.Fatalf("ping from %s: %v\n%s", from, perr, out)
	}
	var seen []netip.Addr
	for _, p := range pkts {
		if p.Dst == testbed.InternetAddr {
			seen = append(seen, p.Src)
		}
	}
	return seen
}

// netmapPresent waits until the router's ruleset maps internal onto deleg.
func netmapPresent(t *testing.T, l *testbed.Lab, deleg netip.Prefix) string {
	t.Helper()
	out, err := l.WaitNetmap(t.Context(), l.Router, internal, deleg, netip.Prefix{}, 5*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// wantStatusNAT checks that d's status reports the NAT installed with
// external prefix deleg.
func wantStatusNAT(t *testing.T, d *testbed.Daemon, deleg netip.Prefix) {
	t.Helper()
	doc, _, err := d.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if testbed.Get(doc, "nat", "installed") != true || testbed.GetString(doc, "nat", "external") != deleg.String() {
		t.Errorf("status nat = %v, want installed with external %s", testbed.Get(doc, "nat"), deleg)
	}
}

// hostSLAAC waits up to 20 s for host to number itself in prefix and
// returns the address, once the host also has its default route: an
// address can come from an RA that still says router lifetime 0 (no way out
// yet, RFC 7084 G-4), and traffic, replies included, needs the route.
func hostSLAAC(t *testing.T, l *testbed.Lab, host string, prefix netip.Prefix) netip.Addr {
	t.Helper()
	a, err := l.WaitHostSLAAC(t.Context(), host, prefix, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitHostDefaultRoute(t, l, host)
	return a
}

// waitInternet waits up to d, described as what, until host gets an answer
// to a ping of the internet address.
func waitInternet(t *testing.T, l *testbed.Lab, host string, d time.Duration, what string) {
	t.Helper()
	ctx := t.Context()
	err := l.WaitFor(ctx, d, what, func() (bool, error) {
		_, err := l.Exec(ctx, host, "ping", "-c", "1", "-W", "1", testbed.InternetAddr.String())
		return err == nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitHostDefaultRoute waits until host has a default route on its LAN
// interface: the router names itself default router only once it has a
// way out (RFC 7084 G-4), at its next RA after the lease and the upstream's
// default route arrived (RFC 4861 paces RAs at least 3 s apart).
func waitHostDefaultRoute(t *testing.T, l *testbed.Lab, host string) {
	t.Helper()
	err := l.WaitFor(t.Context(), 10*time.Second, host+"'s default route", func() (bool, error) {
		out, err := l.Exec(t.Context(), host, "ip", "-6", "route", "show", "default")
		return strings.Contains(out, "dev "+testbed.HostIface), err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// addHostlessLAN gives the router a second LAN, name, with no hosts: a veth
// pair of its own is enough for its RAs (this kernel has no dummy links).
func addHostlessLAN(t *testing.T, l *testbed.Lab, name string) {
	t.Helper()
	if _, err := l.Exec(t.Context(), l.Router, "sh", "-c",
		"ip link add "+name+" type veth peer name "+name+"p && ip link set "+name+" up && ip link set "+name+"p up"); err != nil {
		t.Fatal(err)
	}
}

// metricCheck is one expectation on a scraped metric.
type metricCheck struct {
	name   string
	labels []string
	ok     func(float64) bool
	want   string
}

// waitMetrics scrapes url in the router namespace until every check holds
// (10 s at most) and returns the last scrape; on a timeout it fails the
// test naming each metric and the value it had.
func waitMetrics(t *testing.T, l *testbed.Lab, url string, checks []metricCheck) string {
	t.Helper()
	ctx := t.Context()
	var text string
	err := l.WaitFor(ctx, 10*time.Second, "the metrics", func() (bool, error) {
		var err error
		text, err = l.OpsScrape(ctx, l.Router, url)
		if err != nil {
			return false, err
		}
		for _, c := range checks {
			if v, ok := opsMetric(text, c.name, c.labels...); !ok || !c.ok(v) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		for _, c := range checks {
			v, ok := opsMetric(text, c.name, c.labels...)
			t.Errorf("%s%v = %v (present %v), want %s", c.name, c.labels, v, ok, c.want)
		}
		t.Fatal(err)
	}
	return text
}
