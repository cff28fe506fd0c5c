package netif

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/v6edge/v6edge/internal/statefile"
)

// Healing a link-local that failed DAD.
//
// Two clones of a VM image come up with the same MAC address (so the same
// EUI-64 link-local) or the same stable_secret (so the same RFC 7217
// link-local): the second one's link-local fails DAD and the interface has
// no usable link-local, so it can neither send RAs nor run DHCPv6.
//
// What regenerates the link-local on kernel 6.18 (measured in a netns):
//   - writing net.ipv6.conf.<if>.stable_secret stores the secret and sets the
//     interface's addr_gen_mode to 2 (stable privacy) but generates nothing;
//   - writing addr_gen_mode regenerates the automatic addresses only when the
//     value changes (addrconf_init_auto_addrs), so after the secret write it
//     is written 1 (none) and then 2: the second write adds a new
//     stable-privacy link-local, which then runs DAD like any other.
//   - the failed address is removed first: the kernel leaves it in place.
//
// A link down/up also regenerates it but interrupts the interface for every
// other user, so it is not used.

// secretFile is where the stable_secret of ifname is kept in StateDir.
func secretFile(dir, ifname string) string {
	return filepath.Join(dir, "stable_secret-"+ifname)
}

// newSecret draws a 128-bit secret, written as an IPv6 address as the
// kernel wants it.
func newSecret(r io.Reader) (netip.Addr, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return netip.Addr{}, fmt.Errorf("drawing a stable_secret: %w", err)
	}
	return netip.AddrFrom16(b), nil
}

func (t *Tracker) healLinkLocal(link netlink.Link, failed []netip.Prefix) error {
	name := link.Attrs().Name
	secret, err := newSecret(t.opts.Rand)
	if err != nil {
		return err
	}
	// Fresh on every heal: the old secret may be the very thing the clone
	// copied along with the state directory.
	if t.opts.StateDir != "" {
		if err := statefile.Write(secretFile(t.opts.StateDir, name), []byte(secret.StringExpanded()+"\n"), 0o600); err != nil {
			return fmt.Errorf("saving the stable_secret of %s: %w", name, err)
		}
	}
	if err := t.opts.Sysctls.Set(name, "stable_secret", secret.StringExpanded()); err != nil {
		return err
	}
	for _, p := range failed {
		if err := delAddr(t.h, link, p); err != nil {
			return err
		}
	}
	if err := t.regenerate(name); err != nil {
		return err
	}
	t.log.Warn("replaced a link-local that failed duplicate address detection by one from a fresh stable_secret",
		"iface", name, "prefix", failed[0], "failed", len(failed), "state_dir", t.opts.StateDir)
	return nil
}

// regenerate makes the kernel generate the interface's automatic addresses
// again with stable privacy (see the comment at the top of this file).
func (t *Tracker) regenerate(name string) error {
	return errors.Join(
		t.opts.Sysctls.Set(name, "addr_gen_mode", "1"),
		t.opts.Sysctls.Set(name, "addr_gen_mode", "2"),
	)
}

// applySavedSecret puts the stable_secret saved by an earlier heal back on
// the interface (after a reboot the kernel has generated the duplicated
// EUI-64 link-local again) and regenerates the link-local when it is not
// already derived from that secret. It reports whether it changed anything.
func (t *Tracker) applySavedSecret(name string, v linkView) bool {
	if t.opts.StateDir == "" {
		return false
	}
	b, err := os.ReadFile(secretFile(t.opts.StateDir, name))
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		t.log.Error("reading the saved stable_secret", "iface", name, "err", err)
		return false
	}
	saved, err := netip.ParseAddr(strings.TrimSpace(string(b)))
	if err != nil || !saved.Is6() {
		t.log.Error("the saved stable_secret is not an IPv6-formatted 128-bit value", "iface", name,
			"err", fmt.Errorf("parsing %s: %w", secretFile(t.opts.StateDir, name), err))
		return false
	}
	if cur, err := t.opts.Sysctls.Get(name, "stable_secret"); err == nil {
		if a, err := netip.ParseAddr(cur); err == nil && a == saved && hasStableLinkLocal(v) {
			return false
		}
	}
	if err := t.opts.Sysctls.Set(name, "stable_secret", saved.StringExpanded()); err != nil {
		t.log.Error("applying the saved stable_secret", "iface", name, "err", err)
		return false
	}
	link, err := t.h.LinkByName(name)
	if err != nil {
		t.log.Error("applying the saved stable_secret", "iface", name, "err", err)
		return false
	}
	// Drop the kernel's other link-locals (EUI-64 ones from before the
	// secret); addresses v6edge wants, like an HA virtual link-local, stay.
	t.mu.Lock()
	wanted := t.m.wants
	t.mu.Unlock()
	for _, ka := range v.addrs {
		a := ka.prefix.Addr()
		if _, ok := wanted[key{name, a}]; ok || !a.IsLinkLocalUnicast() || ka.flags&unix.IFA_F_STABLE_PRIVACY != 0 {
			continue
		}
		if err := delAddr(t.h, link, ka.prefix); err != nil {
			t.log.Error("removing the old link-local", "iface", name, "prefix", ka.prefix, "err", err)
		}
	}
	if err := t.regenerate(name); err != nil {
		t.log.Error("regenerating the link-local from the saved stable_secret", "iface", name, "err", err)
		return false
	}
	t.log.Info("applied the saved stable_secret", "iface", name)
	return true
}

func hasStableLinkLocal(v linkView) bool {
	for _, ka := range v.addrs {
		if ka.prefix.Addr().IsLinkLocalUnicast() && ka.flags&unix.IFA_F_STABLE_PRIVACY != 0 {
			return true
		}
	}
	return false
}
