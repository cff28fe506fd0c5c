package netif

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/v6edge/v6edge/internal/statefile"
)

// Want is one address v6edge wants on an interface.
type Want struct {
	Interface string
	// Prefix is the address with its prefix length, e.g. fd00::1/64 (the
	// kernel then adds the on-link route fd00::/64).
	Prefix netip.Prefix
	// NoDAD adds the address without Duplicate Address Detection
	// (IFA_F_NODAD): for floating HA addresses that both nodes may briefly
	// hold during a takeover.
	NoDAD bool
	// PreferredUntil and ValidUntil, when set, are the address's lifetimes
	// (a DHCPv6 IA_NA address): the kernel deprecates and removes it by
	// itself then, even if v6edge is gone, and a new value (a renewal)
	// refreshes them in place. Zero: forever.
	PreferredUntil, ValidUntil time.Time
}

// AddrStatus is the state of one managed address (or of a link-local of a
// managed interface).
type AddrStatus struct {
	Interface string
	Address   netip.Prefix
	State     AddrState
	// Since is when State was entered.
	Since time.Time
	// Failures counts consecutive DAD failures (the backoff exponent); it
	// starts over after the address held for RetryMax.
	Failures int
	// NextRetry is when a failed address is tried again (zero otherwise).
	NextRetry time.Time
	// Detail says why, in words for an operator.
	Detail string
	// LinkLocal marks the kernel-generated link-locals that are reported
	// but not managed.
	LinkLocal bool
}

// TrackerOptions tune a Tracker. Zero fields take the defaults.
type TrackerOptions struct {
	// RetryMin and RetryMax bound the exponential backoff after a DAD
	// failure (default 5 s and 5 min).
	RetryMin, RetryMax time.Duration
	// StuckAfter is how long an address may stay tentative before it is
	// reported. DAD takes DupAddrDetectTransmits × RetransTimer (RFC 4862
	// §5.4: 1 × 1 s by default) plus up to MAX_RTR_SOLICITATION_DELAY of
	// initial delay (§5.4.2), so the 10 s default is generous.
	StuckAfter time.Duration
	// Now is the clock (default time.Now). Timers use the runtime clock, so
	// tests fake both with testing/synctest.
	Now func() time.Time
	// OnChange is called after any status changed. It must not block (e.g.
	// a non-blocking send on a channel of size 1).
	OnChange func()
	// HealLinkLocal replaces a link-local that failed DAD by one derived
	// from a fresh random stable_secret (RFC 7217, addr_gen_mode=2).
	HealLinkLocal bool
	// StateDir keeps the stable secrets (stable_secret-<if>) and the list of
	// addresses this Tracker added (addresses), so both survive a restart.
	StateDir string
	// RemoveOnStop removes the addresses the Tracker added when Run ends.
	// The default keeps them: a restart must not interrupt the LAN.
	RemoveOnStop bool
	// Sysctls reads and writes net.ipv6.conf (default ProcSys{}: the
	// caller's namespace).
	Sysctls Sysctls
	// Watcher delivers address and link events (default NetlinkWatcher{}).
	Watcher Watcher
	// Rand is the source of stable secrets (default crypto/rand).
	Rand io.Reader
}

