package integration

import (
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/testbed"
)

// Issue 15, "every ISP": what the incumbent (dhcpcd 9 with the NETMAP hook
// and radvd, as RunIncumbent sets it up) does against each ISP variety of
// Kea. Each test logs one line per measured fact,
//
//	incumbent: <variety>: <fact>
//
// and asserts only what dhcpcd 9.4 reliably does here, so that a change of
// dhcpcd (or of the lab) shows.

// ispBindWait bounds the wait for dhcpcd's first BOUND6.
const ispBindWait = 30 * time.Second

// ispRun is an incumbent against one ISP variety, with DHCPv6 on the
// upstream link captured from before dhcpcd's first Solicit.
type ispRun struct {
	t       *testing.T
	variety string
	l       *testbed.Lab
	inc     *testbed.ISPIncumbent
	capture *testbed.Capture
	trace   string // tcpdump -vv of the capture, once stopped
}

func (r *ispRun) fact(format string, args ...any) {
	r.t.Helper()
	r.t.Logf("incumbent: %s: %s", r.variety, fmt.Sprintf(format, args...))
}

// startISP builds a lab with o, starts the DHCPv6 capture, and, unless
// prepare fails, runs prepare (e.g. to make Kea refuse) and then the
// incumbent with c.
func startISP(t *testing.T, variety, name string, o testbed.Options, c testbed.IncumbentConf, prepare func(*testbed.Lab)) *ispRun {
	t.Helper()
	ctx := t.Context()
	l := newLab(t, name, o)
	if prepare != nil {
		prepare(l)
	}
	capture, err := l.Capture(ctx, l.Upstream, testbed.UpstreamIface, "udp port 546 or udp port 547")
	if err != nil {
		t.Fatal(err)
	}
	inc, err := l.RunIncumbentConf(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	r := &ispRun{t: t, variety: variety, l: l, inc: inc, capture: capture}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dhcpcd.conf:\n%s\ndhcpcd log:\n%s\nkea log:\n%s\nDHCPv6 trace:\n%s",
				inc.Conf, inc.Dhcpcd.Log(), l.KeaLog(), r.stopTrace())
		}
	})
	return r
}

// stopTrace stops the capture (once) and returns its verbose decode.
func (r *ispRun) stopTrace() string {
	if r.capture == nil {
		return r.trace
	}
	c := r.capture
	r.capture = nil
	if _, err := c.Stop(); err != nil {
		r.trace = "capture: " + err.Error()
		return r.trace
	}
	out, err := exec.Command("tcpdump", "-r", c.File(), "-n", "-vv", "-tt").CombinedOutput()
	r.trace = string(out)
	if err != nil {
		r.trace += "\ntcpdump -r: " + err.Error()
	}
	return r.trace
}

// dhcp6Lines are the decoded DHCPv6 messages of type msg ("solicit",
// "advertise", "request", "reply") in the trace.
func dhcp6Lines(trace, msg string) []string {
	// tcpdump -v continues a packet on indented lines: join them.
	var pkts []string
	for _, line := range strings.Split(trace, "\n") {
		if len(pkts) > 0 && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) {
			pkts[len(pkts)-1] += " " + strings.TrimSpace(line)
		} else if line != "" {
			pkts = append(pkts, line)
		}
	}
	var out []string
	for _, p := range pkts {
		if strings.Contains(p, "dhcp6 "+msg+" ") {
			out = append(out, p)
		}
	}
	return out
}

var (
	oroRe    = regexp.MustCompile(`\(option-request ([^)]*)\)`)
	statusRe = regexp.MustCompile(`\(status-code ([^)]*)\)`)
)

// oro is the option-request list of the first Solicit, "none" without one.
func oro(trace string) string {
	s := dhcp6Lines(trace, "solicit")
	if len(s) == 0 {
		return "no solicit"
	}
	if m := oroRe.FindStringSubmatch(s[0]); m != nil {
		return m[1]
	}
	return "none"
}

