package daemon

import (
	"maps"
	"slices"
	"time"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/dhcp6pd"
	"github.com/v6edge/v6edge/dhcp6srv"
	"github.com/v6edge/v6edge/internal/control"
	"github.com/v6edge/v6edge/internal/plan"
)

// view is what the status reader sees: an immutable copy of the loop's
// state, published after every pass.
type view struct {
	cfg         *configs.Config
	desired     plan.Desired
	role        plan.Role
	roleWhy     string
	roleAt      time.Time
	transitions uint64
	natErr      string
	snaps       map[string]dhcp6pd.Snapshot
	prefixes    map[string]uint64
	healthy     map[string]bool
	unhealthy   map[string]string
	failoverAt  time.Time
	failoverWhy string
	servers     map[string]LANServer
	missing     []string
	delegations map[string][]dhcp6srv.Delegation
}

// publish replaces the view with the loop's state now.
func (d *Daemon) publish() {
	st := &d.st
	v := &view{
		cfg: st.cfg, desired: st.desired, role: st.role, roleWhy: st.roleWhy, roleAt: st.roleAt,
		transitions: st.transitions, natErr: st.natErr,
		snaps: make(map[string]dhcp6pd.Snapshot, len(st.snaps)), prefixes: maps.Clone(st.prefixes),
		healthy: maps.Clone(st.healthy), unhealthy: maps.Clone(st.unhealthy),
		failoverAt: st.failoverAt, failoverWhy: st.failoverWhy, delegations: maps.Clone(st.delegations),
	}
	for k, s := range st.snaps {
		s.Lease = s.Lease.Clone()
		v.snaps[k] = s
	}
	if d.servers != nil {
		v.servers = d.servers.servers()
	}
	for iface := range st.missing {
		v.missing = append(v.missing, iface)
	}
	d.view.Store(v)
}

