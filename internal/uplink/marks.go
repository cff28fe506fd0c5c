package uplink

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// MarksTable is the name of the nftables table (family ip6) that Marks owns.
const MarksTable = "v6edge-policy"

// Chains of the marks table. Both are filter chains at the mangle priority (-150): after
// conntrack (-200) has found the packet's flow, before routing (prerouting) and before
// conntrack confirms a new flow (postrouting), so a mark set there is stored with the flow.
const (
	ChainMarkIn  = "prerouting"
	ChainMarkOut = "postrouting"
)

// MarkSpec is one rule of the marks table, as nft lists it, with its expressions.
type MarkSpec struct {
	Chain string
	Text  string
	exprs []expr.Any
}

// RenderMarks returns the rules of the marks table:
//
//   - prerouting, per LAN: `iifname "lan0" meta mark set ct mark`. A packet from a LAN
//     carries its flow's uplink as packet mark, which the fwmark rules route by. (Without
//     LANs: the same for any packet from the internal prefix.)
//   - postrouting, per uplink with a mark: `oifname "wan0" ct mark 0x00000000 ct mark set
//     <mark>`. A new flow that leaves by an uplink (outbound from a LAN, or the router's
//     own probe) is tied to it, like nat ties inbound flows to the uplink they came in by.
//     Established flows therefore keep their uplink when the preferred uplink changes.
//
// Empty when no uplink has a mark (one uplink needs no marks).
func RenderMarks(p Policy) []MarkSpec {
	var out []MarkSpec
	for i, u := range p.Uplinks {
		if u.Mark == 0 || p.checkUplink(i) != nil {
			continue
		}
		b := new(exprs)
		b.ifname(expr.MetaKeyOIFNAME, "oifname", u.Interface)
		b.ctMarkIs(0)
		b.ctMarkSet(u.Mark)
		out = append(out, MarkSpec{Chain: ChainMarkOut, Text: b.text(), exprs: b.list})
	}
	if len(out) == 0 {
		return nil
	}
	var in []MarkSpec
	seen := map[string]bool{}
	for _, lan := range p.LANs {
		if lan == "" || len(lan) >= 16 || seen[lan] {
			continue
		}
		seen[lan] = true
		b := new(exprs)
		b.ifname(expr.MetaKeyIIFNAME, "iifname", lan)
		b.metaMarkFromCt()
		in = append(in, MarkSpec{Chain: ChainMarkIn, Text: b.text(), exprs: b.list})
	}
	if len(in) == 0 && p.Internal.IsValid() && p.Internal.Addr().Is6() {
		b := new(exprs)
		b.saddr(p.Internal.Masked())
		b.metaMarkFromCt()
		in = append(in, MarkSpec{Chain: ChainMarkIn, Text: b.text(), exprs: b.list})
	}
	return append(in, out...)
}

// FormatMarks prints the marks table as `nft list table ip6 v6edge-policy` does; "" when
// there is no table.
func FormatMarks(rules []MarkSpec) string {
	if len(rules) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table ip6 %s {\n", MarksTable)
	for i, chain := range []string{ChainMarkIn, ChainMarkOut} {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority mangle; policy accept;\n", chain, chain)
		for _, r := range rules {
			if r.Chain == chain {
				fmt.Fprintf(&b, "\t\t%s\n", r.Text)
			}
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// exprs builds one rule's expressions and its nft text side by side.
type exprs struct {
	words []string
	list  []expr.Any
}

func (e *exprs) text() string { return strings.Join(e.words, " ") }

func (e *exprs) ifname(key expr.MetaKey, word, name string) {
	e.words = append(e.words, fmt.Sprintf("%s %q", word, name))
	data := make([]byte, 16) // IFNAMSIZ, NUL padded as the kernel compares it
	copy(data, name)
	e.list = append(e.list,
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data})
}

func (e *exprs) saddr(p netip.Prefix) {
	e.words = append(e.words, "ip6 saddr "+p.String())
	a := p.Addr().As16()
	n := uint32((p.Bits() + 7) / 8)
	e.list = append(e.list, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offsetSaddr, Len: n})
	if p.Bits()%8 != 0 {
		mask := make([]byte, n)
		for i := range p.Bits() {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		e.list = append(e.list, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	e.list = append(e.list, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:n]})
}

// offsetSaddr is where the source address starts in the IPv6 header (RFC 8200 §3).
const offsetSaddr = 8

func (e *exprs) ctMarkIs(mark uint32) {
	e.words = append(e.words, fmt.Sprintf("ct mark 0x%08x", mark))
	e.list = append(e.list,
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: u32(mark)})
}

func (e *exprs) ctMarkSet(mark uint32) {
	e.words = append(e.words, fmt.Sprintf("ct mark set 0x%08x", mark))
	e.list = append(e.list,
		&expr.Immediate{Register: 1, Data: u32(mark)},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true})
}

func (e *exprs) metaMarkFromCt() {
	e.words = append(e.words, "meta mark set ct mark")
	e.list = append(e.list,
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true})
}