// bound waits for dhcpcd's BOUND6 and returns the delegated prefix the
// hook saw; ok false (with a fact) if there is none within wait.
func (r *ispRun) bound(wait time.Duration, since time.Time) (deleg netip.Prefix, env map[string]string, ok bool) {
	r.t.Helper()
	run, err := r.inc.WaitHook(r.t.Context(), wait, "BOUND6")
	if err != nil {
		reasons, _ := r.inc.HookReasons()
		r.fact("not bound within %v (hook ran for %v); dhcpcd log: %s", wait, reasons, lastLogLines(r.inc.Dhcpcd.Log(), 3))
		return netip.Prefix{}, nil, false
	}
	p := run.Env["new_dhcp6_ia_pd1_prefix1"]
	plen := run.Env["new_dhcp6_ia_pd1_prefix1_length"]
	deleg, err = netip.ParsePrefix(p + "/" + plen)
	r.fact("bound %s in %.1f s; hook saw new_dhcp6_ia_pd1_prefix1_length=%s", deleg, run.At.Sub(since).Seconds(), plen)
	if err != nil {
		r.fact("hook has no usable delegated prefix: prefix1=%q length=%q", p, plen)
		return netip.Prefix{}, run.Env, true
	}
	return deleg, run.Env, true
}

// keaPD is the IA_PD lease Kea holds for the router, if any.
func (r *ispRun) keaPD() netip.Prefix {
	leases, err := r.l.KeaLeases()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, le := range leases {
		if le.Type == "IA_PD" && le.DUID != testbed.OtherDUID {
			return le.Prefix
		}
	}
	return netip.Prefix{}
}

// netmapTo is the prefix the hook's snat rule maps to, if any.
var netmapTo = regexp.MustCompile(`snat (?:ip6 )?prefix to ([0-9a-f:]+/[0-9]+)`)

// lanPath measures what a LAN host gets with deleg delegated: the hook's
// NETMAP rule, the host's SLAAC address, the source its ping to the
// internet leaves with, and whether the upstream reaches the host at the
// mapped address. It returns whether the ping out left mapped into deleg.
func (r *ispRun) lanPath(deleg netip.Prefix) (mappedOut, reachedIn bool) {
	r.t.Helper()
	ctx, l := r.t.Context(), r.l
	var rules string
	err := l.WaitFor(ctx, 10*time.Second, "the hook's nft table", func() (bool, error) {
		out, err := l.Exec(ctx, l.Router, "nft", "list", "table", "ip6", "incumbent")
		rules = out
		return err == nil, nil
	})
	if err != nil {
		r.fact("hook installed no nft table within 10 s")
	} else if m := netmapTo.FindStringSubmatch(rules); m != nil {
		r.fact("hook maps %s to %s (NETMAP pair complete: %v)", testbed.DefaultInternal, m[1], testbed.HasNetmap(rules, testbed.DefaultInternal, deleg))
	} else {
		r.fact("hook's nft table has no snat rule:\n%s", rules)
	}
	if out, err := l.Exec(ctx, l.Router, "ip", "-6", "route", "show", "table", "all"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			if deleg.IsValid() && strings.Contains(line, deleg.Masked().Addr().String()) {
				r.fact("router route: %s", strings.TrimSpace(line))
			}
		}
	}
	host, err := l.WaitHostSLAAC(ctx, l.Hosts[0], testbed.DefaultLANSubnet, 20*time.Second)
	if err != nil {
		r.fact("LAN host has no SLAAC address in %s within 20 s", testbed.DefaultLANSubnet)
		return false, false
	}
	if addrs, err := l.HostAddrs(ctx, l.Hosts[0], netip.MustParsePrefix("2000::/3")); err == nil {
		var global []string
		for _, a := range addrs {
			global = append(global, a.Prefix.String())
		}
		r.fact("LAN host's global addresses: %v (the router's radvd advertises only %s)", global, testbed.DefaultLANSubnet)
	}
	err = l.WaitFor(ctx, 10*time.Second, "a default route on wan0", func() (bool, error) {
		out, err := l.Exec(ctx, l.Router, "ip", "-6", "route", "show", "default")
		return strings.Contains(out, "dev "+testbed.WANIface), err
	})
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := l.Capture(ctx, l.Upstream, testbed.UpstreamIface, "icmp6 and ip6[40] == 128")
	if err != nil {
		r.t.Fatal(err)
	}
	_, perr := l.Exec(ctx, l.Hosts[0], "ping", "-c", "2", "-i", "0.2", "-W", "2", testbed.InternetAddr.String())
	pkts, err := c.Stop()
	if err != nil {
		r.t.Fatal(err)
	}
	var src netip.Addr
	if len(pkts) > 0 {
		src = pkts[0].Src
	}
	mappedOut = src.IsValid() && deleg.Contains(src)
	r.fact("LAN host %s pings the internet: reply %v; upstream saw source %v (inside %s: %v)", host, perr == nil, src, deleg, mappedOut)
	if deleg.IsValid() {
		// NETMAP keeps the bits after the delegated length.
		want := testbed.MapAddr(host, netip.PrefixFrom(host, deleg.Bits()).Masked(), deleg)
		_, err := l.Exec(ctx, l.Upstream, "ping", "-c", "1", "-W", "2", want.String())
		reachedIn = err == nil
		r.fact("upstream pings the host at %s: reply %v", want, reachedIn)
	}
	return mappedOut, reachedIn
}

