package uplink

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/v6edge/v6edge/internal/nstest"
	"github.com/v6edge/v6edge/nat"
)

// nsPrefix names every namespace these tests create.
const nsPrefix = "v6up-"

// The lab: a LAN host, the router, two upstreams. Each upstream delegated a /56 to the
// router (fixed here, no DHCPv6), routes it back over its own WAN link, drops packets from
// any other source (BCP 38), and holds the same "internet" address on lo.
const (
	hostAddr   = "fd00:aaaa:bbbb:cc01::100"
	routerLAN  = "fd00:aaaa:bbbb:cc01::1"
	internet   = "2001:db8:ffff::1"
	upstreamLL = "fe80::1" // each upstream's address on its WAN link: the router's gateway
)

var delegated = []netip.Prefix{netip.MustParsePrefix("2001:db8:100::/56"), netip.MustParsePrefix("2001:db8:200::/56")}

type lab struct {
	host, router nstest.Netns
	up           [2]nstest.Netns
	routerNS     netns.NsHandle
	routerFd     int
	router6      *Router
	nat          *nat.Table
}

func newNetns(t *testing.T, role string) nstest.Netns {
	t.Helper()
	return nstest.NewNetns(t, nsPrefix+role)
}

// mappedHost is the LAN host's address translated into prefix p.
func mappedHost(p netip.Prefix) netip.Addr {
	a := netip.MustParseAddr(hostAddr).As16()
	e := p.Addr().As16()
	copy(a[:p.Bits()/8], e[:p.Bits()/8])
	return netip.AddrFrom16(a)
}

