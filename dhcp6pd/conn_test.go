package dhcp6pd

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/v6edge/v6edge/internal/nstest"
)

// inNetns runs f on a locked thread switched into network namespace ns.
func inNetns(t *testing.T, ns nstest.Netns, f func()) {
	t.Helper()
	nstest.In(t, ns, func() error { f(); return nil })
}

// TestListenUDPWaitsForDAD: a fresh link-local is tentative for a second
// or two and binding it fails with EADDRNOTAVAIL; ListenUDP must wait it
// out, and give up with ErrNoLinkLocal when there is none at all.
func TestListenUDPWaitsForDAD(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.NewNetns(t, "v6pd-l")
	nstest.Veth(t, ns, "a0", ns, "b0")
	nstest.Veth(t, ns, "d0", ns, "e0")
	ns.IP(t, "link", "set", "d0", "addrgenmode", "none")
	ns.IP(t, "link", "set", "e0", "up")
	ns.IP(t, "link", "set", "d0", "up")
	ns.IP(t, "link", "set", "b0", "up")
	ns.IP(t, "link", "set", "a0", "up")

	// Subtests run on goroutines of their own, so each enters the
	// namespace itself.
	t.Run("a tentative link-local is waited for", func(t *testing.T) {
		inNetns(t, ns, func() {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := ListenUDP(ctx, "a0")
			if err != nil {
				t.Errorf("ListenUDP: %v", err)
				return
			}
			defer c.Close()
			u := c.(*udpConn)
			local := u.c.LocalAddr().String()
			link, err := netlink.LinkByName("a0")
			if err != nil {
				t.Error(err)
				return
			}
			addrs, err := netlink.AddrList(link, netlink.FAMILY_V6)
			if err != nil {
				t.Error(err)
				return
			}
			for _, a := range addrs {
				if ip, _ := netip.AddrFromSlice(a.IP); ip.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE != 0 {
					t.Errorf("bound while %s is still tentative", ip)
				}
			}
			t.Logf("bound %s after %s", local, time.Since(start).Round(time.Millisecond))
		})
	})
	t.Run("no link-local at all ends with ErrNoLinkLocal when ctx ends", func(t *testing.T) {
		inNetns(t, ns, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := ListenUDP(ctx, "d0")
			if !errors.Is(err, ErrNoLinkLocal) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err %v, want ErrNoLinkLocal and DeadlineExceeded", err)
			}
		})
	})
	t.Run("a missing interface is an error at once", func(t *testing.T) {
		inNetns(t, ns, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			if _, err := ListenUDP(ctx, "nonexistent0"); err == nil || time.Since(start) > time.Second {
				t.Errorf("err %v after %s, want an error at once", err, time.Since(start))
			}
		})
	})
}