// bindWithin is how long dhcpcd takes at most here to bind a prefix Kea
// can delegate (measured: about 1 s, 3 s with ia_na).
const bindWithin = 10 * time.Second

// requireBound fails the test unless dhcpcd bound want (Kea's lease)
// within bindWithin of its start.
func (r *ispRun) requireBound(deleg netip.Prefix, ok bool, want int) {
	r.t.Helper()
	run, _, _ := r.inc.HookEnv("BOUND6")
	if !ok || !deleg.IsValid() || run.At.Sub(r.inc.Started) > bindWithin {
		r.t.Fatalf("dhcpcd did not bind a prefix within %v", bindWithin)
	}
	if lease := r.keaPD(); deleg != lease || deleg.Bits() != want {
		r.t.Errorf("hook saw %s, Kea's lease is %s, want a /%d", deleg, lease, want)
	}
}

// TestIncumbentISPDelegates60: the ISP delegates a /60 where dhcpcd asks
// for a /56 (and the operator's NETMAP maps a ULA /56).
func TestIncumbentISPDelegates60(t *testing.T) {
	t.Parallel()
	r := startISP(t, "/60 delegated", "v6isp60", testbed.Options{Delegated: 60}, testbed.IncumbentConf{}, nil)
	deleg, _, ok := r.bound(ispBindWait, r.inc.Started)
	trace := r.stopTrace()
	if s := dhcp6Lines(trace, "solicit"); len(s) > 0 {
		r.fact("first Solicit: %s", s[0][strings.Index(s[0], "dhcp6"):])
	}
	r.fact("Kea's lease: %v", r.keaPD())
	r.requireBound(deleg, ok, 60)
	out, in := r.lanPath(deleg)
	// The LAN's /64 (cc01) has zeros in bits 56-59, so the /56-to-/60
	// NETMAP happens to map it one to one.
	if !out || !in {
		t.Errorf("LAN host: mapped out %v, reached in %v; want both", out, in)
	}
}

// TestIncumbentISPDelegates64: the ISP delegates a single /64.
func TestIncumbentISPDelegates64(t *testing.T) {
	t.Parallel()
	r := startISP(t, "/64 delegated", "v6isp64", testbed.Options{Delegated: 64}, testbed.IncumbentConf{}, nil)
	deleg, _, ok := r.bound(ispBindWait, r.inc.Started)
	r.stopTrace()
	r.fact("Kea's lease: %v", r.keaPD())
	r.requireBound(deleg, ok, 64)
	out, in := r.lanPath(deleg)
	// NETMAP of the ULA /56 onto a /64 keeps only the interface ID: the
	// way out works (conntrack), the way in lands on cc00::<iid>, not on
	// the host in cc01.
	if !out || in {
		t.Errorf("LAN host: mapped out %v, reached in %v; want out only", out, in)
	}
}

