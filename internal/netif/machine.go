package netif

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"
)

// This file is the Tracker's pure core: observations of the kernel and a
// time in, actions and states out. It performs no I/O and reads no clock,
// so every transition (including the backoff schedule) is tested with
// explicit times.

// key names one address on one interface. The kernel keys IPv6 addresses by
// the address alone (per interface), not by the prefix length.
type key struct {
	iface string
	addr  netip.Addr
}

func (k key) String() string { return k.iface + " " + k.addr.String() }

// linkView is what the driver observed about one interface.
type linkView struct {
	// known is false when the interface could not be read (a netlink error):
	// the machine then leaves its entries alone instead of calling them missing.
	known   bool
	exists  bool
	index   int
	up      bool // administratively up
	carrier bool // IFF_LOWER_UP: DAD only runs with carrier
	// ipv6Disabled mirrors net.ipv6.conf.<if>.disable_ipv6, which the kernel
	// sets itself when accept_dad is 2 and the MAC-based link-local is a
	// duplicate (RFC 4862 §5.4.5: the interface SHOULD be disabled).
	ipv6Disabled bool
	acceptDAD    int
	addrs        []kernelAddr
}

type kernelAddr struct {
	prefix netip.Prefix
	flags  int
}

func (v linkView) find(a netip.Addr) (kernelAddr, bool) {
	for _, ka := range v.addrs {
		if ka.prefix.Addr() == a {
			return ka, true
		}
	}
	return kernelAddr{}, false
}

type actionKind int

const (
	actAdd     actionKind = iota // add prefix (nodad when noDAD)
	actDel                       // delete prefix
	actHeal                      // give iface a fresh stable_secret, drop the failed link-locals, regenerate
	actRefresh                   // set the lifetimes of a present address
)

type action struct {
	kind   actionKind
	iface  string
	prefix netip.Prefix
	noDAD  bool
	// preferredLft and validLft are the lifetimes in seconds for actAdd and
	// actRefresh; 0 is forever.
	preferredLft, validLft int
	// failed lists every failed link-local of iface for actHeal: a clone
	// with stable privacy can show several (the kernel's own idgen_retries
	// regenerate into the same sequence on both clones), and all must go.
	failed []netip.Prefix
}

// entry is the tracked state of one wanted address.
type entry struct {
	want      Want
	applied   Want // the lifetimes last given to the kernel
	state     AddrState
	since     time.Time
	streak    int // consecutive DAD failures: the backoff exponent
	nextRetry time.Time
	detail    string
	stuck     bool
}

// llEntry is the observed state of one kernel-generated link-local.
type llEntry struct {
	prefix  netip.Prefix
	state   AddrState
	since   time.Time
	counted bool // its DAD failure went into the counter
	stuck   bool
}

// healState paces the regeneration of a failed link-local per interface.
type healState struct {
	streak int
	next   time.Time
}

type machine struct {
	log        *slog.Logger
	retryMin   time.Duration
	retryMax   time.Duration
	stuckAfter time.Duration
	heal       bool

	wants    map[key]Want
	wantsSet bool // Set was called: until then nothing is removed
	entries  map[key]*entry
	// owned holds the addresses this Tracker added (also in an earlier run,
	// via StateDir): only those are removed when no longer wanted.
	owned       map[key]netip.Prefix
	lls         map[key]*llEntry
	views       map[string]linkView
	heals       map[string]*healState
	dadFailures uint64
}

func newMachine(log *slog.Logger, o TrackerOptions) *machine {
	return &machine{
		log:        log,
		retryMin:   o.RetryMin,
		retryMax:   o.RetryMax,
		stuckAfter: o.StuckAfter,
		heal:       o.HealLinkLocal,
		wants:      map[key]Want{},
		entries:    map[key]*entry{},
		owned:      map[key]netip.Prefix{},
		lls:        map[key]*llEntry{},
		views:      map[string]linkView{},
		heals:      map[string]*healState{},
	}
}

