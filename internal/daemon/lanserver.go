package daemon

import (
	"context"
	"log/slog"
	"slices"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/dhcp6srv"
	"github.com/v6edge/v6edge/internal/plan"
)

// lanServers applies the plan's LAN DHCPv6 service: a server starts when a
// LAN's mode or downstream PD needs one (and this node serves), is updated
// in place on renumbering, and stops when no longer wanted. Only the loop
// calls apply and stop; stats is safe from the status reader.
type lanServers struct {
	newServer func(dhcp6srv.Config) LANServer
	log       *slog.Logger
	post      func(event)

	running map[string]*lanServer
}

type lanServer struct {
	srv    LANServer
	cancel context.CancelFunc
	done   chan struct{}
}

func newLANServers(newServer func(dhcp6srv.Config) LANServer, log *slog.Logger, post func(event)) *lanServers {
	return &lanServers{newServer: newServer, log: log, post: post, running: map[string]*lanServer{}}
}

func (s *lanServers) config(cfg *configs.Config, l plan.LAN) dhcp6srv.Config {
	c := lanServerConfig(cfg, l)
	iface := l.Interface
	c.Logger = s.log.With("part", "dhcp6srv", "iface", iface)
	c.OnPD = func(dels []dhcp6srv.Delegation) {
		s.post(delegationsEvent{lan: iface, dels: slices.Clone(dels)})
	}
	return c
}

// apply makes the running servers match the plan. ctx is the daemon's.
func (s *lanServers) apply(ctx context.Context, cfg *configs.Config, lans []plan.LAN) {
	want := map[string]plan.LAN{}
	for _, l := range lans {
		if l.DHCP != nil {
			want[l.Interface] = l
		}
	}
	for iface, r := range s.running {
		if _, ok := want[iface]; !ok {
			r.cancel()
			<-r.done
			delete(s.running, iface)
			s.post(delegationsEvent{lan: iface})
			s.log.Info("LAN DHCPv6 server stopped", "iface", iface)
		}
	}
	for iface, l := range want {
		c := s.config(cfg, l)
		if r := s.running[iface]; r != nil {
			r.srv.Update(c)
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		r := &lanServer{srv: s.newServer(c), cancel: cancel, done: make(chan struct{})}
		s.running[iface] = r
		go func() {
			defer close(r.done)
			if err := r.srv.Run(sctx); err != nil {
				s.log.Error("LAN DHCPv6 server failed", "iface", iface, "err", err)
			}
		}()
		s.log.Info("LAN DHCPv6 server started", "iface", iface, "pool", l.DHCP.Pool, "pd_pool", l.DHCP.PDPool)
	}
}

// servers is the running set, for the view the status reads.
func (s *lanServers) servers() map[string]LANServer {
	out := make(map[string]LANServer, len(s.running))
	for k, r := range s.running {
		out[k] = r.srv
	}
	return out
}

// stop waits for every server to save its leases and end.
func (s *lanServers) stop() {
	for iface, r := range s.running {
		r.cancel()
		<-r.done
		delete(s.running, iface)
	}
}