func (o TrackerOptions) withDefaults() TrackerOptions {
	if o.RetryMin <= 0 {
		o.RetryMin = 5 * time.Second
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(5*time.Minute, o.RetryMin)
	}
	if o.StuckAfter <= 0 {
		o.StuckAfter = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sysctls == nil {
		o.Sysctls = ProcSys{}
	}
	if o.Watcher == nil {
		o.Watcher = NetlinkWatcher{}
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return o
}

// Tracker keeps a set of wanted addresses on the kernel and reports each
// one's DAD outcome. Set may be called at any time, also before Run; Status,
// Problems and DADFailures are safe for concurrent use.
type Tracker struct {
	h    Handle
	log  *slog.Logger
	opts TrackerOptions
	kick chan struct{}

	mu sync.Mutex
	m  *machine
	// kernelMu serializes the changes of the kernel and of the owned file:
	// a reconcile pass, stop and Release. Held across I/O, never while
	// waiting for events; taken before mu.
	kernelMu sync.Mutex
	// savedOwned is the owned file's content; kernelMu guards it.
	savedOwned string
	// Only the Run goroutine uses these two.
	// secretsApplied lists interfaces whose saved stable_secret was applied.
	secretsApplied map[string]bool
	// indexes holds the link indexes of the managed interfaces.
	indexes map[int]bool
}

// NewTracker returns a Tracker that works through h. With a StateDir it
// loads the addresses an earlier run added, so that those no longer wanted
// are removed after the first Set.
func NewTracker(h Handle, log *slog.Logger, opts TrackerOptions) *Tracker {
	if opts.Watcher == nil {
		opts.Watcher = NetlinkWatcher{OnError: func(err error) {
			log.Warn("netlink event subscription failed", "err", err)
		}}
	}
	opts = opts.withDefaults()
	t := &Tracker{
		h:              h,
		log:            log,
		opts:           opts,
		kick:           make(chan struct{}, 1),
		m:              newMachine(log, opts),
		secretsApplied: map[string]bool{},
	}
	if opts.StateDir != "" {
		owned, err := loadOwned(filepath.Join(opts.StateDir, ownedFile))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("cannot read the addresses added by an earlier run", "err", err)
		}
		for _, w := range owned {
			t.m.owned[key{w.Interface, w.Prefix.Addr()}] = w.Prefix
		}
		t.savedOwned = formatOwned(t.m.owned)
	}
	return t
}

// Set replaces the desired set of addresses. Missing ones are added (with
// DAD unless NoDAD); addresses this Tracker added that are no longer wanted
// are removed. Calling it again with the same set changes nothing.
func (t *Tracker) Set(wants []Want) {
	t.mu.Lock()
	t.m.setWants(wants)
	t.mu.Unlock()
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// String names the Tracker in logs and task lists.
func (t *Tracker) String() string { return "address tracker" }

// Status lists every managed address and the link-locals of the managed
// interfaces, sorted by interface.
func (t *Tracker) Status() []AddrStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m.status()
}

// Problems lists what an operator should look at, one sentence each.
func (t *Tracker) Problems() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m.problems(t.opts.Now())
}

// DADFailures counts DAD failures seen since start (managed addresses and
// link-locals).
func (t *Tracker) DADFailures() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m.dadFailures
}

// resubscribeDelay spaces attempts to subscribe to netlink events again.
const resubscribeDelay = time.Second

// Run subscribes to address and link events and keeps the kernel in line
// with the wanted set until ctx ends. It returns nil on cancellation.
func (t *Tracker) Run(ctx context.Context) error {
	for {
		events, err := t.opts.Watcher.Watch(ctx)
		if err == nil {
			t.loop(ctx, events)
		} else {
			t.log.Error("subscribing to netlink address and link events", "err", err)
		}
		if ctx.Err() != nil {
			return t.stop()
		}
		if err == nil {
			t.log.Warn("netlink event subscription ended; subscribing again")
		}
		timer := time.NewTimer(resubscribeDelay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return t.stop()
		case <-timer.C:
		}
	}
}

// loop reconciles after every event batch, Set and deadline, until ctx ends
// or the subscription does. Subscribing comes first so that no change
// between the first look and the subscription is missed.
func (t *Tracker) loop(ctx context.Context, events <-chan Event) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var wake <-chan time.Time
	for look := true; ; {
		if look {
			next := t.reconcile()
			timer.Stop()
			wake = nil
			if !next.IsZero() {
				timer.Reset(max(next.Sub(t.opts.Now()), 0))
				wake = timer.C
			}
		}
		look = true
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			// Coalesce a burst (a link flap moves every address): one look
			// at the kernel covers them all. Address events of interfaces
			// v6edge does not manage (containers, VPNs) are skipped.
			look = t.relevant(ev)
			for more := true; more; {
				select {
				case ev, ok := <-events:
					if !ok {
						return
					}
					look = look || t.relevant(ev)
				default:
					more = false
				}
			}
		case <-wake:
		case <-t.kick:
		}
	}
}

