package ra

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/v6edge/v6edge/internal/nstest"
)

// vethLab is two network namespaces, a router and a host, joined by a veth
// pair. Everything it creates lives inside those namespaces.
type vethLab struct {
	router, host     string // namespace names
	routerIf, hostIf string
	routerNS, hostNS netns.NsHandle
}

// newVethLab creates the namespaces (prefix v6ra-, random suffix), sets the
// given per-interface sysctls on the host side before the link comes up,
// and waits until both link-locals are usable.
func newVethLab(t *testing.T, hostSysctls map[string]string) *vethLab {
	t.Helper()
	// The interface names exist in no other namespace: Go resolves an IPv6
	// zone name in the namespace of the calling thread, and a name that
	// does not resolve there leaves the choice to IPV6_PKTINFO, which is
	// right.
	router, host := nstest.NewNetns(t, "v6ra-r"), nstest.NewNetns(t, "v6ra-h")
	l := &vethLab{router: router.Name, host: host.Name, routerIf: "v6ra-lan", hostIf: "v6ra-host",
		routerNS: router.Handle, hostNS: host.Handle}
	// Create the pair inside the router namespace and move one end, so
	// nothing ever appears in the namespace the test runs in.
	nstest.Veth(t, router, l.routerIf, host, l.hostIf)
	router.IP(t, "link", "set", l.routerIf, "address", "02:00:5e:10:00:01")
	host.IP(t, "link", "set", l.hostIf, "address", "02:00:5e:10:00:02")
	rs := map[string]string{"accept_dad": "0", "forwarding": "0"}
	for k, v := range rs {
		router.Sysctl(t, fmt.Sprintf("net.ipv6.conf.%s.%s=%s", l.routerIf, k, v))
	}
	for k, v := range hostSysctls {
		host.Sysctl(t, fmt.Sprintf("net.ipv6.conf.%s.%s=%s", l.hostIf, k, v))
	}
	router.IP(t, "link", "set", "lo", "up")
	host.IP(t, "link", "set", "lo", "up")
	router.IP(t, "link", "set", l.routerIf, "up")
	host.IP(t, "link", "set", l.hostIf, "up")
	router.WaitLinkLocal(t, l.routerIf, 5*time.Second)
	host.WaitLinkLocal(t, l.hostIf, 5*time.Second)
	return l
}

// waitFor polls cond every 20 ms until it holds or d has passed.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	nstest.Eventually(t, d, 20*time.Millisecond, what, cond)
}

// nsLink is the kernel link, reached from inside a namespace.
type nsLink struct{ ns netns.NsHandle }

var _ link = nsLink{}

func (l nsLink) Listen(iface string, src netip.Addr) (c Conn, chosen netip.Addr, hw net.HardwareAddr, err error) {
	ferr := nstest.DoHandle(l.ns, func() error {
		c, chosen, hw, err = kernelLink{}.Listen(iface, src)
		return nil
	})
	if ferr != nil {
		return nil, netip.Addr{}, nil, ferr
	}
	return c, chosen, hw, err
}

func (l nsLink) HasAddr(iface string, addr netip.Addr) (ok bool, err error) {
	ferr := nstest.DoHandle(l.ns, func() error {
		ok, err = kernelLink{}.HasAddr(iface, addr)
		return nil
	})
	if ferr != nil {
		return false, ferr
	}
	return ok, err
}