// TestIncumbentISPExcludedPrefix: Kea's pd-pool excludes the last /64 of
// every delegated prefix (RFC 6603), for dhcpcd as the incumbent runs it
// and for a dhcpcd that puts a /64 of the delegation on the WAN, the case
// the option is for.
func TestIncumbentISPExcludedPrefix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		variety string
		conf    testbed.IncumbentConf
		binds   bool // measured
	}{
		{"excluded prefix", testbed.IncumbentConf{}, true},
		{"excluded prefix, ia_pd on wan0", testbed.IncumbentConf{IAPD: "ia_pd 1/::/56 " + testbed.WANIface + "/0/64"}, false},
	} {
		t.Run(tc.variety, func(t *testing.T) {
			t.Parallel()
			r := startISP(t, tc.variety, "v6ispx", testbed.Options{ExcludedPrefix: true}, tc.conf, nil)
			deleg, env, ok := r.bound(ispBindWait, r.inc.Started)
			trace := r.stopTrace()
			asked := strings.Contains(oro(trace), "opt_67")
			r.fact("Solicit's option-request: %s (asks for option 67: %v)", oro(trace), asked)
			r.fact("DHCPv6 exchange: %s", exchange(trace))
			carries := map[string]bool{}
			for _, msg := range []string{"advertise", "request", "reply"} {
				for _, m := range dhcp6Lines(trace, msg) {
					carries[msg] = carries[msg] || strings.Contains(m, "opt_67")
				}
				r.fact("%s carries option 67: %v", msg, carries[msg])
			}
			if req := dhcp6Lines(trace, "request"); len(req) > 0 {
				r.fact("first Request: %s", req[0][strings.Index(req[0], "dhcp6"):])
			}
			if tc.binds {
				// dhcpcd asks for option 67 only with a prefix for
				// the WAN itself; Kea sends it only when asked.
				if asked || carries["advertise"] || carries["reply"] {
					t.Errorf("option 67 asked %v, advertised %v, replied %v; want none", asked, carries["advertise"], carries["reply"])
				}
				r.requireBound(deleg, ok, 56)
				r.lanPath(deleg)
				return
			}
			// dhcpcd 9.4.1 asks for option 67, gets it in the Advertise,
			// and sends it back in its Requests malformed (dhcpcd issue
			// 246, fixed in 10.0.3): Kea never replies, dhcpcd never
			// binds.
			if !asked || !carries["advertise"] || len(dhcp6Lines(trace, "request")) < 2 || len(dhcp6Lines(trace, "reply")) > 0 || ok {
				t.Errorf("want option 67 asked and advertised, Requests retransmitted without a Reply, no binding; got asked %v advertised %v, %s, bound %v",
					asked, carries["advertise"], exchange(trace), ok)
			}
			if ok {
				var keys []string
				for k, v := range env {
					if strings.Contains(k, "exclude") {
						keys = append(keys, k+"="+v)
					}
				}
				r.fact("hook's environment mentions an exclusion: %v", keys)
			}
		})
	}
}

// TestIncumbentISPAddressPool: Kea also has an IA_NA pool and dhcpcd asks
// for an address too (ia_na 1).
func TestIncumbentISPAddressPool(t *testing.T) {
	t.Parallel()
	pool := netip.MustParsePrefix("2001:db8:0:1::1000/116")
	r := startISP(t, "IA_NA", "v6ispna", testbed.Options{AddressPool: pool}, testbed.IncumbentConf{Extra: []string{"ia_na 1"}}, nil)
	deleg, env, ok := r.bound(ispBindWait, r.inc.Started)
	r.stopTrace()
	var na netip.Addr
	for _, le := range mustLeases(t, r.l) {
		if le.Type == "IA_NA" {
			na = le.Prefix.Addr()
		}
	}
	r.fact("Kea's IA_NA lease: %v; hook saw new_dhcp6_ia_na1_ia_addr1=%q", na, env["new_dhcp6_ia_na1_ia_addr1"])
	r.requireBound(deleg, ok, 56)
	if !pool.Contains(na) || env["new_dhcp6_ia_na1_ia_addr1"] != na.String() {
		t.Fatalf("IA_NA: Kea leased %v, hook saw %q", na, env["new_dhcp6_ia_na1_ia_addr1"])
	}
	var wan []testbed.HostAddr
	err := r.l.WaitFor(t.Context(), 5*time.Second, "the IA_NA address on wan0", func() (bool, error) {
		var err error
		wan, err = r.l.IfaceAddrs(t.Context(), r.l.Router, testbed.WANIface, pool)
		return len(wan) > 0, err
	})
	if err != nil {
		r.fact("no address from %s on wan0 within 5 s", pool)
	}
	for _, a := range wan {
		r.fact("wan0 has %s (valid %v, preferred %v, tentative %v)", a.Prefix, a.Valid, a.Preferred, a.Tentative)
	}
	if len(wan) != 1 || wan[0].Prefix != netip.PrefixFrom(na, 128) {
		t.Errorf("wan0 has %v from %s, want %s/128", wan, pool, na)
	}
}

