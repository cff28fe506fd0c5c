package dhcp6srv

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// mode is what the client asked for, which decides whether a binding is
// created, extended or only proposed.
type mode uint8

const (
	modeAdvertise mode = iota // Solicit: propose, commit nothing
	modeRequest               // Request, rapid-commit Solicit: create
	modeRenew                 // Renew: extend, NoBinding when unknown
	modeRebind                // Rebind: extend, or create when appropriate
)

// ia is one IA option of a request, whichever its type.
type ia struct {
	kind   iaKind
	iaid   uint32
	listed []netip.Prefix // the addresses (as /128) or prefixes the client included
}

func requestIAs(m *dhcpv6.Message) []ia {
	var out []ia
	for _, o := range m.Options.IANA() {
		x := ia{kind: kindNA, iaid: binary.BigEndian.Uint32(o.IaId[:])}
		for _, a := range o.Options.Addresses() {
			if ip, ok := netip.AddrFromSlice(a.IPv6Addr); ok {
				x.listed = append(x.listed, netip.PrefixFrom(ip, 128))
			}
		}
		out = append(out, x)
	}
	for _, o := range m.Options.IAPD() {
		x := ia{kind: kindPD, iaid: binary.BigEndian.Uint32(o.IaId[:])}
		for _, p := range o.Options.Prefixes() {
			if p.Prefix == nil {
				continue
			}
			ip, ok := netip.AddrFromSlice(p.Prefix.IP)
			bits, total := p.Prefix.Mask.Size()
			if ok && total == 128 {
				if q, err := ip.Prefix(bits); err == nil {
					x.listed = append(x.listed, q)
				}
			}
		}
		out = append(out, x)
	}
	return out
}

// grant is one address or prefix in a reply.
type grant struct {
	res              netip.Prefix
	preferred, valid time.Duration
}

// iaReply is the answer for one IA: what goes in it, or a status.
type iaReply struct {
	ia
	grants []grant
	status iana.StatusCode
	text   string
}

func (r iaReply) option() dhcpv6.Option {
	var id [4]byte
	binary.BigEndian.PutUint32(id[:], r.iaid)
	var t1, t2 time.Duration
	for _, g := range r.grants {
		if g.preferred > 0 {
			// RFC 8415 §21.4: T1 and T2 at 0.5 and 0.8 of the shortest
			// preferred lifetime; whole seconds on the wire.
			t1 = (g.preferred / 2).Truncate(time.Second)
			t2 = (g.preferred * 4 / 5).Truncate(time.Second)
		}
	}
	var status dhcpv6.Option
	if r.status != iana.StatusSuccess {
		status = &dhcpv6.OptStatusCode{StatusCode: r.status, StatusMessage: r.text}
	}
	if r.kind == kindNA {
		o := &dhcpv6.OptIANA{IaId: id, T1: t1, T2: t2}
		for _, g := range r.grants {
			o.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: g.res.Addr().AsSlice(), PreferredLifetime: g.preferred, ValidLifetime: g.valid})
		}
		if status != nil {
			o.Options.Add(status)
		}
		return o
	}
	o := &dhcpv6.OptIAPD{IaId: id, T1: t1, T2: t2}
	for _, g := range r.grants {
		o.Options.Add(&dhcpv6.OptIAPrefix{Prefix: prefixNet(g.res), PreferredLifetime: g.preferred, ValidLifetime: g.valid})
	}
	if status != nil {
		o.Options.Add(status)
	}
	return o
}

func (h *Handler) solicit(now time.Time, m *dhcpv6.Message, client []byte, via netip.Addr) *dhcpv6.Message {
	md, typ := modeAdvertise, dhcpv6.MessageTypeAdvertise
	if h.cfg.RapidCommit && m.GetOneOption(dhcpv6.OptionRapidCommit) != nil {
		// RFC 8415 §18.3.1: with rapid commit the Reply commits at once.
		md, typ = modeRequest, dhcpv6.MessageTypeReply
	}
	r := h.newReply(typ, m)
	if md == modeRequest {
		r.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
	}
	for _, x := range requestIAs(m) {
		r.AddOption(h.answerIA(now, client, via, x, md).option())
	}
	answerTA(r, m)
	h.addInfo(r, m, false)
	return r
}

// answerTA declines every IA_TA: temporary addresses are not served (a
// host makes its own, RFC 8981), and RFC 8415 §18.3.1 wants the IA back
// with NoAddrsAvail rather than silence.
func answerTA(r, m *dhcpv6.Message) {
	for _, ta := range m.Options.IATA() {
		o := &dhcpv6.OptIATA{IaId: ta.IaId}
		o.Options.Add(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail, StatusMessage: "temporary addresses are not served"})
		r.AddOption(o)
	}
}

