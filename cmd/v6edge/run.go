package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sync/errgroup"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/dhcp6pd"
	"github.com/v6edge/v6edge/internal/control"
	"github.com/v6edge/v6edge/internal/hook"
	"github.com/v6edge/v6edge/internal/netif"
	"github.com/v6edge/v6edge/internal/plan"
	"github.com/v6edge/v6edge/nat"
	"github.com/v6edge/v6edge/ra"
)

// daemon wires the drivers, the plan and the appliers together. Its event
// loop is the only goroutine that applies state; everything else reports
// events to it through kick().
type daemon struct {
	path    string
	log     *slog.Logger
	started time.Time

	mu      sync.Mutex // guards the fields below, written by the event loop and drivers
	cfg     *configs.Config
	snaps   map[string]dhcp6pd.Snapshot // by WAN interface
	role    plan.Role
	roleWhy string
	roleAt  time.Time
	desired plan.Desired
	natErr  string

	kickc chan struct{}
	beat  atomic.Int64 // unix nanos of the last loop turn, for the watchdog

	nl      *netlink.Handle
	tracker *netif.Tracker
	routes  *netif.Routes
	table   *nat.Table
	clients map[string]*dhcp6pd.Client
	ads     map[string]*ra.Advertiser
	pair    *pair // nil when standalone
	servers *lanServers
	uplinks *uplinks
	healthy map[string]bool // by WAN, as of the last pass; guarded by mu
	// lastPreferred and failoverAt/failoverWhy record when new flows last
	// moved to another uplink, and why; guarded by mu.
	lastPreferred string
	failoverAt    time.Time
	failoverWhy   string

	messages      map[string]map[string]uint64 // DHCPv6 messages by WAN, "sent:SOLICIT"
	hooks         map[string]*hook.Runner      // by WAN
	hookSeen      map[string]hookState
	transitions   atomic.Uint64
	prefixChanges map[string]uint64 // by WAN, guarded by mu
	lastPrefix    map[string]netip.Prefix
}

func newDaemon(path string, cfg *configs.Config, log *slog.Logger) *daemon {
	role := plan.Standalone
	if cfg.HA != nil {
		// An HA node starts silent and becomes master only by election (or,
		// with ha.mode = "external", when told).
		role = plan.Backup
	}
	return &daemon{
		path: path, cfg: cfg, log: log, started: time.Now(),
		snaps: map[string]dhcp6pd.Snapshot{}, role: role, roleWhy: "starting", roleAt: time.Now(),
		kickc: make(chan struct{}, 1), clients: map[string]*dhcp6pd.Client{}, ads: map[string]*ra.Advertiser{},
		prefixChanges: map[string]uint64{}, lastPrefix: map[string]netip.Prefix{},
		hooks: map[string]*hook.Runner{}, hookSeen: map[string]hookState{}, messages: map[string]map[string]uint64{},
	}
}

// kick asks the event loop to recompute and apply; it never blocks and
// coalesces bursts of events into one pass.
func (d *daemon) kick() {
	select {
	case d.kickc <- struct{}{}:
	default:
	}
}