// setWants replaces the desired set. Entries of addresses that stay wanted
// keep their state and backoff.
func (m *machine) setWants(wants []Want) {
	m.wantsSet = true
	next := map[key]Want{}
	for _, w := range wants {
		if !w.Prefix.IsValid() || !w.Prefix.Addr().Is6() || w.Prefix.Addr().Is4In6() {
			m.log.Warn("ignoring a wanted address that is not IPv6", "iface", w.Interface, "prefix", w.Prefix)
			continue
		}
		next[key{w.Interface, w.Prefix.Addr()}] = w
	}
	for k := range m.entries {
		if _, ok := next[k]; !ok {
			delete(m.entries, k)
		}
	}
	for k, w := range next {
		if e, ok := m.entries[k]; ok {
			e.want = w
			continue
		}
		m.entries[k] = &entry{want: w, state: StateMissing}
	}
	m.wants = next
}

// interfaces lists the managed interfaces: those of wanted addresses.
func (m *machine) interfaces() []string {
	var out []string
	for k := range m.wants {
		if !slices.Contains(out, k.iface) {
			out = append(out, k.iface)
		}
	}
	for k := range m.owned {
		if !slices.Contains(out, k.iface) {
			out = append(out, k.iface)
		}
	}
	slices.Sort(out)
	return out
}

// backoff is the wait after the n-th consecutive DAD failure: RetryMin
// doubling up to RetryMax (5 s, 10 s, 20 s, ... 5 min by default).
func (m *machine) backoff(n int) time.Duration {
	d := m.retryMin
	for i := 1; i < n && d < m.retryMax; i++ {
		d *= 2
	}
	return min(d, m.retryMax)
}

func (m *machine) set(e *entry, s AddrState, now time.Time, detail string) {
	if e.state != s {
		e.state, e.since, e.stuck = s, now, false
	}
	e.detail = detail
}

func sortedKeys[V any](mp map[key]V) []key {
	ks := make([]key, 0, len(mp))
	for k := range mp {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.iface, b.iface), a.addr.Compare(b.addr))
	})
	return ks
}

// step compares the observed kernel state with the wanted set at now and
// returns what to do. It is called after every event and at deadline().
func (m *machine) step(now time.Time, views map[string]linkView) []action {
	for name, v := range views {
		if v.known {
			m.views[name] = v
		}
	}
	var acts []action
	for _, k := range sortedKeys(m.entries) {
		acts = append(acts, m.stepWanted(now, k, m.entries[k], views[k.iface])...)
	}
	if m.wantsSet {
		for _, k := range sortedKeys(m.owned) {
			if _, wanted := m.wants[k]; wanted {
				continue
			}
			v := views[k.iface]
			if !v.known {
				continue
			}
			ka, ok := v.find(k.addr)
			if !ok {
				delete(m.owned, k)
				continue
			}
			m.log.Info("removing an address that is no longer wanted", "iface", k.iface, "prefix", ka.prefix)
			acts = append(acts, action{kind: actDel, iface: k.iface, prefix: ka.prefix})
		}
	}
	for _, name := range m.interfaces() {
		if v := views[name]; v.known {
			acts = append(acts, m.stepLinkLocals(now, name, v)...)
		}
	}
	for k := range m.lls {
		if !slices.Contains(m.interfaces(), k.iface) {
			delete(m.lls, k)
		}
	}
	return acts
}

