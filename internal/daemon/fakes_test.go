package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/dhcp6pd"
	"github.com/v6edge/v6edge/dhcp6srv"
	"github.com/v6edge/v6edge/ha"
	"github.com/v6edge/v6edge/internal/hook"
	"github.com/v6edge/v6edge/internal/netif"
	"github.com/v6edge/v6edge/internal/uplink"
	"github.com/v6edge/v6edge/nat"
	"github.com/v6edge/v6edge/ra"
)

// world is every fake the daemon talks to, recording what it was told.
type world struct {
	mu    sync.Mutex
	links *netif.FakeHandle
	calls []string // applier calls in order, e.g. "mac.Hold", "nat.Set"

	clients   map[string]*fakeClient
	ads       map[string]*fakeAdvertiser
	servers   map[string]*fakeServer
	vrrp      *fakeVRRP
	sync      *fakeSync
	nat       fakeNAT
	addrs     fakeAddrs
	routes    fakeRoutes
	mac       *fakeMAC
	notified  []string
	hookFired []hook.Event
	listens   int
	adReady   chan struct{}
}

func newWorld(wans ...string) *world {
	w := &world{links: netif.NewFakeHandle(wans...), clients: map[string]*fakeClient{}, ads: map[string]*fakeAdvertiser{},
		servers: map[string]*fakeServer{}, sync: newFakeSync(), adReady: make(chan struct{})}
	w.nat.w, w.addrs.w, w.routes.w = w, w, w
	close(w.adReady)
	return w
}

func (w *world) record(call string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, call)
}

func (w *world) callsSnapshot() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.calls)
}

func (w *world) kernel(cfg *configs.Config, _ *slog.Logger, changed func()) (*Kernel, error) {
	k := &Kernel{
		Links: w.links, Addresses: &w.addrs, Routes: &w.routes, NAT: &w.nat, Watcher: w.links,
		DefaultRouter: func(string) (netip.Addr, bool) { return netip.Addr{}, false },
		FlushFlows:    func(uint32) (int, error) { return 0, nil },
	}
	if len(cfg.WANs) > 1 {
		k.Policy = &fakePolicy{w: w}
	}
	if cfg.HA != nil && cfg.HA.WANMAC != nil {
		w.mac = &fakeMAC{w: w, ll: netif.EUI64LinkLocal(cfg.HA.WANMAC)}
		k.SharedMAC = w.mac
	}
	return k, nil
}

func (w *world) drivers() Drivers {
	return Drivers{
		NewClient: func(c dhcp6pd.Config) Client {
			fc := &fakeClient{cfg: c, w: w}
			w.mu.Lock()
			w.clients[c.Interface] = fc
			w.mu.Unlock()
			return fc
		},
		ListenDHCP: func(ctx context.Context, iface string, from netip.Addr) (dhcp6pd.Conn, error) {
			w.mu.Lock()
			w.listens++
			w.mu.Unlock()
			return nopConn{}, nil
		},
		NewAdvertiser: func(c ra.Config, _ *slog.Logger) Advertiser {
			a := &fakeAdvertiser{w: w, cfg: c}
			w.mu.Lock()
			w.ads[c.Interface] = a
			w.mu.Unlock()
			return a
		},
		NewServer: func(c dhcp6srv.Config) LANServer {
			s := &fakeServer{cfg: c}
			w.mu.Lock()
			w.servers[c.Interface] = s
			w.mu.Unlock()
			return s
		},
		NewVRRP: func(c ha.NodeConfig) VRRP {
			w.vrrp = &fakeVRRP{cfg: c, ready: make(chan struct{})}
			close(w.vrrp.ready)
			return w.vrrp
		},
		ListenSync: func(string) (SyncConn, error) { return w.sync, nil },
		NewProber: func(iface string, _ netip.Addr, _ func() netip.Addr, _ uint32, _ *slog.Logger, _ func(bool)) Task {
			return idleTask("probe " + iface)
		},
		SolicitRouter: func(context.Context, string) {},
		NewHook: func(path, iface string, _ *slog.Logger) HookRunner {
			return hookFunc(func(_ context.Context, e hook.Event) {
				w.mu.Lock()
				w.hookFired = append(w.hookFired, e)
				w.mu.Unlock()
			})
		},
		Announce: func(iface string, addrs []netip.Addr) error {
			w.record("announce " + iface)
			return nil
		},
	}
}