// Run is the daemon's life: prepare the kernel, start every driver, apply the
// plan after each event, and stop cleanly when ctx ends.
func (d *daemon) Run(ctx context.Context, hup <-chan os.Signal) error {
	cfg := d.cfg
	if err := os.MkdirAll(cfg.Control.StateDir, 0o700); err != nil {
		return fmt.Errorf("creating state_dir: %w", err)
	}
	nl, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("opening netlink: %w", err)
	}
	defer nl.Close()
	d.nl = nl
	if err := d.prepareKernel(); err != nil {
		return err
	}
	d.table, err = nat.NewTable("v6edge", d.log.With("part", "nat"))
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}
	d.tracker = netif.NewTracker(nl, d.log.With("part", "addr"), netif.TrackerOptions{
		RetryMin: cfg.DAD.RetryMin, RetryMax: cfg.DAD.RetryMax,
		HealLinkLocal: cfg.DAD.HealLinkLocal, StateDir: cfg.Control.StateDir,
		OnChange: d.kick,
	})
	d.routes = netif.NewRoutes(nl, d.log.With("part", "routes"))
	d.servers = newLANServers(d)
	if d.uplinks, err = newUplinks(d); err != nil {
		return fmt.Errorf("setting up uplink policy: %w", err)
	}

	srv := &control.Server{Path: cfg.Control.Socket, Group: cfg.Control.SocketGroup, H: d, Log: d.log}
	if err := srv.Listen(); err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, w := range cfg.WANs {
		if w.Hook != "" {
			d.hooks[w.Interface] = &hook.Runner{Path: w.Hook, Log: d.log.With("part", "hook", "iface", w.Interface)}
			// The saved lease is what the script was last told before the
			// restart: confirming it is REBOOT6, replacing it BOUND6.
			if l, err := dhcp6pd.LoadLease(cfg.Control.StateDir, w.Interface, w.IAID); err == nil && l != nil {
				if p, ok := l.Chosen(w.PrefixLength); ok {
					d.hookSeen[w.Interface] = hookState{prefix: p.Prefix, acquired: l.Acquired}
				}
			}
		}
		c, err := d.newClient(w)
		if err != nil {
			return err
		}
		d.clients[w.Interface] = c
		g.Go(func() error { return c.Run(gctx) })
		g.Go(func() error { d.solicitRouter(gctx, w.Interface); return nil })
	}
	for _, l := range cfg.LANs {
		a := ra.NewAdvertiser(d.raConfig(plan.LAN{Interface: l.Interface, Config: l}), d.log.With("part", "ra", "iface", l.Interface))
		d.ads[l.Interface] = a
		g.Go(func() error { return a.Run(gctx) })
	}
	if cfg.HA != nil {
		d.pair = newPair(d)
		g.Go(func() error { return d.pair.run(gctx) })
	}
	if cfg.Control.Metrics != "" {
		g.Go(func() error { return control.ServeMetrics(gctx, cfg.Control.Metrics, d.Status) })
	}
	g.Go(func() error { return d.uplinks.run(gctx) })
	g.Go(func() error { return d.tracker.Run(gctx) })
	g.Go(func() error { return d.table.Watch(gctx, time.Second) })
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error {
		control.Watchdog(gctx, control.WatchdogInterval(), func() bool {
			return time.Since(time.Unix(0, d.beat.Load())) < time.Minute
		})
		return nil
	})
	g.Go(func() error { return d.loop(gctx, hup) })

	err = g.Wait()
	_ = control.Notify("STOPPING=1")
	d.servers.stop()
	d.stop()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// prepareKernel switches on what a router needs: forwarding, and RAs on the
// WAN despite forwarding (accept_ra=2), so the default route is learned from
// the upstream as ISPs expect.
func (d *daemon) prepareKernel() error {
	var errs []error
	// The kernel forwards IPv6 only when the global switch is on; setting it
	// also sets every interface's "forwarding" (router behaviour).
	if err := netif.SetForwardingAll(true); err != nil {
		errs = append(errs, err)
	}
	for _, w := range d.cfg.WANs {
		if err := netif.SetAcceptRA(w.Interface, 2); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", w.Interface, err))
		}
		if err := netif.SetForwarding(w.Interface, true); err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range d.cfg.LANs {
		if err := netif.SetForwarding(l.Interface, true); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("preparing the kernel: %w", err)
	}
	return nil
}

// duidFor builds the client DUID of an uplink. DUID-LL from a MAC is the
// default because two HA nodes sharing one WAN MAC then are one client to the
// upstream and keep one prefix across failover.
func (d *daemon) duidFor(w configs.WAN) ([]byte, error) {
	switch w.DUIDKind {
	case configs.DUIDRaw, configs.DUIDEN:
		return w.DUIDRaw, nil
	}
	mac := w.DUIDMAC
	if mac == nil && d.cfg.HA != nil && d.cfg.HA.WANMAC != nil {
		mac = d.cfg.HA.WANMAC
	}
	if mac == nil {
		link, err := d.nl.LinkByName(w.Interface)
		if err != nil {
			return nil, fmt.Errorf("wan %s: %w", w.Interface, err)
		}
		mac = link.Attrs().HardwareAddr
	}
	if len(mac) != 6 {
		return nil, fmt.Errorf("wan %s has no Ethernet MAC for a DUID-LL; set wan.duid_mac or wan.duid", w.Interface)
	}
	if w.DUIDKind == configs.DUIDLLT {
		return dhcp6pd.LoadOrCreateDUIDLLT(d.cfg.Control.StateDir, mac, time.Now())
	}
	return dhcp6pd.DUIDLL(mac), nil
}

