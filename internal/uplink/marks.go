package uplink

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/v6edge/v6edge/internal/nft"
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
		b.IfName(expr.MetaKeyOIFNAME, "oifname", expr.CmpOpEq, u.Interface)
		b.ctMarkIs(0)
		b.CtMarkSet(u.Mark)
		out = append(out, MarkSpec{Chain: ChainMarkOut, Text: b.String(), exprs: b.Exprs})
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
		b.IfName(expr.MetaKeyIIFNAME, "iifname", expr.CmpOpEq, lan)
		b.metaMarkFromCt()
		in = append(in, MarkSpec{Chain: ChainMarkIn, Text: b.String(), exprs: b.Exprs})
	}
	if len(in) == 0 && p.Internal.IsValid() && p.Internal.Addr().Is6() {
		b := new(exprs)
		b.saddr(p.Internal.Masked())
		b.metaMarkFromCt()
		in = append(in, MarkSpec{Chain: ChainMarkIn, Text: b.String(), exprs: b.Exprs})
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
type exprs struct{ nft.Builder }

func (e *exprs) saddr(p netip.Prefix) {
	e.Words = append(e.Words, "ip6 saddr "+p.String())
	a := p.Addr().As16()
	n := uint32((p.Bits() + 7) / 8)
	e.Exprs = append(e.Exprs, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offsetSaddr, Len: n})
	if p.Bits()%8 != 0 {
		mask := make([]byte, n)
		for i := range p.Bits() {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		e.Exprs = append(e.Exprs, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	e.Exprs = append(e.Exprs, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:n]})
}

// offsetSaddr is where the source address starts in the IPv6 header (RFC 8200 §3).
const offsetSaddr = 8

func (e *exprs) ctMarkIs(mark uint32) {
	e.Add(fmt.Sprintf("ct mark 0x%08x", mark),
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: nft.U32(mark)})
}

func (e *exprs) metaMarkFromCt() {
	e.Add("meta mark set ct mark",
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true})
}

// NFTConn is the part of *nftables.Conn that Marks uses. Every call but the Get/List ones
// only queues a message; Flush sends the queue as one atomic batch.
type NFTConn interface {
	AddTable(*nftables.Table) *nftables.Table
	DelTable(*nftables.Table)
	AddChain(*nftables.Chain) *nftables.Chain
	AddRule(*nftables.Rule) *nftables.Rule
	GetRules(*nftables.Table, *nftables.Chain) ([]*nftables.Rule, error)
	ListChainsOfTableFamily(nftables.TableFamily) ([]*nftables.Chain, error)
	Flush() error
}

var _ NFTConn = (*nftables.Conn)(nil)

// Marks keeps the marks table (RenderMarks) in the kernel. It touches no other table.
// Safe for concurrent use.
type Marks struct {
	c      NFTConn
	log    *slog.Logger
	close  func() error
	keeper *nft.Keeper
	table  *nftables.Table
	chains []*nftables.Chain // prerouting, postrouting

	mu    sync.Mutex
	rules []MarkSpec // what is installed; nil when no table is
	last  string     // FormatMarks of what is installed; "" when nothing is
	set   bool       // Set succeeded at least once
}

// NewMarks returns a Marks talking to nftables in the network namespace open at nsFd (-1:
// the current one). Its Watch gets change events from there.
func NewMarks(nsFd int, log *slog.Logger) (*Marks, error) {
	c, err := nft.Open(nsFd)
	if err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	m := NewMarksConn(c, log)
	m.close = c.CloseLasting
	m.keeper.SetMonitor(nft.MonitorIn(nsFd))
	return m, nil
}

// NewMarksConn returns a Marks that talks through c (a *nftables.Conn or a fake). Its Watch
// polls.
func NewMarksConn(c NFTConn, log *slog.Logger) *Marks {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	table := &nftables.Table{Family: nftables.TableFamilyIPv6, Name: MarksTable}
	policy := nftables.ChainPolicyAccept
	m := &Marks{c: c, log: log, close: func() error { return nil }, table: table}
	for _, ch := range []struct {
		name string
		hook *nftables.ChainHook
	}{{ChainMarkIn, nftables.ChainHookPrerouting}, {ChainMarkOut, nftables.ChainHookPostrouting}} {
		m.chains = append(m.chains, &nftables.Chain{Name: ch.name, Table: table, Type: nftables.ChainTypeFilter,
			Hooknum: ch.hook, Priority: nftables.ChainPriorityMangle, Policy: &policy})
	}
	m.keeper = nft.NewKeeper("policy marks table", MarksTable, log, m.restore)
	return m
}

