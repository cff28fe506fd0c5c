package ra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// allNodes is ff02::1, where unsolicited RAs go.
var allNodes = netip.MustParseAddr("ff02::1")

const (
	// retryDelay is how long Run waits before reopening the socket after a
	// failure (source address missing or tentative, link gone).
	retryDelay = time.Second
	// sourceCheckInterval is how often a serving Advertiser checks that its
	// source address is still on the interface. An HA virtual link-local
	// vanishes when the node loses mastership; sending from it afterwards
	// fails, and hosts would otherwise wait for the next periodic RA.
	sourceCheckInterval = 2 * time.Second
	// saveInterval is how often the prefix history is rewritten while
	// nothing changes, to keep the "valid until" of current prefixes fresh
	// for a restart.
	saveInterval = time.Minute
	// maxNeighbors bounds how many other routers are remembered.
	maxNeighbors = 32
)

// Status is what the Advertiser reports for `v6edge status`.
type Status struct {
	Interface      string
	Managed, Other bool
	Prefixes       []PrefixStatus // current prefixes, lifetimes as advertised now
	Deprecated     []PrefixStatus // prefixes being withdrawn (preferred 0)
	Source         netip.Addr     // the address RAs are sent from; zero when not serving
	RAsSent        uint64
	RSReceived     uint64
	Problems       []string
}

// PrefixStatus is one prefix with the lifetimes an RA sent now would carry.
type PrefixStatus struct {
	Prefix    netip.Prefix
	Preferred time.Duration
	Valid     time.Duration
}

// Advertiser sends Router Advertisements on one interface. Create it with
// NewAdvertiser, feed it with Update from any goroutine, and serve with Run.
type Advertiser struct {
	log  *slog.Logger
	link link
	rand *rand.Rand // used by the Run goroutine only
	// tune lets tests shrink the RFC constants of the schedule.
	tune func(*Schedule)

	updated   chan struct{} // capacity 1: "the config changed"
	ready     chan struct{} // closed once Run made its first attempt
	readyOnce sync.Once

	mu        sync.Mutex
	cfg       Config
	renumber  bool // the RA contents changed: send a burst
	hist      *History
	histPath  string
	lastSave  time.Time
	saveErr   error
	openErr   error
	source    netip.Addr
	hwAddr    net.HardwareAddr
	rasSent   uint64
	rsRecv    uint64
	neighbors map[netip.Addr]neighbor // other routers on the link
	// withdrawn DNS servers and domains, announced with lifetime 0 in the
	// next withdrawLeft multicast RAs.
	withdrawn    withdrawal
	withdrawLeft int
}

// neighbor is what we last heard from another router on the link.
type neighbor struct {
	problems []string
	lastSeen time.Time
}

// NewAdvertiser returns an Advertiser for cfg. It loads the prefix history
// from cfg.StateDir, so prefixes advertised before a restart and missing
// from cfg are deprecated from the first RA on.
func NewAdvertiser(cfg Config, log *slog.Logger) *Advertiser {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	seed := uint64(time.Now().UnixNano())
	a := &Advertiser{
		log:       log.With("iface", cfg.Interface),
		link:      kernelLink{},
		rand:      rand.New(rand.NewPCG(seed, seed>>7^0x9e3779b97f4a7c15)),
		updated:   make(chan struct{}, 1),
		ready:     make(chan struct{}),
		cfg:       cfg,
		hist:      &History{},
		neighbors: make(map[netip.Addr]neighbor),
	}
	if cfg.StateDir != "" {
		a.histPath = StatePath(cfg.StateDir, cfg.Interface)
		h, err := LoadHistory(a.histPath)
		if err != nil {
			a.log.Warn("cannot load prefix history; stale prefixes from before the restart will not be deprecated", "err", err)
			a.saveErr = err
		}
		a.hist = h
	}
	now := time.Now()
	a.mu.Lock()
	a.observe(now)
	a.mu.Unlock()
	return a
}

// Update replaces the configuration. It is safe to call from any
// goroutine. The new contents go into the next RA; when they changed (a
// prefix appeared or went away, flags, DNS), a short burst of RAs goes out
// at once so hosts learn within seconds (RFC 9096 §3.2, RFC 4861 §6.2.4).
func (a *Advertiser) Update(cfg Config) {
	now := time.Now()
	a.mu.Lock()
	old := a.cfg
	a.cfg = cfg
	if cfg.StateDir != "" && a.histPath == "" {
		a.histPath = StatePath(cfg.StateDir, cfg.Interface)
	}
	if a.observe(now) || contentChanged(old, cfg) {
		a.renumber = true
	}
	if a.withdraw(old, cfg) {
		a.withdrawLeft = RenumberAdverts
	}
	a.mu.Unlock()
	select {
	case a.updated <- struct{}{}:
	default:
	}
}