// config returns the running configuration.
func (d *daemon) config() *configs.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// sharedLinkLocal is the link-local of the HA pair's shared WAN MAC, when
// iface is the WAN that MAC moves on.
func (d *daemon) sharedLinkLocal(iface string) (netip.Addr, bool) {
	ha := d.cfg.HA
	if ha == nil || ha.WANMAC == nil || iface != d.cfg.WANs[0].Interface {
		return netip.Addr{}, false
	}
	return eui64LinkLocal(ha.WANMAC), true
}

// maxDelegatedLength is the longest delegated prefix the plan can use: it must
// hold the internal prefix 1:1 (NETMAP) and every LAN subnet.
func maxDelegatedLength(cfg *configs.Config) int {
	if cfg.NAT.InternalPrefix.IsValid() {
		return cfg.NAT.InternalPrefix.Bits()
	}
	return 64
}

func (d *daemon) newClient(w configs.WAN) (*dhcp6pd.Client, error) {
	duid, err := d.duidFor(w)
	if err != nil {
		return nil, err
	}
	iface := w.Interface
	c := dhcp6pd.NewClient(dhcp6pd.Config{
		Interface: iface, DUID: duid, IAID: w.IAID, PrefixLength: w.PrefixLength,
		MaxPrefixLength: maxDelegatedLength(d.cfg), RapidCommit: w.RapidCommit,
		ReleaseOnStop: w.ReleaseOnStop, StateDir: d.cfg.Control.StateDir,
		Logger: d.log.With("part", "dhcp6pd"),
		Listen: func(ctx context.Context) (dhcp6pd.Conn, error) {
			var c dhcp6pd.Conn
			var err error
			if ll, ok := d.sharedLinkLocal(iface); ok {
				c, err = dhcp6pd.ListenUDPFrom(ctx, iface, ll)
			} else {
				c, err = dhcp6pd.ListenUDP(ctx, iface)
			}
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, d: d, iface: iface}, nil
		},
		Notify: func(s dhcp6pd.Snapshot) {
			d.mu.Lock()
			d.snaps[iface] = s
			d.mu.Unlock()
			d.kick()
		},
	})
	if d.cfg.HA != nil && d.role != plan.Master {
		c.SetStandby(true, nil)
	}
	return c, nil
}

// loop is the event loop: one pass of compute + apply per batch of events,
// plus a slow periodic pass that retries anything that failed to apply.
// Everything that changes by itself (lease lifetimes, hold-downs, RA
// schedules) raises its own event, so an idle router does next to nothing.
func (d *daemon) loop(ctx context.Context, hup <-chan os.Signal) error {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	ready := false
	d.kick()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			d.reload()
		case <-d.kickc:
		case <-tick.C:
		}
		d.beat.Store(time.Now().UnixNano())
		d.apply(ctx)
		if !ready {
			ready = true
			_ = control.Notify("READY=1\nSTATUS=serving")
			d.log.Info("v6edge serving", "wans", len(d.cfg.WANs), "lans", len(d.cfg.LANs))
		}
	}
}