func (h *Handler) stateful(now time.Time, m *dhcpv6.Message, client []byte, via netip.Addr, md mode) *dhcpv6.Message {
	r := h.newReply(dhcpv6.MessageTypeReply, m)
	for _, x := range requestIAs(m) {
		r.AddOption(h.answerIA(now, client, via, x, md).option())
	}
	if md == modeRequest {
		answerTA(r, m)
	}
	h.addInfo(r, m, false)
	return r
}

// answerIA assigns, extends or proposes the lease of one IA.
func (h *Handler) answerIA(now time.Time, client []byte, via netip.Addr, x ia, md mode) iaReply {
	out := iaReply{ia: x}
	key := bindingKey{duid: string(client), iaid: x.iaid, kind: x.kind}
	p := h.pools[x.kind]
	b := h.bindings[key]
	if b != nil && b.res.IsValid() && !now.Before(b.validUntil) {
		h.drop(b) // expired: start afresh (the hash gives the same one back)
		b = nil
	}
	if md == modeRenew && b == nil {
		// RFC 8415 §18.3.4: Renew for an IA the server does not know.
		out.status, out.text = iana.StatusNoBinding, "no binding for this IA"
		return out
	}
	commit := md != modeAdvertise
	pref, valid := h.lifetimes(now)

	// What the client lists and may not keep is returned with zero
	// lifetimes (§18.3.4, §18.3.5), so it stops using it at once: stale
	// leases from before a renumbering, addresses not on the link, and
	// addresses bound to someone else.
	var zero []netip.Prefix
	if b != nil {
		for _, s := range b.stale {
			zero = append(zero, s.res)
		}
		if b.res.IsValid() && (p == nil || !p.onLink(b.res)) {
			zero = append(zero, b.res)
			if commit {
				h.unbind(b)
			}
		}
		if commit {
			b.stale = nil
		}
	}

	res := netip.Prefix{}
	if b != nil && b.res.IsValid() && p != nil && p.onLink(b.res) {
		res = b.res
	} else if p != nil && (md != modeRenew || b != nil) {
		res = h.pick(now, key, p, x.listed, md == modeRebind || md == modeRequest)
	}
	for _, l := range x.listed {
		// A bare length hint (::/60) is no lease to take back; in a
		// Request, a hint on the link that we could not honour is only
		// a wish, but one from another prefix is a lease the client
		// must stop using (it moved, or we renumbered).
		if l == res || l.Addr().IsUnspecified() || slices.Contains(zero, l) {
			continue
		}
		if md == modeAdvertise || md == modeRequest && p != nil && p.onLink(l) {
			continue
		}
		zero = append(zero, l)
	}
	if !res.IsValid() {
		out.status, out.text = iana.StatusNoAddrsAvail, "no addresses available"
		if x.kind == kindPD {
			out.status, out.text = iana.StatusNoPrefixAvail, "no prefixes available"
		}
		if p == nil {
			out.text = "not served on this link"
		}
	} else {
		out.grants = append(out.grants, grant{res: res, preferred: pref, valid: valid})
		if commit {
			h.bind(now, key, res, via, pref, valid)
		}
	}
	for _, z := range zero {
		out.grants = append(out.grants, grant{res: z})
	}
	return out
}

// pick chooses a free address or prefix for key: one the client listed
// when honourHint (a Rebind after the server lost its state, or a Request
// that follows our Advertise), otherwise the first free slot from the
// client's hashed first choice. Zero when the pool is exhausted.
func (h *Handler) pick(now time.Time, key bindingKey, p pool, listed []netip.Prefix, honourHint bool) netip.Prefix {
	if key.kind == kindPD && h.cfg.PDCount > 0 && h.activeDelegations(now, key) >= h.cfg.PDCount {
		return netip.Prefix{}
	}
	if honourHint {
		for _, l := range listed {
			if _, ok := p.index(l); ok && h.free(now, key, p, l) {
				return l
			}
		}
	}
	n := p.size()
	start := firstChoice(key, n)
	tries := n
	if n > fullScanLimit {
		tries = maxProbes
	}
	for i := uint64(0); i < tries; i++ {
		c := p.at((start + i) % n)
		if h.free(now, key, p, c) {
			return c
		}
	}
	return netip.Prefix{}
}