func mustLeases(t *testing.T, l *testbed.Lab) []testbed.KeaLease {
	t.Helper()
	leases, err := l.KeaLeases()
	if err != nil {
		t.Fatal(err)
	}
	return leases
}

// TestIncumbentISPDNS: Kea offers DNS servers and a search list, to
// dhcpcd as the incumbent runs it and to one that asks for them.
func TestIncumbentISPDNS(t *testing.T) {
	t.Parallel()
	dns := netip.MustParseAddr("2001:db8:53::1")
	o := testbed.Options{
		DNS:     []netip.Addr{dns, netip.MustParseAddr("2001:db8:53::2")},
		Domains: []string{"isp.example"},
	}
	for _, tc := range []struct {
		variety string
		conf    testbed.IncumbentConf
		asks    bool
	}{
		{"DNS", testbed.IncumbentConf{}, false},
		{"DNS, requested", testbed.IncumbentConf{Extra: []string{"option dhcp6_name_servers, dhcp6_domain_search"}}, true},
	} {
		t.Run(tc.variety, func(t *testing.T) {
			t.Parallel()
			r := startISP(t, tc.variety, "v6ispdns", o, tc.conf, nil)
			deleg, env, ok := r.bound(ispBindWait, r.inc.Started)
			trace := r.stopTrace()
			asked := strings.Contains(oro(trace), "DNS-server")
			r.fact("Solicit's option-request: %s (asks for DNS servers: %v)", oro(trace), asked)
			replied := false
			for _, rep := range dhcp6Lines(trace, "reply") {
				replied = replied || strings.Contains(rep, dns.String())
			}
			r.fact("Kea's Reply carries the DNS servers: %v", replied)
			r.requireBound(deleg, ok, 56)
			r.fact("hook saw new_dhcp6_name_servers=%q new_dhcp6_domain_search=%q", env["new_dhcp6_name_servers"], env["new_dhcp6_domain_search"])
			ctx, l := t.Context(), r.l
			resolv, err := l.Exec(ctx, l.Router, "cat", "/etc/resolv.conf")
			if err != nil {
				t.Fatal(err)
			}
			inResolv := strings.Contains(resolv, dns.String())
			r.fact("router's resolv.conf mentions them: %v (nohook resolv.conf)", inResolv)
			out, err := l.Exec(ctx, l.Hosts[0], "rdisc6", "-1", "-w", "3000", testbed.HostIface)
			if err != nil {
				t.Fatalf("LAN host got no RA: %v\n%s", err, out)
			}
			inRA := strings.Contains(out, dns.String())
			r.fact("LAN host's RA carries them: %v", inRA)
			if ras := testbed.ParseRdisc6(out); len(ras) > 0 {
				r.fact("LAN host's RA: M=%v O=%v, %d prefix(es); the LAN has no DHCPv6 server", ras[0].Managed, ras[0].Other, len(ras[0].Prefixes))
			}
			want := tc.asks
			if asked != want || replied != want || (env["new_dhcp6_name_servers"] != "") != want || inResolv || inRA {
				t.Errorf("asked %v, replied %v, hook %q, resolv.conf %v, RA %v; want the first three %v and the LAN told nothing",
					asked, replied, env["new_dhcp6_name_servers"], inResolv, inRA, want)
			}
		})
	}
}

// ispRefusalWait bounds the wait for dhcpcd to bind once Kea can delegate.
const ispRefusalWait = 3 * time.Minute

// TestIncumbentISPRefusesThenDelegates: Kea's only prefix is bound to
// another client, so it answers NoPrefixAvail; after the refusal window
// (from dhcpcd's start) it can delegate again. How long after that does
// dhcpcd bind? dhcpcd keeps soliciting with RFC 8415's doubling backoff,
// so the answer grows with the refusal. `make bench` also runs a 150 s
// window (isp_incumbent_long_test.go, -tags comparison): it alone takes
// four minutes.
func TestIncumbentISPRefusesThenDelegates(t *testing.T) {
	t.Parallel()
	ispRefusal(t, 20*time.Second)
}