// apply computes the desired state and hands each part to its applier.
func (d *daemon) apply(ctx context.Context) {
	now := time.Now()
	d.mu.Lock()
	cfg := d.cfg
	snaps := maps.Clone(d.snaps)
	d.mu.Unlock()
	healthy := d.uplinks.healthy(now, cfg, snaps)
	d.mu.Lock()
	d.healthy = healthy
	in := plan.Input{Config: cfg, Role: d.role, Now: now}
	for _, w := range cfg.WANs {
		up := uplinkFrom(w, d.snaps[w.Interface])
		up.Healthy = healthy[w.Interface]
		in.Uplinks = append(in.Uplinks, up)
		if last, ok := d.lastPrefix[w.Interface]; up.Delegated.IsValid() && (!ok || last != up.Delegated) {
			if ok {
				d.prefixChanges[w.Interface]++
				d.log.Info("delegated prefix changed", "iface", w.Interface, "old", last, "prefix", up.Delegated)
			}
			d.lastPrefix[w.Interface] = up.Delegated
		}
	}
	d.mu.Unlock()

	des := plan.Compute(in)
	d.noteFailover(des.Preferred)
	d.fireHooks(ctx, cfg)
	if d.pair != nil {
		// The WAN MAC moves before anything is announced, so the upstream
		// never sees the floating addresses behind the wrong MAC.
		d.pair.apply(in.Role)
		// Every change reaches the backup at once, not only at the next
		// periodic sync: a master that dies a moment after binding must
		// not leave a backup without the lease.
		d.pair.sendSync()
	}

	var natErr error
	if cfg.NAT.InternalPrefix.IsValid() {
		natErr = d.table.Set(des.NAT)
		if natErr != nil {
			d.log.Error("installing NAT mapping", "err", natErr)
		}
	}
	var wants []netif.Want
	for _, a := range des.Addresses {
		wants = append(wants, netif.Want{Interface: a.Interface, Prefix: a.Prefix, NoDAD: a.NoDAD})
	}
	d.tracker.Set(wants)
	if err := d.routes.SetUnreachable(des.Unreachable); err != nil {
		d.log.Error("installing unreachable routes", "err", err)
	}
	d.uplinks.apply(cfg, des, healthy)
	d.servers.apply(ctx, des.LANs)
	if err := d.routes.SetRoutes(d.servers.routes()); err != nil {
		d.log.Error("installing routes to downstream routers", "err", err)
	}
	for _, l := range des.LANs {
		if a := d.ads[l.Interface]; a != nil {
			a.Update(d.raConfig(l))
		}
	}

	d.mu.Lock()
	d.desired = des
	d.natErr = ""
	if natErr != nil {
		d.natErr = natErr.Error()
	}
	d.mu.Unlock()
}

// noteFailover records a change of the uplink new flows leave by.
func (d *daemon) noteFailover(preferred string) {
	if len(d.config().WANs) < 2 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if preferred == d.lastPreferred {
		return
	}
	if d.lastPreferred != "" {
		why := "preferred uplink healthy again"
		if d.uplinks != nil {
			if r := d.uplinks.reason(d.lastPreferred); r != "" {
				why = d.lastPreferred + ": " + r
			}
		}
		d.failoverAt, d.failoverWhy = time.Now(), why
		d.log.Warn("new flows move to another uplink", "from", d.lastPreferred, "to", preferred, "why", why)
	}
	d.lastPreferred = preferred
}

// hookState is what the hook runner last told a WAN's script.
type hookState struct {
	prefix   netip.Prefix
	acquired time.Time
	told     bool // a first event went out since start
}

// fireHooks tells each WAN's script (dhcpcd-compatible) what changed since
// the last pass: a new or moved prefix (BOUND6), the saved lease confirmed
// after a restart (REBOOT6), a renewal (RENEW6/REBIND6), or loss
// (EXPIRE6/RELEASE6). The scripts run in the background.
func (d *daemon) fireHooks(ctx context.Context, cfg *configs.Config) {
	for _, w := range cfg.WANs {
		r := d.hooks[w.Interface]
		if r == nil {
			continue
		}
		d.mu.Lock()
		snap := d.snaps[w.Interface]
		seen := d.hookSeen[w.Interface]
		d.mu.Unlock()
		var cur hook.Prefix
		var acquired time.Time
		if l := snap.Lease; l != nil {
			if p, ok := l.Chosen(w.PrefixLength); ok {
				cur = hook.Prefix{Prefix: p.Prefix, Preferred: p.Preferred, Valid: p.Valid}
				acquired = l.Acquired
			}
		}
		state := string(snap.State)
		if cur.Prefix.IsValid() && state != string(dhcp6pd.StateBound) {
			// A lease restored from disk (or held in standby) is not news
			// until the server confirms it.
			continue
		}
		if !seen.told && !cur.Prefix.IsValid() {
			continue
		}
		reason := hook.Classify(state, seen.prefix, cur.Prefix, !seen.told)
		if cur.Prefix.IsValid() && cur.Prefix == seen.prefix && acquired.Equal(seen.acquired) {
			reason = "" // nothing new since the last pass
		}
		if reason == "" {
			continue
		}
		ev := hook.Event{Reason: reason, Interface: w.Interface, IAID: w.IAID}
		if cur.Prefix.IsValid() {
			ev.New = []hook.Prefix{cur}
		}
		if seen.prefix.IsValid() && seen.prefix != cur.Prefix {
			ev.Old = []hook.Prefix{{Prefix: seen.prefix}}
		}
		r.Fire(ctx, ev)
		d.mu.Lock()
		d.hookSeen[w.Interface] = hookState{prefix: cur.Prefix, acquired: acquired, told: true}
		d.mu.Unlock()
	}
}