// observe records the current prefixes in the history and saves it when
// the set changed or the file is getting old. It reports whether the set
// of advertised or deprecated prefixes changed. a.mu must be held.
func (a *Advertiser) observe(now time.Time) bool {
	before := a.hist.Active(now)
	changed := a.hist.Observe(a.cfg, now)
	if changed {
		for _, d := range a.hist.Active(now) {
			if !slices.ContainsFunc(before, func(b Deprecated) bool { return b.Prefix == d.Prefix }) {
				a.log.Info("deprecating prefix", "prefix", d.Prefix, "until", d.Until.Format(time.RFC3339))
			}
		}
	}
	if a.histPath != "" && (changed || now.Sub(a.lastSave) >= saveInterval) {
		a.saveErr = a.hist.Save(a.histPath)
		if a.saveErr != nil {
			a.log.Warn("cannot save prefix history", "err", a.saveErr)
		}
		a.lastSave = now
	}
	return changed
}

// withdraw adds the DNS servers and domains of old that are missing from
// cfg to the withdrawal list, drops the ones cfg has again, and reports
// whether anything was added. a.mu must be held.
func (a *Advertiser) withdraw(old, cfg Config) bool {
	added := false
	for _, s := range old.RDNSS {
		if !slices.Contains(cfg.RDNSS, s) && !slices.Contains(a.withdrawn.servers, s) {
			a.withdrawn.servers = append(a.withdrawn.servers, s)
			added = true
		}
	}
	for _, d := range old.DNSSL {
		if !slices.Contains(cfg.DNSSL, d) && !slices.Contains(a.withdrawn.domains, d) {
			a.withdrawn.domains = append(a.withdrawn.domains, d)
			added = true
		}
	}
	a.withdrawn.servers = slices.DeleteFunc(a.withdrawn.servers, func(s netip.Addr) bool { return slices.Contains(cfg.RDNSS, s) })
	a.withdrawn.domains = slices.DeleteFunc(a.withdrawn.domains, func(d string) bool { return slices.Contains(cfg.DNSSL, d) })
	return added
}

// contentChanged reports whether an RA built from b would tell hosts
// something new compared with a. Lease caps moving forward (a Renew) are
// not news: the lifetimes simply stop counting down.
func contentChanged(a, b Config) bool {
	norm := func(c Config) Config {
		c.Prefixes = slices.Clone(c.Prefixes)
		for i := range c.Prefixes {
			c.Prefixes[i].PreferredUntil, c.Prefixes[i].ValidUntil = time.Time{}, time.Time{}
		}
		c.Enabled, c.FinalRA, c.StateDir = false, false, ""
		return c
	}
	return !reflect.DeepEqual(norm(a), norm(b))
}

// Status returns what the Advertiser advertises right now.
func (a *Advertiser) Status() Status {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Status{
		Interface:  a.cfg.Interface,
		Managed:    a.cfg.Managed,
		Other:      a.cfg.Other,
		Source:     a.source,
		RAsSent:    a.rasSent,
		RSReceived: a.rsRecv,
	}
	current := make(map[netip.Prefix]bool)
	for _, p := range a.cfg.Prefixes {
		pref, valid := PrefixLifetimes(p, now)
		current[p.Prefix.Masked()] = true
		s.Prefixes = append(s.Prefixes, PrefixStatus{Prefix: p.Prefix.Masked(), Preferred: pref, Valid: valid})
	}
	for _, d := range a.hist.Active(now) {
		if !current[d.Prefix] {
			s.Deprecated = append(s.Deprecated, PrefixStatus{Prefix: d.Prefix, Valid: deprecatedValid(d, now)})
		}
	}
	name := a.cfg.Interface
	if a.openErr != nil && a.cfg.Enabled {
		s.Problems = append(s.Problems, fmt.Sprintf("%s: cannot send router advertisements: %v", name, a.openErr))
	}
	if a.saveErr != nil {
		s.Problems = append(s.Problems, fmt.Sprintf("%s: prefix history: %v", name, a.saveErr))
	}
	_, hi := a.cfg.intervals()
	for _, src := range slices.SortedFunc(maps.Keys(a.neighbors), netip.Addr.Compare) {
		n := a.neighbors[src]
		if now.Sub(n.lastSeen) > 3*hi {
			continue
		}
		for _, p := range n.problems {
			s.Problems = append(s.Problems, fmt.Sprintf("%s: router %s advertises %s", name, src.WithZone(""), p))
		}
	}
	return s
}

