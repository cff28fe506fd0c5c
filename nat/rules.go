package nat

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/v6edge/v6edge/internal/nft"
)

// Chain names inside our table.
const (
	ChainPrerouting  = "prerouting"
	ChainPostrouting = "postrouting"
	// ChainHairpin is a regular chain that prerouting jumps to for LAN traffic to an
	// external address. Its rules depend on the LANs and the internal prefix only, so a
	// renumbering never rewrites them, however many LANs there are.
	ChainHairpin = "hairpin"
	// ChainGuard drops what would leave a WAN with an internal source: it
	// runs after source NAT, so only packets no mapping translated are left
	// with one — before the first lease, after expiry, on an HA node that
	// took over before it knew the prefix. The upstream would drop them
	// anyway (BCP 38); dropping them here keeps internal addresses off the
	// WAN and is what "never a packet leaves untranslated" means.
	ChainGuard = "guard"
)

// ifNameSize is IFNAMSIZ: interface names travel to the kernel NUL padded to 16 bytes.
const ifNameSize = nft.IfNameSize

// Offsets of the IPv6 source and destination addresses in the network header (RFC 8200 §3).
const (
	offsetSaddr = 8
	offsetDaddr = 24
)

// Uplink is one upstream: the WAN interface and the delegated prefix the internal prefix is
// mapped onto there.
type Uplink struct {
	WAN      string       // interface name
	External netip.Prefix // the delegated prefix, already fitted to the internal length (see Fit)
	// Internal, when set, is the block of the Ruleset's internal prefix that is mapped onto
	// External, of External's length: a delegation longer than the internal prefix (a /60
	// for a /56) holds only its first /60. Unset: the whole internal prefix.
	Internal netip.Prefix
	// Exclude are prefixes inside External that are never translated (RFC 6603 PD Exclude:
	// the ISP numbers its link from them): traffic to them is routed, and the internal /64s
	// that would map onto them are not translated out (the guard drops them).
	Exclude []netip.Prefix
	// Mark, when > 0 and there is more than one uplink, is set as the conntrack mark of flows
	// arriving on WAN, so that their replies can be routed back by the same uplink.
	Mark uint32
}

// internalOf is the internal block mapped onto u.External.
func (r Ruleset) internalOf(u Uplink) netip.Prefix {
	if u.Internal.IsValid() {
		return u.Internal
	}
	return r.Internal
}

// MapPrefix is what NETMAP makes of p when it translates from onto to (both of the same
// length): to's bits, then p's beyond that length. Invalid when p is not inside from or is
// shorter than it.
func MapPrefix(p, from, to netip.Prefix) netip.Prefix {
	if !p.IsValid() || !from.IsValid() || !to.IsValid() || from.Bits() != to.Bits() || p.Bits() < from.Bits() || !from.Contains(p.Addr()) {
		return netip.Prefix{}
	}
	a, t := p.Masked().Addr().As16(), to.Masked().Addr().As16()
	for i := range 16 {
		bits := min(max(to.Bits()-8*i, 0), 8)
		mask := byte(0xff << (8 - bits))
		a[i] = a[i]&^mask | t[i]&mask
	}
	return netip.PrefixFrom(netip.AddrFrom16(a), p.Bits())
}

// Ruleset is the desired NAT state, rendered as a whole into our table.
type Ruleset struct {
	Internal netip.Prefix // the ULA used inside, e.g. fd00:aaaa:bbbb:cc00::/56
	LANs     []string     // LAN interfaces: where hairpin traffic may come from
	Hairpin  bool         // LAN hosts may reach LAN hosts through the external prefix
	Uplinks  []Uplink     // empty: the table exists with empty chains
	// WANs are every uplink interface, with or without a mapping now: the
	// guard chain drops internal sources leaving any of them.
	WANs []string
	// Direct are /64s of the external prefixes that LAN hosts hold as they
	// are (a LAN advertising "external" or "both"): traffic to them is
	// routed, not translated, or a host whose global and ULA interface ids
	// differ (stable privacy, temporary addresses) would be unreachable.
	Direct []netip.Prefix
}

// Check reports what makes uplinks (or the whole Ruleset) unusable. Render leaves those
// uplinks out; every other uplink is still mapped. Length mismatches wrap ErrLength.
func (r Ruleset) Check() error {
	if len(r.Uplinks) == 0 {
		return nil
	}
	if err := checkInternal(r.Internal); err != nil {
		return err
	}
	var errs []error
	for i := range r.Uplinks {
		if err := r.checkUplink(i); err != nil {
			errs = append(errs, err)
		}
	}
	for _, lan := range slices.Concat(r.LANs, r.WANs) {
		if lan == "" || len(lan) >= ifNameSize {
			errs = append(errs, fmt.Errorf("nat: LAN interface name %q is not a valid interface name", lan))
		}
	}
	return errors.Join(errs...)
}