// uplinkFrom reduces a client snapshot to what the plan needs.
func uplinkFrom(w configs.WAN, s dhcp6pd.Snapshot) plan.Uplink {
	up := plan.Uplink{Interface: w.Interface, Healthy: true}
	if s.Lease == nil {
		return up
	}
	if p, ok := s.Lease.Chosen(w.PrefixLength); ok {
		up.Delegated = p.Prefix
		up.PreferredUntil = s.Lease.Acquired.Add(p.Preferred)
		up.ValidUntil = s.Lease.Acquired.Add(p.Valid)
	}
	return up
}

// raConfig turns a LAN's plan into the advertiser's configuration.
func (d *daemon) raConfig(l plan.LAN) ra.Config {
	lc := l.Config
	c := ra.Config{
		Interface: l.Interface, Managed: lc.Managed, Other: lc.Other,
		RDNSS: lc.DNS, DNSSL: lc.Domains, MTU: lc.RA.MTU, HopLimit: uint8(lc.RA.HopLimit),
		RouterLifetime: lc.RA.RouterLifetime, Preference: raPreference(lc.RA.Preference),
		ReachableTime: lc.RA.ReachableTime, RetransTimer: lc.RA.RetransTimer,
		MinInterval: lc.RA.MinInterval, MaxInterval: lc.RA.MaxInterval,
		Source: l.Source, Enabled: l.Advertise, FinalRA: lc.RA.FinalRA && d.cfg.HA == nil,
		StateDir: d.cfg.Control.StateDir,
	}
	for _, p := range l.Prefixes {
		c.Prefixes = append(c.Prefixes, ra.Prefix{
			Prefix: p.Prefix, Preferred: p.Preferred, Valid: p.Valid,
			PreferredUntil: p.PreferredUntil, ValidUntil: p.ValidUntil,
			Autonomous: p.Autonomous, OnLink: true,
		})
	}
	for _, r := range lc.RA.Routes {
		c.Routes = append(c.Routes, ra.Route{Prefix: r, Lifetime: lc.RA.RouterLifetime, Preference: raPreference(lc.RA.Preference)})
	}
	return c
}

// reload re-reads the config on SIGHUP. LAN, RA and NAT settings apply at
// the next pass; a changed WAN section is reported, because swapping the
// DHCPv6 client would risk the lease the reload promises to keep.
func (d *daemon) reload() {
	cfg, err := configs.Load(d.path)
	if err != nil {
		d.log.Error("reload refused: the new config is invalid; keeping the running one", "err", err)
		return
	}
	d.mu.Lock()
	old := d.cfg
	sameWAN := slices.EqualFunc(old.WANs, cfg.WANs, func(a, b configs.WAN) bool {
		return a.Interface == b.Interface && a.IAID == b.IAID && a.PrefixLength == b.PrefixLength &&
			a.DUIDKind == b.DUIDKind && string(a.DUIDMAC) == string(b.DUIDMAC) && string(a.DUIDRaw) == string(b.DUIDRaw)
	})
	sameLANs := slices.EqualFunc(old.LANs, cfg.LANs, func(a, b configs.LAN) bool { return a.Interface == b.Interface })
	if !sameWAN || !sameLANs {
		d.mu.Unlock()
		d.log.Error("reload refused: WAN settings or the set of LAN interfaces changed; restart v6edge to apply them (the saved lease is kept)")
		return
	}
	d.cfg = cfg
	d.mu.Unlock()
	// These are read once at start by long-lived parts; say so instead of
	// pretending they changed.
	var needRestart []string
	if !reflect.DeepEqual(old.HA, cfg.HA) {
		needRestart = append(needRestart, "[ha]")
	}
	if old.DAD != cfg.DAD {
		needRestart = append(needRestart, "[dad]")
	}
	if old.Control != cfg.Control {
		needRestart = append(needRestart, "[control]")
	}
	if len(needRestart) > 0 {
		d.log.Warn("config reloaded, but these sections take effect only after a restart", "sections", needRestart)
	}
	d.log.Info("config reloaded", "path", d.path)
	d.kick()
}