// free tells whether res may be given to key: nobody else holds it, it is
// not quarantined after a Decline, and it is not excluded from delegation.
func (h *Handler) free(now time.Time, key bindingKey, p pool, res netip.Prefix) bool {
	if !p.onLink(res) {
		return false
	}
	if o := h.owners[res]; o != nil && o.key != key && now.Before(o.validUntil) {
		return false
	}
	if until, ok := h.declined[res.Addr()]; ok && res.Bits() == 128 && now.Before(until) {
		return false
	}
	return true
}

func (h *Handler) activeDelegations(now time.Time, except bindingKey) int {
	n := 0
	for _, b := range h.bindings {
		if b.key.kind == kindPD && b.key != except && b.res.IsValid() && now.Before(b.validUntil) {
			n++
		}
	}
	return n
}

// bind records res for key, taking it over from an expired holder.
func (h *Handler) bind(now time.Time, key bindingKey, res netip.Prefix, via netip.Addr, pref, valid time.Duration) {
	if o := h.owners[res]; o != nil && o.key != key {
		h.unbind(o)
		if len(o.stale) == 0 {
			delete(h.bindings, o.key)
		}
	}
	b := h.bindings[key]
	if b == nil {
		b = &binding{key: key}
		h.bindings[key] = b
	}
	if b.res.IsValid() && b.res != res {
		h.unbind(b)
	}
	b.res, b.via = res, via
	b.preferredUntil, b.validUntil = now.Add(pref), now.Add(valid)
	h.owners[res] = b
	h.changed(key.kind)
}

// unbind forgets b's current resource (b itself stays in the table).
func (h *Handler) unbind(b *binding) {
	if b.res.IsValid() && h.owners[b.res] == b {
		delete(h.owners, b.res)
	}
	b.res = netip.Prefix{}
	h.changed(b.key.kind)
}

func (h *Handler) drop(b *binding) {
	h.unbind(b)
	delete(h.bindings, b.key)
}

func (h *Handler) changed(k iaKind) {
	h.gen++
	if k == kindPD {
		h.pdGen++
	}
}

// confirm answers whether the listed addresses are still on the link
// (RFC 8415 §18.3.3). Without addresses, or without a link prefix to
// compare against, there is nothing to answer.
func (h *Handler) confirm(m *dhcpv6.Message) (*dhcpv6.Message, error) {
	p := h.pools[kindNA]
	var listed []netip.Prefix
	for _, x := range requestIAs(m) {
		if x.kind == kindNA {
			listed = append(listed, x.listed...)
		}
	}
	if len(listed) == 0 || p == nil {
		return nil, ErrNoReply
	}
	code, text := iana.StatusSuccess, "all addresses on link"
	for _, l := range listed {
		if !p.onLink(l) {
			code, text = iana.StatusNotOnLink, "not on link"
			break
		}
	}
	r := h.newReply(dhcpv6.MessageTypeReply, m)
	r.AddOption(&dhcpv6.OptStatusCode{StatusCode: code, StatusMessage: text})
	return r, nil
}

// release frees the client's bindings (RFC 8415 §18.3.7); an IA we do
// not know is answered with NoBinding.
func (h *Handler) release(now time.Time, m *dhcpv6.Message, client []byte) *dhcpv6.Message {
	r := h.newReply(dhcpv6.MessageTypeReply, m)
	for _, x := range requestIAs(m) {
		b := h.bindings[bindingKey{duid: string(client), iaid: x.iaid, kind: x.kind}]
		if b == nil {
			r.AddOption(iaReply{ia: x, status: iana.StatusNoBinding, text: "no binding"}.option())
			continue
		}
		h.drop(b)
	}
	r.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess, StatusMessage: "released"})
	return r
}

// decline quarantines the addresses a client found in use on the link
// (RFC 8415 §18.3.8): they are not handed out again for DeclineQuarantine.
func (h *Handler) decline(now time.Time, m *dhcpv6.Message, client []byte) *dhcpv6.Message {
	r := h.newReply(dhcpv6.MessageTypeReply, m)
	for _, x := range requestIAs(m) {
		if x.kind != kindNA {
			continue
		}
		b := h.bindings[bindingKey{duid: string(client), iaid: x.iaid, kind: x.kind}]
		if b == nil {
			r.AddOption(iaReply{ia: x, status: iana.StatusNoBinding, text: "no binding"}.option())
			continue
		}
		for _, l := range x.listed {
			if l == b.res {
				h.declined[l.Addr()] = now.Add(h.cfg.DeclineQuarantine)
				h.cfg.Logger.Warn("dhcp6srv: address declined, quarantined", "iface", h.cfg.Interface, "prefix", l, "until", now.Add(h.cfg.DeclineQuarantine))
				h.drop(b)
			}
		}
	}
	r.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess, StatusMessage: "declined"})
	return r
}