func checkInternal(p netip.Prefix) error {
	if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() == 0 {
		return fmt.Errorf("nat: internal prefix %v is not an IPv6 prefix", p)
	}
	if p.Masked() != p {
		return fmt.Errorf("nat: internal prefix %v has host bits set (did you mean %v?)", p, p.Masked())
	}
	return nil
}

// checkUplink validates r.Uplinks[i] against the internal prefix and the uplinks before it.
func (r Ruleset) checkUplink(i int) error {
	u := r.Uplinks[i]
	if u.WAN == "" || len(u.WAN) >= ifNameSize {
		return fmt.Errorf("nat: uplink %d: %q is not a valid interface name", i, u.WAN)
	}
	if !u.External.IsValid() || !u.External.Addr().Is6() || u.External.Addr().Is4In6() {
		return fmt.Errorf("nat: uplink %s: external prefix %v is not an IPv6 prefix", u.WAN, u.External)
	}
	in := r.internalOf(u)
	if u.Internal.IsValid() && (u.Internal.Masked() != u.Internal || u.Internal.Bits() < r.Internal.Bits() || !r.Internal.Contains(u.Internal.Addr())) {
		return fmt.Errorf("nat: uplink %s: internal block %v is not a block of %v", u.WAN, u.Internal, r.Internal)
	}
	if u.External.Bits() != in.Bits() {
		return fmt.Errorf("nat: uplink %s: external %v is a /%d but internal %v is a /%d; no mapping installed: %w",
			u.WAN, u.External, u.External.Bits(), in, in.Bits(), ErrLength)
	}
	for _, x := range u.Exclude {
		if !x.IsValid() || x.Bits() < u.External.Bits() || !u.External.Contains(x.Addr()) {
			return fmt.Errorf("nat: uplink %s: excluded prefix %v is not inside %v", u.WAN, x, u.External)
		}
	}
	if u.External.Masked() != u.External {
		return fmt.Errorf("nat: uplink %s: external prefix %v has host bits set", u.WAN, u.External)
	}
	for _, prev := range r.Uplinks[:i] {
		if prev.WAN == u.WAN {
			return fmt.Errorf("nat: uplink %s listed twice", u.WAN)
		}
	}
	return nil
}

// RuleSpec is one rendered rule: the chain it lives in, the uplink whose pair it belongs to,
// and its text as `nft list` prints it. It also carries the expressions Table sends.
type RuleSpec struct {
	Chain  string // ChainPrerouting or ChainPostrouting
	Uplink string // the WAN this rule belongs to; "" for the hairpin chain's rules
	Text   string

	exprs []expr.Any
}

