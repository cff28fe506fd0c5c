package ra

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// vethLab is two network namespaces, a router and a host, joined by a veth
// pair. Everything it creates lives inside those namespaces.
type vethLab struct {
	router, host     string // namespace names
	routerIf, hostIf string
	routerNS, hostNS netns.NsHandle
}

// requireRoot skips the test unless it runs as root with the tools given.
func requireRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

// run runs a command and fails the test with its output on error.
func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newVethLab creates the namespaces (prefix v6ra-, random suffix), sets the
// given per-interface sysctls on the host side before the link comes up,
// and waits until both link-locals are usable.
func newVethLab(t *testing.T, hostSysctls map[string]string) *vethLab {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b[:])
	// The interface names exist in no other namespace: Go resolves an IPv6
	// zone name in the namespace of the calling thread, and a name that
	// does not resolve there leaves the choice to IPV6_PKTINFO, which is
	// right.
	l := &vethLab{router: "v6ra-" + id + "-r", host: "v6ra-" + id + "-h", routerIf: "v6ra-lan", hostIf: "v6ra-host"}
	run(t, "ip", "netns", "add", l.router)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.router).Run() })
	run(t, "ip", "netns", "add", l.host)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.host).Run() })
	// Create the pair inside the router namespace and move one end, so
	// nothing ever appears in the namespace the test runs in.
	run(t, "ip", "-n", l.router, "link", "add", l.routerIf, "address", "02:00:5e:10:00:01", "type", "veth",
		"peer", "name", l.hostIf, "address", "02:00:5e:10:00:02", "netns", l.host)
	rs := map[string]string{"accept_dad": "0", "forwarding": "0"}
	for k, v := range rs {
		run(t, "ip", "netns", "exec", l.router, "sysctl", "-qw", fmt.Sprintf("net.ipv6.conf.%s.%s=%s", l.routerIf, k, v))
	}
	for k, v := range hostSysctls {
		run(t, "ip", "netns", "exec", l.host, "sysctl", "-qw", fmt.Sprintf("net.ipv6.conf.%s.%s=%s", l.hostIf, k, v))
	}
	run(t, "ip", "-n", l.router, "link", "set", "lo", "up")
	run(t, "ip", "-n", l.host, "link", "set", "lo", "up")
	run(t, "ip", "-n", l.router, "link", "set", l.routerIf, "up")
	run(t, "ip", "-n", l.host, "link", "set", l.hostIf, "up")
	var err error
	if l.routerNS, err = netns.GetFromName(l.router); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.routerNS.Close() })
	if l.hostNS, err = netns.GetFromName(l.host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.hostNS.Close() })
	for _, side := range []struct{ ns, ifname string }{{l.router, l.routerIf}, {l.host, l.hostIf}} {
		waitFor(t, 5*time.Second, "link-local on "+side.ns, func() bool {
			out, _ := exec.Command("ip", "-n", side.ns, "-6", "addr", "show", "dev", side.ifname, "scope", "link").CombinedOutput()
			return strings.Contains(string(out), "fe80::") && !strings.Contains(string(out), "tentative")
		})
	}
	return l
}

// waitFor polls cond every 20 ms until it holds or d has passed.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// in runs f on a locked OS thread switched into ns, then switches back.
// Sockets opened by f stay in ns for their whole life.
func in(ns netns.NsHandle, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace: never unlock it, so the
		// runtime throws it away instead of reusing it.
		runtime.LockOSThread()
		return fmt.Errorf("switching back from the lab namespace: %w", err)
	}
	return ferr
}

// nsLink is the kernel link, reached from inside a namespace.
type nsLink struct{ ns netns.NsHandle }

var _ link = nsLink{}

func (l nsLink) Listen(iface string, src netip.Addr) (c Conn, chosen netip.Addr, hw net.HardwareAddr, err error) {
	ferr := in(l.ns, func() error {
		c, chosen, hw, err = kernelLink{}.Listen(iface, src)
		return nil
	})
	if ferr != nil {
		return nil, netip.Addr{}, nil, ferr
	}
	return c, chosen, hw, err
}

func (l nsLink) HasAddr(iface string, addr netip.Addr) (ok bool, err error) {
	ferr := in(l.ns, func() error {
		ok, err = kernelLink{}.HasAddr(iface, addr)
		return nil
	})
	if ferr != nil {
		return false, ferr
	}
	return ok, err
}
