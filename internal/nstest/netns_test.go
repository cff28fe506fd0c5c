package nstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// These tests need root: they build namespaces.

func inode(t *testing.T, path string) string {
	t.Helper()
	s, err := os.Readlink(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNetns(t *testing.T) {
	RequireRoot(t)
	var name string
	var leftover chan struct{}
	t.Run("a new namespace exists with a handle until the test ends", func(t *testing.T) {
		ns := NewNetns(t, "v6nstest-a")
		name = ns.Name
		if !strings.HasPrefix(ns.Name, "v6nstest-a-") || len(ns.Name) != len("v6nstest-a-")+8 {
			t.Errorf("name %q", ns.Name)
		}
		if _, err := os.Stat("/run/netns/" + ns.Name); err != nil {
			t.Error(err)
		}
		self, err := netns.Get()
		if err != nil {
			t.Fatal(err)
		}
		defer self.Close()
		if !ns.Handle.IsOpen() || ns.Handle.Equal(self) {
			t.Errorf("handle %v, the test's own namespace %v", ns.Handle, self)
		}
		// A process left behind is killed with the namespace.
		args := ns.Exec("sleep", "3600")
		cmd := exec.Command(args[0], args[1:]...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		leftover = make(chan struct{})
		go func() { _ = cmd.Wait(); close(leftover) }()
		Eventually(t, 5*time.Second, 10*time.Millisecond, "the sleep to run in the namespace", func() bool {
			out, _ := Try("ip", "netns", "pids", ns.Name)
			return strings.TrimSpace(out) != ""
		})
	})
	if _, err := os.Stat("/run/netns/" + name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace %s still there after its test: %v", name, err)
	}
	if leftover != nil {
		select {
		case <-leftover:
		case <-time.After(5 * time.Second):
			t.Error("the process left in the namespace still runs")
		}
	}

	t.Run("Do runs in the namespace and restores the thread", func(t *testing.T) {
		ns := NewNetns(t, "v6nstest-do")
		runtime.LockOSThread()
		before := inode(t, "/proc/thread-self/ns/net")
		var inside string
		err := Do(ns, func() (err error) {
			inside, err = os.Readlink("/proc/thread-self/ns/net")
			return err
		})
		after := inode(t, "/proc/thread-self/ns/net")
		runtime.UnlockOSThread()
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat("/run/netns/" + ns.Name)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("net:[%d]", fi.Sys().(*syscall.Stat_t).Ino); inside != want {
			t.Errorf("inside Do the thread is in %s, want %s", inside, want)
		}
		if after != before {
			t.Errorf("after Do the thread is in %s, was in %s", after, before)
		}
		ferr := errors.New("f failed")
		if err := Do(ns, func() error { return ferr }); !errors.Is(err, ferr) {
			t.Errorf("Do = %v, want f's error", err)
		}
		In(t, ns, func() error { return nil })
		var named string
		if err := DoNamed(ns.Name, func() (err error) { named, err = os.Readlink("/proc/thread-self/ns/net"); return err }); err != nil || named != inside {
			t.Errorf("DoNamed: in %s (%v), want %s", named, err, inside)
		}
		if err := DoNamed("v6nstest-no-such-netns", func() error { return nil }); err == nil {
			t.Error("DoNamed entered a namespace that does not exist")
		}
	})

	t.Run("Veth joins two namespaces and nothing appears here", func(t *testing.T) {
		a, b := NewNetns(t, "v6nstest-va"), NewNetns(t, "v6nstest-vb")
		Veth(t, a, "v6nst-a", b, "v6nst-b")
		a.IP(t, "link", "show", "v6nst-a")
		b.IP(t, "link", "show", "v6nst-b")
		if out, err := Try("ip", "link", "show", "v6nst-a"); err == nil {
			t.Errorf("v6nst-a is in the test's namespace:\n%s", out)
		}
		a.NoDAD(t)
		b.NoDAD(t)
		a.IP(t, "link", "set", "v6nst-a", "up")
		b.IP(t, "link", "set", "v6nst-b", "up")
		a.WaitLinkLocal(t, "v6nst-a", 5*time.Second)
		b.WaitLinkLocal(t, "v6nst-b", 5*time.Second)
		if got := strings.TrimSpace(a.Run(t, "sysctl", "-n", "net.ipv6.conf.default.accept_dad")); got != "0" {
			t.Errorf("accept_dad = %q", got)
		}
	})
}
