package integration

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/plan"
	"github.com/v6edge/v6edge/internal/testbed"
)

// The ISP varieties of issue 15 against real Kea: a server that numbers
// its WAN link by IA_NA, excludes a /64 of the delegation for it (RFC 6603)
// and hands out its DNS servers and search list (options 23, 24).
var (
	ispAddressPool = netip.MustParsePrefix("2001:db8:0:1::1:0/112")
	ispDNS         = []netip.Addr{netip.MustParseAddr("2001:db8:0:53::1"), netip.MustParseAddr("2001:db8:0:53::2")}
	ispDomains     = []string{"isp.example", "customers.isp.example"}
)

func TestISPOptionsReachTheWANAndTheLAN(t *testing.T) {
	t.Parallel()
	l := opsLab(t, testbed.Options{ExcludedPrefix: true, AddressPool: ispAddressPool, DNS: ispDNS, Domains: ispDomains})
	ctx := t.Context()
	// A second LAN on the last /64 of the /56, the one Kea excludes.
	addHostlessLAN(t, l, "lan1")
	cfg := testbed.Config{
		WANs: []testbed.WAN{{Interface: testbed.WANIface, DUID: "ll", IAID: 1, PrefixLength: 56}},
		NAT:  testbed.NAT{InternalPrefix: internal, Hairpin: true},
		LANs: []testbed.LAN{
			// No dns or domains: the ISP's.
			{Interface: testbed.LANIface, Subnet: 1, Mode: "stateless"},
			{Interface: "lan1", Subnet: 255, Mode: "slaac", Advertise: "both"},
		},
	}
	d := opsRun(t, l, cfg.TOML(), "")
	deleg := waitBoundWithin(t, d, l.Pool, 30*time.Second)
	excluded := testbed.ExcludedOf(deleg)

	var doc map[string]any
	t.Run("status shows the WAN address, the excluded prefix and the ISP's DNS", func(t *testing.T) {
		var err error
		doc, err = d.WaitStatus(ctx, 10*time.Second, "the IA_NA address in status", func(doc map[string]any) bool {
			addrs, _ := testbed.Get(doc, "wans", 0, "addresses").([]any)
			return len(addrs) > 0
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := testbed.GetString(doc, "wans", 0, "excluded_prefix"); got != excluded.String() {
			t.Errorf("excluded_prefix %q, want %v", got, excluded)
		}
		if got := testbed.Get(doc, "wans", 0, "dns"); !sameStrings(got, addrStrings(ispDNS)) {
			t.Errorf("dns %v, want %v", got, ispDNS)
		}
		if got := testbed.Get(doc, "wans", 0, "domains"); !sameStrings(got, ispDomains) {
			t.Errorf("domains %v, want %v", got, ispDomains)
		}
	})
	t.Run("the IA_NA address is on the WAN as a /128 and in Kea's lease file", func(t *testing.T) {
		a, err := netip.ParseAddr(testbed.GetString(doc, "wans", 0, "addresses", 0))
		if err != nil || !ispAddressPool.Contains(a) {
			t.Fatalf("WAN address %v (%v) not from Kea's pool %v", a, err, ispAddressPool)
		}
		err = l.WaitFor(ctx, 10*time.Second, a.String()+"/128 on wan0", func() (bool, error) {
			addrs, err := l.IfaceAddrs(ctx, l.Router, testbed.WANIface, netip.PrefixFrom(a, 128))
			return len(addrs) == 1 && addrs[0].Prefix.Bits() == 128, err
		})
		if err != nil {
			t.Error(err)
		}
		leases, err := l.KeaLeases()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(leases, func(le testbed.KeaLease) bool { return le.Type == "IA_NA" && le.Prefix.Addr() == a }) {
			t.Errorf("Kea's lease file has no IA_NA lease for %v: %+v", a, leases)
		}
	})
	t.Run("the excluded /64 is routed, never translated, and its LAN is reported", func(t *testing.T) {
		out, err := l.Exec(ctx, l.Router, "nft", "list", "table", "ip6", "v6edge")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "ip6 daddr "+excluded.String()+" accept") {
			t.Errorf("no rule routing the excluded %v:\n%s", excluded, out)
		}
		probs, _ := testbed.Get(doc, "problems").([]any)
		if !slices.ContainsFunc(probs, func(p any) bool {
			s, _ := p.(string)
			return strings.Contains(s, "lan1: subnet 255") && strings.Contains(s, "excluded")
		}) {
			t.Errorf("problems %v do not name lan1 on the excluded /64", probs)
		}
		for _, p := range testbed.Get(doc, "lan", 1, "prefixes").([]any) {
			if pp, _ := netip.ParsePrefix(testbed.GetString(p, "prefix")); pp.Overlaps(excluded) {
				t.Errorf("lan1 advertises the excluded %v", pp)
			}
		}
	})
	t.Run("the host's rdisc6 shows the ISP's DNS servers and search list", func(t *testing.T) {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		var ra testbed.RA
		err := l.WaitFor(rctx, 15*time.Second, "an RA with the ISP's RDNSS", func() (bool, error) {
			out, err := l.Exec(rctx, l.Hosts[0], "rdisc6", "-1", "-w", "1000", testbed.HostIface)
			ras := testbed.ParseRdisc6(out)
			if len(ras) == 0 {
				return false, err
			}
			ra = ras[0]
			return slices.Equal(ra.RDNSS, ispDNS), nil
		})
		if err != nil {
			t.Fatalf("%v: last RA RDNSS %v DNSSL %v", err, ra.RDNSS, ra.DNSSL)
		}
		if !slices.Equal(ra.DNSSL, ispDomains) {
			t.Errorf("DNSSL %v, want %v", ra.DNSSL, ispDomains)
		}
		if !slices.ContainsFunc(ra.Prefixes, func(p testbed.RAPrefix) bool { return p.Prefix == plan.Subnet64(internal, 1) }) {
			t.Errorf("the RA lost the LAN's prefix: %+v", ra.Prefixes)
		}
	})
	t.Run("a stateless DHCPv6 client on the LAN gets them too", func(t *testing.T) {
		c, err := l.OpsStartDhcpcd(ctx, l.Hosts[0], "dhcpcd-isp", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Exit() })
		env := opsDhcpcdEvent(t, l, c, 20*time.Second, "INFORM6")
		if got := env["new_dhcp6_name_servers"]; got != strings.Join(addrStrings(ispDNS), " ") {
			t.Errorf("dhcpcd got name servers %q, want %v", got, ispDNS)
		}
		if got := env["new_dhcp6_domain_search"]; got != strings.Join(ispDomains, " ") {
			t.Errorf("dhcpcd got domain search %q, want %v", got, ispDomains)
		}
	})
}

