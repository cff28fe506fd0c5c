package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/dhcp6pd"
	"github.com/v6edge/v6edge/dhcp6srv"
	"github.com/v6edge/v6edge/ha"
	"github.com/v6edge/v6edge/internal/control"
	"github.com/v6edge/v6edge/internal/hook"
	"github.com/v6edge/v6edge/internal/plan"
	"github.com/v6edge/v6edge/internal/uplink"
)

// Options configure a Daemon. Config, Kernel and Drivers are required.
type Options struct {
	// Path is the config file Reload reads again.
	Path    string
	Config  *configs.Config
	Log     *slog.Logger
	Version string
	Kernel  KernelFunc
	Drivers Drivers
	// Load parses the config on Reload (default configs.Load).
	Load func(path string) (*configs.Config, error)
	// Notify speaks to systemd (default control.Notify).
	Notify func(state string) error
	// Now is the clock (default time.Now).
	Now func() time.Time
	// SyncInterval is how often a master repeats the lease to the backup
	// (default 1 s, so a backup that starts late catches up at once).
	SyncInterval time.Duration
	// PassInterval is the slow periodic pass that retries anything that
	// failed to apply (default 1 min).
	PassInterval time.Duration
}

// Daemon is v6edge running: see the package documentation for its flow.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	started time.Time
	box     *mailbox
	beat    atomic.Int64 // unix nanos of the last loop turn, for the watchdog
	view    atomic.Pointer[view]
	stats   *messageStats
	ready   atomic.Bool
	running atomic.Bool

	// probeSource is the loop's plan.Desired.ProbeSource, for the probers.
	probeSource atomic.Pointer[netip.Addr]

	// Built by Run before any task starts; read-only afterwards (the parts
	// themselves are safe for concurrent use).
	k       *Kernel
	clients map[string]Client
	ads     map[string]Advertiser
	hooks   map[string]HookRunner
	pair    *pair // nil when standalone
	servers *lanServers

	// Everything below is owned by the loop goroutine.
	st loopState
}

// loopState is the daemon's state; only the loop reads or writes it.
type loopState struct {
	cfg         *configs.Config
	snaps       map[string]dhcp6pd.Snapshot
	role        plan.Role
	roleWhy     string
	roleAt      time.Time
	transitions uint64
	desired     plan.Desired
	natErr      string
	// standby is what each client was last told, and with which lease.
	standby map[string]standbyTold
	// linkUp is each WAN's link as last seen, for the Rebind on link-up.
	linkUp map[string]bool
	// prepared is the ifindex each interface was last configured at (its
	// sysctls); missing lists the configured interfaces not there now.
	prepared map[string]int
	missing  map[string]bool
	health   map[string]*uplink.Health
	// unhealthy is why each uplink is unhealthy ("" healthy).
	unhealthy   map[string]string
	healthy     map[string]bool
	healthWake  *time.Timer
	lastPolicy  uplink.Policy
	delegations map[string][]dhcp6srv.Delegation
	announcers  map[string]*hook.Announcer
	lastPrefix  map[string]netip.Prefix
	prefixes    map[string]uint64 // prefix changes by WAN
	preferred   string
	failoverAt  time.Time
	failoverWhy string
}

type standbyTold struct {
	told    bool
	standby bool
	lease   *dhcp6pd.Lease
}

// New checks the options and returns a Daemon; Run starts it.
func New(o Options) (*Daemon, error) {
	if o.Config == nil || o.Kernel == nil {
		return nil, errors.New("daemon: Config and Kernel are required")
	}
	if err := o.Drivers.check(); err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Load == nil {
		o.Load = configs.Load
	}
	if o.Notify == nil {
		o.Notify = control.Notify
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = time.Second
	}
	if o.PassInterval <= 0 {
		o.PassInterval = time.Minute
	}
	cfg := o.Config
	now := o.Now()
	role := plan.Standalone
	if cfg.HA != nil {
		// An HA node starts silent and becomes master only by election (or,
		// with ha.mode = "external", when told).
		role = plan.Backup
	}
	d := &Daemon{
		opts: o, log: o.Log, now: o.Now, started: now, box: newMailbox(), stats: newMessageStats(),
		clients: map[string]Client{}, ads: map[string]Advertiser{}, hooks: map[string]HookRunner{},
		st: loopState{
			cfg: cfg, snaps: map[string]dhcp6pd.Snapshot{}, role: role, roleWhy: "starting", roleAt: now,
			standby: map[string]standbyTold{}, linkUp: map[string]bool{}, health: map[string]*uplink.Health{},
			prepared: map[string]int{}, missing: map[string]bool{},
			unhealthy: map[string]string{}, delegations: map[string][]dhcp6srv.Delegation{},
			announcers: map[string]*hook.Announcer{}, lastPrefix: map[string]netip.Prefix{}, prefixes: map[string]uint64{},
		},
	}
	d.publish()
	return d, nil
}

