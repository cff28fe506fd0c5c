package testbed

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestIncumbentInLab runs the dhcpcd + hook + radvd setup v6edge replaces
// and checks the whole data path with it: this proves the lab (routes,
// NAT, SLAAC) independently of the daemon under test.
func TestIncumbentInLab(t *testing.T) {
	requireLab(t)
	t.Parallel()
	ctx := t.Context()
	l := newLab(t, Options{})
	inc, err := l.RunIncumbent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dhcpcd log:\n%s\nradvd log:\n%s", inc.Dhcpcd.Log(), inc.Radvd.Log())
		}
	})

	var deleg netip.Prefix
	t.Run("the hook installs the NETMAP pair for the delegated prefix", func(t *testing.T) {
		err := l.WaitFor(ctx, 15*time.Second, "a PD lease", func() (bool, error) {
			leases, err := l.KeaLeases()
			for _, le := range leases {
				if le.Type == "IA_PD" {
					deleg = le.Prefix
				}
			}
			return deleg.IsValid(), err
		})
		if err != nil {
			t.Fatal(err)
		}
		var out string
		err = l.WaitFor(ctx, 10*time.Second, "NETMAP rules", func() (bool, error) {
			out, err = l.Exec(ctx, l.Router, "nft", "list", "table", "ip6", "incumbent")
			return HasNetmap(out, DefaultInternal, deleg), nil
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	if !deleg.IsValid() {
		t.FailNow()
	}

	t.Run("rdisc6 on the host parses radvd's RA", func(t *testing.T) {
		out, err := l.Exec(ctx, l.Hosts[0], "rdisc6", "-1", "-w", "2000", HostIface)
		ras := ParseRdisc6(out)
		if err != nil || len(ras) == 0 {
			t.Fatalf("rdisc6: %v\n%s", err, out)
		}
		ra := ras[0]
		if ra.Managed || ra.Other || len(ra.Prefixes) != 1 || ra.Prefixes[0].Prefix != DefaultLANSubnet || !ra.Prefixes[0].Autonomous || !ra.From.IsLinkLocalUnicast() {
			t.Errorf("RA = %+v\n%s", ra, out)
		}
	})

	var hostAddr netip.Addr
	t.Run("the host takes a SLAAC address", func(t *testing.T) {
		if hostAddr, err = l.WaitHostSLAAC(ctx, l.Hosts[0], DefaultLANSubnet, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	if !hostAddr.IsValid() {
		t.FailNow()
	}

	t.Run("the router learns its default route, so the host's ping leaves mapped", func(t *testing.T) {
		err := l.WaitFor(ctx, 10*time.Second, "a default route on wan0", func() (bool, error) {
			out, err := l.Exec(ctx, l.Router, "ip", "-6", "route", "show", "default")
			return strings.Contains(out, "dev wan0"), err
		})
		if err != nil {
			t.Fatal(err)
		}
		c, err := l.Capture(ctx, l.Upstream, UpstreamIface, "icmp6 and ip6[40] == 128")
		if err != nil {
			t.Fatal(err)
		}
		out, perr := l.Exec(ctx, l.Hosts[0], "ping", "-c", "2", "-i", "0.2", "-W", "2", InternetAddr.String())
		pkts, err := c.Stop()
		if perr != nil || err != nil {
			t.Fatalf("ping: %v, capture: %v\n%s", perr, err, out)
		}
		want := MapAddr(hostAddr, DefaultInternal, deleg)
		if len(pkts) == 0 || pkts[0].Src != want {
			t.Errorf("upstream saw %+v, want source %s", pkts, want)
		}
	})

	t.Run("the upstream reaches the host at its mapped address", func(t *testing.T) {
		mapped := MapAddr(hostAddr, DefaultInternal, deleg)
		if out, err := l.Exec(ctx, l.Upstream, "ping", "-c", "1", "-W", "2", mapped.String()); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})
}