func (m *machine) stepWanted(now time.Time, k key, e *entry, v linkView) []action {
	w := e.want
	switch {
	case !v.known:
		return nil
	case !v.exists:
		m.set(e, StateMissing, now, fmt.Sprintf("interface %s not found", k.iface))
		return nil
	case v.ipv6Disabled:
		m.set(e, StateMissing, now, fmt.Sprintf("IPv6 is disabled on %s", k.iface))
		return nil
	}
	ka, found := v.find(k.addr)
	if !found {
		if e.state == StateDADFailed && now.Before(e.nextRetry) {
			return nil // waiting out the backoff; the status keeps saying why
		}
		if e.state == StateMissing && now.Before(e.nextRetry) {
			return nil // the last add failed; retry later
		}
		if e.state == StateOK || e.state == StateTentative && e.detail != "added" {
			m.log.Warn("address disappeared from the interface; adding it again", "iface", k.iface, "prefix", w.Prefix)
		}
		e.nextRetry = time.Time{}
		m.owned[k] = w.Prefix
		m.set(e, StateTentative, now, "added")
		e.since = now
		e.applied = w
		return []action{addAction(now, k, w)}
	}
	if ka.prefix.Bits() != w.Prefix.Bits() {
		m.log.Info("address has the wrong prefix length; replacing it", "iface", k.iface, "prefix", w.Prefix, "have", ka.prefix)
		m.owned[k] = w.Prefix
		m.set(e, StateTentative, now, "added")
		e.since = now
		e.applied = w
		return []action{
			{kind: actDel, iface: k.iface, prefix: ka.prefix},
			addAction(now, k, w),
		}
	}
	var refresh []action
	if (e.applied.ValidUntil != w.ValidUntil || e.applied.PreferredUntil != w.PreferredUntil) && stateOf(ka.flags) != StateDADFailed {
		e.applied = w
		a := addAction(now, k, w)
		a.kind = actRefresh
		refresh = append(refresh, a)
	}
	return append(refresh, m.stepPresent(now, k, e, v, ka)...)
}

// addAction adds w with its lifetimes as of now.
func addAction(now time.Time, k key, w Want) action {
	a := action{kind: actAdd, iface: k.iface, prefix: w.Prefix, noDAD: w.NoDAD}
	if !w.ValidUntil.IsZero() {
		a.validLft = lifetimeSeconds(w.ValidUntil.Sub(now))
		switch {
		case w.PreferredUntil.IsZero():
			a.preferredLft = a.validLft
		case !now.Before(w.PreferredUntil):
			a.preferredLft = 0 // deprecated (RFC 4862 §5.5.4), still valid
		default:
			a.preferredLft = min(lifetimeSeconds(w.PreferredUntil.Sub(now)), a.validLft)
		}
	}
	return a
}

// lifetimeSeconds rounds d up to whole seconds, at least 1 (0 would mean
// forever) and below the kernel's infinity.
func lifetimeSeconds(d time.Duration) int {
	s := (d + time.Second - 1) / time.Second
	return int(min(max(s, 1), 0xfffffffe))
}

// stepPresent follows the DAD outcome of a wanted address that is on the
// interface with the right length.
func (m *machine) stepPresent(now time.Time, k key, e *entry, v linkView, ka kernelAddr) []action {
	w := e.want
	switch stateOf(ka.flags) {
	case StateDADFailed:
		if e.state != StateDADFailed {
			// A failure after a long good spell starts the schedule over; a
			// flapping conflict keeps doubling.
			if e.state == StateOK && now.Sub(e.since) >= m.retryMax {
				e.streak = 0
			}
			e.streak++
			m.dadFailures++
			e.nextRetry = now.Add(m.backoff(e.streak))
			m.set(e, StateDADFailed, now, fmt.Sprintf("another host on %s uses %s; check for a duplicated static address or a cloned VM",
				k.iface, k.addr))
			m.log.Error("address failed duplicate address detection; removed, will retry",
				"iface", k.iface, "prefix", w.Prefix, "state", StateDADFailed, "retry_in", m.backoff(e.streak),
				"failures", e.streak, "check", e.detail)
		}
		// Remove it at once: a dadfailed address keeps its prefix route,
		// which would still attract traffic for the whole /64.
		return []action{{kind: actDel, iface: k.iface, prefix: ka.prefix}}
	case StateTentative:
		m.set(e, StateTentative, now, "")
		if !e.stuck && now.Sub(e.since) >= m.stuckAfter {
			e.stuck = true
			m.log.Warn("address stuck in duplicate address detection", "iface", k.iface, "prefix", w.Prefix,
				"state", StateTentative, "for", now.Sub(e.since), "up", v.up, "carrier", v.carrier)
		}
		if e.stuck {
			e.detail = stuckDetail(k.iface, v)
		}
	default:
		if e.state != StateOK {
			m.log.Info("address is ready", "iface", k.iface, "prefix", w.Prefix, "state", StateOK)
		}
		m.set(e, StateOK, now, "")
		e.nextRetry = time.Time{}
	}
	return nil
}