func (dr Drivers) check() error {
	v := reflect.ValueOf(dr)
	for i := range v.NumField() {
		if v.Field(i).IsNil() {
			return fmt.Errorf("daemon: Drivers.%s is required", v.Type().Field(i).Name)
		}
	}
	return nil
}

// post hands an event to the loop; it never blocks.
func (d *Daemon) post(e event) { d.box.post(e) }

// changed is the kick of the kernel owners and the timers.
func (d *Daemon) changed() { d.post(changedEvent{}) }

// Run is the daemon's life: build every part, start them, run the loop until
// ctx ends, then stop in order.
func (d *Daemon) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("daemon: Run called twice")
	}
	cfg := d.st.cfg
	if err := os.MkdirAll(cfg.Control.StateDir, 0o700); err != nil {
		return fmt.Errorf("creating state_dir: %w", err)
	}
	k, err := d.opts.Kernel(cfg, d.log, d.changed)
	if err != nil {
		return err
	}
	d.k = k
	defer func() {
		if k.Close != nil {
			k.Close()
		}
	}()
	if k.Prepare != nil {
		if err := k.Prepare(); err != nil {
			return err
		}
	}
	tasks, err := d.build(cfg)
	if err != nil {
		return err
	}
	srv := &control.Server{Path: cfg.Control.Socket, Group: cfg.Control.SocketGroup, H: d, Log: d.log}
	if err := srv.Listen(); err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, t := range tasks {
		g.Go(func() error {
			if err := t.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", t, err)
			}
			return nil
		})
	}
	g.Go(func() error { return srv.Run(gctx) })
	if cfg.Control.Metrics != "" {
		g.Go(func() error { return control.ServeMetrics(gctx, cfg.Control.Metrics, d.Status) })
	}
	g.Go(func() error {
		control.Watchdog(gctx, control.WatchdogInterval(), func() bool {
			return d.now().Sub(time.Unix(0, d.beat.Load())) < time.Minute
		})
		return nil
	})
	g.Go(func() error { d.waitReady(gctx, tasks); return nil })
	g.Go(func() error { return d.loop(gctx) })
	err = g.Wait()
	_ = d.opts.Notify("STOPPING=1")
	d.stop()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// waitReady posts readyEvent once every task that can say so is ready.
func (d *Daemon) waitReady(ctx context.Context, tasks []Task) {
	for _, t := range tasks {
		r, ok := t.(readier)
		if !ok {
			continue
		}
		select {
		case <-r.Ready():
		case <-ctx.Done():
			return
		}
	}
	d.post(readyEvent{})
}