// Ready is closed once Run has made its first attempt: the first RA went
// out, advertising is disabled (HA backup), or opening the socket failed
// (reported in Status.Problems and retried). A missing LAN must not hold
// back the readiness of the whole daemon.
func (a *Advertiser) Ready() <-chan struct{} { return a.ready }

// String names the Advertiser as a task.
func (a *Advertiser) String() string { return "ra(" + a.config().Interface + ")" }

func (a *Advertiser) markReady() { a.readyOnce.Do(func() { close(a.ready) }) }

func (a *Advertiser) config() Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// Run sends RAs until ctx is cancelled, then returns nil (after a final RA
// when Config.FinalRA is set). While Config.Enabled is false it sends
// nothing and holds no socket. When the socket cannot be opened (source
// address missing or tentative) or fails, Run retries every second and
// reports the failure in Status.Problems.
func (a *Advertiser) Run(ctx context.Context) error {
	sched := NewSchedule(0, 0)
	for {
		cfg := a.config()
		var err error
		if cfg.Enabled {
			err = a.serve(ctx, sched)
		}
		a.markReady()
		a.mu.Lock()
		a.source = netip.Addr{}
		if err != nil && !errors.Is(err, errReopen) {
			if a.openErr == nil || a.openErr.Error() != err.Error() {
				a.log.Warn("router advertisements stopped; retrying", "err", err)
			}
			a.openErr = err
		}
		a.mu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errReopen) {
			continue
		}
		var retry <-chan time.Time
		t := time.NewTimer(retryDelay)
		if err != nil {
			retry = t.C
		}
		select {
		case <-ctx.Done():
		case <-a.updated:
		case <-retry:
		}
		t.Stop()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// errReopen makes serve return so Run opens the socket again with the new
// configuration (interface or source address changed, or advertising was
// switched off).
var errReopen = errors.New("ra: configuration needs a new socket")

// packet is one received ICMPv6 message.
type packet struct {
	b   []byte
	cm  *ipv6.ControlMessage
	src netip.Addr
	at  time.Time
}

// serve advertises on one socket until ctx is done (nil), the
// configuration needs another socket (errReopen) or something fails.
func (a *Advertiser) serve(ctx context.Context, sched *Schedule) error {
	cfg := a.config()
	conn, src, hw, err := a.link.Listen(cfg.Interface, cfg.Source)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.source, a.hwAddr, a.openErr = src, hw, nil
	a.mu.Unlock()
	a.log.Info("sending router advertisements", "source", src)

	pkts := make(chan packet)
	readErr := make(chan error, 1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { a.read(conn, src, pkts, readErr, done) })
	defer func() {
		conn.Close()
		close(done)
		wg.Wait()
	}()

	applyIntervals := func(cfg Config) {
		sched.MinInterval, sched.MaxInterval = cfg.intervals()
		if a.tune != nil {
			a.tune(sched)
		}
	}
	applyIntervals(cfg)
	sched.Start(time.Now())
	defer sched.Stop()
	a.mu.Lock()
	a.renumber = false // the initial burst covers it
	a.mu.Unlock()

	check := time.NewTicker(sourceCheckInterval)
	defer check.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		var fire <-chan time.Time
		if next := sched.Next(); !next.IsZero() {
			timer.Reset(time.Until(next))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			if cfg := a.config(); cfg.FinalRA {
				// RFC 4861 §6.2.5: tell hosts at once that this router
				// is going away, instead of letting them black-hole
				// traffic until the router lifetime runs out.
				if err := a.send(conn, time.Now(), allNodes, true); err != nil {
					a.log.Warn("cannot send final router advertisement", "err", err)
				}
			}
			return nil
		case <-a.updated:
			next := a.config()
			if next.Interface != cfg.Interface || next.IfIndex != cfg.IfIndex || next.Source != cfg.Source || !next.Enabled {
				return errReopen
			}
			cfg = next
			applyIntervals(cfg)
			a.mu.Lock()
			renumber := a.renumber
			a.renumber = false
			a.mu.Unlock()
			if renumber {
				sched.Renumber(time.Now())
			}
		case p := <-pkts:
			a.handle(sched, p)
		case err := <-readErr:
			return err
		case <-check.C:
			if !cfg.Source.IsValid() {
				// The interface's own link-local: losing it ends the
				// socket anyway. Only a configured source (an HA virtual
				// address) can go away under a working socket.
				continue
			}
			ok, err := a.link.HasAddr(cfg.Interface, src)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("ra: %s left %s: %w", src, cfg.Interface, ErrSourceMissing)
			}
		case <-fire:
			now := time.Now()
			multicast, unicast := sched.Fire(now, a.rand)
			if multicast {
				if err := a.send(conn, now, allNodes, false); err != nil {
					return err
				}
				a.markReady()
			}
			for _, dst := range unicast {
				if err := a.send(conn, now, dst, false); err != nil {
					return err
				}
			}
		}
	}
}

