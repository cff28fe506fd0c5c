package integration

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/testbed"
)

// TestExternalLANIsRoutedNotTranslated: a LAN advertising "both" gives its
// hosts an address in the delegated /64 too. Hosts with random interface ids
// (privacy addresses; addr_gen_mode 3) have no ULA twin with the same id, so
// that /64 must be routed as is: the upstream reaches the host's global
// address, and the host's own global source leaves untranslated.
func TestExternalLANIsRoutedNotTranslated(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	t.Parallel()
	ctx := t.Context()
	l, err := testbed.New(ctx, testbed.Options{Name: "v6it", Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	host := l.Hosts[0]
	// Random interface ids for every new SLAAC address (RFC 8981 style).
	if err := l.Sysctl(ctx, host, "net.ipv6.conf."+testbed.HostIface+".addr_gen_mode", "3"); err != nil {
		t.Fatal(err)
	}
	cfg := singleConfig("slaac", "both").TOML()
	d, err := l.RunDaemon(ctx, bin, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("v6edge log:\n%s", d.Log())
		}
	})
	deleg := waitBound(t, d, l.Pool)
	global := netip.PrefixFrom(deleg.Addr(), 64) // subnet 0 ...
	global = netip.MustParsePrefix(strings.Replace(global.String(), "::/64", ":1::/64", 1))
	if !deleg.Contains(global.Addr()) {
		t.Fatalf("bad test prefix %s for %s", global, deleg)
	}
	gua, err := l.WaitHostSLAAC(ctx, host, global, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ula, err := l.WaitHostSLAAC(ctx, host, subnet1, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if testbed.MapAddr(ula, internal, deleg) == gua {
		t.Fatalf("the host's global and ULA addresses share an interface id (%s, %s): the test needs them apart", gua, ula)
	}
	t.Run("the upstream reaches the host's own global address", func(t *testing.T) {
		if out, err := l.Exec(ctx, l.Upstream, "ping", "-c", "2", "-i", "0.2", "-W", "2", gua.String()); err != nil {
			t.Errorf("ping %s from the upstream: %v\n%s", gua, err, out)
		}
	})
	t.Run("a flow from the host's ULA is still translated and its replies come back", func(t *testing.T) {
		// New inbound connections to the mapped ULA address are not possible
		// in this mode (its /64 is the hosts' own), but the replies of
		// outbound flows are translated back by conntrack.
		mapped := testbed.MapAddr(ula, internal, deleg)
		c, err := l.Capture(ctx, l.Upstream, testbed.UpstreamIface, "icmp6 and ip6[40] == 128")
		if err != nil {
			t.Fatal(err)
		}
		out, perr := l.Exec(ctx, host, "ping", "-c", "2", "-i", "0.2", "-W", "2", "-I", ula.String(), testbed.InternetAddr.String())
		pkts, err := c.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if perr != nil {
			t.Fatalf("ping from %s: %v\n%s", ula, perr, out)
		}
		for _, p := range pkts {
			if p.Dst == testbed.InternetAddr && p.Src != mapped {
				t.Errorf("the upstream saw %s, want the NETMAP of %s, %s", p.Src, ula, mapped)
			}
		}
	})
	t.Run("a flow from the host's global address leaves untranslated", func(t *testing.T) {
		c, err := l.Capture(ctx, l.Upstream, testbed.UpstreamIface, "icmp6 and ip6[40] == 128")
		if err != nil {
			t.Fatal(err)
		}
		out, perr := l.Exec(ctx, host, "ping", "-c", "2", "-i", "0.2", "-W", "2", "-I", gua.String(), testbed.InternetAddr.String())
		pkts, err := c.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if perr != nil {
			t.Fatalf("ping from %s: %v\n%s", gua, perr, out)
		}
		for _, p := range pkts {
			if p.Dst == testbed.InternetAddr && p.Src != gua {
				t.Errorf("the upstream saw %s, want the host's own %s", p.Src, gua)
			}
		}
	})
}