// build makes every part for cfg and returns the tasks to run.
func (d *Daemon) build(cfg *configs.Config) ([]Task, error) {
	dr, k := d.opts.Drivers, d.k
	var tasks []Task
	tasks = append(tasks, k.Addresses)
	tasks = append(tasks, k.Tasks...)
	tasks = append(tasks, &linkDriver{w: k.Watcher, post: d.post})
	for _, w := range cfg.WANs {
		if w.Hook != "" {
			d.hooks[w.Interface] = dr.NewHook(w.Hook, w.Interface, d.log.With("part", "hook", "iface", w.Interface))
			a := &hook.Announcer{Interface: w.Interface, IAID: w.IAID}
			// The saved lease is what the script was last told before the
			// restart: confirming it is REBOOT6, replacing it BOUND6.
			if l, err := dhcp6pd.LoadLease(cfg.Control.StateDir, w.Interface, w.IAID); err == nil && l != nil {
				if p, ok := l.Chosen(w.PrefixLength, d.now()); ok {
					a.Restored(p.Prefix, l.Acquired)
				}
			}
			d.st.announcers[w.Interface] = a
		}
		c, err := d.newClient(cfg, w)
		if err != nil {
			return nil, err
		}
		d.clients[w.Interface] = c
		tasks = append(tasks, c, &solicitTask{iface: w.Interface, solicit: dr.SolicitRouter, post: d.post})
	}
	first := plan.Compute(plan.Input{Config: cfg, Role: d.st.role, Now: d.now()})
	d.probeSource.Store(&first.ProbeSource)
	for _, l := range first.LANs {
		a := dr.NewAdvertiser(raConfig(cfg, l), d.log.With("part", "ra", "iface", l.Interface))
		d.ads[l.Interface] = a
		tasks = append(tasks, a)
	}
	d.servers = newLANServers(dr.NewServer, d.log, d.post)
	if cfg.HA != nil {
		p, err := newPair(d, cfg, first.HA.VirtualAddrs)
		if err != nil {
			return nil, err
		}
		d.pair = p
		tasks = append(tasks, p.tasks()...)
	}
	if len(cfg.WANs) > 1 {
		now := d.now()
		for _, w := range cfg.WANs {
			d.st.health[w.Interface] = uplink.NewHealth(uplink.DefaultHealthConfig(), now)
			if !w.Check.IsValid() {
				continue
			}
			iface := w.Interface
			tasks = append(tasks, dr.NewProber(iface, w.Check, d.currentProbeSource, plan.UplinkMark(cfg, iface),
				d.log.With("part", "probe", "iface", iface), func(ok bool) { d.post(probeEvent{wan: iface, ok: ok}) }))
		}
	}
	return tasks, nil
}

func (d *Daemon) currentProbeSource() netip.Addr {
	if p := d.probeSource.Load(); p != nil {
		return *p
	}
	return netip.Addr{}
}

// newClient builds a WAN's DHCPv6 client. Everything its callbacks use is
// fixed here: they run on the client's goroutine and must not read the
// loop's state.
func (d *Daemon) newClient(cfg *configs.Config, w configs.WAN) (Client, error) {
	duid, err := duidFor(cfg, w, d.k.Links, d.now())
	if errors.Is(err, errNoWAN) {
		// The WAN is not there yet: wait for it rather than exit, and build
		// the client from its MAC when it appears.
		lc := &lateClient{iface: w.Interface, poll: 500 * time.Millisecond}
		lc.build = func() (Client, error) {
			duid, err := duidFor(cfg, w, d.k.Links, d.now())
			if err != nil {
				return nil, err
			}
			return d.clientWith(cfg, w, duid), nil
		}
		if cfg.HA != nil {
			lc.SetStandby(true, nil)
			d.st.standby[w.Interface] = standbyTold{told: true, standby: true}
		}
		return lc, nil
	}
	if err != nil {
		return nil, err
	}
	c := d.clientWith(cfg, w, duid)
	if cfg.HA != nil {
		// A backup never sends: standby before the first Solicit could go.
		c.SetStandby(true, nil)
		d.st.standby[w.Interface] = standbyTold{told: true, standby: true}
	}
	return c, nil
}

