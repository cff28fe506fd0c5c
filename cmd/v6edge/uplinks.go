package main

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/dhcp6pd"
	"github.com/v6edge/v6edge/internal/netif"
	"github.com/v6edge/v6edge/internal/plan"
	"github.com/v6edge/v6edge/internal/uplink"
)

// uplinks is the multihoming part of the daemon (SPEC.md "Several
// uplinks"): one health machine per WAN fed by link events, the lease and
// an optional probe; policy routing that sends new LAN flows by the
// preferred healthy uplink and every reply by the uplink its flow came in
// on. With a single WAN it does nothing.
type uplinks struct {
	d      *daemon
	router *uplink.Router
	marks  *uplink.Marks

	mu      sync.Mutex
	health  map[string]*uplink.Health
	last    uplink.Policy
	wake    *time.Timer
	lastWhy map[string]string
}

// uplinkTable is the routing table of the i-th uplink.
func uplinkTable(i int) int { return 1000 + i }

func newUplinks(d *daemon) (*uplinks, error) {
	u := &uplinks{d: d, health: map[string]*uplink.Health{}, lastWhy: map[string]string{}}
	if len(d.cfg.WANs) < 2 {
		return u, nil
	}
	now := time.Now()
	for _, w := range d.cfg.WANs {
		u.health[w.Interface] = uplink.NewHealth(uplink.DefaultHealthConfig(), now)
	}
	u.router = uplink.NewRouter(d.nl, d.log.With("part", "uplinks"))
	marks, err := uplink.NewMarks(-1, d.log.With("part", "uplinks"))
	if err != nil {
		return nil, err
	}
	u.marks = marks
	u.router.UseMarks(marks)
	return u, nil
}

func (u *uplinks) enabled() bool { return u.router != nil }

// run watches link events and runs the probes until ctx ends.
func (u *uplinks) run(ctx context.Context) error {
	if !u.enabled() {
		return nil
	}
	for _, w := range u.d.cfg.WANs {
		if !w.Check.IsValid() {
			continue
		}
		iface := w.Interface
		p := uplink.NewProber(iface, w.Check, u.probeSource, plan.UplinkMark(u.d.cfg, iface), time.Second,
			u.d.log.With("part", "probe", "iface", iface), func(ok bool) {
				u.mu.Lock()
				u.health[iface].ProbeResult(time.Now(), ok)
				u.mu.Unlock()
				u.d.kick()
			})
		go func() {
			if err := p.Run(ctx); err != nil {
				u.d.log.Error("uplink probe stopped", "iface", iface, "err", err)
			}
		}()
	}
	updates := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribe(updates, done); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case up := <-updates:
			if _, ok := u.health[up.Attrs().Name]; ok {
				u.d.kick()
			}
		}
	}
}

// probeSource is the router's own LAN ULA address: NETMAP maps it into each
// uplink's prefix, so every upstream's BCP 38 filter accepts the probe.
func (u *uplinks) probeSource() netip.Addr {
	des := plan.Compute(plan.Input{Config: u.d.config(), Role: plan.Master})
	for _, a := range des.Addresses {
		if a.Prefix.Addr().Is6() && !a.Prefix.Addr().IsLinkLocalUnicast() {
			return a.Prefix.Addr()
		}
	}
	return netip.Addr{}
}

// healthy updates each uplink's machine with the link and lease state now
// and reports the verdicts for the plan.
func (u *uplinks) healthy(now time.Time, cfg *configs.Config, snaps map[string]dhcp6pd.Snapshot) map[string]bool {
	out := map[string]bool{}
	if !u.enabled() {
		for _, w := range cfg.WANs {
			out[w.Interface] = true
		}
		return out
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	var next time.Time
	for _, w := range cfg.WANs {
		h := u.health[w.Interface]
		if h == nil {
			continue
		}
		link, err := u.d.nl.LinkByName(w.Interface)
		h.Link(now, err == nil && link.Attrs().OperState != netlink.OperDown && link.Attrs().Flags&(1<<0) != 0)
		s := snaps[w.Interface]
		h.Lease(now, s.Lease != nil && now.Before(s.Lease.ValidUntil()))
		out[w.Interface] = h.Healthy(now)
		if why := h.Reason(); why != u.lastWhy[w.Interface] {
			u.lastWhy[w.Interface] = why
			if why != "" {
				u.d.log.Warn("uplink unhealthy", "iface", w.Interface, "why", why)
			} else {
				u.d.log.Info("uplink healthy", "iface", w.Interface)
			}
		}
		if dl := h.Deadline(); !dl.IsZero() && (next.IsZero() || dl.Before(next)) {
			next = dl
		}
	}
	// A hold-down ends by itself: come back then without waiting for an
	// event.
	if !next.IsZero() {
		if u.wake != nil {
			u.wake.Stop()
		}
		u.wake = time.AfterFunc(time.Until(next)+10*time.Millisecond, u.d.kick)
	}
	return out
}

// reason is why an uplink is unhealthy, "" when healthy.
func (u *uplinks) reason(iface string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lastWhy[iface]
}

// apply installs the routing policy for des and drops the flows of uplinks
// that just failed, so they re-establish through another at once.
func (u *uplinks) apply(cfg *configs.Config, des plan.Desired, healthy map[string]bool) {
	if !u.enabled() {
		return
	}
	p := uplink.Policy{LANs: des.NAT.LANs, Internal: des.NAT.Internal}
	for i, w := range cfg.WANs {
		gw, ok, err := netif.DefaultRouter(u.d.nl, w.Interface)
		if err != nil || !ok {
			gw = netip.Addr{}
		}
		p.Uplinks = append(p.Uplinks, uplink.Uplink{Interface: w.Interface, Table: uplinkTable(i),
			Mark: plan.UplinkMark(cfg, w.Interface), Gateway: gw, Healthy: healthy[w.Interface],
			Preferred: w.Interface == des.Preferred})
	}
	if err := u.router.Set(p); err != nil {
		u.d.log.Error("installing uplink routing policy", "err", err)
		return
	}
	u.mu.Lock()
	failed := uplink.Failed(u.last, p)
	u.last = p
	u.mu.Unlock()
	for _, m := range failed {
		n, err := uplink.FlushUplink(m)
		if err != nil {
			u.d.log.Error("dropping flows of a failed uplink", "mark", m, "err", err)
			continue
		}
		u.d.log.Info("dropped the flows of a failed uplink so they re-establish elsewhere", "mark", m, "flows", n)
	}
}

// unhealthyUplinks lists the reasons for status problems.
func (u *uplinks) problems(cfg *configs.Config) []string {
	var out []string
	for _, w := range cfg.WANs {
		if why := u.reason(w.Interface); why != "" {
			out = append(out, w.Interface+": uplink unhealthy: "+why)
		}
	}
	return slices.Clip(out)
}