func stuckDetail(iface string, v linkView) string {
	switch {
	case !v.up:
		return fmt.Sprintf("duplicate address detection cannot run: %s is down", iface)
	case !v.carrier:
		return fmt.Sprintf("duplicate address detection cannot run: %s has no carrier", iface)
	default:
		return "duplicate address detection does not finish (check dad_transmits, retrans_time_ms and the link)"
	}
}

// addFailed records that adding an address failed: it is retried after
// RetryMin instead of on every event.
func (m *machine) addFailed(now time.Time, k key, err error) {
	e, ok := m.entries[k]
	if !ok {
		return
	}
	m.set(e, StateMissing, now, "adding failed: "+err.Error())
	e.nextRetry = now.Add(m.retryMin)
}

func (m *machine) stepLinkLocals(now time.Time, iface string, v linkView) []action {
	var acts []action
	seen := map[key]bool{}
	okLL := false
	var failed []netip.Prefix
	for _, ka := range v.addrs {
		k := key{iface, ka.prefix.Addr()}
		if !k.addr.IsLinkLocalUnicast() {
			continue
		}
		if _, wanted := m.wants[k]; wanted {
			continue // e.g. the HA virtual link-local: tracked as a wanted address
		}
		seen[k] = true
		l, ok := m.lls[k]
		if !ok {
			l = &llEntry{since: now}
			m.lls[k] = l
		}
		l.prefix = ka.prefix
		s := stateOf(ka.flags)
		if s != l.state {
			l.state, l.since, l.stuck = s, now, false
		}
		switch s {
		case StateOK:
			okLL = true
		case StateTentative:
			if !l.stuck && now.Sub(l.since) >= m.stuckAfter {
				l.stuck = true
				m.log.Warn("link-local stuck in duplicate address detection", "iface", iface, "prefix", ka.prefix,
					"state", StateTentative, "up", v.up, "carrier", v.carrier)
			}
		case StateDADFailed:
			if !l.counted {
				l.counted = true
				m.dadFailures++
				m.log.Error("link-local failed duplicate address detection: another host on the link uses it, "+
					"most likely a cloned VM (duplicated MAC address or stable_secret)",
					"iface", iface, "prefix", ka.prefix, "state", StateDADFailed, "heal", m.heal)
			}
			failed = append(failed, ka.prefix)
		}
	}
	if m.heal && len(failed) > 0 {
		h := m.heals[iface]
		if h == nil {
			h = &healState{}
			m.heals[iface] = h
		}
		if !now.Before(h.next) {
			h.streak++
			h.next = now.Add(m.backoff(h.streak))
			acts = append(acts, action{kind: actHeal, iface: iface, failed: failed})
		}
	}
	if okLL {
		delete(m.heals, iface)
	}
	for k := range m.lls {
		if k.iface == iface && !seen[k] {
			delete(m.lls, k)
		}
	}
	return acts
}

// deadline is when step must run again without an event: a retry that is
// due, or a tentative address that becomes "stuck". Zero means none.
func (m *machine) deadline() time.Time {
	var next time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, e := range m.entries {
		switch {
		case e.state == StateDADFailed || e.state == StateMissing:
			earliest(e.nextRetry)
		case e.state == StateTentative && !e.stuck && !e.since.IsZero():
			earliest(e.since.Add(m.stuckAfter))
		}
	}
	for k, l := range m.lls {
		if l.state == StateTentative && !l.stuck {
			earliest(l.since.Add(m.stuckAfter))
		}
		if h := m.heals[k.iface]; l.state == StateDADFailed && h != nil {
			earliest(h.next)
		}
	}
	return next
}