// clientWith builds a WAN's client with its DUID.
func (d *Daemon) clientWith(cfg *configs.Config, w configs.WAN, duid []byte) Client {
	iface := w.Interface
	var from netip.Addr
	if cfg.HA != nil && cfg.HA.WANMAC != nil && d.k.SharedMAC != nil && iface == cfg.WANs[0].Interface {
		// The master speaks from the shared MAC's link-local, so a new
		// master is reachable at the address the server answered before.
		from = d.k.SharedMAC.LinkLocal()
	}
	listen, stats := d.opts.Drivers.ListenDHCP, d.stats
	c := d.opts.Drivers.NewClient(dhcp6pd.Config{
		Interface: iface, DUID: duid, IAID: w.IAID, PrefixLength: w.PrefixLength,
		RequestAddress: dhcp6pd.AddressMode(w.RequestAddress), RapidCommit: w.RapidCommit,
		ReleaseOnStop: w.ReleaseOnStop, StateDir: cfg.Control.StateDir,
		Logger: d.log.With("part", "dhcp6pd"),
		Listen: func(ctx context.Context) (dhcp6pd.Conn, error) {
			c, err := listen(ctx, iface, from)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, stats: stats, iface: iface}, nil
		},
		Notify: func(s dhcp6pd.Snapshot) { d.post(leaseEvent{wan: iface, snap: s}) },
	})
	return c
}

// loop is the event loop: fold in every pending event, then one pass of
// compute + apply; plus a slow periodic pass that retries anything that
// failed to apply. Everything that changes by itself (lease lifetimes,
// hold-downs, RA schedules) raises its own event, so an idle router does
// next to nothing.
func (d *Daemon) loop(ctx context.Context) error {
	tick := time.NewTicker(d.opts.PassInterval)
	defer tick.Stop()
	passed := false
	readyNow := false
	d.post(changedEvent{})
	for {
		select {
		case <-ctx.Done():
			d.cancelRequests()
			return nil
		case <-d.box.wake:
		case <-tick.C:
		}
		if ctx.Err() != nil {
			// Stopping: a role the VRRP node reports as it resigns must not
			// be applied (make before break is stop's job).
			d.cancelRequests()
			return nil
		}
		d.beat.Store(d.now().UnixNano())
		var replies []func()
		for _, e := range d.box.take() {
			switch e := e.(type) {
			case readyEvent:
				readyNow = true
			case reloadEvent:
				err := d.reload()
				replies = append(replies, func() { e.done <- err })
			case requestEvent:
				err := e.run(d)
				replies = append(replies, func() { e.done <- err })
			default:
				d.fold(e)
			}
		}
		d.pass(ctx)
		passed = true
		for _, r := range replies {
			r()
		}
		if readyNow && passed && !d.ready.Load() {
			d.ready.Store(true)
			_ = d.opts.Notify("READY=1\nSTATUS=serving")
			d.log.Info("v6edge serving", "wans", len(d.st.cfg.WANs), "lans", len(d.st.cfg.LANs))
		}
	}
}

// cancelRequests answers the requests that arrived as the loop ended.
func (d *Daemon) cancelRequests() {
	for _, e := range d.box.take() {
		switch e := e.(type) {
		case requestEvent:
			e.done <- errors.New("v6edge is stopping")
		case reloadEvent:
			e.done <- errors.New("v6edge is stopping")
		}
	}
}

// fold applies one driver's report to the loop's state.
func (d *Daemon) fold(e event) {
	st := &d.st
	switch e := e.(type) {
	case leaseEvent:
		st.snaps[e.wan] = e.snap
	case roleEvent:
		d.setRole(e.role, e.why)
	case peerLeaseEvent:
		d.learnLease(e.lease)
	case probeEvent:
		// A probe leaves from the router's ULA through NAT: before the
		// uplink has a usable delegation it cannot be answered, and
		// counting those misses would hold a healthy uplink down for its
		// recovery hold-down right after the start.
		if h := st.health[e.wan]; h != nil && d.hasDelegation(e.wan) {
			h.ProbeResult(d.now(), e.ok)
		}
	case delegationsEvent:
		st.delegations[e.lan] = e.dels
		if len(e.dels) == 0 {
			delete(st.delegations, e.lan)
		}
	case linkEvent:
		d.observeLinks()
	case syncTick:
		if d.pair != nil {
			d.pair.sendLease(st)
		}
	case changedEvent:
	}
}

// hasDelegation reports whether wan has a usable delegated prefix now.
func (d *Daemon) hasDelegation(wan string) bool {
	for _, w := range d.st.cfg.WANs {
		if w.Interface == wan {
			return uplinkFrom(w, d.st.snaps[wan], d.now()).Delegated.IsValid()
		}
	}
	return false
}

