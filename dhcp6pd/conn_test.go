package dhcp6pd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// inNetns runs f on a locked thread switched into network namespace ns.
func inNetns(t *testing.T, ns string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// The thread is left locked and dies with the goroutine, so a
		// failed switch back can never leak the namespace to other code.
		target, err := netns.GetFromName(ns)
		if err != nil {
			t.Errorf("opening netns %s: %v", ns, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			t.Errorf("entering netns %s: %v", ns, err)
			return
		}
		f()
	}()
	<-done
}

// TestListenUDPWaitsForDAD: a fresh link-local is tentative for a second
// or two and binding it fails with EADDRNOTAVAIL; ListenUDP must wait it
// out, and give up with ErrNoLinkLocal when there is none at all.
func TestListenUDPWaitsForDAD(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed")
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	ns := "v6pd-" + hex.EncodeToString(suffix) + "-l"
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "add", "a0", "type", "veth", "peer", "name", "b0")
	run(t, "ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "e0")
	run(t, "ip", "-n", ns, "link", "set", "d0", "addrgenmode", "none")
	run(t, "ip", "-n", ns, "link", "set", "e0", "up")
	run(t, "ip", "-n", ns, "link", "set", "d0", "up")
	run(t, "ip", "-n", ns, "link", "set", "b0", "up")
	run(t, "ip", "-n", ns, "link", "set", "a0", "up")

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