func ispRefusal(t *testing.T, window time.Duration) {
	var taken netip.Prefix
	variety := fmt.Sprintf("NoPrefixAvail for %v, then a prefix", window)
	r := startISP(t, variety, "v6isprf", testbed.Options{}, testbed.IncumbentConf{}, func(l *testbed.Lab) {
		var err error
		if taken, err = l.RestartKeaExhausted(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	ctx, l := t.Context(), r.l
	// The refusal, in Kea's log: the allocation failed.
	err := l.WaitFor(ctx, 15*time.Second, "Kea to fail an allocation", func() (bool, error) {
		return strings.Contains(l.KeaLog(), "ALLOC_ENGINE_V6_ALLOC_FAIL"), nil
	})
	if err != nil {
		t.Fatalf("%v\nkea log:\n%s", err, l.KeaLog())
	}
	timer := time.NewTimer(window - time.Since(r.inc.Started))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-timer.C:
	}
	if run, ok, err := r.inc.HookEnv("BOUND6"); err != nil || ok {
		t.Fatalf("dhcpcd bound while Kea refused: %v %v", run, err)
	}
	trace := r.stopTrace()
	adv := dhcp6Lines(trace, "advertise")
	var statuses []string
	for _, a := range adv {
		if m := statusRe.FindStringSubmatch(a); m != nil {
			statuses = append(statuses, m[1])
		}
	}
	r.fact("during the refusal: %s; Advertise status codes %v", exchange(trace), statuses)
	r.fact("Kea's only prefix %s is bound to %s; Kea logged ALLOC_ENGINE_V6_ALLOC_FAIL", taken, testbed.OtherDUID)
	reasons, _ := r.inc.HookReasons()
	r.fact("hook ran for %v while refused; dhcpcd's last line: %s", reasons, lastLogLines(r.inc.Dhcpcd.Log(), 1))
	if len(statuses) == 0 || len(statuses) != len(adv) || strings.Count(strings.Join(statuses, " "), "NoPrefixAvail") != len(statuses) {
		t.Fatalf("Kea's Advertises: %v, want each with NoPrefixAvail", statuses)
	}
	if len(dhcp6Lines(trace, "request")) != 0 {
		t.Errorf("dhcpcd sent a Request to a refusing Kea: %s", exchange(trace))
	}

	capture, err := l.Capture(ctx, l.Upstream, testbed.UpstreamIface, "udp port 546 or udp port 547")
	if err != nil {
		t.Fatal(err)
	}
	r.capture, r.trace = capture, ""
	if err := l.RestartKea(ctx, testbed.DefaultPool, true); err != nil {
		t.Fatal(err)
	}
	able := time.Now()
	deleg, _, ok := r.bound(ispRefusalWait, able)
	trace = r.stopTrace()
	r.fact("after Kea could delegate: %s; first Solicit at +%s", exchange(trace), firstAt(trace, "solicit", able))
	if !ok {
		r.fact("not within 3 min")
		t.Fatalf("dhcpcd did not bind within %v of Kea being able to delegate", ispRefusalWait)
	}
	if lease := r.keaPD(); deleg != lease || !testbed.DefaultPool.Contains(deleg.Addr()) {
		t.Errorf("hook saw %s, Kea's lease is %s", deleg, lease)
	}
	r.lanPath(deleg)
}

// exchange counts the DHCPv6 messages of each type in the trace.
func exchange(trace string) string {
	var parts []string
	for _, msg := range []string{"solicit", "advertise", "request", "reply", "renew", "rebind"} {
		if n := len(dhcp6Lines(trace, msg)); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, msg))
		}
	}
	return strings.Join(parts, ", ")
}

// firstAt is when the first message of type msg in the trace came, relative
// to since, or "none".
func firstAt(trace, msg string, since time.Time) string {
	for _, line := range dhcp6Lines(trace, msg) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var sec, usec int64
		if _, err := fmt.Sscanf(f[0], "%d.%d", &sec, &usec); err == nil {
			return fmt.Sprintf("%.1f s", time.Unix(sec, usec*1000).Sub(since).Seconds())
		}
	}
	return "none"
}

func lastLogLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