// observeLinks re-reads every configured link. Router firmware brings links
// up in any order: one that is missing is waited for (said once, and in
// status), one that appears — or was deleted and created anew, with a new
// ifindex — is configured then. A WAN that came up Rebinds its lease (RFC
// 8415 §18.2.12: the link may lead elsewhere now).
func (d *Daemon) observeLinks() {
	st := &d.st
	check := func(iface string, wan bool) {
		link, err := d.k.Links.LinkByName(iface)
		if err != nil {
			if !st.missing[iface] {
				st.missing[iface] = true
				delete(st.prepared, iface)
				d.log.Warn("interface not found; waiting for it", "iface", iface)
			}
			return
		}
		idx := link.Attrs().Index
		if st.prepared[iface] == idx {
			return
		}
		if d.k.PrepareLink != nil {
			if err := d.k.PrepareLink(iface, wan); err != nil {
				d.log.Error("configuring interface", "iface", iface, "err", err)
				return // tried again at the next event
			}
		}
		if st.missing[iface] {
			d.log.Info("interface appeared; configured", "iface", iface, "index", idx)
		}
		st.prepared[iface] = idx
		delete(st.missing, iface)
	}
	for _, w := range st.cfg.WANs {
		check(w.Interface, true)
	}
	for _, l := range st.cfg.LANs {
		check(l.Interface, false)
	}
	for _, w := range d.st.cfg.WANs {
		up := d.wanUp(w.Interface)
		was, seen := d.st.linkUp[w.Interface]
		d.st.linkUp[w.Interface] = up
		if seen && up && !was {
			if c := d.clients[w.Interface]; c != nil {
				d.log.Info("WAN link up: confirming the lease", "iface", w.Interface)
				c.LinkChanged(true)
			}
		}
	}
}

func (d *Daemon) wanUp(iface string) bool {
	link, err := d.k.Links.LinkByName(iface)
	if err != nil {
		return false
	}
	a := link.Attrs()
	return a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0 && a.OperState != netlink.OperDown
}

// setRole records an HA role change; the pass applies it (standby, WAN MAC,
// addresses, RAs, servers).
func (d *Daemon) setRole(r plan.Role, why string) {
	st := &d.st
	changed := st.role != r
	st.role, st.roleWhy = r, why
	if !changed {
		return
	}
	st.roleAt = d.now()
	st.transitions++
	if d.pair != nil {
		d.pair.master.Store(r == plan.Master)
	}
	d.log.Info("HA role changed", "role", r, "why", why)
}

// learnLease takes the lease the master announced: the backup keeps it (and
// its NAT mapping) ready, so a takeover translates from the first packet.
func (d *Daemon) learnLease(sl ha.SyncedLease) {
	st := &d.st
	if st.role == plan.Master {
		return // our own datagram looped back, or a split brain VRRP resolves
	}
	if d.pair == nil || sl.WAN != d.pair.wan {
		d.log.Warn("HA: lease sync for another WAN refused", "wan", sl.WAN)
		return
	}
	l := leaseFromSync(sl)
	s := st.snaps[sl.WAN]
	if s.Lease != nil && sameLease(s.Lease, l) {
		return
	}
	s.Lease = l
	s.State = dhcp6pd.StateStandby
	st.snaps[sl.WAN] = s
	// Told again at the next pass: the client holds the synced lease.
	st.standby[sl.WAN] = standbyTold{}
	d.log.Info("HA: lease learned from the master", "iface", sl.WAN, "prefixes", len(l.Prefixes))
}