// status lists every wanted address and the link-locals of the managed
// interfaces, sorted by interface and address.
func (m *machine) status() []AddrStatus {
	var out []AddrStatus
	for _, k := range sortedKeys(m.entries) {
		e := m.entries[k]
		s := AddrStatus{Interface: k.iface, Address: e.want.Prefix, State: e.state, Since: e.since,
			Failures: e.streak, Detail: e.detail}
		if e.state == StateDADFailed || e.state == StateMissing {
			s.NextRetry = e.nextRetry
		}
		out = append(out, s)
	}
	for _, k := range sortedKeys(m.lls) {
		l := m.lls[k]
		s := AddrStatus{Interface: k.iface, Address: l.prefix, State: l.state, Since: l.since, LinkLocal: true}
		if l.state == StateDADFailed {
			s.Failures = 1
			s.Detail = linkLocalCause(k.iface)
			if h := m.heals[k.iface]; h != nil {
				s.NextRetry = h.next
			}
		}
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b AddrStatus) int { return cmp.Compare(a.Interface, b.Interface) })
	return out
}

func linkLocalCause(iface string) string {
	return fmt.Sprintf("another host on %s uses this link-local: most likely a cloned VM "+
		"(duplicated MAC address, or a duplicated stable_secret / machine identity)", iface)
}

func disabledCause(iface string, v linkView) string {
	s := fmt.Sprintf("IPv6 is disabled on %s (disable_ipv6=1)", iface)
	if v.acceptDAD == 2 {
		s += fmt.Sprintf("; with accept_dad=2 the kernel does this when the MAC-based link-local is a duplicate: "+
			"another host on %s likely has the same MAC address (a cloned VM?)", iface)
	}
	return s
}

// problems renders what an operator must look at, one line each.
func (m *machine) problems(now time.Time) []string {
	var out []string
	for _, name := range m.interfaces() {
		// The wanted addresses say "missing: IPv6 is disabled"; this line
		// gives the likely cause once per interface.
		if v, ok := m.views[name]; ok && v.exists && v.ipv6Disabled {
			out = append(out, name+": "+disabledCause(name, v))
		}
	}
	for _, s := range m.status() {
		switch {
		case s.LinkLocal && s.State == StateDADFailed:
			p := fmt.Sprintf("%s: link-local %s failed duplicate address detection: %s", s.Interface, s.Address.Addr(),
				linkLocalCause(s.Interface))
			if m.heal {
				p += "; regenerating it with a fresh stable_secret"
			} else {
				p += "; give the clone a new MAC address or set dad.heal_link_local = true"
			}
			out = append(out, p)
		case s.State == StateDADFailed:
			out = append(out, fmt.Sprintf("%s: %s failed duplicate address detection (another host uses it); retrying in %s",
				s.Interface, s.Address.Addr(), roundUp(s.NextRetry.Sub(now))))
		case s.State == StateTentative && s.Failures > 0:
			// Retrying after a failure is not a recovery yet: the problem
			// stays until the address holds.
			out = append(out, fmt.Sprintf("%s: %s failed duplicate address detection %d time(s) (another host uses it); trying it again",
				s.Interface, s.Address.Addr(), s.Failures))
		case s.State == StateMissing && s.Detail != "":
			out = append(out, fmt.Sprintf("%s: %s is missing: %s", s.Interface, s.Address.Addr(), s.Detail))
		case s.State == StateTentative && s.Detail != "" && s.Detail != "added":
			out = append(out, fmt.Sprintf("%s: %s is still tentative after %s: %s", s.Interface, s.Address.Addr(),
				roundUp(now.Sub(s.Since)), s.Detail))
		}
	}
	for _, k := range sortedKeys(m.lls) {
		if l := m.lls[k]; l.stuck && l.state == StateTentative {
			out = append(out, fmt.Sprintf("%s: link-local %s is still tentative after %s: %s", k.iface, k.addr,
				roundUp(now.Sub(l.since)), stuckDetail(k.iface, m.views[k.iface])))
		}
	}
	return out
}

// roundUp renders d in whole seconds, never "0s" for a pending wait.
func roundUp(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return ((d + time.Second - 1) / time.Second) * time.Second
}

func (a action) firstFailed() netip.Prefix {
	if len(a.failed) == 0 {
		return netip.Prefix{}
	}
	return a.failed[0]
}