// Status implements control.Handler: the SPEC.md status document, built on
// demand from the published view and each part's own status, so lifetimes
// are current and the control socket never waits on the loop, the kernel or
// the network.
func (d *Daemon) Status() control.Status {
	v := d.view.Load()
	now := d.now()
	cfg, des := v.cfg, v.desired
	st := control.Status{Version: d.opts.Version, Started: d.started.UTC().Format(time.RFC3339), Problems: []string{}}
	st.Problems = append(st.Problems, des.Problems...)
	for _, iface := range v.missing {
		st.Problems = append(st.Problems, iface+": interface not found; waiting for it")
	}
	messages := d.stats.snapshot()
	for _, w := range cfg.WANs {
		s := v.snaps[w.Interface]
		ws := control.WAN{Interface: w.Interface, State: string(s.State), DUID: dhcp6pd.FormatDUID(s.DUID),
			Healthy: v.healthy == nil || v.healthy[w.Interface], Preferred: des.Preferred == w.Interface,
			Unhealthy: v.unhealthy[w.Interface]}
		if ws.State == "" {
			ws.State = "init"
		}
		if c := d.clients[w.Interface]; c != nil && ws.DUID == "" {
			ws.DUID = dhcp6pd.FormatDUID(c.Snapshot().DUID)
		}
		if l := s.Lease; l != nil {
			chosen, ok := l.Chosen(w.PrefixLength, now)
			if ok {
				ws.Prefix = chosen.Prefix.String()
				ws.PreferredUntil = l.Acquired.Add(chosen.Preferred).UTC().Format(time.RFC3339)
				ws.ValidUntil = l.Acquired.Add(chosen.Valid).UTC().Format(time.RFC3339)
				if chosen.Exclude.IsValid() {
					ws.Excluded = chosen.Exclude.String()
				}
			}
			for _, a := range l.ValidAddresses(now) {
				ws.Addresses = append(ws.Addresses, a.Addr.String())
			}
			for _, a := range l.DNS {
				ws.DNS = append(ws.DNS, a.String())
			}
			ws.Domains = l.Domains
			for _, p := range l.Prefixes {
				if !ok || p.Prefix != chosen.Prefix {
					ws.OtherPrefixes = append(ws.OtherPrefixes, p.Prefix.String())
				}
			}
			ws.ServerDUID = dhcp6pd.FormatDUID(l.ServerID)
		}
		if d.k != nil && d.k.DefaultRouter != nil {
			if gw, ok := d.k.DefaultRouter(w.Interface); ok {
				ws.DefaultRouter = gw.String()
			}
		}
		// The client's snapshot carries its latest rejections even when they
		// changed no state (a server refusing every Solicit). They are a
		// problem while the uplink has no usable lease; once bound they are
		// history, shown with the uplink but not failing status.
		probs := s.Problems
		if c := d.clients[w.Interface]; c != nil {
			probs = c.Snapshot().Problems
		}
		if s.Lease == nil || s.State == dhcp6pd.StateExpired || s.State == dhcp6pd.StateSoliciting || s.State == dhcp6pd.StateRequesting {
			for _, p := range probs {
				st.Problems = append(st.Problems, w.Interface+": "+p)
			}
		} else {
			ws.RecentProblems = probs
		}
		ws.PrefixChanges = v.prefixes[w.Interface]
		if !v.failoverAt.IsZero() {
			ws.LastFailover, ws.LastFailoverWhy = v.failoverAt.UTC().Format(time.RFC3339), v.failoverWhy
		}
		ws.Messages = messages[w.Interface]
		if why := v.unhealthy[w.Interface]; why != "" {
			st.Problems = append(st.Problems, w.Interface+": uplink unhealthy: "+why)
		}
		st.WANs = append(st.WANs, ws)
	}
	st.WAN = st.WANs[0]
	for _, ws := range st.WANs {
		if ws.Preferred {
			st.WAN = ws
		}
	}

	st.NAT = control.NAT{Internal: cfg.NAT.InternalPrefix.String()}
	if len(des.NAT.Uplinks) > 0 {
		st.NAT.External = des.NAT.Uplinks[0].External.String()
		for _, u := range des.NAT.Uplinks {
			if u.WAN == des.Preferred {
				st.NAT.External = u.External.String()
			}
		}
	}
	if d.k != nil && d.k.NAT != nil {
		ns := d.k.NAT.Status()
		st.NAT.Installed = ns.Installed && v.natErr == ""
		st.NAT.Swaps, st.NAT.Restores = ns.Swaps, ns.Restores
		if !ns.LastSwap.IsZero() {
			st.NAT.LastSwap = ns.LastSwap.UTC().Format(time.RFC3339Nano)
		}
		st.NAT.Problem = ns.Problem
		st.NAT.LastSwapSeconds = ns.LastSwapDuration.Seconds()
	}
	if v.natErr != "" {
		st.NAT.Problem = v.natErr
		st.Problems = append(st.Problems, "nat: "+v.natErr)
	}

	for _, l := range cfg.LANs {
		ls := control.LAN{Interface: l.Interface, Mode: string(l.Mode), Managed: l.Managed, Other: l.Other, Prefixes: []control.Prefix{}}
		if a := d.ads[l.Interface]; a != nil {
			as := a.Status()
			ls.Managed, ls.Other = as.Managed, as.Other
			for _, p := range as.Prefixes {
				ls.Prefixes = append(ls.Prefixes, control.Prefix{Prefix: p.Prefix.String(), PreferredS: int64(p.Preferred / time.Second), ValidS: int64(p.Valid / time.Second)})
			}
			for _, p := range as.Deprecated {
				ls.Deprecated = append(ls.Deprecated, control.Prefix{Prefix: p.Prefix.String(), PreferredS: int64(p.Preferred / time.Second), ValidS: int64(p.Valid / time.Second)})
			}
			ls.RAsSent, ls.RSReceived = as.RAsSent, as.RSReceived
			for _, p := range as.Problems {
				st.Problems = append(st.Problems, l.Interface+": "+p)
			}
		}
		if srv := v.servers[l.Interface]; srv != nil {
			s := srv.Stats()
			ls.DHCP = &control.DHCP{Leases: s.Leases, Received: s.Received, Replied: s.Replied, Dropped: s.Dropped,
				DroppedBy: dropReasons(s), WriteErrors: s.WriteErrors, SaveErrors: s.SaveErrors}
			for _, dl := range v.delegations[l.Interface] {
				ls.DHCP.Delegations = append(ls.DHCP.Delegations, dl.Prefix.String()+" via "+dl.Via.String())
			}
		}
		st.LAN = append(st.LAN, ls)
	}

	st.HA = control.HA{Role: string(v.role)}
	if cfg.HA != nil {
		st.HA.VRID, st.HA.Priority = int(cfg.HA.VRID), int(cfg.HA.Priority)
		st.HA.Reason = v.roleWhy
		st.HA.LastTransition = v.roleAt.UTC().Format(time.RFC3339)
		st.HA.Transitions = v.transitions
		if d.pair != nil && d.pair.node != nil {
			if ns := d.pair.node.Status(); ns.Master.IsValid() {
				st.HA.Peer = ns.Master.String()
			}
		}
	}

	st.Addresses = []control.Address{}
	if d.k != nil && d.k.Addresses != nil {
		for _, a := range d.k.Addresses.Status() {
			st.Addresses = append(st.Addresses, control.Address{Interface: a.Interface, Address: a.Address.String(), State: string(a.State), Detail: a.Detail})
		}
		st.Problems = append(st.Problems, d.k.Addresses.Problems()...)
		st.DADFailures = d.k.Addresses.DADFailures()
	}
	slices.Sort(st.Problems)
	st.Problems = slices.Compact(st.Problems)
	return st
}

// dropReasons splits s.Dropped by reason (control.DropReasons). The
// counters are read one after the other while the server runs, so a reason
// may be a message ahead of Dropped: "other" never goes below zero.
func dropReasons(s dhcp6srv.Stats) map[string]uint64 {
	m := map[string]uint64{"rate_limited": s.RateLimited, "malformed": s.Malformed, "invalid": s.Invalid, "not_for_us": s.NotForUs, "other": 0}
	if known := s.RateLimited + s.Malformed + s.Invalid + s.NotForUs; s.Dropped > known {
		m["other"] = s.Dropped - known
	}
	return m
}