// relevant tells whether an event may concern a managed interface: link
// events always (a managed interface may just have appeared), address
// events only on the interfaces seen at the last look.
func (t *Tracker) relevant(ev Event) bool {
	return ev.Link || t.indexes[ev.LinkIndex]
}

// reconcile observes the managed interfaces, steps the machine, applies its
// actions and returns the next deadline.
func (t *Tracker) reconcile() time.Time {
	t.kernelMu.Lock()
	t.mu.Lock()
	ifaces := t.m.interfaces()
	t.mu.Unlock()

	views := map[string]linkView{}
	t.indexes = map[int]bool{}
	retry := false
	for _, name := range ifaces {
		v, err := t.observe(name)
		if err != nil {
			t.log.Error("reading interface state", "iface", name, "err", err)
			retry = true
			continue
		}
		if v.exists && t.opts.HealLinkLocal && !t.secretsApplied[name] {
			t.secretsApplied[name] = true
			if t.applySavedSecret(name, v) {
				if v2, err := t.observe(name); err == nil {
					v = v2
				}
			}
		}
		views[name] = v
		if v.exists {
			t.indexes[v.index] = true
		}
	}

	now := t.opts.Now()
	t.mu.Lock()
	before := t.m.status()
	acts := t.m.step(now, views)
	t.mu.Unlock()

	for _, a := range acts {
		if err := t.apply(a); err != nil {
			t.log.Error("changing an address", "iface", a.iface, "prefix", cmp.Or(a.prefix, a.firstFailed()), "err", err)
			if a.kind == actAdd {
				t.mu.Lock()
				t.m.addFailed(now, key{a.iface, a.prefix.Addr()}, err)
				t.mu.Unlock()
			}
		}
	}

	t.mu.Lock()
	after := t.m.status()
	next := t.m.deadline()
	t.mu.Unlock()

	if err := t.saveOwned(); err != nil {
		t.log.Error("saving the list of added addresses", "err", err)
	}
	t.kernelMu.Unlock()
	if !slices.Equal(before, after) && t.opts.OnChange != nil {
		t.opts.OnChange()
	}
	if retry {
		r := now.Add(t.opts.RetryMin)
		if next.IsZero() || r.Before(next) {
			next = r
		}
	}
	return next
}

// observe reads one interface: link flags, addresses and the two sysctls
// that say whether the kernel disabled its IPv6.
func (t *Tracker) observe(name string) (linkView, error) {
	link, err := t.h.LinkByName(name)
	if isLinkNotFound(err) {
		return linkView{known: true}, nil
	}
	if err != nil {
		return linkView{}, fmt.Errorf("looking up %s: %w", name, err)
	}
	attrs := link.Attrs()
	v := linkView{
		known:   true,
		exists:  true,
		index:   attrs.Index,
		up:      attrs.Flags&net.FlagUp != 0,
		carrier: attrs.RawFlags&unix.IFF_LOWER_UP != 0,
	}
	addrs, err := addrList(t.h, link)
	if err != nil {
		return linkView{}, err
	}
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok && p.Addr().Is6() && !p.Addr().Is4In6() {
			v.addrs = append(v.addrs, kernelAddr{prefix: p, flags: a.Flags})
		}
	}
	// An interface without IPv6 (disabled, or no inet6_dev yet) has no
	// conf directory; that is not an error, just nothing to tell.
	if s, err := t.opts.Sysctls.Get(name, "disable_ipv6"); err == nil {
		v.ipv6Disabled = s == "1"
	}
	if s, err := t.opts.Sysctls.Get(name, "accept_dad"); err == nil {
		v.acceptDAD = map[string]int{"0": 0, "1": 1, "2": 2}[s]
	}
	return v, nil
}