// Render turns a Ruleset into the rules of our table: per uplink, the inbound dnat (and its
// ct mark when multihomed) and the jump to the hairpin chain in prerouting, the outbound
// snat in postrouting; once, the hairpin snat in postrouting and the hairpin chain's dnat
// per LAN. Uplinks that fail Check are left out. Pure: golden tests
// compare its output.
func Render(r Ruleset) []RuleSpec {
	if checkInternal(r.Internal) != nil {
		return nil
	}
	guard := renderGuard(r)
	if len(r.Uplinks) == 0 {
		return guard
	}
	lans := slices.Clone(r.LANs)
	slices.Sort(lans)
	lans = slices.Compact(lans)
	lans = slices.DeleteFunc(lans, func(s string) bool { return s == "" || len(s) >= ifNameSize })

	var pre, post []RuleSpec
	var wans []string   // of the mapped uplinks
	var narrow []Uplink // mapped uplinks whose internal block is narrower than the prefix
	hairpinSnat := false
	for i, u := range r.Uplinks {
		if r.checkUplink(i) != nil {
			continue
		}
		add := func(list *[]RuleSpec, chain string, b *builder) {
			*list = append(*list, RuleSpec{Chain: chain, Uplink: u.WAN, Text: b.String(), exprs: b.Exprs})
		}
		if u.Mark > 0 && len(r.Uplinks) > 1 {
			// nat chains see only a connection's first packet, which is exactly when the
			// mark has to be put on the conntrack entry.
			b := new(builder)
			b.IfName(expr.MetaKeyIIFNAME, "iifname", expr.CmpOpEq, u.WAN)
			b.CtMarkSet(u.Mark)
			add(&pre, ChainPrerouting, b)
		}

		in := r.internalOf(u)
		for _, d := range slices.Concat(r.Direct, u.Exclude) {
			if !d.IsValid() || !u.External.Contains(d.Masked().Addr()) || d.Bits() < u.External.Bits() {
				continue
			}
			// Before the inbound dnat and the hairpin jump: from the WAN
			// or the LAN, these addresses are the hosts' own.
			b := new(builder)
			b.addr(offsetDaddr, "ip6 daddr", d.Masked())
			b.Add("accept", &expr.Verdict{Kind: expr.VerdictAccept})
			add(&pre, ChainPrerouting, b)
		}

		b := new(builder)
		b.IfName(expr.MetaKeyIIFNAME, "iifname", expr.CmpOpEq, u.WAN)
		b.addr(offsetDaddr, "ip6 daddr", u.External)
		b.netmap(expr.NATTypeDestNAT, "dnat", in)
		add(&pre, ChainPrerouting, b)

		if r.Hairpin {
			// A LAN host talks to another LAN host's external address: the hairpin
			// chain translates the destination back to the internal one ...
			b := new(builder)
			b.addr(offsetSaddr, "ip6 saddr", r.Internal)
			b.addr(offsetDaddr, "ip6 daddr", u.External)
			b.jump(ChainHairpin)
			add(&pre, ChainPrerouting, b)
			wans = append(wans, u.WAN)
		}

		for _, x := range u.Exclude {
			// The internal addresses that would map onto an excluded prefix
			// leave untranslated, which the guard drops.
			if ix := MapPrefix(x, u.External, in); ix.IsValid() {
				b := new(builder)
				b.IfName(expr.MetaKeyOIFNAME, "oifname", expr.CmpOpEq, u.WAN)
				b.addr(offsetSaddr, "ip6 saddr", ix)
				b.Add("accept", &expr.Verdict{Kind: expr.VerdictAccept})
				add(&post, ChainPostrouting, b)
			}
		}
		b = new(builder)
		b.IfName(expr.MetaKeyOIFNAME, "oifname", expr.CmpOpEq, u.WAN)
		b.addr(offsetSaddr, "ip6 saddr", in)
		b.netmap(expr.NATTypeSourceNAT, "snat", u.External)
		add(&post, ChainPostrouting, b)
		if in != r.Internal && r.Hairpin {
			narrow = append(narrow, u)
		}

		if r.Hairpin && !hairpinSnat {
			// ... and the source to an external address here, so the peer answers
			// through the router (where conntrack reverses both translations) instead
			// of straight to an internal address the sender never talked to. Internal
			// to internal after a dnat is a hairpin flow whichever uplink's address was
			// dialled; one rule, with the first uplink's prefix, covers them all.
			// (Matching the conntrack's original destination instead would need a ct
			// direction, which google/nftables v0.3.0 cannot read back.)
			hairpinSnat = true
			b := new(builder)
			b.addr(offsetSaddr, "ip6 saddr", in)
			b.addr(offsetDaddr, "ip6 daddr", r.Internal)
			b.ctStatusDnat()
			b.netmap(expr.NATTypeSourceNAT, "snat", u.External)
			add(&post, ChainPostrouting, b)
		}
	}
	var hairpin []RuleSpec
	if r.Hairpin && len(wans) > 0 {
		// NETMAP keeps the host bits whichever external prefix was dialled, so one
		// rule per LAN serves every uplink. One rule per LAN rather than an anonymous
		// set: google/nftables v0.3.0 marks such a set's keys big endian, and nft then
		// lists every interface name as "". Without LANs, anything but a WAN counts.
		from := lans
		if len(from) == 0 {
			from = []string{""}
		}
		// An uplink that maps only a block of the internal prefix needs its
		// own translation back, ahead of the one that serves the others.
		for _, u := range narrow {
			b := new(builder)
			b.addr(offsetDaddr, "ip6 daddr", u.External)
			b.netmap(expr.NATTypeDestNAT, "dnat", r.internalOf(u))
			hairpin = append(hairpin, RuleSpec{Chain: ChainHairpin, Uplink: u.WAN, Text: b.String(), exprs: b.Exprs})
		}
		for _, lan := range from {
			b := new(builder)
			if lan == "" {
				for _, w := range wans {
					b.IfName(expr.MetaKeyIIFNAME, "iifname", expr.CmpOpNeq, w)
				}
			} else {
				b.IfName(expr.MetaKeyIIFNAME, "iifname", expr.CmpOpEq, lan)
			}
			b.netmap(expr.NATTypeDestNAT, "dnat", r.Internal)
			hairpin = append(hairpin, RuleSpec{Chain: ChainHairpin, Text: b.String(), exprs: b.Exprs})
		}
	}
	return slices.Concat(pre, post, hairpin, guard)
}

