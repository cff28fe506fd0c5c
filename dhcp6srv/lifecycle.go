package dhcp6srv

import (
	"net/netip"
	"time"
)

// Expire forgets leases, stale leases and Decline quarantines that ended
// by now, calls OnPD when delegations ended, and returns when the next one
// ends (zero when nothing is pending).
func (h *Handler) Expire(now time.Time) (next time.Time) {
	h.mu.Lock()
	pdGen := h.pdGen
	next = h.expire(now)
	notify := h.pdNotifier(now, pdGen)
	h.mu.Unlock()
	if notify != nil {
		notify()
	}
	return next
}

func (h *Handler) expire(now time.Time) (next time.Time) {
	earliest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, b := range h.bindings {
		kept := b.stale[:0]
		for _, s := range b.stale {
			if now.Before(s.validUntil) {
				kept = append(kept, s)
				earliest(s.validUntil)
			}
		}
		if len(kept) != len(b.stale) {
			h.gen++
		}
		b.stale = kept
		if b.res.IsValid() && !now.Before(b.validUntil) {
			h.unbind(b)
		}
		if b.res.IsValid() {
			earliest(b.validUntil)
		}
		if !b.res.IsValid() && len(b.stale) == 0 {
			delete(h.bindings, b.key)
		}
	}
	for a, until := range h.declined {
		if !now.Before(until) {
			delete(h.declined, a)
		} else {
			earliest(until)
		}
	}
	return next
}

// Update installs a new configuration, typically after the upstream
// prefix changed (renumbering) or its lifetime did. Every lease outside the
// new pools becomes stale: it is reported with zero lifetimes at the
// client's next Renew or Rebind (RFC 8415 §18.3.4), and the client is
// moved right away to the same interface identifier or sub-prefix number
// in the new pool when that is free. Delegations thus move at once and
// OnPD is called with their new prefixes. Leases that would outlive a new
// LifetimeCap are cut to it.
func (h *Handler) Update(cfg Config) {
	h.mu.Lock()
	// The one place the Handler reads a clock (cfg.Now, default
	// time.Now): the moves keep each lease's end and only need to know
	// which leases have ended already.
	pdGen := h.pdGen
	h.configure(cfg)
	now := h.cfg.Now()
	h.rehome(now)
	notify := h.pdNotifier(now, pdGen)
	h.mu.Unlock()
	if notify != nil {
		notify()
	}
}

// rehome moves bindings that no longer fit the configuration and cuts
// lifetimes to the cap.
func (h *Handler) rehome(now time.Time) {
	capAt := h.cfg.LifetimeCap
	for _, b := range h.bindings {
		if !b.res.IsValid() {
			continue
		}
		if !capAt.IsZero() {
			if b.validUntil.After(capAt) {
				b.validUntil = capAt
				h.changed(b.key.kind)
			}
			if b.preferredUntil.After(capAt) {
				b.preferredUntil = capAt
			}
		}
		p := h.pools[b.key.kind]
		if p != nil && p.onLink(b.res) {
			continue
		}
		old, pref, valid := b.res, b.preferredUntil, b.validUntil
		b.stale = append(b.stale, staleLease{res: old, validUntil: valid})
		h.unbind(b)
		if p == nil || !now.Before(valid) {
			continue
		}
		if i, ok := p.moved(old); ok && h.free(now, b.key, p, p.at(i)) {
			h.bind(now, b.key, p.at(i), b.via, pref.Sub(now), valid.Sub(now))
			h.cfg.Logger.Info("dhcp6srv: lease moved to the new prefix", "iface", h.cfg.Interface, "prefix", p.at(i), "old", old)
		}
	}
}

// Restore loads leases saved by an earlier run; expired ones are dropped
// and ones that no longer fit the configuration are moved as by Update.
func (h *Handler) Restore(now time.Time, leases []Lease) {
	h.mu.Lock()
	pdGen := h.pdGen
	for _, l := range leases {
		if !now.Before(l.ValidUntil) || len(l.DUID) == 0 {
			continue
		}
		key := bindingKey{duid: string(l.DUID), iaid: l.IAID}
		res := l.Prefix
		if l.Addr.IsValid() {
			res = netip.PrefixFrom(l.Addr, 128)
		} else {
			key.kind = kindPD
		}
		if !res.IsValid() || h.owners[res] != nil {
			continue
		}
		b := &binding{key: key, res: res, via: l.Via, preferredUntil: l.PreferredUntil, validUntil: l.ValidUntil}
		if old := h.bindings[key]; old != nil {
			h.unbind(old)
		}
		h.bindings[key] = b
		h.owners[res] = b
		h.changed(key.kind)
	}
	h.rehome(now)
	notify := h.pdNotifier(now, pdGen)
	h.mu.Unlock()
	if notify != nil {
		notify()
	}
}
