package netif

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"
)

// Sysctls reads and writes the per-interface IPv6 sysctls
// (net.ipv6.conf.<ifname>.<key>). ifname may also be "all" or "default".
type Sysctls interface {
	Get(ifname, key string) (string, error)
	Set(ifname, key, value string) error
}

// ProcSys is the real Sysctls: files under /proc/sys/net/ipv6/conf.
//
// /proc/sys/net is per network namespace and resolved when the file is
// opened, so for an interface in another namespace the opening thread must be
// in that namespace. With Namespace set, each access runs on a locked OS
// thread switched into it (see InNamespace); the zero ProcSys uses the
// caller's namespace, which is what the daemon wants.
type ProcSys struct {
	Namespace *netns.NsHandle
}

var _ Sysctls = ProcSys{}

// confDir is where the kernel exposes net.ipv6.conf.
const confDir = "/proc/sys/net/ipv6/conf"

// Get returns the value of net.ipv6.conf.<ifname>.<key> without the newline.
func (p ProcSys) Get(ifname, key string) (string, error) {
	path, err := sysctlPath(ifname, key)
	if err != nil {
		return "", err
	}
	var b []byte
	err = p.do(func() error {
		var err error
		b, err = os.ReadFile(path)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("reading net.ipv6.conf.%s.%s: %w", ifname, key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Set writes value to net.ipv6.conf.<ifname>.<key>.
func (p ProcSys) Set(ifname, key, value string) error {
	path, err := sysctlPath(ifname, key)
	if err != nil {
		return err
	}
	if strings.ContainsAny(value, "\n\x00") {
		return fmt.Errorf("writing net.ipv6.conf.%s.%s: value %q has a newline or NUL", ifname, key, value)
	}
	err = p.do(func() error {
		// O_TRUNC is refused by some proc files; a plain write-only open is
		// what sysctl(8) does.
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, werr := f.WriteString(value + "\n")
		return errors.Join(werr, f.Close())
	})
	if err != nil {
		return fmt.Errorf("writing net.ipv6.conf.%s.%s=%s: %w", ifname, key, value, err)
	}
	return nil
}

func (p ProcSys) do(fn func() error) error {
	if p.Namespace == nil {
		return fn()
	}
	return InNamespace(*p.Namespace, fn)
}

// InNamespace runs fn on an OS thread that is in network namespace ns, for
// the few things (opening /proc/sys/net files, sockets) that resolve the
// namespace from the calling thread. The rest of the process stays where it
// is. fn must not start goroutines that expect to inherit the namespace.
func InNamespace(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// A fresh goroutine, locked and never unlocked if the thread could
		// not be switched back: the runtime then discards the thread when the
		// goroutine ends instead of reusing it in the wrong namespace.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("getting the current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("returning to the original network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// sysctlPath validates ifname and key and returns the /proc/sys file. Both
// end up in a path, so anything that could climb out of confDir is refused.
func sysctlPath(ifname, key string) (string, error) {
	if err := validIfname(ifname); err != nil {
		return "", err
	}
	if key == "" {
		return "", errors.New("empty sysctl key")
	}
	for _, c := range key {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return "", fmt.Errorf("sysctl key %q: only a-z, 0-9 and _ are allowed", key)
		}
	}
	return filepath.Join(confDir, ifname, key), nil
}

// validIfname checks a Linux interface name (IFNAMSIZ-1 bytes, no '/', no
// whitespace, not "." or ".."): the rules of the kernel's dev_valid_name.
func validIfname(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." {
		return fmt.Errorf("invalid interface name %q", name)
	}
	for _, c := range name {
		if c == '/' || c == ':' || c <= ' ' || c == 0x7f {
			return fmt.Errorf("invalid interface name %q", name)
		}
	}
	return nil
}

// SetSysctl writes net.ipv6.conf.<ifname>.<key>=value in the caller's
// network namespace. Use ProcSys{Namespace: ...}.Set for another one.
func SetSysctl(ifname, key, value string) error {
	return ProcSys{}.Set(ifname, key, value)
}

// SetForwarding switches IPv6 forwarding on or off for one interface
// (net.ipv6.conf.<ifname>.forwarding). Note that the kernel only forwards
// IPv6 when all.forwarding is on too (SetForwardingAll).
func SetForwarding(ifname string, on bool) error {
	return ProcSys{}.Set(ifname, "forwarding", boolValue(on))
}

// SetForwardingAll sets net.ipv6.conf.all.forwarding, which the kernel
// copies to every interface's forwarding when written.
func SetForwardingAll(on bool) error {
	return ProcSys{}.Set("all", "forwarding", boolValue(on))
}

// SetAcceptRA sets net.ipv6.conf.<ifname>.accept_ra. A forwarding interface
// ignores Router Advertisements unless it is 2, so the WAN of a router needs
// 2 to learn its default route from the upstream's RAs.
func SetAcceptRA(ifname string, v int) error {
	if v < 0 || v > 2 {
		return fmt.Errorf("accept_ra=%d: must be 0, 1 or 2", v)
	}
	return ProcSys{}.Set(ifname, "accept_ra", strconv.Itoa(v))
}

func boolValue(on bool) string {
	if on {
		return "1"
	}
	return "0"
}
