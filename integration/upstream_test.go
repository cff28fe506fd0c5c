package integration

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/v6edge/v6edge/internal/testbed"
)

// Daemon-level tests against a differently-behaving upstream (ISC dhcpd -6
// instead of Kea) and against an upstream that goes away until the lease
// expires. Each builds its own lab and runs the real binary.

// altLab builds a lab that Close removes when the test ends.
func altLab(t *testing.T, o testbed.Options) *testbed.Lab {
	t.Helper()
	return newLab(t, "v6alt", o)
}

// altDHCPDLab is altLab for a test against ISC dhcpd: it skips without
// dhcpd, runs in parallel, and stops the lab's Kea, so the upstream is
// free for the dhcpd the test starts.
func altDHCPDLab(t *testing.T) *testbed.Lab {
	t.Helper()
	if _, err := exec.LookPath(testbed.AltDHCPDBinary); err != nil {
		t.Skipf("needs ISC dhcpd (apt-get install isc-dhcp-server, or make deps): %v", err)
	}
	t.Parallel()
	l := altLab(t, testbed.Options{})
	if err := l.StopKea(); err != nil {
		t.Fatal(err)
	}
	return l
}

// altStartDHCPD starts ISC dhcpd -6 in l's upstream with o.
func altStartDHCPD(t *testing.T, l *testbed.Lab, o testbed.AltDHCPDOptions) *testbed.AltDHCPD {
	t.Helper()
	srv, err := testbed.AltStartDHCPD(t.Context(), l, o)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// altRun starts v6edge; its log goes to the test log if the test fails.
func altRun(t *testing.T, l *testbed.Lab, config string) *testbed.Daemon {
	t.Helper()
	return runDaemon(t, l, config, 0)
}

// altCmp compares netip values by ==.
var altCmp = cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})

// altMessages returns the daemon's DHCPv6 message counter key ("sent:RENEW").
func altMessages(doc map[string]any, key string) float64 {
	v, _ := testbed.Get(doc, "wans", 0, "messages", key).(float64)
	return v
}

// altIAPD is an IA_PD as tcpdump -vv decodes it from a DHCPv6 message.
type altIAPD struct {
	Msg      string // "advertise", "reply", ...
	T1, T2   int
	Prefixes []altIAPrefix
}

// altIAPrefix is one IA_PD-prefix option, lifetimes in seconds.
type altIAPrefix struct {
	Prefix           netip.Prefix
	Preferred, Valid int
}

var (
	altMsgRe    = regexp.MustCompile(`dhcp6 ([a-z-]+) `)
	altIAPDRe   = regexp.MustCompile(`IA_PD IAID:\d+ T1:(\d+) T2:(\d+)`)
	altPrefixRe = regexp.MustCompile(`IA_PD-prefix ([0-9a-f:]+/\d+) pltime:(\d+) vltime:(\d+)`)
)

// altDecodeDHCPv6 reads a pcap of DHCPv6 traffic with tcpdump -vv and
// returns the IA_PDs the server sent, in order, with the lines as text.
func altDecodeDHCPv6(t *testing.T, file string) ([]altIAPD, string) {
	t.Helper()
	out, err := exec.Command("tcpdump", "-r", file, "-n", "-vv").CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r %s: %v\n%s", file, err, out)
	}
	var res []altIAPD
	for _, line := range strings.Split(string(out), "\n") {
		m := altMsgRe.FindStringSubmatch(line)
		if m == nil || (m[1] != "advertise" && m[1] != "reply") {
			continue
		}
		ia := altIAPD{Msg: m[1]}
		if m := altIAPDRe.FindStringSubmatch(line); m != nil {
			ia.T1, _ = strconv.Atoi(m[1])
			ia.T2, _ = strconv.Atoi(m[2])
		}
		for _, m := range altPrefixRe.FindAllStringSubmatch(line, -1) {
			var p altIAPrefix
			p.Prefix, _ = netip.ParsePrefix(m[1])
			p.Preferred, _ = strconv.Atoi(m[2])
			p.Valid, _ = strconv.Atoi(m[3])
			ia.Prefixes = append(ia.Prefixes, p)
		}
		res = append(res, ia)
	}
	return res, string(out)
}

