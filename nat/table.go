package nat

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"

	"github.com/v6edge/v6edge/internal/nft"
)

// DefaultName is the name of v6edge's own table.
const DefaultName = "v6edge"

// Status is what Table reports to the status socket and metrics.
type Status struct {
	Installed           bool           // the kernel holds the mapping of the last Set (at least one uplink mapped)
	Internal            netip.Prefix   // the internal prefix of the last Set
	External            []netip.Prefix // the mapped external prefixes, in uplink order
	LastSwap            time.Time      // when the last change went live
	LastSwapDuration    time.Duration  // from sending the change until the new mapping was live
	LastCleanupDuration time.Duration  // deleting the replaced rules (off the hot path)
	Swaps               uint64         // changes applied
	Restores            uint64         // times Watch found the table changed behind our back and rebuilt it
	ConntrackFlushed    uint64         // conntrack entries deleted after renumbering
	Problem             string         // why the mapping is not (fully) installed; "" when fine
}

// strategy is how a change reaches the kernel; both are kept so the benchmarks can compare.
type strategy int

const (
	// insertThenDelete inserts the new rules at the head of the chains in one batch and
	// deletes the replaced ones by handle in a second batch.
	insertThenDelete strategy = iota
	// flushAndAdd flushes both chains and adds every rule again in a single batch.
	flushAndAdd
)

// Table keeps `table ip6 <name>` equal to the last Ruleset given to Set. It never touches
// any other table. Safe for concurrent use.
type Table struct {
	conn     Conn
	log      *slog.Logger
	table    *nftables.Table
	pre      *nftables.Chain
	post     *nftables.Chain
	hairpin  *nftables.Chain
	guard    *nftables.Chain
	now      func() time.Time
	strategy strategy
	close    func() error
	// keeper runs Watch and counts the restores (Status.Restores).
	keeper *nft.Keeper

	mu        sync.Mutex
	flushCT   func(old netip.Prefix) (int, error)
	desired   *Ruleset // nil before the first Set and after Remove
	applied   bool     // the kernel holds desired: an equal Set has nothing to do
	checkErr  error    // what r.Check said about desired
	installed []group  // what the kernel holds, with handles; valid only while synced
	stale     []Uplink // uplinks whose old external prefix awaits a conntrack flush
	synced    bool     // installed reflects the kernel
	status    Status
}

// group is one uplink's rules: the unit a change rewrites.
type group struct {
	key    string // uplink and rule texts: equal keys mean equal rules
	uplink Uplink
	rules  []installedRule
}

type installedRule struct {
	spec   RuleSpec
	handle uint64
}

// NewTable returns a Table backed by a netlink connection in the current network namespace.
// After a renumbering it flushes conntrack entries of the old prefix there too.
func NewTable(name string, log *slog.Logger) (*Table, error) {
	return NewTableNetNS(name, -1, log)
}

// NewTableNetNS is NewTable for the network namespace open at nsFd (-1: the current one),
// e.g. a lab router's.
func NewTableNetNS(name string, nsFd int, log *slog.Logger) (*Table, error) {
	c, err := nft.Open(nsFd)
	if err != nil {
		return nil, fmt.Errorf("nat: %w", err)
	}
	t := NewTableConn(name, c, log)
	t.close = c.CloseLasting
	t.keeper.SetMonitor(nft.MonitorIn(nsFd))
	t.flushCT = FlushConntrack
	if nsFd >= 0 {
		t.flushCT = func(old netip.Prefix) (int, error) { return FlushConntrackIn(nsFd, old) }
	}
	return t, nil
}

