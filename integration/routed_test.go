package integration

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/plan"
	"github.com/v6edge/v6edge/internal/testbed"
)

// routedConfig is configs/examples/routed.toml's setup on the lab: no [nat],
// the LAN on the delegated prefix's subnet-th /64.
func routedConfig(subnet int) testbed.Config {
	return testbed.Config{
		WANs: []testbed.WAN{{Interface: testbed.WANIface, DUID: "ll", IAID: 1, PrefixLength: 56}},
		LANs: []testbed.LAN{{Interface: testbed.LANIface, Subnet: subnet, Mode: "slaac"}},
	}
}

// TestRoutedMode: without [nat] the delegated /64 is the LAN's. The host
// numbers itself from it by SLAAC, its pings reach the upstream from its own
// address untranslated, the upstream reaches it back, and the router holds
// no NETMAP.
func TestRoutedMode(t *testing.T) {
	t.Parallel()
	l := newLab(t, "v6rt", testbed.Options{})
	d := runDaemon(t, l, routedConfig(1).TOML(), 0)
	deleg := waitBound(t, d, l.Pool)
	ctx := t.Context()
	host := l.Hosts[0]
	lan := plan.Subnet64(deleg, 1)

	hostAddr, err := l.WaitHostSLAAC(ctx, host, lan, 20*time.Second)
	if err != nil {
		t.Fatalf("the host got no address in %v: %v", lan, err)
	}
	waitHostDefaultRoute(t, l, host)
	t.Run("the router holds ::1 of the delegated /64 on the LAN", func(t *testing.T) {
		addrs, err := l.IfaceAddrs(ctx, l.Router, testbed.LANIface, lan)
		if err != nil || !containsAddr(addrs, lan.Addr().Next()) {
			t.Errorf("lan0 addresses in %v: %v, %v; want %v", lan, addrs, err, lan.Addr().Next())
		}
	})
	t.Run("a ping from the host reaches the upstream from the host's own address", func(t *testing.T) {
		for _, s := range pingUpstream(t, l, host) {
			if s != hostAddr {
				t.Errorf("upstream saw source %s, want the host's %s untranslated", s, hostAddr)
			}
		}
	})
	t.Run("the upstream reaches the host at that address", func(t *testing.T) {
		out, err := l.Exec(ctx, l.Upstream, "ping", "-c", "2", "-i", "0.2", "-W", "2", hostAddr.String())
		if err != nil {
			t.Fatalf("ping %s from upstream: %v\n%s", hostAddr, err, out)
		}
	})
	t.Run("no NETMAP is installed", func(t *testing.T) {
		out, err := l.Exec(ctx, l.Router, "nft", "list", "ruleset")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "prefix to") {
			t.Errorf("routed mode translates:\n%s", out)
		}
	})
	t.Run("status is healthy and names the delegated /64 on the LAN", func(t *testing.T) {
		doc, code, err := d.Status(ctx)
		if err != nil || code != 0 {
			t.Fatalf("status exit %d, %v: %v", code, err, doc)
		}
		if got := testbed.GetString(doc, "lan", 0, "prefixes", 0, "prefix"); got != lan.String() {
			t.Errorf("status lan[0].prefixes[0] = %q, want %v", got, lan)
		}
	})
}

func containsAddr(addrs []testbed.HostAddr, a netip.Addr) bool {
	for _, x := range addrs {
		if x.Prefix.Addr() == a {
			return true
		}
	}
	return false
}