func (w *world) notify(state string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.notified = append(w.notified, state)
	return nil
}

type idleTask string

func (t idleTask) String() string { return string(t) }
func (t idleTask) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

type hookFunc func(context.Context, hook.Event)

func (f hookFunc) Fire(ctx context.Context, e hook.Event) { f(ctx, e) }

type nopConn struct{}

func (nopConn) WriteTo([]byte, netip.AddrPort) error { return nil }
func (nopConn) ReadFrom([]byte) (int, netip.AddrPort, error) {
	return 0, netip.AddrPort{}, errors.New("nop")
}
func (nopConn) Close() error { return nil }

type fakeClient struct {
	cfg dhcp6pd.Config
	w   *world

	mu       sync.Mutex
	standby  []standbyCall
	renews   int
	releases int
	linkUps  int
	// restarts makes Run reopen its socket this many times, as the real
	// client does after a socket error.
	restarts int
}

func (c *fakeClient) String() string { return "fake client " + c.cfg.Interface }
func (c *fakeClient) Run(ctx context.Context) error {
	for range c.restarts {
		if conn, err := c.cfg.Listen(ctx); err == nil {
			_ = conn.Close()
		}
	}
	<-ctx.Done()
	return nil
}
func (c *fakeClient) Snapshot() dhcp6pd.Snapshot {
	return dhcp6pd.Snapshot{State: dhcp6pd.StateInit, DUID: c.cfg.DUID}
}
func (c *fakeClient) SetStandby(standby bool, lease *dhcp6pd.Lease) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.standby = append(c.standby, standbyCall{standby, lease.Clone()})
	c.w.record("client.SetStandby")
}
func (c *fakeClient) Renew() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.renews++
}
func (c *fakeClient) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releases++
}
func (c *fakeClient) LinkChanged(up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if up {
		c.linkUps++
	}
}
func (c *fakeClient) lastStandby() (standbyCall, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.standby) == 0 {
		return standbyCall{}, 0
	}
	return c.standby[len(c.standby)-1], len(c.standby)
}

// publish is the client's Notify: what the real one calls on every change.
func (c *fakeClient) publish(s dhcp6pd.Snapshot) { c.cfg.Notify(s) }

type fakeAdvertiser struct {
	w *world

	mu      sync.Mutex
	cfg     ra.Config
	updates int
}

func (a *fakeAdvertiser) String() string { return "fake ra " + a.cfg.Interface }
func (a *fakeAdvertiser) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
func (a *fakeAdvertiser) Ready() <-chan struct{} { return a.w.adReady }
func (a *fakeAdvertiser) Update(c ra.Config) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg, a.updates = c, a.updates+1
}
func (a *fakeAdvertiser) Status() ra.Status { return ra.Status{} }
func (a *fakeAdvertiser) config() ra.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

type fakeServer struct {
	mu  sync.Mutex
	cfg dhcp6srv.Config
}

func (s *fakeServer) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
func (s *fakeServer) Update(c dhcp6srv.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = c
}
func (s *fakeServer) Stats() dhcp6srv.Stats { return dhcp6srv.Stats{} }

type fakeVRRP struct {
	cfg   ha.NodeConfig
	ready chan struct{}
}