// stop runs after every task has ended.
func (d *daemon) stop() {
	if d.cfg.NAT.RemoveOnStop && d.table != nil {
		if err := d.table.Remove(); err != nil {
			d.log.Error("removing NAT table on stop", "err", err)
		}
	}
	d.log.Info("v6edge stopped")
}

// Status implements control.Handler.
// It is built on demand from the parts' snapshots, so lifetimes are current
// without a periodic pass.
func (d *daemon) Status() control.Status {
	return d.buildStatus()
}

// Renew implements control.Handler.
func (d *daemon) Renew() error {
	for _, c := range d.clients {
		c.Renew()
	}
	return nil
}

// Release implements control.Handler.
func (d *daemon) Release() error {
	if d.cfg.HA != nil {
		return errors.New("release refused: in an HA pair a release would renumber the peer too")
	}
	for _, c := range d.clients {
		c.Release()
	}
	return nil
}

// SetRole implements control.Handler for ha.mode = "external".
func (d *daemon) SetRole(role string) error {
	if d.cfg.HA == nil || d.cfg.HA.Mode != "external" {
		return errors.New(`roles are set from outside only with [ha] mode = "external"`)
	}
	r := plan.Backup
	switch role {
	case "master":
		r = plan.Master
	case "fault":
		r = plan.Fault
	}
	d.setRole(r, "set by `v6edge ha "+role+"`")
	return nil
}

// setRole records an HA role change; the event loop applies it. Leaving
// master puts the DHCPv6 clients in standby at once (a backup sends nothing),
// becoming master lets them Renew/Rebind the lease they hold.
func (d *daemon) setRole(r plan.Role, why string) {
	d.mu.Lock()
	changed := d.role != r
	d.role, d.roleWhy = r, why
	if changed {
		d.roleAt = time.Now()
	}
	leases := map[string]*dhcp6pd.Lease{}
	for k, s := range d.snaps {
		leases[k] = s.Lease
	}
	d.mu.Unlock()
	if !changed {
		return
	}
	d.transitions.Add(1)
	d.log.Info("HA role changed", "role", r, "why", why)
	for iface, c := range d.clients {
		c.SetStandby(r != plan.Master, leases[iface])
	}
	d.kick()
}

// learnLease takes the lease the master announced: the backup keeps it (and
// its NAT mapping) ready, so a takeover translates from the first packet.
func (d *daemon) learnLease(wan string, l *dhcp6pd.Lease) {
	d.mu.Lock()
	s := d.snaps[wan]
	changed := s.Lease == nil || !sameLease(s.Lease, l)
	s.Lease = l
	if d.role != plan.Master {
		s.State = dhcp6pd.StateStandby
	}
	d.snaps[wan] = s
	d.mu.Unlock()
	if c := d.clients[wan]; c != nil && changed {
		c.SetStandby(true, l)
	}
	if changed {
		d.log.Info("HA: lease learned from the master", "iface", wan, "prefixes", len(l.Prefixes))
		d.kick()
	}
}

func sameLease(a, b *dhcp6pd.Lease) bool {
	if len(a.Prefixes) != len(b.Prefixes) {
		return false
	}
	for i := range a.Prefixes {
		if a.Prefixes[i].Prefix != b.Prefixes[i].Prefix || a.Prefixes[i].Valid != b.Prefixes[i].Valid {
			return false
		}
	}
	return a.Acquired.Sub(b.Acquired).Abs() < 2*time.Second
}

func raPreference(s string) ndp.Preference {
	switch s {
	case "low":
		return ndp.Low
	case "high":
		return ndp.High
	}
	return ndp.Medium
}