// NewTableConn returns a Table that talks through c (a *nftables.Conn, possibly opened in
// another network namespace, or a FakeConn). It flushes no conntrack entries unless
// SetConntrackFlusher says how.
func NewTableConn(name string, c Conn, log *slog.Logger) *Table {
	if name == "" {
		name = DefaultName
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tbl := &nftables.Table{Name: name, Family: nftables.TableFamilyIPv6}
	accept := nftables.ChainPolicyAccept
	t := &Table{
		conn:  c,
		log:   log,
		table: tbl,
		pre: &nftables.Chain{Name: ChainPrerouting, Table: tbl, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest, Policy: &accept},
		post: &nftables.Chain{Name: ChainPostrouting, Table: tbl, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept},
		hairpin: &nftables.Chain{Name: ChainHairpin, Table: tbl},
		guard: &nftables.Chain{Name: ChainGuard, Table: tbl, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityRef(guardPriority), Policy: &accept},
		now:   time.Now,
		close: func() error { return nil },
	}
	t.keeper = nft.NewKeeper("nat table", name, log, t.restore)
	return t
}

// SetConntrackFlusher sets what is called with an external prefix that is no longer mapped
// after a swap; it returns how many conntrack entries it deleted. nil disables flushing.
func (t *Table) SetConntrackFlusher(fn func(old netip.Prefix) (int, error)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flushCT = fn
}

// Close releases the netlink connection. The table stays in the kernel.
func (t *Table) Close() error { return t.close() }

// Set makes the table hold the rules of r. Calling it again with an equal Ruleset sends
// nothing. Uplinks that fail Ruleset.Check get no mapping at all (never a partial one) and
// the error is returned; a length mismatch wraps ErrLength.
func (t *Table) Set(r Ruleset) error {
	defer t.flushStale()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.desired != nil && t.applied && t.synced && sameRuleset(*t.desired, r) {
		return t.checkErr
	}
	r = cloneRuleset(r)
	t.desired, t.applied = &r, false
	t.checkErr = r.Check()

	var err error
	if t.synced {
		err = t.swap(groupRules(r))
	} else {
		err = t.rebuild(groupRules(r))
	}
	if err != nil {
		t.status.Problem = err.Error()
		return err
	}
	t.applied = true
	t.updateStatus()
	return t.checkErr
}

// Remove deletes our table (on a clean stop with nat.remove_on_stop). Watch leaves it
// alone afterwards, until the next Set.
func (t *Table) Remove() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.desired, t.installed, t.synced = nil, nil, false
	// Adding first makes the delete succeed whether or not the table exists.
	t.conn.AddTable(t.table)
	t.conn.DelTable(t.table)
	if err := t.conn.Flush(); err != nil {
		return fmt.Errorf("nat: removing table %s: %w", t.table.Name, err)
	}
	t.status.Installed, t.status.External = false, nil
	return nil
}

// Status reports the table's state.
func (t *Table) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.status
	s.External = slices.Clone(s.External)
	s.Restores = t.keeper.Restores()
	return s
}

// Watch rebuilds the table when it was removed or changed behind our back, e.g. by `nft
// flush ruleset`. It compares the kernel's table with ours after every nftables transaction
// (change events), and every 30 intervals as a backstop; where events are not available it
// compares every interval (1 s when every <= 0). It returns nil when ctx is done.
func (t *Table) Watch(ctx context.Context, every time.Duration) error {
	return t.keeper.Watch(ctx, every)
}

// Check compares the kernel's table with what Set installed and rebuilds it in one batch
// when they differ. Watch calls it after every nftables transaction.
func (t *Table) Check() error { return t.keeper.Check() }

// restore is Check's work for the keeper: it returns what it restored.
func (t *Table) restore() (string, error) {
	defer t.flushStale()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.desired == nil {
		return "", nil
	}
	what, err := t.drift()
	if err != nil {
		return "", err
	}
	if what == "" {
		if t.applied {
			return "", nil
		}
		// The last Set failed with the kernel untouched: try it again.
		if err := t.swap(groupRules(*t.desired)); err != nil {
			t.status.Problem = err.Error()
			return "", err
		}
		t.applied = true
		t.updateStatus()
		return "", nil
	}
	if err := t.rebuild(groupRules(*t.desired)); err != nil {
		t.status.Problem = err.Error()
		return "", fmt.Errorf("nat: restoring table after %s: %w", what, err)
	}
	t.applied = true
	t.updateStatus()
	return what, nil
}

// drift says what differs between the kernel and t.installed ("" when nothing does).
func (t *Table) drift() (string, error) {
	if !t.synced {
		return "the last change did not complete", nil
	}
	var want []nft.Chain
	for _, c := range t.chains() {
		w := nft.Chain{Chain: c}
		for _, g := range t.installed {
			for _, r := range g.rules {
				if r.spec.Chain == c.Name {
					w.Rules = append(w.Rules, nft.Rule{Handle: r.handle, Exprs: len(r.spec.exprs)})
				}
			}
		}
		want = append(want, w)
	}
	what, err := nft.Drift(t.conn, t.table, want)
	if err != nil {
		return "", fmt.Errorf("nat: %w", err)
	}
	return what, nil
}

