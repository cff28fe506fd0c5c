package testbed

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// requireLab skips a test that needs root and the lab's programs.
func requireLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	if m := Missing(); len(m) > 0 {
		t.Skipf("needs programs that are not installed: %v", m)
	}
}

// testLog sends the lab's progress lines to the test log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newLab builds a lab that is closed when the test ends, even if it fails.
func newLab(t *testing.T, o Options) *Lab {
	t.Helper()
	if o.Name == "" {
		o.Name = "v6lab"
	}
	o.Log = testLog{t}
	l, err := New(t.Context(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// netnsList returns the names of all network namespaces.
func netnsList(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

func TestLabTopology(t *testing.T) {
	requireLab(t)
	t.Parallel()
	ctx := t.Context()
	l := newLab(t, Options{})

	// The daemon's job, done by hand here: a forwarding router must set
	// accept_ra=2 on its WAN to learn the default route from the upstream.
	for k, v := range map[string]string{
		"net.ipv6.conf.all.forwarding":        "1",
		"net.ipv6.conf.wan0.accept_ra":        "2",
		"net.ipv6.conf.wan0.accept_ra_defrtr": "1",
	} {
		if err := l.Sysctl(ctx, l.Router, k, v); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("the upstream's RA gives the router a default route on wan0", func(t *testing.T) {
		if err := l.WaitWANDefaultRoute(ctx, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("kea delegates a prefix to a dhcpcd PD client and records its DUID-LL", func(t *testing.T) {
		conf := "duid ll\nipv6only\nnoipv6rs\nnohook resolv.conf\nallowinterfaces wan0\ninterface wan0\n\tia_pd 1/::/56 nosuch0/0/56\n"
		p, err := l.StartDhcpcd(ctx, "dhcpcd-client", conf, "-6", "-B", "wan0")
		if err != nil {
			t.Fatal(err)
		}
		var got KeaLease
		err = l.WaitFor(ctx, 15*time.Second, "a PD lease in Kea's lease file", func() (bool, error) {
			leases, err := l.KeaLeases()
			for _, le := range leases {
				if le.Type == "IA_PD" {
					got = le
					return true, nil
				}
			}
			return false, err
		})
		if err != nil {
			t.Fatalf("%v\ndhcpcd log:\n%s\nkea log:\n%s", err, p.Log(), l.kea.Log())
		}
		if want := "00:03:00:01:02:00:5e:00:01:33"; got.DUID != want {
			t.Errorf("DUID = %s, want %s (DUID-LL of the WAN MAC)", got.DUID, want)
		}
		if got.IAID != 1 || got.Prefix.Bits() != 56 || !DefaultPool.Contains(got.Prefix.Addr()) {
			t.Errorf("lease = %+v, want IAID 1 and a /56 from %s", got, DefaultPool)
		}
		if err := p.Stop(); err != nil {
			t.Error(err)
		}
	})

	t.Run("the host reaches nothing yet but its own link", func(t *testing.T) {
		addrs, err := l.HostAddrs(ctx, l.Hosts[0], netip.MustParsePrefix("fe80::/10"))
		if err != nil || len(addrs) != 1 || addrs[0].Tentative {
			t.Fatalf("host link-local addresses = %+v, %v; want one, not tentative", addrs, err)
		}
	})

	t.Run("close leaves no namespace, process or /etc/netns directory behind", func(t *testing.T) {
		l.mu.Lock()
		procs := append([]*Proc(nil), l.procs...)
		l.mu.Unlock()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		assertGone(t, l)
		for _, p := range procs {
			if !p.exited() {
				t.Errorf("%s (pid %d) still running", p.Name, p.Pid())
			}
		}
	})
}

func assertGone(t *testing.T, l *Lab) {
	t.Helper()
	all := netnsList(t)
	for _, ns := range l.namespaces() {
		for _, n := range all {
			if n == ns {
				t.Errorf("namespace %s still exists", ns)
			}
		}
		if _, err := os.Stat("/etc/netns/" + ns); err == nil {
			t.Errorf("/etc/netns/%s still exists", ns)
		}
	}
	if _, err := os.Stat(l.Dir); err == nil {
		t.Errorf("lab directory %s still exists", l.Dir)
	}
}

func TestNewCleansUpWhenInterrupted(t *testing.T) {
	requireLab(t)
	t.Parallel()
	for _, after := range []time.Duration{0, 150 * time.Millisecond, 600 * time.Millisecond} {
		t.Run(fmt.Sprintf("cancelled after %v", after), func(t *testing.T) {
			name := fmt.Sprintf("v6lab%02x", rand.IntN(256))
			ctx, cancel := context.WithTimeout(t.Context(), after)
			defer cancel()
			l, err := New(ctx, Options{Name: name})
			if err == nil {
				l.Close()
				t.Skip("the lab was built before the deadline")
			}
			for _, n := range netnsList(t) {
				if strings.HasPrefix(n, name+"-") {
					t.Errorf("namespace %s left behind after %v", n, err)
				}
			}
			entries, _ := os.ReadDir("/etc/netns")
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), name+"-") {
					t.Errorf("/etc/netns/%s left behind", e.Name())
				}
			}
		})
	}
}

func TestLabWithTwoHostsSharesABridge(t *testing.T) {
	requireLab(t)
	t.Parallel()
	ctx := t.Context()
	l := newLab(t, Options{Hosts: 2})
	if len(l.Hosts) != 2 {
		t.Fatalf("hosts = %v", l.Hosts)
	}
	ll, err := l.HostAddrs(ctx, l.Hosts[1], netip.MustParsePrefix("fe80::/10"))
	if err != nil || len(ll) != 1 {
		t.Fatalf("second host link-local = %v, %v", ll, err)
	}
	out, err := l.Exec(ctx, l.Hosts[0], "ping", "-c", "1", "-W", "2", ll[0].Prefix.Addr().String()+"%eth0")
	if err != nil {
		t.Fatalf("host 1 cannot reach host 2 across the bridge: %v\n%s", err, out)
	}
}

func TestALabWhoseOwnerDiedIsRemovedByTheNextOne(t *testing.T) {
	requireLab(t)
	t.Parallel()
	name := fmt.Sprintf("v6ls%04x", rand.IntN(1<<16))
	old := newLab(t, Options{Name: name})
	// Pretend the process that built it is gone: a reaped child's pid.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(old.Dir+"/"+ownerFile, []byte(fmt.Sprint(dead.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	newLab(t, Options{Name: name})
	assertGone(t, old)
}

func TestTwoRoutersShareTheUpstreamLinkAndTheLANSwitch(t *testing.T) {
	requireLab(t)
	t.Parallel()
	ctx := t.Context()
	l := newLab(t, Options{Routers: 2, Hosts: 2})
	if len(l.Routers) != 2 || l.Routers[0] != l.Router || l.Switch == "" {
		t.Fatalf("routers %v, switch %q", l.Routers, l.Switch)
	}
	t.Run("each router has its own WAN MAC and link-local on the shared upstream link", func(t *testing.T) {
		for i, rt := range l.Routers {
			ll, err := l.IfaceAddrs(ctx, rt, WANIface, netip.MustParsePrefix("fe80::/10"))
			if err != nil || len(ll) != 1 || ll[0].Prefix.Addr() != EUI64LinkLocal(l.WANMACs[i]) {
				t.Fatalf("router %d wan0 link-local = %+v, %v; want %s", i+1, ll, err, EUI64LinkLocal(l.WANMACs[i]))
			}
			out, err := l.Exec(ctx, rt, "ping", "-c", "1", "-W", "2", upstreamLL(t, l)+"%wan0")
			if err != nil {
				t.Fatalf("router %d cannot reach the upstream: %v\n%s", i+1, err, out)
			}
		}
	})
	t.Run("every router reaches every host across the switch", func(t *testing.T) {
		for _, h := range l.Hosts {
			ll, err := l.HostAddrs(ctx, h, netip.MustParsePrefix("fe80::/10"))
			if err != nil || len(ll) != 1 {
				t.Fatalf("%s link-local = %+v, %v", h, ll, err)
			}
			for _, rt := range l.Routers {
				if out, err := l.Exec(ctx, rt, "ping", "-c", "1", "-W", "2", ll[0].Prefix.Addr().String()+"%lan0"); err != nil {
					t.Errorf("%s cannot reach %s: %v\n%s", rt, h, err, out)
				}
			}
		}
	})
}

// upstreamLL returns the upstream's link-local on up0.
func upstreamLL(t *testing.T, l *Lab) string {
	t.Helper()
	ll, err := l.IfaceAddrs(t.Context(), l.Upstream, UpstreamIface, netip.MustParsePrefix("fe80::/10"))
	if err != nil || len(ll) == 0 {
		t.Fatalf("upstream link-local: %v, %v", ll, err)
	}
	return ll[0].Prefix.Addr().String()
}
