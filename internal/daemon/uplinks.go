package daemon

import (
	"net/netip"
	"time"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/internal/plan"
	"github.com/v6edge/v6edge/internal/uplink"
)

// Multihoming (SPEC.md "Several uplinks"): one health machine per WAN, fed by
// the link events, the lease and an optional probe, all owned by the loop;
// policy routing sends new LAN flows by the preferred healthy uplink and
// every reply by the uplink its flow came in on. With one WAN none of it
// runs.

// uplinkTable is the routing table of the i-th uplink.
func uplinkTable(i int) int { return 1000 + i }

// uplinkHealth updates each uplink's machine with the link and lease state
// now and returns the verdicts for the plan.
func (d *Daemon) uplinkHealth(now time.Time) map[string]bool {
	st := &d.st
	out := map[string]bool{}
	if len(st.health) == 0 {
		for _, w := range st.cfg.WANs {
			out[w.Interface] = true
		}
		return out
	}
	var next time.Time
	for _, w := range st.cfg.WANs {
		h := st.health[w.Interface]
		if h == nil {
			continue
		}
		h.Link(now, d.wanUp(w.Interface))
		s := st.snaps[w.Interface]
		h.Lease(now, s.Lease != nil && now.Before(s.Lease.ValidUntil(now)))
		out[w.Interface] = h.Healthy(now)
		if why := h.Reason(); why != st.unhealthy[w.Interface] {
			st.unhealthy[w.Interface] = why
			if why != "" {
				d.log.Warn("uplink unhealthy", "iface", w.Interface, "why", why)
			} else {
				d.log.Info("uplink healthy", "iface", w.Interface)
			}
		}
		if dl := h.Deadline(); !dl.IsZero() && (next.IsZero() || dl.Before(next)) {
			next = dl
		}
	}
	// A hold-down ends by itself: come back then without waiting for an
	// event.
	if !next.IsZero() {
		if st.healthWake != nil {
			st.healthWake.Stop()
		}
		st.healthWake = time.AfterFunc(next.Sub(now)+10*time.Millisecond, d.changed)
	}
	return out
}

// applyPolicy installs the routing policy for des and drops the flows of
// uplinks that just failed, so they re-establish through another at once.
func (d *Daemon) applyPolicy(cfg *configs.Config, des plan.Desired) {
	k := d.k
	if k.Policy == nil || len(cfg.WANs) < 2 {
		return
	}
	p := uplink.Policy{LANs: des.NAT.LANs, Internal: des.NAT.Internal}
	for i, w := range cfg.WANs {
		gw, ok := k.DefaultRouter(w.Interface)
		if !ok {
			gw = netip.Addr{}
		}
		p.Uplinks = append(p.Uplinks, uplink.Uplink{Interface: w.Interface, Table: uplinkTable(i),
			Mark: plan.UplinkMark(cfg, w.Interface), Gateway: gw, Healthy: d.st.healthy[w.Interface],
			Preferred: w.Interface == des.Preferred})
	}
	if err := k.Policy.Set(p); err != nil {
		d.log.Error("installing uplink routing policy", "err", err)
		return
	}
	failed := uplink.Failed(d.st.lastPolicy, p)
	d.st.lastPolicy = p
	for _, m := range failed {
		n, err := k.FlushFlows(m)
		if err != nil {
			d.log.Error("dropping flows of a failed uplink", "mark", m, "err", err)
			continue
		}
		d.log.Info("dropped the flows of a failed uplink so they re-establish elsewhere", "mark", m, "flows", n)
	}
}