// renderGuard drops internal sources leaving a WAN untranslated (see
// ChainGuard). Its rules belong to no uplink, so renumbering never
// rewrites them.
func renderGuard(r Ruleset) []RuleSpec {
	wans := slices.Clone(r.WANs)
	slices.Sort(wans)
	wans = slices.Compact(wans)
	var out []RuleSpec
	for _, w := range wans {
		if w == "" || len(w) >= ifNameSize {
			continue
		}
		b := new(builder)
		b.IfName(expr.MetaKeyOIFNAME, "oifname", expr.CmpOpEq, w)
		b.addr(offsetSaddr, "ip6 saddr", r.Internal)
		b.Add("drop", &expr.Verdict{Kind: expr.VerdictDrop})
		out = append(out, RuleSpec{Chain: ChainGuard, Text: b.String(), exprs: b.Exprs})
	}
	return out
}

// Format prints rendered rules as `nft list table ip6 <name>` does, so that golden files,
// the differential test and an operator's `nft list` all read the same.
func Format(name string, rules []RuleSpec) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "table ip6 %s {\n", name)
	for i, c := range []struct{ name, hook string }{
		{ChainHairpin, ""}, // created first: prerouting jumps to it
		{ChainPrerouting, "type nat hook prerouting priority dstnat; policy accept;"},
		{ChainPostrouting, "type nat hook postrouting priority srcnat; policy accept;"},
		{ChainGuard, "type filter hook postrouting priority srcnat + 10; policy accept;"},
	} {
		if i > 0 {
			sb.WriteString("\n")
		}
		fmt.Fprintf(&sb, "\tchain %s {\n", c.name)
		if c.hook != "" {
			fmt.Fprintf(&sb, "\t\t%s\n", c.hook)
		}
		for _, r := range rules {
			if r.Chain == c.name {
				fmt.Fprintf(&sb, "\t\t%s\n", r.Text)
			}
		}
		sb.WriteString("\t}\n")
	}
	sb.WriteString("}\n")
	return sb.String()
}

// builder writes one rule's text and expressions side by side, so they cannot disagree.
type builder struct{ nft.Builder }

// addr matches a payload address against a prefix the way nft encodes it: a whole-byte
// prefix compares only its bytes, any other length masks all 16.
func (b *builder) addr(offset uint32, word string, p netip.Prefix) {
	b.Words = append(b.Words, word+" "+prefixText(p))
	a := p.Addr().As16()
	if p.Bits()%8 == 0 {
		n := uint32(p.Bits() / 8)
		b.Exprs = append(b.Exprs,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:n]},
		)
		return
	}
	b.Exprs = append(b.Exprs, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 16})
	b.masked(p)
}

// ctStatusDnat matches connections whose destination was translated (IPS_DST_NAT).
func (b *builder) ctStatusDnat() {
	b.Words = append(b.Words, "ct status dnat")
	mask := nft.U32(ipsDstNAT) // ct status is a host-order u32
	b.Exprs = append(b.Exprs,
		&expr.Ct{Key: expr.CtKeySTATUS, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	)
}

// ipsDstNAT is IPS_DST_NAT from linux/netfilter/nf_conntrack_common.h.
const ipsDstNAT = 1 << 5

func (b *builder) masked(p netip.Prefix) {
	a := p.Addr().As16()
	mask := prefixMask(p.Bits())
	if p.Bits() < 128 {
		b.Exprs = append(b.Exprs, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16, Mask: mask[:], Xor: make([]byte, 16)})
	}
	b.Exprs = append(b.Exprs, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]})
}

func (b *builder) jump(chain string) {
	b.Add("jump "+chain, &expr.Verdict{Kind: expr.VerdictJump, Chain: chain})
}

// netmap is NETMAP: the address range of `to` in registers 1 and 2 with the prefix flag, so
// the kernel keeps the host bits and replaces the prefix bits.
func (b *builder) netmap(typ expr.NATType, word string, to netip.Prefix) {
	b.Words = append(b.Words, word+" prefix to "+prefixText(to))
	first := to.Addr().As16()
	last := first
	mask := prefixMask(to.Bits())
	for i := range last {
		last[i] |= ^mask[i]
	}
	b.Exprs = append(b.Exprs,
		&expr.Immediate{Register: 1, Data: first[:]},
		&expr.Immediate{Register: 2, Data: last[:]},
		&expr.NAT{Type: typ, Family: unix.NFPROTO_IPV6, RegAddrMin: 1, RegAddrMax: 2, Prefix: true},
	)
}

func prefixMask(bits int) [16]byte {
	var m [16]byte
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return m
}

// prefixText prints a prefix as nft does: a /128 as a bare address.
func prefixText(p netip.Prefix) string {
	if p.Bits() == 128 {
		return p.Addr().String()
	}
	return p.String()
}