func (t *Tracker) apply(a action) error {
	link, err := t.h.LinkByName(a.iface)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", a.iface, err)
	}
	switch a.kind {
	case actAdd, actRefresh:
		addr := &netlink.Addr{IPNet: ipNet(a.prefix), PreferedLft: a.preferredLft, ValidLft: a.validLft}
		if a.noDAD {
			addr.Flags = unix.IFA_F_NODAD
		}
		if a.kind == actRefresh {
			// NLM_F_REPLACE on a present address changes its lifetimes
			// in place; DAD does not run again.
			if err := t.h.AddrReplace(link, addr); err != nil {
				return fmt.Errorf("refreshing the lifetimes of %s on %s: %w", a.prefix, a.iface, err)
			}
			return nil
		}
		if err := t.h.AddrAdd(link, addr); err != nil && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("adding %s to %s: %w", a.prefix, a.iface, err)
		}
	case actDel:
		return delAddr(t.h, link, a.prefix)
	case actHeal:
		return t.healLinkLocal(link, a.failed)
	}
	return nil
}

// delAddr removes an address; one that is already gone is no error.
func delAddr(h Handle, link netlink.Link, p netip.Prefix) error {
	err := h.AddrDel(link, &netlink.Addr{IPNet: ipNet(p)})
	if err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("removing %s from %s: %w", p, link.Attrs().Name, err)
	}
	return nil
}

// stop ends Run: the added addresses stay unless RemoveOnStop.
func (t *Tracker) stop() error {
	if !t.opts.RemoveOnStop {
		return nil
	}
	t.kernelMu.Lock()
	defer t.kernelMu.Unlock()
	t.mu.Lock()
	owned := sortedKeys(t.m.owned)
	prefixes := make([]netip.Prefix, len(owned))
	for i, k := range owned {
		prefixes[i] = t.m.owned[k]
	}
	t.mu.Unlock()
	var errs []error
	for i, k := range owned {
		link, err := t.h.LinkByName(k.iface)
		if isLinkNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("looking up %s: %w", k.iface, err))
			continue
		}
		if err := delAddr(t.h, link, prefixes[i]); err != nil {
			errs = append(errs, err)
			continue
		}
		t.log.Info("removed address on stop", "iface", k.iface, "prefix", prefixes[i])
		t.mu.Lock()
		delete(t.m.owned, k)
		t.mu.Unlock()
	}
	if err := t.saveOwned(); err != nil {
		errs = append(errs, fmt.Errorf("saving the list of added addresses: %w", err))
	}
	return errors.Join(errs...)
}

// saveOwned writes the owned file when it changed (nothing without a
// StateDir). The caller holds kernelMu.
func (t *Tracker) saveOwned() error {
	if t.opts.StateDir == "" {
		return nil
	}
	t.mu.Lock()
	owned := formatOwned(t.m.owned)
	t.mu.Unlock()
	if owned == t.savedOwned {
		return nil
	}
	if err := statefile.Write(filepath.Join(t.opts.StateDir, ownedFile), []byte(owned), 0o600); err != nil {
		return err
	}
	t.savedOwned = owned
	return nil
}

// Release gives up the addresses that match: it removes from the kernel
// every address this Tracker added (in this run or, via StateDir, an
// earlier one) for which match returns true, stops wanting every wanted
// address that matches (so that Run does not add it again; a later Set that
// wants it adds it again), forgets them and rewrites the owned file, so
// that a restart does not act on them either.
//
// match sees each address as a Want: Interface and Prefix as added, NoDAD
// as wanted or, for an address added by an earlier run and not wanted now,
// as the kernel reports it (IFA_F_NODAD). It is called once per address
// while Release holds the lock that serializes kernel changes, so it must
// not call Release (the other methods are fine). E.g. the floating HA
// addresses, at HA stop:
//
//	tr.Release(func(w netif.Want) bool { return w.NoDAD })
//
// Release is synchronous: when it returns the addresses are gone. It may
// be called while Run runs (it waits for a reconcile pass in progress) and
// after Run returned. Addresses that could not be removed stay owned, and
// the errors are returned joined; an address or interface that is already
// gone is no error.
func (t *Tracker) Release(match func(Want) bool) error {
	changed, err := t.release(match)
	if changed && t.opts.OnChange != nil {
		t.opts.OnChange()
	}
	return err
}