// chains lists our chains; the regular hairpin chain comes first so that it exists when a
// rule in the same batch jumps to it.
func (t *Table) chains() []*nftables.Chain {
	return []*nftables.Chain{t.hairpin, t.pre, t.post, t.guard}
}

// guardPriority runs the guard chain after source NAT (srcnat = 100), so it
// sees the translated source of every packet a mapping covers.
const guardPriority = nftables.ChainPriority(110)

// rebuild replaces the whole table in one batch: the first creation, a restore after drift,
// or a start over a table a previous run left behind.
func (t *Table) rebuild(groups []group) error {
	t.synced = false
	exists, err := t.exists()
	if err != nil {
		return err
	}
	t.conn.AddTable(t.table)
	if exists {
		// Delete and recreate inside one transaction: packets see the old table or the
		// new one, never none.
		t.conn.DelTable(t.table)
		t.conn.AddTable(t.table)
	}
	for _, c := range t.chains() {
		t.conn.AddChain(c)
	}
	sent := t.queueRules(groups, false)
	start := t.now()
	if err := t.conn.Flush(); err != nil {
		return fmt.Errorf("nat: creating table %s: %w", t.table.Name, err)
	}
	t.noteSwap(start)
	if err := t.readBack(groups, sent, nil); err != nil {
		return err
	}
	t.installed, t.synced = groups, true
	t.logChanges(groups)
	return nil
}

func (t *Table) exists() (bool, error) {
	chains, err := t.conn.ListChainsOfTableFamily(nftables.TableFamilyIPv6)
	if err != nil {
		return false, fmt.Errorf("nat: listing chains: %w", err)
	}
	return slices.ContainsFunc(chains, func(c *nftables.Chain) bool {
		return c.Table != nil && c.Table.Name == t.table.Name
	}), nil
}

// swap changes only the uplinks whose rules differ.
func (t *Table) swap(want []group) error {
	var add []group
	keep := map[string]bool{}
	for _, g := range want {
		if slices.ContainsFunc(t.installed, func(h group) bool { return h.key == g.key }) {
			keep[g.key] = true
		} else {
			add = append(add, g)
		}
	}
	var drop []group
	for _, g := range t.installed {
		if !keep[g.key] {
			drop = append(drop, g)
		}
	}
	if len(add) == 0 && len(drop) == 0 {
		return nil
	}
	if t.strategy == flushAndAdd {
		return t.flushSwap(want, drop)
	}

	// Batch 1: the new rules go in front of the old ones. Until batch 2 both translate
	// every new connection, the new ones first.
	sent := t.queueRules(add, true)
	start := t.now()
	if err := t.conn.Flush(); err != nil {
		// The batch changed nothing. Most likely the table is gone or changed behind our
		// back and Watch has not noticed yet: rebuild it whole.
		return t.rebuildAfter(want, "inserting new rules failed", err)
	}
	t.noteSwap(start)
	known := map[uint64]bool{}
	for _, g := range t.installed {
		for _, r := range g.rules {
			known[r.handle] = true
		}
	}
	if err := t.readBack(add, sent, known); err != nil {
		return t.rebuildAfter(want, "rule handles not as expected", err)
	}

	// Batch 2: delete the replaced rules by handle, off the hot path.
	for _, g := range drop {
		for _, r := range g.rules {
			if err := t.conn.DelRule(&nftables.Rule{Table: t.table, Chain: t.chain(r.spec.Chain), Handle: r.handle}); err != nil {
				return fmt.Errorf("nat: deleting rule %d: %w", r.handle, err)
			}
		}
	}
	cleanup := t.now()
	if len(drop) > 0 {
		if err := t.conn.Flush(); err != nil {
			return t.rebuildAfter(want, "deleting replaced rules failed", err)
		}
	}
	t.status.LastCleanupDuration = t.now().Sub(cleanup)
	t.installed = mergeGroups(want, t.installed, add)
	t.logChanges(add)
	t.forget(drop, want)
	return nil
}

