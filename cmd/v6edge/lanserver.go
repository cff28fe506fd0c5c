package main

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/v6edge/v6edge/dhcp6srv"
	"github.com/v6edge/v6edge/internal/control"
	"github.com/v6edge/v6edge/internal/netif"
	"github.com/v6edge/v6edge/internal/plan"
)

// lanServers runs the LAN DHCPv6 servers the plan asks for: started when a
// LAN's mode or downstream PD needs one (and this node serves), updated in
// place on renumbering, stopped when no longer wanted.
type lanServers struct {
	d *daemon

	mu      sync.Mutex
	running map[string]*lanServer
	// delegations by LAN, as the servers last reported them; the event
	// loop turns them into routes.
	delegations map[string][]dhcp6srv.Delegation
}

type lanServer struct {
	srv    *dhcp6srv.Server
	cancel context.CancelFunc
	done   chan struct{}
}

func newLANServers(d *daemon) *lanServers {
	return &lanServers{d: d, running: map[string]*lanServer{}, delegations: map[string][]dhcp6srv.Delegation{}}
}

func (s *lanServers) config(l plan.LAN) dhcp6srv.Config {
	lc, dh := l.Config, l.DHCP
	iface := l.Interface
	return dhcp6srv.Config{
		Interface: iface, DNS: lc.DNS, Domains: lc.Domains,
		Pool: dh.Pool, LifetimeCap: dh.LifetimeCap,
		Preferred: lc.RA.Preferred, Valid: lc.RA.Valid,
		PDPool: dh.PDPool, PDLength: dh.PDLength, PDCount: dh.PDCount, PDExclude: dh.PDExclude,
		StateDir: s.d.cfg.Control.StateDir,
		Logger:   s.d.log.With("part", "dhcp6srv", "iface", iface),
		OnPD: func(dels []dhcp6srv.Delegation) {
			s.mu.Lock()
			s.delegations[iface] = slices.Clone(dels)
			s.mu.Unlock()
			s.d.kick()
		},
	}
}

// apply makes the running servers match the plan. ctx is the daemon's.
func (s *lanServers) apply(ctx context.Context, lans []plan.LAN) {
	want := map[string]plan.LAN{}
	for _, l := range lans {
		if l.DHCP != nil {
			want[l.Interface] = l
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for iface, r := range s.running {
		if _, ok := want[iface]; !ok {
			r.cancel()
			<-r.done
			delete(s.running, iface)
			delete(s.delegations, iface)
			s.d.log.Info("LAN DHCPv6 server stopped", "iface", iface)
		}
	}
	for iface, l := range want {
		cfg := s.config(l)
		if r := s.running[iface]; r != nil {
			r.srv.Update(cfg)
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		r := &lanServer{srv: dhcp6srv.NewServer(cfg), cancel: cancel, done: make(chan struct{})}
		s.running[iface] = r
		go func() {
			defer close(r.done)
			if err := r.srv.Run(sctx); err != nil {
				s.d.log.Error("LAN DHCPv6 server failed", "iface", iface, "err", err)
			}
		}()
		s.d.log.Info("LAN DHCPv6 server started", "iface", iface, "pool", l.DHCP.Pool, "pd_pool", l.DHCP.PDPool)
	}
}

// routes are the downstream delegations as routes via the requesting
// router's link-local.
func (s *lanServers) routes() []netif.Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rs []netif.Route
	for _, iface := range slices.Sorted(maps.Keys(s.delegations)) {
		for _, dl := range s.delegations[iface] {
			rs = append(rs, netif.Route{Dst: dl.Prefix, Gw: dl.Via, Interface: dl.Interface})
		}
	}
	return rs
}

// stop waits for every server to save its leases and end.
func (s *lanServers) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.running {
		r.cancel()
		<-r.done
	}
}

// status reports a LAN's server, nil when none runs.
func (s *lanServers) status(iface string) *control.DHCP {
	s.mu.Lock()
	r := s.running[iface]
	dels := s.delegations[iface]
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	st := r.srv.Stats()
	out := &control.DHCP{Leases: st.Leases, Received: st.Received, Replied: st.Replied, Dropped: st.Dropped}
	for _, dl := range dels {
		out.Delegations = append(out.Delegations, dl.Prefix.String()+" via "+dl.Via.String())
	}
	return out
}