// u32 encodes a mark: marks are host-order u32 in the kernel.
func u32(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}

// NFTConn is the part of *nftables.Conn that Marks uses. Every call but Flush only queues a
// message; Flush sends the queue as one atomic batch.
type NFTConn interface {
	AddTable(*nftables.Table) *nftables.Table
	DelTable(*nftables.Table)
	AddChain(*nftables.Chain) *nftables.Chain
	AddRule(*nftables.Rule) *nftables.Rule
	GetRules(*nftables.Table, *nftables.Chain) ([]*nftables.Rule, error)
	Flush() error
}

var _ NFTConn = (*nftables.Conn)(nil)

// Marks keeps the marks table (RenderMarks) in the kernel. It touches no other table.
type Marks struct {
	c     NFTConn
	log   *slog.Logger
	close func() error
	last  string // FormatMarks of what is installed; "" when nothing is
	set   bool   // Set succeeded at least once
}

// NewMarks returns a Marks talking to nftables in the network namespace open at nsFd (-1:
// the current one).
func NewMarks(nsFd int, log *slog.Logger) (*Marks, error) {
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if nsFd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(nsFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("uplink: opening nftables netlink connection: %w", err)
	}
	m := NewMarksConn(c, log)
	m.close = c.CloseLasting
	return m, nil
}

// NewMarksConn returns a Marks that talks through c (a *nftables.Conn or a fake).
func NewMarksConn(c NFTConn, log *slog.Logger) *Marks {
	return &Marks{c: c, log: log, close: func() error { return nil }}
}

// Close releases the netlink connection; the table stays.
func (m *Marks) Close() error { return m.close() }

// Set makes the marks table match p in one batch: the table is created if missing and
// deleted and recreated inside the same transaction, so there is no moment without marks.
// An unchanged p sends nothing (it only reads the rules back, to rebuild a table that
// something else removed or changed). A p that needs no marks removes the table.
func (m *Marks) Set(p Policy) error {
	rules := RenderMarks(p)
	text := FormatMarks(rules)
	table := &nftables.Table{Family: nftables.TableFamilyIPv6, Name: MarksTable}
	if m.set && text == m.last && m.intact(table, rules) {
		return nil
	}
	if m.set && text == m.last {
		m.log.Warn("policy marks table changed behind our back, rebuilding", "table", MarksTable)
	}
	// Adding first makes the delete succeed whether or not the table exists.
	m.c.AddTable(table)
	m.c.DelTable(table)
	if len(rules) > 0 {
		m.c.AddTable(table)
		policy := nftables.ChainPolicyAccept
		chains := map[string]*nftables.Chain{}
		for _, c := range []struct {
			name string
			hook *nftables.ChainHook
		}{{ChainMarkIn, nftables.ChainHookPrerouting}, {ChainMarkOut, nftables.ChainHookPostrouting}} {
			chains[c.name] = m.c.AddChain(&nftables.Chain{Name: c.name, Table: table, Type: nftables.ChainTypeFilter,
				Hooknum: c.hook, Priority: nftables.ChainPriorityMangle, Policy: &policy})
		}
		for _, r := range rules {
			m.c.AddRule(&nftables.Rule{Table: table, Chain: chains[r.Chain], Exprs: r.exprs})
		}
	}
	if err := m.c.Flush(); err != nil {
		return fmt.Errorf("uplink: installing table ip6 %s: %w", MarksTable, err)
	}
	m.last, m.set = text, true
	m.log.Info("policy marks installed", "rules", len(rules))
	return nil
}

// intact reports whether the kernel still has the marks table as installed: each chain with
// as many rules as rendered. Something else (`nft flush ruleset`, an operator) may have
// removed it; without the marks, replies would leave by the wrong uplink.
func (m *Marks) intact(table *nftables.Table, rules []MarkSpec) bool {
	if len(rules) == 0 {
		return true
	}
	for _, chain := range []string{ChainMarkIn, ChainMarkOut} {
		want := 0
		for _, r := range rules {
			if r.Chain == chain {
				want++
			}
		}
		have, err := m.c.GetRules(table, &nftables.Chain{Name: chain, Table: table})
		if err != nil || len(have) != want {
			return false
		}
	}
	return true
}