// rebuildAfter gives up on changing the table in place after what failed
// with err: it logs that and rebuilds the table whole.
func (t *Table) rebuildAfter(want []group, what string, err error) error {
	t.synced = false
	t.log.Warn("nat "+what+", rebuilding table", "err", err)
	return t.rebuild(want)
}

// flushSwap is the single-batch alternative: flush both chains and add every rule again.
func (t *Table) flushSwap(want, drop []group) error {
	for _, c := range t.chains() {
		t.conn.FlushChain(c)
	}
	sent := t.queueRules(want, false)
	start := t.now()
	if err := t.conn.Flush(); err != nil {
		return t.rebuildAfter(want, "replacing rules failed", err)
	}
	t.noteSwap(start)
	t.status.LastCleanupDuration = 0 // nothing left to delete
	if err := t.readBack(want, sent, nil); err != nil {
		t.synced = false
		return t.rebuild(want)
	}
	t.installed = want
	t.logChanges(want)
	t.forget(drop, want)
	return nil
}

func (t *Table) logChanges(groups []group) {
	for _, g := range groups {
		if g.uplink.WAN == "" {
			t.log.Info("nat hairpin and guard rules installed", "rules", len(g.rules))
			continue
		}
		t.log.Info("nat mapping installed", "iface", g.uplink.WAN, "prefix", g.uplink.External,
			"rules", len(g.rules), "took", t.status.LastSwapDuration)
	}
}

// forget notes the external prefixes that were mapped before and are not any more: their
// conntrack entries would keep a source address the upstream no longer routes. Set and
// Check flush them once the lock is released, so a long conntrack table never blocks
// Status.
func (t *Table) forget(drop, want []group) {
	for _, g := range drop {
		old := g.uplink.External
		if !old.IsValid() { // the hairpin chain's group
			continue
		}
		if slices.ContainsFunc(want, func(w group) bool { return w.uplink.External == old }) {
			continue
		}
		t.stale = append(t.stale, g.uplink)
	}
}

// flushStale deletes the conntrack entries of the prefixes forget noted. It must be called
// without t.mu held.
func (t *Table) flushStale() {
	t.mu.Lock()
	stale, flush := t.stale, t.flushCT
	t.stale = nil
	t.mu.Unlock()
	if flush == nil {
		return
	}
	for _, u := range stale {
		n, err := flush(u.External)
		if err != nil {
			t.log.Warn("nat conntrack flush failed", "iface", u.WAN, "prefix", u.External, "err", err)
			continue
		}
		t.mu.Lock()
		t.status.ConntrackFlushed += uint64(n)
		t.mu.Unlock()
		t.log.Info("nat conntrack entries of old prefix deleted", "iface", u.WAN, "prefix", u.External, "count", n)
	}
}

func (t *Table) chain(name string) *nftables.Chain {
	switch name {
	case ChainPrerouting:
		return t.pre
	case ChainHairpin:
		return t.hairpin
	case ChainGuard:
		return t.guard
	}
	return t.post
}

// sentRule locates the i-th rule of group g.
type sentRule struct{ g, i int }

// queueRules queues the rules of groups and returns, per chain, the order in which the
// kernel will allocate their handles. Inserted at the head, each chain's rules are queued
// in reverse so that they end up in rendered order.
func (t *Table) queueRules(groups []group, atHead bool) map[string][]sentRule {
	sent := map[string][]sentRule{}
	var order []sentRule
	for gi, g := range groups {
		for ri := range g.rules {
			order = append(order, sentRule{gi, ri})
		}
	}
	if atHead {
		slices.Reverse(order)
	}
	for _, s := range order {
		spec := groups[s.g].rules[s.i].spec
		rule := &nftables.Rule{Table: t.table, Chain: t.chain(spec.Chain), Exprs: spec.exprs}
		if atHead {
			t.conn.InsertRule(rule)
		} else {
			t.conn.AddRule(rule)
		}
		sent[spec.Chain] = append(sent[spec.Chain], s)
	}
	return sent
}

