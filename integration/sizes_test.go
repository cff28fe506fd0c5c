package integration

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/plan"
	"github.com/v6edge/v6edge/internal/testbed"
)

// TestDelegationSmallerThanTheInternalPrefix: ISPs that hand out a /60 or a
// single /64 to a config with a /56 internal prefix (RFC 7084 WPD-3). The
// router binds it, maps the internal prefix's first block of that length
// onto it, and the LAN whose subnet fits is translated end to end; a second
// LAN whose subnet does not fit is named in status problems and keeps its
// ULA and its RAs.
func TestDelegationSmallerThanTheInternalPrefix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		delegated           int
		hostSubnet, another int
	}{
		{60, 1, 17},
		{64, 0, 1},
	} {
		t.Run("a /"+strconv.Itoa(tc.delegated), func(t *testing.T) {
			t.Parallel()
			l := newLab(t, "v6sz", testbed.Options{Delegated: tc.delegated})
			ctx := t.Context()
			// The second LAN has no hosts.
			addHostlessLAN(t, l, "lan1")
			cfg := testbed.Config{
				WANs: []testbed.WAN{{Interface: testbed.WANIface, DUID: "ll", IAID: 1, PrefixLength: 56}},
				NAT:  testbed.NAT{InternalPrefix: internal, Hairpin: true},
				LANs: []testbed.LAN{
					{Interface: testbed.LANIface, Subnet: tc.hostSubnet, Mode: "slaac"},
					{Interface: "lan1", Subnet: tc.another, Mode: "slaac"},
				},
			}
			d := runDaemon(t, l, cfg.TOML(), 0)
			deleg := waitBound(t, d, l.Pool)
			if deleg.Bits() != tc.delegated {
				t.Fatalf("Kea delegated %v, want a /%d", deleg, tc.delegated)
			}
			block := netip.PrefixFrom(internal.Addr(), tc.delegated)
			out, err := l.WaitNetmap(ctx, l.Router, block, deleg, netip.Prefix{}, 5*time.Second)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			host := l.Hosts[0]
			hostAddr, err := l.WaitHostSLAAC(ctx, host, plan.Subnet64(internal, tc.hostSubnet), 20*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			waitHostDefaultRoute(t, l, host)
			want := testbed.MapAddr(hostAddr, block, deleg)
			for _, s := range pingUpstream(t, l, host) {
				if s != want {
					t.Errorf("upstream saw source %s, want %s (the host mapped into %s)", s, want, deleg)
				}
			}
			if out, err := l.Exec(ctx, l.Upstream, "ping", "-c", "2", "-i", "0.2", "-W", "2", want.String()); err != nil {
				t.Errorf("ping %s from upstream: %v\n%s", want, err, out)
			}
			doc, code, err := d.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var probs []string
			for _, p := range testbed.Get(doc, "problems").([]any) {
				probs = append(probs, p.(string))
			}
			needle := "lan1: subnet " + strconv.Itoa(tc.another) + " does not fit the /" + strconv.Itoa(tc.delegated)
			if code != 1 || !slices.ContainsFunc(probs, func(p string) bool { return strings.Contains(p, needle) }) {
				t.Errorf("status exit %d, problems %q: want exit 1 and one containing %q", code, probs, needle)
			}
			if got := testbed.GetString(doc, "lan", 1, "prefixes", 0, "prefix"); got != plan.Subnet64(internal, tc.another).String() {
				t.Errorf("lan1 advertises %q, want its ULA %v", got, plan.Subnet64(internal, tc.another))
			}
		})
	}
}