// Close releases the netlink connection; the table stays.
func (m *Marks) Close() error { return m.close() }

// Set makes the marks table match p in one batch: the table is created if missing and
// deleted and recreated inside the same transaction, so there is no moment without marks.
// An unchanged p sends nothing (it only reads the table back, to rebuild it when something
// else removed or changed it). A p that needs no marks removes the table.
func (m *Marks) Set(p Policy) error {
	rules := RenderMarks(p)
	text := FormatMarks(rules)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.set && text == m.last {
		what, err := m.drift()
		if err == nil && what == "" {
			return nil
		}
		// A kernel that could not be read is rebuilt too, to be safe, but that
		// is no restore.
		if err != nil {
			m.log.Warn("policy marks table unreadable, rebuilding", "table", MarksTable, "err", err)
		}
		if err := m.install(rules, text); err != nil {
			return err
		}
		if what != "" {
			m.keeper.Restored(what)
		}
		return nil
	}
	if err := m.install(rules, text); err != nil {
		return err
	}
	m.log.Info("policy marks installed", "rules", len(rules))
	return nil
}

// install replaces the table by rules in one batch (removes it when rules is empty).
func (m *Marks) install(rules []MarkSpec, text string) error {
	// Adding first makes the delete succeed whether or not the table exists.
	m.c.AddTable(m.table)
	m.c.DelTable(m.table)
	if len(rules) > 0 {
		m.c.AddTable(m.table)
		byName := map[string]*nftables.Chain{}
		for _, c := range m.chains {
			byName[c.Name] = m.c.AddChain(c)
		}
		for _, r := range rules {
			m.c.AddRule(&nftables.Rule{Table: m.table, Chain: byName[r.Chain], Exprs: r.exprs})
		}
	}
	if err := m.c.Flush(); err != nil {
		return fmt.Errorf("uplink: installing table ip6 %s: %w", MarksTable, err)
	}
	m.rules, m.last, m.set = rules, text, true
	return nil
}

// drift says what differs between the kernel and the installed marks table ("" when
// nothing does): something else (`nft flush ruleset`, an operator) may have removed or
// changed it, and without the marks replies would leave by the wrong uplink.
func (m *Marks) drift() (string, error) {
	if len(m.rules) == 0 {
		return "", nil
	}
	var want []nft.Chain
	for _, c := range m.chains {
		w := nft.Chain{Chain: c}
		for _, r := range m.rules {
			if r.Chain == c.Name {
				w.Rules = append(w.Rules, nft.Rule{Exprs: len(r.exprs)})
			}
		}
		want = append(want, w)
	}
	what, err := nft.Drift(m.c, m.table, want)
	if err != nil {
		return "", fmt.Errorf("uplink: %w", err)
	}
	return what, nil
}

// restore is Check's work for the keeper: it returns what it restored.
func (m *Marks) restore() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.set {
		return "", nil
	}
	what, err := m.drift()
	if err != nil || what == "" {
		return "", err
	}
	if err := m.install(m.rules, m.last); err != nil {
		return "", fmt.Errorf("uplink: restoring table ip6 %s after %s: %w", MarksTable, what, err)
	}
	return what, nil
}

// Check compares the kernel's marks table with what Set installed and rebuilds it in one
// batch when they differ. Watch calls it after every nftables transaction.
func (m *Marks) Check() error { return m.keeper.Check() }

// Watch keeps the marks table as Set installed it until ctx is done, like nat.Table.Watch:
// it compares after every nftables transaction (change events, with NewMarks) and every
// 30 intervals as a backstop, or every interval without events (1 s when every <= 0), and
// rebuilds the table when something else removed or changed it. It returns nil when ctx
// is done.
func (m *Marks) Watch(ctx context.Context, every time.Duration) error {
	return m.keeper.Watch(ctx, every)
}

// Restores is how many times the marks table was found removed or changed and rebuilt (by
// Watch, Check or Set).
func (m *Marks) Restores() uint64 { return m.keeper.Restores() }