// pass computes the desired state and hands each part to its applier.
func (d *Daemon) pass(ctx context.Context) {
	st, k := &d.st, d.k
	now := d.now()
	cfg := st.cfg
	if len(st.linkUp) < len(cfg.WANs) || len(st.missing) > 0 {
		d.observeLinks()
	}
	st.healthy = d.uplinkHealth(now)
	in := plan.Input{Config: cfg, Role: st.role, Now: now}
	for _, w := range cfg.WANs {
		up := uplinkFrom(w, st.snaps[w.Interface], now)
		up.Healthy = st.healthy[w.Interface]
		if k.DefaultRouter != nil && d.wanUp(w.Interface) {
			// A default route over a dead link leads nowhere either.
			_, up.DefaultRouter = k.DefaultRouter(w.Interface)
		}
		in.Uplinks = append(in.Uplinks, up)
		if last, ok := st.lastPrefix[w.Interface]; up.Delegated.IsValid() && (!ok || last != up.Delegated) {
			if ok {
				st.prefixes[w.Interface]++
				d.log.Info("delegated prefix changed", "iface", w.Interface, "old", last, "prefix", up.Delegated)
			}
			st.lastPrefix[w.Interface] = up.Delegated
		}
	}
	des := plan.Compute(in)
	d.probeSource.Store(&des.ProbeSource)
	d.noteFailover(des.Preferred, now)
	d.fireHooks(ctx, now)

	if d.pair != nil {
		// The WAN MAC moves before anything is announced, so the upstream
		// never sees the floating addresses behind the wrong MAC.
		d.pair.applyWAN(des.HA)
	}
	d.applyStandby(des.WANs)
	if d.pair != nil {
		// Every change reaches the backup at once, not only at the next
		// periodic sync: a master that dies a moment after binding must not
		// leave a backup without the lease.
		d.pair.sendLease(st)
	}

	st.natErr = ""
	if cfg.NAT.InternalPrefix.IsValid() {
		if err := k.NAT.Set(des.NAT); err != nil {
			st.natErr = err.Error()
			d.log.Error("installing NAT mapping", "err", err)
		}
	}
	k.Addresses.Set(wantsOf(des.Addresses))
	if err := k.Routes.SetUnreachable(des.Unreachable); err != nil {
		d.log.Error("installing unreachable routes", "err", err)
	}
	d.applyPolicy(cfg, des)
	d.servers.apply(ctx, cfg, des.LANs)
	if err := k.Routes.SetRoutes(downstreamRoutes(st.delegations)); err != nil {
		d.log.Error("installing routes to downstream routers", "err", err)
	}
	for _, l := range des.LANs {
		if a := d.ads[l.Interface]; a != nil {
			rc := raConfig(cfg, l)
			// A LAN deleted and created again has a new index: the
			// advertiser's socket must follow it.
			rc.IfIndex = st.prepared[l.Interface]
			a.Update(rc)
		}
	}
	st.desired = des
	d.publish()
}

// applyStandby tells each client whether it may talk to the upstream, and
// which lease it holds meanwhile, when that changed.
func (d *Daemon) applyStandby(wans []plan.WAN) {
	if d.st.cfg.HA == nil {
		// Standby is an HA pair's: a standalone client is never told, or
		// the lease it is handed (the saved one, published at start) would
		// overwrite the one its server just gave it.
		return
	}
	for _, w := range wans {
		c := d.clients[w.Interface]
		if c == nil {
			continue
		}
		lease := d.st.snaps[w.Interface].Lease
		told := d.st.standby[w.Interface]
		if told.told && told.standby == w.Standby && (!w.Standby || told.lease == lease) {
			continue
		}
		c.SetStandby(w.Standby, lease)
		d.st.standby[w.Interface] = standbyTold{told: true, standby: w.Standby, lease: lease}
	}
}

// noteFailover records a change of the uplink new flows leave by.
func (d *Daemon) noteFailover(preferred string, now time.Time) {
	st := &d.st
	if len(st.cfg.WANs) < 2 || preferred == st.preferred {
		return
	}
	if st.preferred != "" {
		why := "preferred uplink healthy again"
		if r := st.unhealthy[st.preferred]; r != "" {
			why = st.preferred + ": " + r
		}
		st.failoverAt, st.failoverWhy = now, why
		d.log.Warn("new flows move to another uplink", "from", st.preferred, "to", preferred, "why", why)
	}
	st.preferred = preferred
}