// release is Release under kernelMu; it reports whether the status changed.
func (t *Tracker) release(match func(Want) bool) (bool, error) {
	t.kernelMu.Lock()
	defer t.kernelMu.Unlock()

	t.mu.Lock()
	wanted := map[key]Want{}
	for k, w := range t.m.wants {
		wanted[k] = w
	}
	owned := map[key]netip.Prefix{}
	for k, p := range t.m.owned {
		owned[k] = p
	}
	t.mu.Unlock()

	// Each address as a Want, with NoDAD from the kernel where no Want says.
	var errs []error
	links := map[string]netlink.Link{}
	flags := map[key]kernelAddr{}
	var gone []string // interfaces that do not exist: nothing to remove there
	for _, k := range sortedKeys(owned) {
		if _, ok := links[k.iface]; ok || slices.Contains(gone, k.iface) {
			continue
		}
		link, err := t.h.LinkByName(k.iface)
		if isLinkNotFound(err) {
			gone = append(gone, k.iface)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("looking up %s: %w", k.iface, err))
			continue
		}
		addrs, err := addrList(t.h, link)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		links[k.iface] = link
		for _, a := range addrs {
			if p, ok := prefixOf(a.IPNet); ok {
				flags[key{k.iface, p.Addr()}] = kernelAddr{prefix: p, flags: a.Flags}
			}
		}
	}

	var released, unwanted []key
	for _, k := range sortedKeys(wanted) {
		if match(wanted[k]) {
			unwanted = append(unwanted, k)
		}
	}
	for _, k := range sortedKeys(owned) {
		if _, ok := wanted[k]; ok {
			if !slices.Contains(unwanted, k) {
				continue
			}
		} else {
			w := Want{Interface: k.iface, Prefix: owned[k]}
			if ka, ok := flags[k]; ok {
				w.NoDAD = ka.flags&unix.IFA_F_NODAD != 0
			}
			if !match(w) {
				continue
			}
		}
		if slices.Contains(gone, k.iface) {
			released = append(released, k)
			continue
		}
		link, ok := links[k.iface]
		if !ok {
			continue // its interface could not be read: keep it owned, to try again
		}
		if ka, ok := flags[k]; ok {
			// The kernel keys the deletion by address and prefix length: use
			// the length it holds.
			if err := delAddr(t.h, link, ka.prefix); err != nil {
				errs = append(errs, err)
				continue
			}
			t.log.Info("released an address", "iface", k.iface, "prefix", ka.prefix)
		}
		released = append(released, k)
	}

	t.mu.Lock()
	for _, k := range released {
		delete(t.m.owned, k)
	}
	for _, k := range unwanted {
		if t.m.wants[k] != wanted[k] {
			continue // a Set meanwhile: that one wins
		}
		delete(t.m.wants, k)
		delete(t.m.entries, k)
	}
	t.mu.Unlock()

	if err := t.saveOwned(); err != nil {
		errs = append(errs, fmt.Errorf("saving the list of added addresses: %w", err))
	}
	return len(unwanted)+len(released) > 0, errors.Join(errs...)
}

// ownedFile (in StateDir) lists the addresses a Tracker added, one
// "<iface> <prefix>" per line.
const ownedFile = "addresses"

func formatOwned(owned map[key]netip.Prefix) string {
	var b strings.Builder
	for _, k := range sortedKeys(owned) {
		fmt.Fprintf(&b, "%s %s\n", k.iface, owned[k])
	}
	return b.String()
}

func loadOwned(path string) ([]Want, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseOwned(f)
}

// parseOwned reads the ownedFile format. Lines it cannot use (a hand edit,
// a torn write) are skipped: forgetting an address only means it is not
// removed automatically.
func parseOwned(r io.Reader) ([]Want, error) {
	var out []Want
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		iface, p, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil || !pfx.Addr().Is6() || pfx.Addr().Zone() != "" || validIfname(iface) != nil {
			continue
		}
		out = append(out, Want{Interface: iface, Prefix: pfx})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the list of added addresses: %w", err)
	}
	return out, nil
}