// readBack learns the handles of the rules just sent. The kernel numbers the rules of a
// batch in the order it receives them from one per-table counter, so the new handles
// (those not in known), ascending, follow the send order.
func (t *Table) readBack(groups []group, sent map[string][]sentRule, known map[uint64]bool) error {
	for _, c := range t.chains() {
		if len(sent[c.Name]) == 0 {
			continue // nothing new there; spare the dump (the hairpin chain may be long)
		}
		rules, err := t.conn.GetRules(t.table, c)
		if err != nil {
			return fmt.Errorf("nat: reading back rules of %s: %w", c.Name, err)
		}
		var fresh []uint64
		for _, r := range rules {
			if !known[r.Handle] {
				fresh = append(fresh, r.Handle)
			}
		}
		slices.Sort(fresh)
		if len(fresh) != len(sent[c.Name]) {
			return fmt.Errorf("nat: chain %s: sent %d rules, found %d new ones", c.Name, len(sent[c.Name]), len(fresh))
		}
		for i, s := range sent[c.Name] {
			groups[s.g].rules[s.i].handle = fresh[i]
		}
	}
	return nil
}

// mergeGroups returns want with each group's handles taken from the installed or the
// just added copy.
func mergeGroups(want, installed, added []group) []group {
	out := make([]group, 0, len(want))
	for _, g := range want {
		if i := slices.IndexFunc(added, func(a group) bool { return a.key == g.key }); i >= 0 {
			out = append(out, added[i])
		} else if i := slices.IndexFunc(installed, func(a group) bool { return a.key == g.key }); i >= 0 {
			out = append(out, installed[i])
		}
	}
	return out
}

func (t *Table) noteSwap(start time.Time) {
	t.status.LastSwap = t.now()
	t.status.LastSwapDuration = t.status.LastSwap.Sub(start)
	t.status.Swaps++
}

func (t *Table) updateStatus() {
	r := t.desired
	t.status.Internal = r.Internal
	t.status.External = nil
	for _, g := range t.installed {
		if g.uplink.External.IsValid() {
			t.status.External = append(t.status.External, g.uplink.External)
		}
	}
	t.status.Installed = t.synced && len(t.status.External) > 0
	t.status.Problem = ""
	if t.checkErr != nil {
		t.status.Problem = t.checkErr.Error()
	}
}

// groupRules renders r and splits the rules into one group per uplink, in uplink order.
func groupRules(r Ruleset) []group {
	var groups []group
	for _, s := range Render(r) {
		i := slices.IndexFunc(groups, func(g group) bool { return g.uplink.WAN == s.Uplink })
		if i < 0 {
			var u Uplink // the hairpin chain's rules belong to no uplink
			if j := slices.IndexFunc(r.Uplinks, func(u Uplink) bool { return u.WAN == s.Uplink }); j >= 0 {
				u = r.Uplinks[j]
			}
			groups = append(groups, group{uplink: u})
			i = len(groups) - 1
		}
		groups[i].rules = append(groups[i].rules, installedRule{spec: s})
	}
	for i := range groups {
		var texts []string
		for _, r := range groups[i].rules {
			texts = append(texts, r.spec.Chain+": "+r.spec.Text)
		}
		groups[i].key = groups[i].uplink.WAN + "\n" + strings.Join(texts, "\n")
	}
	return groups
}

func sameRuleset(a, b Ruleset) bool {
	return a.Internal == b.Internal && a.Hairpin == b.Hairpin &&
		slices.Equal(a.LANs, b.LANs) && slices.EqualFunc(a.Uplinks, b.Uplinks, sameUplink) && slices.Equal(a.WANs, b.WANs) &&
		slices.Equal(a.Direct, b.Direct)
}

func sameUplink(a, b Uplink) bool {
	return a.WAN == b.WAN && a.External == b.External && a.Internal == b.Internal && a.Mark == b.Mark &&
		slices.Equal(a.Exclude, b.Exclude)
}

func cloneRuleset(r Ruleset) Ruleset {
	r.LANs = slices.Clone(r.LANs)
	r.Uplinks = slices.Clone(r.Uplinks)
	for i := range r.Uplinks {
		r.Uplinks[i].Exclude = slices.Clone(r.Uplinks[i].Exclude)
	}
	r.WANs = slices.Clone(r.WANs)
	r.Direct = slices.Clone(r.Direct)
	return r
}
