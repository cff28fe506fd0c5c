package integration

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/v6edge/v6edge/internal/testbed"
)

// TestExternalLANIsRoutedNotTranslated: a LAN advertising "both" gives its
// hosts an address in the delegated /64 too. Hosts with random interface ids
// (privacy addresses; addr_gen_mode 3) have no ULA twin with the same id, so
// that /64 must be routed as is: the upstream reaches the host's global
// address, and the host's own global source leaves untranslated.
func TestExternalLANIsRoutedNotTranslated(t *testing.T) {
	parallel(t)
	ctx := t.Context()
	l := newLab(t, "v6it", testbed.Options{})
	host := l.Hosts[0]
	// Random interface ids for every new SLAAC address (RFC 8981 style).
	if err := l.Sysctl(ctx, host, "net.ipv6.conf."+testbed.HostIface+".addr_gen_mode", "3"); err != nil {
		t.Fatal(err)
	}
	d := runDaemon(t, l, singleConfig("slaac", "both").TOML(), 0)
	deleg := waitBound(t, d, l.Pool)
	global := netip.PrefixFrom(deleg.Addr(), 64) // subnet 0 ...
	global = netip.MustParsePrefix(strings.Replace(global.String(), "::/64", ":1::/64", 1))
	if !deleg.Contains(global.Addr()) {
		t.Fatalf("bad test prefix %s for %s", global, deleg)
	}
	gua := hostSLAAC(t, l, host, global)
	ula := hostSLAAC(t, l, host, subnet1)
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
		for _, src := range pingSources(t, l, host, ula) {
			if src != mapped {
				t.Errorf("the upstream saw %s, want the NETMAP of %s, %s", src, ula, mapped)
			}
		}
	})
	t.Run("a flow from the host's global address leaves untranslated", func(t *testing.T) {
		for _, src := range pingSources(t, l, host, gua) {
			if src != gua {
				t.Errorf("the upstream saw %s, want the host's own %s", src, gua)
			}
		}
	})
}