func (v *fakeVRRP) String() string { return "fake vrrp" }
func (v *fakeVRRP) Run(ctx context.Context) error {
	<-ctx.Done()
	v.cfg.OnRole(ha.RoleBackup, ha.ReasonShutdown)
	return nil
}
func (v *fakeVRRP) Ready() <-chan struct{} { return v.ready }
func (v *fakeVRRP) Status() ha.Status      { return ha.Status{} }

// fakeSync is a lease-sync socket: what one node sends, the test can
// deliver to another.
type fakeSync struct {
	in     chan []byte
	mu     sync.Mutex
	sent   [][]byte
	closed chan struct{}
	once   sync.Once
}

func newFakeSync() *fakeSync {
	return &fakeSync{in: make(chan []byte, 16), closed: make(chan struct{})}
}
func (s *fakeSync) Send(msg []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, slices.Clone(msg))
	return nil
}
func (s *fakeSync) Receive(b []byte) (int, netip.Addr, error) {
	select {
	case m := <-s.in:
		return copy(b, m), netip.MustParseAddr("fe80::2"), nil
	case <-s.closed:
		return 0, netip.Addr{}, errors.New("closed")
	}
}
func (s *fakeSync) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}
func (s *fakeSync) lastSent() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sent) == 0 {
		return nil
	}
	return s.sent[len(s.sent)-1]
}

type fakeNAT struct {
	w    *world
	mu   sync.Mutex
	last nat.Ruleset
	sets int
}

func (n *fakeNAT) Set(r nat.Ruleset) error {
	n.mu.Lock()
	n.last, n.sets = r, n.sets+1
	n.mu.Unlock()
	n.w.record("nat.Set")
	return nil
}
func (n *fakeNAT) Status() nat.Status { return nat.Status{} }
func (n *fakeNAT) Remove() error      { return nil }
func (n *fakeNAT) ruleset() nat.Ruleset {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.last
}

type fakeAddrs struct {
	w        *world
	mu       sync.Mutex
	wants    []netif.Want
	released []netif.Want
}

func (a *fakeAddrs) String() string { return "fake tracker" }
func (a *fakeAddrs) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
func (a *fakeAddrs) Set(wants []netif.Want) {
	a.mu.Lock()
	a.wants = slices.Clone(wants)
	a.mu.Unlock()
	a.w.record("addrs.Set")
}
func (a *fakeAddrs) Status() []netif.AddrStatus { return nil }
func (a *fakeAddrs) Problems() []string         { return nil }
func (a *fakeAddrs) DADFailures() uint64        { return 0 }
func (a *fakeAddrs) Release(match func(netif.Want) bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.wants {
		if match(w) {
			a.released = append(a.released, w)
		}
	}
	a.wants = slices.DeleteFunc(a.wants, match)
	return nil
}
func (a *fakeAddrs) current() []netif.Want {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.wants)
}

type fakeRoutes struct {
	w           *world
	mu          sync.Mutex
	unreachable []netip.Prefix
}

func (r *fakeRoutes) SetUnreachable(p []netip.Prefix) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unreachable = slices.Clone(p)
	return nil
}
func (r *fakeRoutes) SetRoutes([]netif.Route) error { return nil }

type fakePolicy struct {
	w    *world
	mu   sync.Mutex
	last uplink.Policy
}

func (p *fakePolicy) Set(pol uplink.Policy) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = pol
	return nil
}

type fakeMAC struct {
	w       *world
	ll      netip.Addr
	mu      sync.Mutex
	holding bool
}

func (m *fakeMAC) Hold() (bool, error) {
	m.mu.Lock()
	took := !m.holding
	m.holding = true
	m.mu.Unlock()
	m.w.record("mac.Hold")
	return took, nil
}
func (m *fakeMAC) Give() error {
	m.mu.Lock()
	was := m.holding
	m.holding = false
	m.mu.Unlock()
	if was {
		m.w.record("mac.Give")
	}
	return nil
}
func (m *fakeMAC) LinkLocal() netip.Addr { return m.ll }
func (m *fakeMAC) held() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.holding
}