// altDirEntries lists a host directory's entries ("" entries if absent).
func altDirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestAltISCDHCPDAsTheUpstream(t *testing.T) {
	l := altDHCPDLab(t)
	ctx := t.Context()
	hostDHCP := altDirEntries(t, "/var/lib/dhcp")
	// Short lifetimes and no T1/T2 options: dhcpd then sends T1 = T2 = 0,
	// and the client picks 0.5 and 0.8 of the preferred lifetime (RFC 8415
	// §21.21, §18.2.4), so a renewal of its own happens within the test.
	o := testbed.AltDHCPDOptions{Preferred: 20 * time.Second, Valid: 30 * time.Second}
	first, last := netip.MustParseAddr("2001:db8:100::"), netip.MustParseAddr("2001:db8:1ff::")
	dump, err := l.Capture(ctx, l.Upstream, testbed.UpstreamIface, "udp port 546 or udp port 547")
	if err != nil {
		t.Fatal(err)
	}
	srv := altStartDHCPD(t, l, o)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dhcpd log:\n%s", srv.Log())
		}
	})
	d := altRun(t, l, altConfig("internal"))
	deleg := waitBound(t, d, l.Pool)
	boundAt := time.Now()

	t.Run("the delegated prefix is a /56 from dhcpd's range and active in its lease file", func(t *testing.T) {
		if deleg.Bits() != 56 || deleg.Addr().Less(first) || last.Less(deleg.Addr()) {
			t.Errorf("delegated %s, want a /56 between %s and %s", deleg, first, last)
		}
		leases, err := srv.LeaseList()
		if err != nil {
			t.Fatal(err)
		}
		want := []testbed.AltLease{{Prefix: deleg, State: "active", Preferred: o.Preferred, Valid: o.Valid}}
		if diff := cmp.Diff(want, leases, altCmp); diff != "" {
			t.Errorf("dhcpd leases (-want +got):\n%s", diff)
		}
	})

	t.Run("the NAT maps the internal prefix onto it", func(t *testing.T) {
		netmapPresent(t, l, deleg)
		wantStatusNAT(t, d, deleg)
	})

	t.Run("a ping from the host leaves translated into it", func(t *testing.T) {
		hostAddr := hostSLAAC(t, l, l.Hosts[0], subnet1)
		want := testbed.MapAddr(hostAddr, internal, deleg)
		for _, s := range pingUpstream(t, l, l.Hosts[0]) {
			if s != want {
				t.Errorf("upstream saw source %s, want %s", s, want)
			}
		}
	})

	t.Run("the daemon turns dhcpd's T1 = T2 = 0 into 0.5 and 0.8 of the preferred lifetime", func(t *testing.T) {
		want := fmt.Sprintf("T1 %s, T2 %s", o.Preferred/2, o.Preferred*4/5)
		if !strings.Contains(d.Log(), want) {
			t.Errorf("the daemon's log has no %q:\n%s", want, lastLines(d.Log(), 30))
		}
	})

	t.Run("v6edge renew renews the same prefix without touching the NAT", func(t *testing.T) {
		before, _, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		renews := altMessages(before, "sent:RENEW")
		replies := altMessages(before, "received:REPLY")
		if out, code, err := d.Ctl(ctx, "renew"); err != nil || code != 0 {
			t.Fatalf("v6edge renew: exit %d, %v: %s", code, err, out)
		}
		doc, err := d.WaitStatus(ctx, 10*time.Second, "a Renew answered", func(doc map[string]any) bool {
			return altMessages(doc, "sent:RENEW") > renews && altMessages(doc, "received:REPLY") > replies &&
				testbed.GetString(doc, "wan", "state") == "bound"
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := testbed.GetString(doc, "wan", "prefix"); got != deleg.String() {
			t.Errorf("after renew the prefix is %s, want %s", got, deleg)
		}
		if a, b := testbed.Get(before, "nat", "swaps"), testbed.Get(doc, "nat", "swaps"); a != b {
			t.Errorf("nat swaps went from %v to %v on a renewal of the same prefix", a, b)
		}
		// dhcpd reuses a lease younger than dhcp-cache-threshold (25 %) and
		// answers an early Renew with the remaining lifetimes, so the lease
		// may not be extended; it must not be shortened either.
		a, _ := time.Parse(time.RFC3339, testbed.GetString(before, "wan", "valid_until"))
		b, _ := time.Parse(time.RFC3339, testbed.GetString(doc, "wan", "valid_until"))
		if b.Before(a) {
			t.Errorf("valid_until went back from %s to %s", a, b)
		}
		t.Logf("valid_until %s before the renewal, %s after", a, b)
	})

	t.Run("the client renews on its own at the T1 it chose, keeping the prefix", func(t *testing.T) {
		doc, _, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		renews := altMessages(doc, "sent:RENEW")
		// T1 is 10 s after the last Reply; leave room for a loaded machine.
		doc, err = d.WaitStatus(ctx, 20*time.Second, "a Renew of the client's own", func(doc map[string]any) bool {
			return altMessages(doc, "sent:RENEW") > renews && testbed.GetString(doc, "wan", "state") == "bound" &&
				testbed.GetString(doc, "wan", "prefix") == deleg.String()
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := altMessages(doc, "sent:SOLICIT"); n != 1 {
			t.Errorf("sent %v Solicits, want 1: the lease must be renewed, never solicited again", n)
		}
		t.Logf("bound %v ago; messages %v", time.Since(boundAt).Round(time.Second), testbed.Get(doc, "wans", 0, "messages"))
	})

	t.Run("dhcpd wrote nothing to the host's /var/lib/dhcp", func(t *testing.T) {
		if got := altDirEntries(t, "/var/lib/dhcp"); !slices.Equal(got, hostDHCP) {
			t.Errorf("/var/lib/dhcp holds %v, had %v before", got, hostDHCP)
		}
	})

	pkts, err := dump.Stop()
	if err != nil {
		t.Fatal(err)
	}
	ias, text := altDecodeDHCPv6(t, dump.File())
	t.Logf("DHCPv6 on up0 (%d packets):\n%s", len(pkts), text)
	t.Run("dhcpd sent T1 = T2 = 0 and at most the configured lifetimes in every Advertise and Reply", func(t *testing.T) {
		if len(ias) < 4 {
			t.Fatalf("decoded %d server messages, want an Advertise and at least three Replies: %+v", len(ias), ias)
		}
		pref, valid := int(o.Preferred/time.Second), int(o.Valid/time.Second)
		for i, ia := range ias {
			p := altIAPrefix{Prefix: deleg, Preferred: pref, Valid: valid}
			if got := ia.Prefixes; i >= 2 && len(got) == 1 && got[0].Preferred < pref {
				// A reused lease: the remaining lifetimes, shortened alike.
				p.Preferred, p.Valid = got[0].Preferred, got[0].Preferred+valid-pref
			}
			want := altIAPD{Msg: ia.Msg, Prefixes: []altIAPrefix{p}}
			if diff := cmp.Diff(want, ia, altCmp); diff != "" {
				t.Errorf("IA_PD in message %d, %s (-want +got):\n%s", i+1, ia.Msg, diff)
			}
		}
	})
}

// altStates polls the daemon's wan.state until done holds for the status
// and returns every state seen, in order, without repeats.
func altStates(t *testing.T, d *testbed.Daemon, timeout time.Duration, what string, done func(doc map[string]any) bool) ([]string, map[string]any) {
	t.Helper()
	var seen []string
	doc, err := d.WaitStatus(t.Context(), timeout, what, func(doc map[string]any) bool {
		if s := testbed.GetString(doc, "wan", "state"); len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
		return done(doc)
	})
	if err != nil {
		t.Fatalf("%v; states seen: %v", err, seen)
	}
	return seen, doc
}

func TestAltUpstreamLossExpiresTheLeaseAndServiceComesBack(t *testing.T) {
	t.Parallel()
	// Kea's shortest useful timers: the outage runs from T1 through T2 to
	// the valid lifetime within 14 s of the last Reply.
	o := testbed.Options{T1: 4 * time.Second, T2: 6 * time.Second, Preferred: 10 * time.Second, Valid: 14 * time.Second}
	l := altLab(t, o)
	ctx := t.Context()
	host := l.Hosts[0]
	d := altRun(t, l, altConfig("both"))
	deleg := waitBound(t, d, l.Pool)
	ula := hostSLAAC(t, l, host, subnet1)
	// advertise = "both": the host also numbers itself in the delegated
	// /64 that sits where the LAN's ULA /64 sits in the internal prefix.
	gua64 := netip.PrefixFrom(testbed.MapAddr(ula, internal, deleg), 64).Masked()
	gua := hostSLAAC(t, l, host, gua64)
	t.Logf("bound %s; the host has %s and %s", deleg, ula, gua)

	if err := l.StopKea(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	watch := altWatchAddr(ctx, l, host, gua64)
	// Read after the stop: no Reply can move the lease any more.
	doc0, _, err := d.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	solicits := altMessages(doc0, "sent:SOLICIT")
	var (
		emptied   time.Time // first poll that showed no prefix
		natDuring []string  // states in which the NAT was not installed while the lease was valid
	)
	states, doc := altStates(t, d, 30*time.Second, "the lease to run out and the client to solicit again", func(doc map[string]any) bool {
		state, prefix := testbed.GetString(doc, "wan", "state"), testbed.GetString(doc, "wan", "prefix")
		if prefix != "" && testbed.Get(doc, "nat", "installed") != true {
			natDuring = append(natDuring, state)
		}
		if prefix == "" && emptied.IsZero() {
			emptied = time.Now()
		}
		return prefix == "" && altMessages(doc, "sent:SOLICIT") > solicits
	})
	t.Logf("%v after Kea stopped: states %v; messages %v", time.Since(stopped).Round(100*time.Millisecond), states, testbed.Get(doc, "wans", 0, "messages"))

	t.Run("the client went from renewing to rebinding before it started over", func(t *testing.T) {
		i := slices.Index(states, "renewing")
		j := slices.Index(states, "rebinding")
		if i < 0 || j < i {
			t.Errorf("states %v: want renewing, then rebinding", states)
		}
		if !strings.Contains(d.Log(), "state=expired") {
			t.Errorf("the daemon never logged the expired state:\n%s", lastLines(d.Log(), 30))
		}
	})

	t.Run("the NAT stayed installed while renewing and rebinding, and the lease ended at its valid lifetime", func(t *testing.T) {
		if len(natDuring) > 0 {
			t.Errorf("NAT not installed in states %v while the lease was still valid", natDuring)
		}
		validUntil, err := time.Parse(time.RFC3339, testbed.GetString(doc0, "wan", "valid_until"))
		if err != nil {
			t.Fatal(err)
		}
		// valid_until has whole seconds; the status is polled every 50 ms.
		if early, late := validUntil.Add(-time.Second), validUntil.Add(2*time.Second); emptied.Before(early) || emptied.After(late) {
			t.Errorf("the prefix left the status at %s, want at valid_until %s", altClock(emptied), altClock(validUntil))
		}
	})

	t.Run("the NAT mapping for the old prefix is withdrawn", func(t *testing.T) {
		var out string
		err := l.WaitFor(ctx, 5*time.Second, "no rule naming "+deleg.String(), func() (bool, error) {
			var err error
			out, err = l.Exec(ctx, l.Router, "nft", "list", "ruleset")
			return err == nil && !strings.Contains(out, deleg.String()) && !strings.Contains(out, "prefix to"), err
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		doc, _, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if testbed.Get(doc, "nat", "installed") != false {
			t.Errorf("status nat = %v, want installed false", testbed.Get(doc, "nat"))
		}
	})

	t.Run("the host's address in the delegated /64 was deprecated while valid, then removed", func(t *testing.T) {
		w := watch()
		preferredUntil, _ := time.Parse(time.RFC3339, testbed.GetString(doc0, "wan", "preferred_until"))
		validUntil, _ := time.Parse(time.RFC3339, testbed.GetString(doc0, "wan", "valid_until"))
		t.Logf("lease preferred until %s, valid until %s; host address deprecated at %s, gone at %s",
			preferredUntil.Format(time.TimeOnly), validUntil.Format(time.TimeOnly), altClock(w.deprecated), altClock(w.gone))
		if w.err != nil {
			t.Fatal(w.err)
		}
		if w.deprecated.IsZero() && w.gone.IsZero() {
			t.Fatalf("the host still prefers an address in %s after the lease expired", gua64)
		}
		// RFC 9096 §3.3: the RA never promises more than the lease; the
		// host stops preferring the address when the lease's preferred
		// lifetime ends (a second's slack: the status has whole seconds).
		if !w.deprecated.IsZero() && w.deprecated.After(preferredUntil.Add(1500*time.Millisecond)) {
			t.Errorf("deprecated at %s, after the lease's preferred lifetime ended at %s", altClock(w.deprecated), altClock(preferredUntil))
		}
		if w.deprecated.IsZero() {
			t.Errorf("the address went from preferred to gone at %s without being deprecated first", altClock(w.gone))
		}
	})

	t.Run("the RA no longer offers the delegated /64 and the host keeps its ULA address", func(t *testing.T) {
		out, err := l.Exec(ctx, host, "rdisc6", "-1", "-w", "1000", testbed.HostIface)
		ras := testbed.ParseRdisc6(out)
		if err != nil || len(ras) == 0 {
			t.Fatalf("rdisc6: %v\n%s", err, out)
		}
		var sawULA bool
		for _, p := range ras[0].Prefixes {
			sawULA = sawULA || p.Prefix == subnet1
			if p.Prefix == gua64 && !strings.HasPrefix(p.Preferred, "0 ") {
				t.Errorf("the RA offers %s with preferred lifetime %s after the lease expired", gua64, p.Preferred)
			}
		}
		if !sawULA {
			t.Errorf("the RA lacks the LAN's %s:\n%s", subnet1, out)
		}
		doc, _, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("RA prefixes %+v; status lan.0.prefixes %v, deprecated %v", ras[0].Prefixes, testbed.Get(doc, "lan", 0, "prefixes"), testbed.Get(doc, "lan", 0, "deprecated"))
		if now, err := l.HostAddrs(ctx, host, subnet1); err != nil || len(now) == 0 || now[0].Prefix.Addr() != ula || now[0].Deprecated {
			t.Errorf("the host's ULA address: %+v, %v; want %s kept and preferred", now, err, ula)
		}
	})

	t.Run("the guard chain lets no internal source leave untranslated", func(t *testing.T) {
		// The router still has its default route from the upstream's RAs:
		// without the guard, the echo requests would leave with the ULA.
		if out, err := l.Exec(ctx, l.Router, "ip", "-6", "route", "show", "default"); err != nil || !strings.Contains(out, "dev wan0") {
			t.Fatalf("router default route: %v: %q", err, out)
		}
		rules, err := l.Exec(ctx, l.Router, "nft", "list", "chain", "ip6", "v6edge", "guard")
		if want := fmt.Sprintf("oifname \"wan0\" ip6 saddr %s drop", internal); err != nil || !strings.Contains(rules, want) {
			t.Errorf("guard chain lacks %q: %v\n%s", want, err, rules)
		}
		in, err := l.Capture(ctx, l.Router, testbed.LANIface, "icmp6 and ip6[40] == 128")
		if err != nil {
			t.Fatal(err)
		}
		up, err := l.Capture(ctx, l.Upstream, testbed.UpstreamIface, "icmp6 and ip6[40] == 128")
		if err != nil {
			t.Fatal(err)
		}
		// With no lease the RAs say router lifetime 0 (RFC 7084 G-4), so the
		// host has no default route at all; a host route of its own via
		// the router still puts the guard to the test, as a host with a
		// static route, or one that missed the last RA, would.
		if err := l.WaitFor(ctx, 10*time.Second, "the host to drop its default route", func() (bool, error) {
			out, err := l.Exec(ctx, host, "ip", "-6", "route", "show", "default")
			return !strings.Contains(out, "dev "+testbed.HostIface), err
		}); err != nil {
			t.Error(err)
		}
		ll, err := l.IfaceAddrs(ctx, l.Router, testbed.LANIface, netip.MustParsePrefix("fe80::/10"))
		if err != nil || len(ll) == 0 {
			t.Fatalf("router lan0 link-local: %v, %v", ll, err)
		}
		if _, err := l.Exec(ctx, host, "ip", "-6", "route", "replace", testbed.InternetAddr.String()+"/128",
			"via", ll[0].Prefix.Addr().String(), "dev", testbed.HostIface); err != nil {
			t.Fatal(err)
		}
		out, perr := l.Exec(ctx, host, "ping", "-c", "3", "-i", "0.2", "-W", "1", testbed.InternetAddr.String())
		_, _ = l.Exec(ctx, host, "ip", "-6", "route", "del", testbed.InternetAddr.String()+"/128")
		arrived, err := in.Stop()
		if err != nil {
			t.Fatal(err)
		}
		left, err := up.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if perr == nil {
			t.Errorf("the ping got through with no lease:\n%s", out)
		}
		var fromULA int
		for _, p := range arrived {
			if internal.Contains(p.Src) {
				fromULA++
			}
		}
		if fromULA == 0 {
			t.Errorf("no echo request from an internal source reached the router's lan0 (%d packets): nothing was put to the test", len(arrived))
		}
		for _, p := range left {
			if internal.Contains(p.Src) {
				t.Errorf("an internal source left on up0: %s", p.Line)
			}
		}
		t.Logf("lan0 saw %d echo requests from the ULA, up0 saw %d echo requests; ping: %s", fromULA, len(left), lastLines(out, 2))
	})

	if err := l.RestartKea(ctx, l.Pool, false); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	again := waitBound(t, d, l.Pool)
	t.Logf("bound again %v after Kea came back: %s (before: %s)", time.Since(restarted).Round(100*time.Millisecond), again, deleg)

	t.Run("the NAT is back and the host leaves translated again", func(t *testing.T) {
		netmapPresent(t, l, again)
		wantStatusNAT(t, d, again)
		want := testbed.MapAddr(ula, internal, again)
		waitInternet(t, l, host, 10*time.Second, "the host reaching the internet")
		for _, s := range pingUpstream(t, l, host) {
			if s != want {
				t.Errorf("upstream saw source %s, want %s", s, want)
			}
		}
	})
}

func TestAltISCDHCPDRestartsOnBothSides(t *testing.T) {
	l := altDHCPDLab(t)
	ctx := t.Context()
	o := testbed.AltDHCPDOptions{Preferred: 20 * time.Second, Valid: 30 * time.Second}
	srv := altStartDHCPD(t, l, o)
	d := altRun(t, l, altConfig("internal"))
	deleg := waitBound(t, d, l.Pool)

	t.Run("v6edge killed and restarted on its state_dir rebinds the saved prefix with dhcpd", func(t *testing.T) {
		if err := d.WaitLeaseSaved(ctx, deleg, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := d.Kill(); err != nil {
			t.Fatal(err)
		}
		nd, err := l.OpsRestartDaemon(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		d = nd
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("restarted v6edge log:\n%s", d.Log())
			}
		})
		states, doc := altStates(t, d, 15*time.Second, "the saved prefix bound again", func(doc map[string]any) bool {
			return testbed.GetString(doc, "wan", "state") == "bound" && altMessages(doc, "received:REPLY") > 0
		})
		if got := testbed.GetString(doc, "wan", "prefix"); got != deleg.String() {
			t.Errorf("prefix after the restart %s, want %s", got, deleg)
		}
		if n := altMessages(doc, "sent:SOLICIT"); n != 0 {
			t.Errorf("the restarted daemon sent %v Solicits, want none: it must Rebind its saved lease", n)
		}
		t.Logf("states %v, messages %v", states, testbed.Get(doc, "wans", 0, "messages"))
	})

	var again netip.Prefix
	t.Run("dhcpd restarted with an empty lease file and a new DUID: the Rebind at T2 brings the lease back", func(t *testing.T) {
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		fresh, err := testbed.AltStartDHCPD(ctx, l, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("new dhcpd log:\n%s", fresh.Log())
			}
		})
		before, _, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		oldServer := testbed.GetString(before, "wan", "server_duid")
		replies := altMessages(before, "received:REPLY")
		// T1 = 10 s and T2 = 16 s after the last Reply; the Renew names
		// the old server, which the new one does not answer (RFC 8415
		// §16.6), so the lease comes back at T2 by Rebind.
		states, doc := altStates(t, d, 30*time.Second, "a Reply from the new dhcpd", func(doc map[string]any) bool {
			return altMessages(doc, "received:REPLY") > replies && testbed.GetString(doc, "wan", "state") == "bound"
		})
		t.Logf("states %v, messages %v", states, testbed.Get(doc, "wans", 0, "messages"))
		t.Logf("new dhcpd log:\n%s", lastLines(fresh.Log(), 5))
		if slices.Contains(states, "expired") || slices.Contains(states, "soliciting") {
			t.Errorf("states %v: the lease was lost instead of rebound", states)
		}
		// The Rebind is answered at once, often between two status polls:
		// count the messages rather than the states seen.
		if r0, r1 := altMessages(before, "sent:REBIND"), altMessages(doc, "sent:REBIND"); r1 <= r0 {
			t.Errorf("sent:REBIND stayed %v: want the lease back by Rebind", r1)
		}
		if n := altMessages(doc, "sent:SOLICIT"); n != 0 {
			t.Errorf("sent %v Solicits, want none", n)
		}
		if s := testbed.GetString(doc, "wan", "server_duid"); s == oldServer {
			t.Errorf("server DUID still %s: the Reply did not come from the new dhcpd", s)
		}
		again, err = netip.ParsePrefix(testbed.GetString(doc, "wan", "prefix"))
		if err != nil {
			t.Fatal(err)
		}
		leases, err := fresh.LeaseList()
		if err != nil {
			t.Fatal(err)
		}
		if len(leases) != 1 || leases[0].Prefix != again || leases[0].State != "active" {
			t.Errorf("new dhcpd's leases %+v, want %s active", leases, again)
		}
		t.Logf("prefix before %s, after the Rebind %s", deleg, again)
	})
	if !again.IsValid() {
		return
	}

	t.Run("the NAT maps the internal prefix onto the rebound prefix", func(t *testing.T) {
		netmapPresent(t, l, again)
	})
}

func TestAltISCDHCPDRapidCommitAndRelease(t *testing.T) {
	l := altDHCPDLab(t)
	ctx := t.Context()
	srv := altStartDHCPD(t, l, testbed.AltDHCPDOptions{RapidCommit: true})
	d := altRun(t, l, rapidCommitConfig())
	deleg := waitBound(t, d, l.Pool)

	t.Run("a Solicit with Rapid Commit is answered by a Reply: no Advertise, no Request", func(t *testing.T) {
		doc, _, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, k := range []string{"sent:SOLICIT", "received:ADVERTISE", "sent:REQUEST", "received:REPLY"} {
			got[k] = altMessages(doc, k)
		}
		want := map[string]float64{"sent:SOLICIT": 1, "received:ADVERTISE": 0, "sent:REQUEST": 0, "received:REPLY": 1}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("messages (-want +got):\n%s", diff)
		}
	})

	t.Run("dhcpd's defaults (valid 12 h, preferred 5/8 of it) reach the status", func(t *testing.T) {
		doc, _, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for key, want := range map[string]time.Duration{"preferred_until": 27000 * time.Second, "valid_until": 43200 * time.Second} {
			until, err := time.Parse(time.RFC3339, testbed.GetString(doc, "wan", key))
			if err != nil {
				t.Fatalf("wan.%s: %v", key, err)
			}
			if left := time.Until(until); left > want || left < want-time.Minute {
				t.Errorf("wan.%s is %v away, want about %v", key, left.Round(time.Second), want)
			}
		}
	})

	t.Run("v6edge release gives the prefix back: dhcpd marks it released, the NAT goes", func(t *testing.T) {
		if out, code, err := d.Ctl(ctx, "release"); err != nil || code != 0 {
			t.Fatalf("v6edge release: exit %d, %v: %s", code, err, out)
		}
		var leases []testbed.AltLease
		err := l.WaitFor(ctx, 10*time.Second, "dhcpd to record the release", func() (bool, error) {
			var err error
			leases, err = srv.LeaseList()
			return err == nil && len(leases) == 1 && leases[0].State == "released", err
		})
		if err != nil {
			t.Fatalf("%v: %+v", err, leases)
		}
		if leases[0].Prefix != deleg {
			t.Errorf("dhcpd released %s, want %s", leases[0].Prefix, deleg)
		}
		doc, err := d.WaitStatus(ctx, 5*time.Second, "state released", func(doc map[string]any) bool {
			return testbed.GetString(doc, "wan", "state") == "released"
		})
		if err != nil {
			t.Fatal(err)
		}
		if testbed.Get(doc, "nat", "installed") != false || testbed.GetString(doc, "wan", "prefix") != "" {
			t.Errorf("after release: wan %v, nat %v", testbed.Get(doc, "wan"), testbed.Get(doc, "nat"))
		}
		out, err := l.Exec(ctx, l.Router, "nft", "list", "ruleset")
		if err != nil || strings.Contains(out, deleg.String()) {
			t.Errorf("the ruleset still names %s (%v):\n%s", deleg, err, out)
		}
	})

	t.Run("v6edge renew after a release binds again", func(t *testing.T) {
		if out, code, err := d.Ctl(ctx, "renew"); err != nil || code != 0 {
			t.Fatalf("v6edge renew: exit %d, %v: %s", code, err, out)
		}
		again := waitBound(t, d, l.Pool)
		t.Logf("bound %s after the release of %s", again, deleg)
	})
}

func TestAltISCDHCPDRenumbersARebind(t *testing.T) {
	l := altDHCPDLab(t)
	ctx := t.Context()
	host := l.Hosts[0]
	srv := altStartDHCPD(t, l, testbed.AltDHCPDOptions{})
	d := altRun(t, l, altConfig("both"))
	old := waitBound(t, d, l.Pool)
	ula := hostSLAAC(t, l, host, subnet1)
	old64 := netip.PrefixFrom(testbed.MapAddr(ula, internal, old), 64).Masked()
	if _, err := l.WaitHostSLAAC(ctx, host, old64, 20*time.Second); err != nil {
		t.Fatal(err)
	}

	// The router reboots while the ISP renumbers: the new dhcpd delegates
	// from another range and knows nothing of the old binding.
	if err := d.WaitLeaseSaved(ctx, old, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	o := testbed.AltDHCPDOptions{First: netip.MustParseAddr("2001:db8:200::"), Last: netip.MustParseAddr("2001:db8:2ff::")}
	newRange := testbed.AltCovering(o)
	fresh, err := testbed.AltStartDHCPD(ctx, l, o)
	if err != nil {
		t.Fatal(err)
	}
	dump, err := l.Capture(ctx, l.Upstream, testbed.UpstreamIface, "udp port 546 or udp port 547")
	if err != nil {
		t.Fatal(err)
	}
	d, err = l.OpsRestartDaemon(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("restarted v6edge log:\n%s", d.Log())
			t.Logf("new dhcpd log:\n%s", fresh.Log())
		}
	})
	states, doc := altStates(t, d, 30*time.Second, "a prefix from "+newRange.String(), func(doc map[string]any) bool {
		p, err := netip.ParsePrefix(testbed.GetString(doc, "wan", "prefix"))
		return err == nil && newRange.Contains(p.Addr()) && testbed.GetString(doc, "wan", "state") == "bound"
	})
	deleg := netip.MustParsePrefix(testbed.GetString(doc, "wan", "prefix"))
	if _, err := dump.Stop(); err != nil {
		t.Fatal(err)
	}
	ias, text := altDecodeDHCPv6(t, dump.File())
	t.Logf("renumbered %s → %s; states %v; messages %v", old, deleg, states, testbed.Get(doc, "wans", 0, "messages"))
	t.Logf("DHCPv6 on up0:\n%s", text)

	t.Run("dhcpd answers the Rebind with the old prefix at lifetime 0 and a new one in the same IA_PD", func(t *testing.T) {
		want := []altIAPD{{Msg: "reply", Prefixes: []altIAPrefix{
			{Prefix: old},
			{Prefix: deleg, Preferred: 27000, Valid: 43200},
		}}}
		if diff := cmp.Diff(want, ias, altCmp); diff != "" {
			t.Errorf("server messages (-want +got):\n%s", diff)
		}
	})

	t.Run("one Rebind and its Reply suffice: no Solicit", func(t *testing.T) {
		if n := altMessages(doc, "sent:SOLICIT"); n != 0 {
			t.Errorf("sent %v Solicits, want none", n)
		}
	})

	t.Run("the NAT maps onto the new prefix only", func(t *testing.T) {
		out, err := l.WaitNetmap(ctx, l.Router, internal, deleg, old, 5*time.Second)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})

	t.Run("the restarted daemon's RA deprecates the old /64 and offers the new one", func(t *testing.T) {
		new64 := netip.PrefixFrom(testbed.MapAddr(ula, internal, deleg), 64).Masked()
		if _, err := l.WaitHostSLAAC(ctx, host, new64, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		var addrs []testbed.HostAddr
		err := l.WaitFor(ctx, 10*time.Second, "the host's address in "+old64.String()+" deprecated", func() (bool, error) {
			var err error
			addrs, err = l.HostAddrs(ctx, host, old64)
			return err == nil && len(addrs) > 0 && addrs[0].Deprecated, err
		})
		if err != nil {
			t.Fatalf("%v: %+v", err, addrs)
		}
		doc, _, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := testbed.GetString(doc, "lan", 0, "deprecated", 0, "prefix"); got != old64.String() {
			t.Errorf("status lan.0.deprecated = %v, want %s", testbed.Get(doc, "lan", 0, "deprecated"), old64)
		}
		t.Logf("host in %s: %+v", old64, addrs)
	})
}

func TestAltISCDHCPDWithNoPrefixLeft(t *testing.T) {
	l := altDHCPDLab(t)
	ctx := t.Context()
	// A range of one prefix, bound to another client already.
	taken := netip.MustParsePrefix("2001:db8:100::/56")
	full := testbed.AltDHCPDOptions{First: taken.Addr(), Last: taken.Addr(), Taken: []netip.Prefix{taken}}
	dump, err := l.Capture(ctx, l.Upstream, testbed.UpstreamIface, "udp port 546 or udp port 547")
	if err != nil {
		t.Fatal(err)
	}
	srv := altStartDHCPD(t, l, full)
	d := altRun(t, l, altConfig("internal"))
	states, doc := altStates(t, d, 15*time.Second, "two Solicits answered without a prefix", func(doc map[string]any) bool {
		return altMessages(doc, "sent:SOLICIT") >= 2 && altMessages(doc, "received:ADVERTISE") >= 1
	})
	if _, err := dump.Stop(); err != nil {
		t.Fatal(err)
	}
	_, text := altDecodeDHCPv6(t, dump.File())
	t.Logf("states %v; messages %v; problems %v", states, testbed.Get(doc, "wans", 0, "messages"), testbed.Get(doc, "problems"))
	t.Logf("DHCPv6 on up0:\n%s", text)
	t.Logf("dhcpd log:\n%s", lastLines(srv.Log(), 8))

	t.Run("an Advertise with NoPrefixAvail inside the IA_PD binds nothing", func(t *testing.T) {
		if !strings.Contains(text, "NoPrefixAvail") {
			t.Errorf("dhcpd sent no NoPrefixAvail status")
		}
		if n := altMessages(doc, "sent:REQUEST"); n != 0 {
			t.Errorf("sent %v Requests for an Advertise that offers no prefix", n)
		}
		if s := testbed.GetString(doc, "wan", "state"); s != "soliciting" || testbed.GetString(doc, "wan", "prefix") != "" {
			t.Errorf("state %s prefix %q, want soliciting with no prefix", s, testbed.GetString(doc, "wan", "prefix"))
		}
		leases, err := srv.LeaseList()
		if err != nil {
			t.Fatal(err)
		}
		if len(leases) != 1 || leases[0].Prefix != taken || leases[0].State != "active" {
			t.Errorf("dhcpd leases %+v, want only the other client's %s", leases, taken)
		}
	})

	t.Run("the refusal shows in the log and in status problems", func(t *testing.T) {
		if !strings.Contains(d.Log(), "status NoPrefixAvail") {
			t.Errorf("the daemon's log does not mention NoPrefixAvail:\n%s", lastLines(d.Log(), 20))
		}
		for _, p := range testbed.Get(doc, "problems").([]any) {
			if s, _ := p.(string); strings.Contains(s, "NoPrefixAvail") {
				return
			}
		}
		t.Errorf("status problems %v lack the NoPrefixAvail refusal: a server that keeps refusing must fail status", testbed.Get(doc, "problems"))
	})

	t.Run("once dhcpd has prefixes again the client binds one at its next Solicit", func(t *testing.T) {
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		more := testbed.AltDHCPDOptions{Taken: []netip.Prefix{taken}}
		if _, err := testbed.AltStartDHCPD(ctx, l, more); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		// Solicit retransmissions back off (RFC 8415 §18.2.1: IRT 1 s,
		// doubling): the next one comes within about 35 s.
		var deleg netip.Prefix
		_, err := d.WaitStatus(ctx, 40*time.Second, "a bound prefix", func(doc map[string]any) bool {
			p, err := netip.ParsePrefix(testbed.GetString(doc, "wan", "prefix"))
			deleg = p
			return err == nil && testbed.GetString(doc, "wan", "state") == "bound"
		})
		if err != nil {
			t.Fatal(err)
		}
		if deleg == taken || !testbed.AltCovering(more).Contains(deleg.Addr()) {
			t.Errorf("bound %s, want one from %s other than %s", deleg, testbed.AltCovering(more), taken)
		}
		t.Logf("bound %s %v after dhcpd had prefixes again", deleg, time.Since(start).Round(100*time.Millisecond))
	})
}

// altAddrWatch is when an address range on a host stopped being preferred
// and when it disappeared.
type altAddrWatch struct {
	deprecated, gone time.Time
	err              error
}

// altWatchAddr polls the host's addresses in subnet every 100 ms until
// the range is empty or ctx ends; the returned function stops the watch
// and reports what it saw.
func altWatchAddr(ctx context.Context, l *testbed.Lab, host string, subnet netip.Prefix) func() altAddrWatch {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan altAddrWatch, 1)
	go func() {
		var w altAddrWatch
		defer func() { done <- w }()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			addrs, err := l.HostAddrs(ctx, host, subnet)
			if err != nil {
				if ctx.Err() == nil {
					w.err = err
				}
				return
			}
			now := time.Now()
			if len(addrs) == 0 {
				w.gone = now
				return
			}
			if w.deprecated.IsZero() && (addrs[0].Deprecated || addrs[0].Preferred == 0) {
				w.deprecated = now
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() altAddrWatch {
		// Let the watch see the end of a lease that has just expired.
		t := time.NewTimer(3 * time.Second)
		defer t.Stop()
		select {
		case w := <-done:
			cancel()
			return w
		case <-t.C:
		}
		cancel()
		return <-done
	}
}

func altClock(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format("15:04:05.0")
}