func addrStrings(as []netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// sameStrings compares a JSON array from status with want.
func sameStrings(got any, want []string) bool {
	arr, _ := got.([]any)
	if len(arr) != len(want) {
		return false
	}
	for i, v := range arr {
		if s, _ := v.(string); s != want[i] {
			return false
		}
	}
	return true
}

// TestRefusalThenDelegates is the incumbent's refusal case for v6edge: Kea
// answers NoPrefixAvail (its only prefix is another client's) for 20 s after
// v6edge starts, status says why nothing is bound, and once Kea can delegate
// v6edge binds on its next Solicit. RFC 8415's Solicit backoff stays: after a
// 20 s refusal the next Solicit is at most one retransmission (≤ 17.6 s with
// the +10 % jitter, §15) away.
func TestRefusalThenDelegates(t *testing.T) {
	t.Parallel()
	l := opsLab(t, testbed.Options{})
	ctx := t.Context()
	if _, err := l.RestartKeaExhausted(ctx); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	d := opsRun(t, l, daemonConfig("slaac"), "")
	doc, err := d.WaitStatus(ctx, 15*time.Second, "the refusal in status problems", func(doc map[string]any) bool {
		probs, _ := testbed.Get(doc, "problems").([]any)
		return slices.ContainsFunc(probs, func(p any) bool { s, _ := p.(string); return strings.Contains(s, "NoPrefixAvail") })
	})
	if err != nil {
		t.Fatal(err)
	}
	if probs, _ := testbed.Get(doc, "problems").([]any); len(probs) > 3 {
		t.Errorf("problems grow with each refused Advertise: %v", probs)
	}
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(20*time.Second - time.Since(started)):
	}
	if st := testbed.GetString(doc, "wan", "state"); st == "bound" {
		t.Fatalf("bound while Kea refused: %v", doc)
	}
	if err := l.RestartKea(ctx, testbed.DefaultPool, true); err != nil {
		t.Fatal(err)
	}
	able := time.Now()
	deleg := waitBoundWithin(t, d, testbed.DefaultPool, 30*time.Second)
	took := time.Since(able)
	t.Logf("v6edge: NoPrefixAvail for 20s, then a prefix: bound %v %.1f s after Kea could delegate", deleg, took.Seconds())
	if took > 18*time.Second {
		t.Errorf("bound %v after Kea could delegate, want within one Solicit retransmission (≤ 17.6 s)", took)
	}
}
