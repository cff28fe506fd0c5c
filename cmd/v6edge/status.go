package main

import (
	"maps"
	"slices"
	"time"

	"github.com/v6edge/v6edge/dhcp6pd"
	"github.com/v6edge/v6edge/internal/control"
	"github.com/v6edge/v6edge/internal/netif"
)

// buildStatus assembles the SPEC.md status document from every part's own
// status. It only reads snapshots, so the control socket never waits on the
// kernel or the network.
func (d *daemon) buildStatus() control.Status {
	d.mu.Lock()
	cfg, des, role, roleWhy, roleAt, natErr := d.cfg, d.desired, d.role, d.roleWhy, d.roleAt, d.natErr
	snaps := make(map[string]dhcp6pd.Snapshot, len(d.snaps))
	for k, v := range d.snaps {
		snaps[k] = v
	}
	prefixChanges := maps.Clone(d.prefixChanges)
	healthy := maps.Clone(d.healthy)
	failoverAt, failoverWhy := d.failoverAt, d.failoverWhy
	messages := map[string]map[string]uint64{}
	for k, v := range d.messages {
		messages[k] = maps.Clone(v)
	}
	d.mu.Unlock()

	st := control.Status{Version: version, Started: d.started.UTC().Format(time.RFC3339), Problems: []string{}}
	st.Problems = append(st.Problems, des.Problems...)
	for _, w := range cfg.WANs {
		s := snaps[w.Interface]
		ws := control.WAN{Interface: w.Interface, State: string(s.State), DUID: dhcp6pd.FormatDUID(s.DUID),
			Healthy: healthy == nil || healthy[w.Interface], Preferred: des.Preferred == w.Interface}
		if d.uplinks != nil {
			ws.Unhealthy = d.uplinks.reason(w.Interface)
		}
		if ws.State == "" {
			ws.State = "init"
		}
		if l := s.Lease; l != nil {
			chosen, ok := l.Chosen(w.PrefixLength)
			if ok {
				ws.Prefix = chosen.Prefix.String()
				ws.PreferredUntil = l.Acquired.Add(chosen.Preferred).UTC().Format(time.RFC3339)
				ws.ValidUntil = l.Acquired.Add(chosen.Valid).UTC().Format(time.RFC3339)
			}
			for _, p := range l.Prefixes {
				if !ok || p.Prefix != chosen.Prefix {
					ws.OtherPrefixes = append(ws.OtherPrefixes, p.Prefix.String())
				}
			}
			ws.ServerDUID = dhcp6pd.FormatDUID(l.ServerID)
		}
		if d.nl != nil {
			if gw, ok, err := netif.DefaultRouter(d.nl, w.Interface); err == nil && ok {
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
		ws.PrefixChanges = prefixChanges[w.Interface]
		if !failoverAt.IsZero() {
			ws.LastFailover, ws.LastFailoverWhy = failoverAt.UTC().Format(time.RFC3339), failoverWhy
		}
		ws.Messages = messages[w.Interface]
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
	if d.table != nil {
		ns := d.table.Status()
		st.NAT.Installed = ns.Installed && natErr == ""
		st.NAT.Swaps, st.NAT.Restores = ns.Swaps, ns.Restores
		if !ns.LastSwap.IsZero() {
			st.NAT.LastSwap = ns.LastSwap.UTC().Format(time.RFC3339Nano)
		}
		st.NAT.Problem = ns.Problem
		st.NAT.LastSwapSeconds = ns.LastSwapDuration.Seconds()
	}
	if natErr != "" {
		st.NAT.Problem = natErr
		st.Problems = append(st.Problems, "nat: "+natErr)
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
		if d.servers != nil {
			ls.DHCP = d.servers.status(l.Interface)
		}
		st.LAN = append(st.LAN, ls)
	}

	st.HA = control.HA{Role: string(role)}
	if cfg.HA != nil {
		st.HA.VRID, st.HA.Priority = int(cfg.HA.VRID), int(cfg.HA.Priority)
		st.HA.Reason = roleWhy
		st.HA.LastTransition = roleAt.UTC().Format(time.RFC3339)
		st.HA.Transitions = d.transitions.Load()
		if d.pair != nil && d.pair.node != nil {
			ns := d.pair.node.Status()
			if ns.Master.IsValid() {
				st.HA.Peer = ns.Master.String()
			}
		}
	}

	st.Addresses = []control.Address{}
	if d.tracker != nil {
		for _, a := range d.tracker.Status() {
			st.Addresses = append(st.Addresses, control.Address{Interface: a.Interface, Address: a.Address.String(), State: string(a.State), Detail: a.Detail})
		}
		st.Problems = append(st.Problems, d.tracker.Problems()...)
		st.DADFailures = d.tracker.DADFailures()
	}
	if d.uplinks != nil {
		st.Problems = append(st.Problems, d.uplinks.problems(cfg)...)
	}
	slices.Sort(st.Problems)
	st.Problems = slices.Compact(st.Problems)
	return st
}