// fireHooks tells each WAN's script what changed since the last pass. The
// scripts run in the background.
func (d *Daemon) fireHooks(ctx context.Context, now time.Time) {
	for _, w := range d.st.cfg.WANs {
		r, a := d.hooks[w.Interface], d.st.announcers[w.Interface]
		if r == nil || a == nil {
			continue
		}
		snap := d.st.snaps[w.Interface]
		hl := hook.Lease{State: string(snap.State)}
		if l := snap.Lease; l != nil {
			if p, ok := l.Chosen(w.PrefixLength, now); ok {
				hl.Prefix = hook.Prefix{Prefix: p.Prefix, Preferred: p.Preferred, Valid: p.Valid}
				hl.Acquired = l.Acquired
			}
		}
		if ev, ok := a.Observe(hl); ok {
			r.Fire(ctx, ev)
		}
	}
}

// reload re-reads the config on SIGHUP. LAN, RA and NAT settings apply at
// the next pass; a changed WAN section is refused, because swapping the
// DHCPv6 client would risk the lease the reload promises to keep.
func (d *Daemon) reload() error {
	cfg, err := d.opts.Load(d.opts.Path)
	if err != nil {
		d.log.Error("reload refused: the new config is invalid; keeping the running one", "err", err)
		return err
	}
	old := d.st.cfg
	sameWAN := slices.EqualFunc(old.WANs, cfg.WANs, func(a, b configs.WAN) bool {
		return a.Interface == b.Interface && a.IAID == b.IAID && a.PrefixLength == b.PrefixLength &&
			a.DUIDKind == b.DUIDKind && string(a.DUIDMAC) == string(b.DUIDMAC) && string(a.DUIDRaw) == string(b.DUIDRaw)
	})
	sameLANs := slices.EqualFunc(old.LANs, cfg.LANs, func(a, b configs.LAN) bool { return a.Interface == b.Interface })
	if !sameWAN || !sameLANs {
		err := errors.New("reload refused: WAN settings or the set of LAN interfaces changed; restart v6edge to apply them (the saved lease is kept)")
		d.log.Error(err.Error())
		return err
	}
	d.st.cfg = cfg
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
	d.log.Info("config reloaded", "path", d.opts.Path)
	return nil
}

// stop runs after every task has ended: an HA node gives up what it held,
// the LAN servers save their leases, and the NAT table goes if asked to.
func (d *Daemon) stop() {
	if d.pair != nil {
		d.pair.stop()
	}
	if d.servers != nil {
		d.servers.stop()
	}
	if d.st.cfg.NAT.RemoveOnStop && d.k != nil {
		if err := d.k.NAT.Remove(); err != nil {
			d.log.Error("removing NAT table on stop", "err", err)
		}
	}
	d.log.Info("v6edge stopped")
}

// Reload asks the loop to re-read the config (SIGHUP) and waits for the
// answer, or returns at once with an error when the loop does not run.
func (d *Daemon) Reload() error {
	done := make(chan error, 1)
	return d.ask(reloadEvent{done: done}, done)
}

// request runs fn on the loop and waits for its result.
func (d *Daemon) request(fn func(d *Daemon) error) error {
	done := make(chan error, 1)
	return d.ask(requestEvent{run: fn, done: done}, done)
}

// askTimeout bounds how long a control command waits for the loop: a pass
// takes milliseconds, so this only ends a wait on a loop that stopped.
const askTimeout = 5 * time.Second

func (d *Daemon) ask(e event, done chan error) error {
	d.post(e)
	select {
	case err := <-done:
		return err
	case <-time.After(askTimeout):
		return errors.New("v6edge: the event loop did not answer")
	}
}

// messageStats counts DHCPv6 messages by WAN and type, for status and
// metrics; the clients' sockets update it from their goroutines.
type messageStats struct {
	mu sync.Mutex
	m  map[string]map[string]uint64
}

func newMessageStats() *messageStats { return &messageStats{m: map[string]map[string]uint64{}} }

func (s *messageStats) count(iface, kind, typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.m[iface]
	if m == nil {
		m = map[string]uint64{}
		s.m[iface] = m
	}
	m[kind+":"+typ]++
}

func (s *messageStats) snapshot() map[string]map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]uint64, len(s.m))
	for k, v := range s.m {
		out[k] = make(map[string]uint64, len(v))
		for t, n := range v {
			out[k][t] = n
		}
	}
	return out
}