// send builds an RA for now and writes it to dst.
func (a *Advertiser) send(conn Conn, now time.Time, dst netip.Addr, final bool) error {
	a.mu.Lock()
	if dst == allNodes {
		// Refresh the history: expired deprecations drop out and the
		// valid-until of current prefixes is kept fresh on disk.
		a.hist.Expire(now)
		a.observe(now)
	}
	cfg := a.cfg
	if len(cfg.LinkLayerAddr) == 0 {
		cfg.LinkLayerAddr = a.hwAddr
	}
	msg, err := build(cfg, now, a.hist.Active(now), final, a.withdrawn)
	if dst == allNodes && a.withdrawLeft > 0 {
		if a.withdrawLeft--; a.withdrawLeft == 0 {
			a.withdrawn = withdrawal{}
		}
	}
	a.mu.Unlock()
	if err != nil {
		return err
	}
	if err := conn.WriteTo(msg, nil, dst); err != nil {
		return fmt.Errorf("ra: sending router advertisement to %s: %w", dst, err)
	}
	a.mu.Lock()
	a.rasSent++
	a.mu.Unlock()
	return nil
}

// read receives messages until the conn is closed. Messages from our own
// source address (our multicast RAs looped back) are dropped here.
func (a *Advertiser) read(conn Conn, self netip.Addr, out chan<- packet, errc chan<- error, done <-chan struct{}) {
	raw, isRaw := conn.(rawReader)
	buf := make([]byte, 1<<16)
	for {
		var p packet
		if isRaw {
			n, cm, src, err := raw.ReadRaw(buf)
			if err != nil {
				errc <- err
				return
			}
			p = packet{b: slices.Clone(buf[:n]), cm: cm, src: src}
		} else {
			m, cm, src, err := conn.ReadFrom()
			if err != nil {
				errc <- err
				return
			}
			b, err := ndp.MarshalMessage(m)
			if err != nil {
				continue
			}
			p = packet{b: b, cm: cm, src: src}
		}
		if p.src.WithZone("") == self.WithZone("") {
			continue
		}
		p.at = time.Now()
		select {
		case out <- p:
		case <-done:
			return
		}
	}
}

// handle processes one received message: a valid RS schedules an answer,
// an RA from another router is checked for consistency (RFC 4861 §6.2.7).
// Invalid messages are dropped silently, as §6.1 requires.
func (a *Advertiser) handle(sched *Schedule, p packet) {
	m, err := ParseMessage(p.b, p.cm, p.src)
	if err != nil {
		return
	}
	switch m := m.(type) {
	case *ndp.RouterSolicitation:
		a.mu.Lock()
		a.rsRecv++
		a.mu.Unlock()
		sched.Solicited(p.at, p.src.WithZone(""), a.rand)
	case *ndp.RouterAdvertisement:
		a.checkNeighbor(p.src.WithZone(""), p.at, m)
	}
}

// checkNeighbor records the inconsistencies of one RA from another router
// and logs them when they change.
func (a *Advertiser) checkNeighbor(src netip.Addr, now time.Time, m *ndp.RouterAdvertisement) {
	a.mu.Lock()
	defer a.mu.Unlock()
	problems := Inconsistencies(a.cfg, now, m)
	old := a.neighbors[src]
	if !slices.Equal(old.problems, problems) {
		if len(problems) > 0 {
			a.log.Warn("another router advertises inconsistent information", "router", src, "problems", problems)
		} else if len(old.problems) > 0 {
			a.log.Info("other router now consistent", "router", src)
		}
	}
	a.neighbors[src] = neighbor{problems: problems, lastSeen: now}
	if len(a.neighbors) > maxNeighbors {
		// Forget routers not heard from for a while, so spoofed sources
		// cannot grow the map without bound.
		_, hi := a.cfg.intervals()
		maps.DeleteFunc(a.neighbors, func(_ netip.Addr, n neighbor) bool { return now.Sub(n.lastSeen) > 3*hi })
	}
}