func newLab(t *testing.T) *lab {
	t.Helper()
	nstest.RequireRoot(t, "nft", "ping")
	l := &lab{host: newNetns(t, "host"), router: newNetns(t, "rtr"), up: [2]nstest.Netns{newNetns(t, "up1"), newNetns(t, "up2")}}
	for _, ns := range []nstest.Netns{l.host, l.router, l.up[0], l.up[1]} {
		// The addresses are ours alone: no Duplicate Address Detection, nothing tentative.
		// Addresses survive a link going down (including carrier loss on the peer's
		// side), as on an ISP's interface with configured addresses.
		ns.Run(t, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
			"net.ipv6.conf.default.keep_addr_on_down=1")
		ns.Run(t, "ip", "link", "set", "lo", "up")
	}
	l.router.Run(t, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	nstest.Veth(t, l.host, "h0", l.router, "lan0")
	l.host.Run(t, "ip", "link", "set", "h0", "up")
	l.host.Run(t, "ip", "-6", "addr", "add", hostAddr+"/64", "dev", "h0", "nodad")
	l.host.Run(t, "ip", "-6", "route", "add", "default", "via", routerLAN)
	l.router.Run(t, "ip", "link", "set", "lan0", "up")
	l.router.Run(t, "ip", "-6", "addr", "add", routerLAN+"/64", "dev", "lan0", "nodad")
	for i, up := range l.up {
		wan := "wan" + strconv.Itoa(i)
		// A fixed MAC gives the WAN a known EUI-64 link-local, which the upstream routes
		// the delegated prefix to. (The kernel removes link-locals when a link goes
		// down, whatever keep_addr_on_down says, and regenerates this same one.)
		mac := fmt.Sprintf("02:00:00:00:%02x:02", i+1)
		routerLL := fmt.Sprintf("fe80::ff:fe00:%x02", i+1)
		nstest.Veth(t, l.router, wan, up, "u0")
		l.router.IP(t, "link", "set", wan, "address", mac)
		l.router.Run(t, "ip", "link", "set", wan, "up")
		// What the RAs of both upstreams would leave in main: a default route per WAN.
		l.router.Run(t, "ip", "-6", "route", "add", "default", "via", upstreamLL, "dev", wan, "metric", strconv.Itoa(1024+i))
		up.Run(t, "ip", "link", "set", "u0", "up")
		up.Run(t, "ip", "-6", "addr", "add", upstreamLL+"/64", "dev", "u0", "nodad")
		up.Run(t, "ip", "-6", "addr", "add", internet+"/128", "dev", "lo")
		up.Run(t, "ip", "-6", "route", "add", delegated[i].String(), "via", routerLL, "dev", "u0")
		// BCP 38, with counters: what arrives from the delegated prefix, and what is dropped.
		up.Run(t, "nft", fmt.Sprintf(`table ip6 bcp38 { counter own { }; counter foreign { }; chain input { type filter hook input priority 0; policy accept; iifname "u0" ip6 saddr %v counter name own accept; iifname "u0" ip6 saddr != fe80::/10 counter name foreign drop; }; }`, delegated[i]))
	}

	l.routerFd = l.router.Fd()
	l.routerNS = l.router.Handle
	h, err := netlink.NewHandleAt(l.routerNS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	marks, err := NewMarks(l.routerFd, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { marks.Close() })
	l.router6 = NewRouter(h, discard())
	l.router6.UseMarks(marks)
	tbl, err := nat.NewTableNetNS(nat.DefaultName, l.routerFd, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	l.nat = tbl
	ruleset := nat.Ruleset{Internal: internal, LANs: []string{"lan0"}}
	for i, p := range delegated {
		ruleset.Uplinks = append(ruleset.Uplinks, nat.Uplink{WAN: "wan" + strconv.Itoa(i), External: p, Mark: mark(i)})
	}
	if err := tbl.Set(ruleset); err != nil {
		t.Fatalf("nat Set: %v", err)
	}
	return l
}

func mark(i int) uint32 { return 0x76650000 + uint32(i) + 1 }

// policy is the lab's Policy with the given uplinks healthy; the first is preferred.
func (l *lab) policy(healthy ...bool) Policy {
	p := Policy{LANs: []string{"lan0"}, Internal: internal}
	for i := range l.up {
		p.Uplinks = append(p.Uplinks, Uplink{Interface: "wan" + strconv.Itoa(i), Table: 1000 + i, Mark: mark(i),
			Gateway: netip.MustParseAddr(upstreamLL), Healthy: healthy[i], Preferred: i == 0})
	}
	return p
}

func (l *lab) set(t *testing.T, p Policy) {
	t.Helper()
	if err := l.router6.Set(p); err != nil {
		t.Fatalf("Router.Set: %v", err)
	}
}

var packetsRE = regexp.MustCompile(`packets (\d+)`)

// counter reads a BCP 38 counter of upstream i.
func (l *lab) counter(t *testing.T, i int, name string) int {
	t.Helper()
	m := packetsRE.FindStringSubmatch(l.up[i].Run(t, "nft", "list", "counter", "ip6", "bcp38", name))
	if m == nil {
		t.Fatalf("no packet count for counter %s of upstream %d", name, i+1)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// ping sends one echo request from ns and reports whether it was answered within wait.
func ping(ns nstest.Netns, dst string, wait time.Duration) bool {
	_, err := ns.Try("ping", "-6", "-n", "-q", "-c", "1", "-W", fmt.Sprintf("%.1f", wait.Seconds()), dst)
	return err == nil
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	return nstest.Poll(timeout, 20*time.Millisecond, cond)
}

func TestIntegrationPolicy(t *testing.T) {
	l := newLab(t)
	l.set(t, l.policy(true, true))

	t.Run("the kernel lists the rendered marks table", func(t *testing.T) {
		got := l.router.Run(t, "nft", "list", "table", "ip6", MarksTable)
		if want := FormatMarks(RenderMarks(l.policy(true, true))); got != want {
			t.Errorf("nft list table ip6 %s:\n%s\nwant:\n%s", MarksTable, got, want)
		}
	})

	t.Run("the kernel lists the rendered rules and routes", func(t *testing.T) {
		rules, routes := Render(l.policy(true, true))
		var want []string
		for _, r := range rules {
			want = append(want, r.String())
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(l.router.Run(t, "ip", "-6", "rule")), "\n") {
			if n, _, ok := strings.Cut(line, ":"); ok && n >= "30000" && n <= "30099" && len(n) == 5 {
				got = append(got, line)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ip -6 rule (-want +got):\n%s", diff)
		}
		for _, r := range routes {
			got := strings.TrimSpace(l.router.Run(t, "ip", "-6", "route", "show", "table", strconv.Itoa(r.Table)))
			if got != r.String() {
				t.Errorf("ip -6 route show table %d:\n%s\nwant:\n%s", r.Table, got, r.String())
			}
		}
	})

	t.Run("a second Set against the kernel writes nothing", func(t *testing.T) {
		h, err := netlink.NewHandleAt(l.routerNS)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		c := &countingHandle{Handle: h}
		r := NewRouter(c, discard())
		for _, p := range []Policy{l.policy(true, true), l.policy(false, true), l.policy(true, true)} {
			if err := r.Set(p); err != nil {
				t.Fatal(err)
			}
			c.writes = 0
			if err := r.Set(p); err != nil {
				t.Fatal(err)
			}
			if c.writes != 0 {
				t.Errorf("the repeated Set wrote %d times", c.writes)
			}
		}
	})

	t.Run("a ping from the host leaves by uplink 1 translated into prefix 1", func(t *testing.T) {
		own1, own2 := l.counter(t, 0, "own"), l.counter(t, 1, "own")
		if !ping(l.host, internet, 2*time.Second) {
			t.Fatal("no answer from the internet")
		}
		if got := l.counter(t, 0, "own") - own1; got != 1 {
			t.Errorf("upstream 1 saw %d packets from its prefix, want 1", got)
		}
		if got := l.counter(t, 1, "own") - own2; got != 0 {
			t.Errorf("upstream 2 saw %d packets from its prefix, want 0", got)
		}
	})

	t.Run("an inbound ping by uplink 2 is answered by uplink 2", func(t *testing.T) {
		foreign1 := l.counter(t, 0, "foreign")
		dst := mappedHost(delegated[1]).String()
		if !ping(l.up[1], dst, 2*time.Second) {
			t.Errorf("upstream 2 got no answer from %s", dst)
		}
		if got := l.counter(t, 0, "foreign") - foreign1; got != 0 {
			t.Errorf("upstream 1 dropped %d packets with a foreign source: the reply left by the wrong uplink", got)
		}
		ct := l.router.Run(t, "conntrack", "-L", "-f", "ipv6", "-p", "icmpv6")
		if !strings.Contains(ct, "mark="+strconv.Itoa(int(mark(1)))) {
			t.Errorf("no conntrack entry with uplink 2's mark:\n%s", ct)
		}
	})

	t.Run("the host still reaches the router and other LAN addresses stay in main", func(t *testing.T) {
		if !ping(l.host, routerLAN, 2*time.Second) {
			t.Error("the host cannot reach the router's LAN address")
		}
		out := l.router.Run(t, "ip", "-6", "route", "get", "fd00:aaaa:bbbb:cc01::200", "from", hostAddr, "iif", "lan0")
		if !strings.Contains(out, "dev lan0") {
			t.Errorf("LAN to LAN is not routed on the LAN: %s", out)
		}
	})

	t.Run("uplink 1 down: new flows leave by uplink 2 within 2 s and come back after the hold-down", func(t *testing.T) {
		h := NewHealth(HealthConfig{HoldDown: time.Second}, time.Now())
		h.Link(time.Now(), true)
		h.Lease(time.Now(), true)

		fault := time.Now()
		l.router.Run(t, "ip", "link", "set", "wan0", "down")
		h.Link(time.Now(), false)
		l.failover(t, h)
		own2 := l.counter(t, 1, "own")
		if !waitFor(2*time.Second, func() bool { return ping(l.host, internet, 200*time.Millisecond) }) {
			t.Fatal("no new flow got through within 2 s of the fault")
		}
		t.Logf("fault to first answered new flow: %v", time.Since(fault).Round(time.Millisecond))
		if l.counter(t, 1, "own") == own2 {
			t.Error("the answered ping did not go through upstream 2")
		}

		// A flow opened now, through uplink 2, must stay there when uplink 1 is
		// preferred again: one ping process is one ICMP identifier, one flow.
		started := l.counter(t, 1, "own")
		long := pingInBackground(l.host, "0.1", "25")
		if !waitFor(2*time.Second, func() bool { return l.counter(t, 1, "own") >= started+2 }) {
			t.Fatal("the long ping did not start through uplink 2")
		}
		foreign1 := l.counter(t, 0, "foreign")

		l.router.Run(t, "ip", "link", "set", "wan0", "up")
		back := time.Now()
		h.Link(back, true)
		p := l.policy(h.Healthy(time.Now()), true)
		if p.Uplinks[0].Healthy {
			t.Fatal("uplink 1 is healthy at once after recovering; want a hold-down")
		}
		l.set(t, p) // the link came back: its table needs its route again
		if !waitFor(3*time.Second, func() bool { return h.Healthy(time.Now()) }) {
			t.Fatalf("still held down: %s", h.Reason())
		}
		if held := time.Since(back); held < time.Second {
			t.Errorf("healthy after %v, before the 1 s hold-down ended", held)
		}
		l.set(t, l.policy(true, true))
		own1 := l.counter(t, 0, "own")
		if !waitFor(2*time.Second, func() bool { return ping(l.host, internet, 200*time.Millisecond) }) {
			l.dump(t)
			t.Fatal("no answer after the return")
		}
		if l.counter(t, 0, "own") == own1 {
			t.Error("new flows did not return to uplink 1")
		}
		select {
		case r := <-long:
			if r.err != nil || !strings.Contains(r.out, " 0% packet loss") {
				t.Errorf("the flow established on uplink 2 was disturbed by the return to uplink 1: %v\n%s", r.err, r.out)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the long ping did not end")
		}
		if got := l.counter(t, 0, "foreign") - foreign1; got != 0 {
			t.Errorf("upstream 1 dropped %d packets from prefix 2: an established flow moved uplinks", got)
		}
		if out := l.host.Run(t, "ip", "-6", "addr", "show", "dev", "h0", "scope", "global"); !strings.Contains(out, hostAddr+"/64") {
			t.Errorf("the host's address changed:\n%s", out)
		}
	})

	t.Run("probes through each uplink are answered, and a silent upstream is noticed within 4 s", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		t.Cleanup(func() { cancel(); wg.Wait() })
		type result struct {
			at time.Time
			ok bool
		}
		results := [2]chan result{make(chan result, 64), make(chan result, 64)}
		for i := range 2 {
			src := func() netip.Addr { return netip.MustParseAddr(routerLAN) }
			p := NewProber("wan"+strconv.Itoa(i), netip.MustParseAddr(internet), src, mark(i), time.Second, discard(),
				func(ok bool) { results[i] <- result{time.Now(), ok} }).InNamespace(l.routerNS)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.Run(ctx); err != nil {
					t.Errorf("Prober %d: %v", i, err)
				}
			}()
		}
		for i := range 2 {
			select {
			case r := <-results[i]:
				if !r.ok {
					t.Fatalf("the first probe through uplink %d was not answered", i+1)
				}
			case <-time.After(3 * time.Second):
				t.Fatalf("no probe result of uplink %d", i+1)
			}
		}
		h := NewHealth(HealthConfig{Interval: time.Second, Misses: 3}, time.Now())
		h.Link(time.Now(), true)
		h.Lease(time.Now(), true)
		l.up[0].Run(t, "nft", "insert rule ip6 bcp38 input icmpv6 type echo-request drop")
		silent := time.Now()
		deadline := time.After(6 * time.Second)
		for h.Healthy(time.Now()) {
			select {
			case r := <-results[0]:
				h.ProbeResult(r.at, r.ok)
			case r := <-results[1]:
				if !r.ok {
					t.Error("a probe through uplink 2 went unanswered")
				}
			case <-deadline:
				t.Fatal("the silent upstream was not noticed within 6 s")
			}
		}
		took := time.Since(silent)
		t.Logf("silent upstream noticed after %v (%s)", took.Round(time.Millisecond), h.Reason())
		if took > 4*time.Second {
			t.Errorf("noticed after %v, want within ~3 s (3 probes 1 s apart)", took)
		}
		l.up[0].Run(t, "nft", "flush chain ip6 bcp38 input")
	})
}

// failover is what the daemon does when h turns unhealthy: new flows to uplink 2, uplink
// 1's flows forgotten.
func (l *lab) failover(t *testing.T, h *Health) {
	t.Helper()
	l.set(t, l.policy(h.Healthy(time.Now()), true))
	if _, err := FlushUplinkIn(l.routerFd, mark(0)); err != nil {
		t.Errorf("FlushUplink: %v", err)
	}
}

// TestIntegrationFailoverTime measures, over 10 runs, the time from uplink 1's link going
// down to the first new flow answered through uplink 2, with the daemon's reaction (Set
// and FlushUplink) right after the fault.
func TestIntegrationFailoverTime(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the 10-run measurement in -short mode")
	}
	l := newLab(t)
	l.set(t, l.policy(true, true))
	if !ping(l.host, internet, 2*time.Second) {
		t.Fatal("no answer before the first fault")
	}
	t.Run("a flow on the failed uplink carries on by the other one after the flush", func(t *testing.T) {
		started := l.counter(t, 0, "own")
		long := pingInBackground(l.host, "0.05", "30")
		if !waitFor(2*time.Second, func() bool { return l.counter(t, 0, "own") >= started+3 }) {
			t.Fatal("the ping did not start through uplink 1")
		}
		l.router.Run(t, "ip", "link", "set", "wan0", "down")
		l.set(t, l.policy(false, true))
		n, err := FlushUplinkIn(l.routerFd, mark(0))
		if err != nil || n == 0 {
			t.Errorf("FlushUplink = %d, %v; want the ping's entry deleted", n, err)
		}
		own2 := l.counter(t, 1, "own")
		var r pingResult
		select {
		case r = <-long:
		case <-time.After(10 * time.Second):
			t.Fatal("the ping did not end")
		}
		m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`).FindStringSubmatch(r.out)
		if m == nil {
			t.Fatalf("ping: %v\n%s", r.err, r.out)
		}
		sent, got := atoi(m[1]), atoi(m[2])
		if sent-got > 2 {
			t.Errorf("%d of %d echo requests lost across the failover, want at most 2:\n%s", sent-got, sent, r.out)
		}
		if l.counter(t, 1, "own") == own2 {
			t.Error("the flow did not continue through uplink 2")
		}
		l.router.Run(t, "ip", "link", "set", "wan0", "up")
		l.set(t, l.policy(true, true))
	})

	var times []time.Duration
	for run := range 10 {
		// An established flow on uplink 1, as a host would have.
		_ = ping(l.host, internet, 200*time.Millisecond)
		fault := time.Now()
		l.router.Run(t, "ip", "link", "set", "wan0", "down")
		l.set(t, l.policy(false, true))
		if _, err := FlushUplinkIn(l.routerFd, mark(0)); err != nil {
			t.Errorf("FlushUplink: %v", err)
		}
		if !waitFor(2*time.Second, func() bool { return ping(l.host, internet, 100*time.Millisecond) }) {
			t.Fatalf("run %d: no new flow through uplink 2 within 2 s", run)
		}
		times = append(times, time.Since(fault))
		l.router.Run(t, "ip", "link", "set", "wan0", "up")
		l.set(t, l.policy(true, true))
		if !waitFor(2*time.Second, func() bool { return ping(l.host, internet, 100*time.Millisecond) }) {
			t.Fatalf("run %d: no flow after uplink 1 came back", run)
		}
	}
	slices.Sort(times)
	t.Logf("failover, fault to first answered new flow over %d runs: median %v, max %v, all %v",
		len(times), times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond), times)
}

// dump logs the routing state of the lab, for failures.
func (l *lab) dump(t *testing.T) {
	t.Helper()
	for _, c := range [][]string{{"ip", "-6", "rule"}, {"ip", "-6", "route", "show", "table", "all"}, {"ip", "-6", "addr"},
		{"ip", "-6", "neigh"}, {"conntrack", "-L", "-f", "ipv6"}} {
		out, _ := l.router.Try(c...)
		t.Logf("router: %s\n%s", strings.Join(c, " "), out)
	}
	for i, up := range l.up {
		for _, c := range [][]string{{"ip", "-6", "route"}, {"ip", "-6", "addr"}, {"nft", "list", "ruleset"}} {
			out, _ := up.Try(c...)
			t.Logf("upstream %d: %s\n%s", i+1, strings.Join(c, " "), out)
		}
	}
}

func TestIntegrationProberWithoutInterface(t *testing.T) {
	l := newLab(t)
	t.Run("a prober of a WAN that does not exist reports misses and keeps running", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		results := make(chan bool, 16)
		p := NewProber("wan7", netip.MustParseAddr(internet), func() netip.Addr { return netip.MustParseAddr(routerLAN) },
			mark(0), 100*time.Millisecond, discard(), func(ok bool) { results <- ok }).InNamespace(l.routerNS)
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		for range 3 {
			select {
			case ok := <-results:
				if ok {
					t.Error("a probe through a missing interface was answered")
				}
			case err := <-done:
				t.Fatalf("Run returned early: %v", err)
			case <-time.After(2 * time.Second):
				t.Fatal("no probe results")
			}
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil after cancel", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	})
}

// countingHandle counts the calls that change the kernel.
type countingHandle struct {
	Handle
	writes int
}

func (c *countingHandle) RuleAdd(r *netlink.Rule) error { c.writes++; return c.Handle.RuleAdd(r) }
func (c *countingHandle) RuleDel(r *netlink.Rule) error { c.writes++; return c.Handle.RuleDel(r) }
func (c *countingHandle) RouteReplace(r *netlink.Route) error {
	c.writes++
	return c.Handle.RouteReplace(r)
}
func (c *countingHandle) RouteDel(r *netlink.Route) error { c.writes++; return c.Handle.RouteDel(r) }

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// pingResult is what a ping run in the background printed and returned.
type pingResult struct {
	out string
	err error
}

// pingInBackground pings the internet from host, every interval seconds,
// count times, as one flow (one ICMP identifier); the result arrives on the
// channel when ping ends.
func pingInBackground(host nstest.Netns, interval, count string) <-chan pingResult {
	long := make(chan pingResult, 1)
	go func() {
		out, err := host.Try("ping", "-6", "-n", "-q", "-i", interval, "-c", count, "-W", "1", internet)
		long <- pingResult{out, err}
	}()
	return long
}
