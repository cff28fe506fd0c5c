package nat

import (
	"fmt"
	"slices"
	"sync"
	"syscall"

	"github.com/google/nftables"
)

// Conn is the part of *nftables.Conn that Table uses. Every call but the Get/List ones only
// queues a message; Flush sends the queue as one atomic batch.
type Conn interface {
	AddTable(*nftables.Table) *nftables.Table
	DelTable(*nftables.Table)
	AddChain(*nftables.Chain) *nftables.Chain
	FlushChain(*nftables.Chain)
	AddRule(*nftables.Rule) *nftables.Rule
	InsertRule(*nftables.Rule) *nftables.Rule
	DelRule(*nftables.Rule) error
	GetRules(*nftables.Table, *nftables.Chain) ([]*nftables.Rule, error)
	ListChainsOfTableFamily(nftables.TableFamily) ([]*nftables.Chain, error)
	Flush() error
}

var (
	_ Conn = (*nftables.Conn)(nil)
	_ Conn = (*FakeConn)(nil)
)

// FakeConn is an in-memory Conn for tests. It records every message it is sent (Ops, one
// string per message, in batch order), keeps tables, chains and rules with handles the way
// the kernel allocates them (one counter per table), and applies a batch all or nothing.
type FakeConn struct {
	mu      sync.Mutex
	Ops     []string // messages sent so far, e.g. "insert rule v6edge prerouting"
	Batches int      // batches sent (Flush calls with at least one message)
	// FailNext, when set, makes the next non-empty Flush fail with it and apply nothing.
	FailNext error

	pending []func(*fakeState) error
	ops     []string
	state   fakeState
}

type fakeState struct {
	tables map[string]*fakeTable
}

type fakeTable struct {
	handle uint64 // the per-table handle generator
	chains map[string]*fakeChain
}

type fakeChain struct {
	chain *nftables.Chain
	rules []*nftables.Rule
}

func (s fakeState) clone() fakeState {
	c := fakeState{tables: map[string]*fakeTable{}}
	for n, t := range s.tables {
		nt := &fakeTable{handle: t.handle, chains: map[string]*fakeChain{}}
		for cn, ch := range t.chains {
			nt.chains[cn] = &fakeChain{chain: ch.chain, rules: slices.Clone(ch.rules)}
		}
		c.tables[n] = nt
	}
	return c
}

func (f *FakeConn) queue(op string, fn func(*fakeState) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, op)
	f.pending = append(f.pending, fn)
}

func (f *FakeConn) table(s *fakeState, name string) (*fakeTable, error) {
	t, ok := s.tables[name]
	if !ok {
		return nil, fmt.Errorf("table %s: %w", name, syscall.ENOENT)
	}
	return t, nil
}

func (f *FakeConn) chain(s *fakeState, table, chain string) (*fakeChain, error) {
	t, err := f.table(s, table)
	if err != nil {
		return nil, err
	}
	c, ok := t.chains[chain]
	if !ok {
		return nil, fmt.Errorf("chain %s: %w", chain, syscall.ENOENT)
	}
	return c, nil
}

// AddTable queues the creation of a table; an existing one is kept, as in the kernel.
func (f *FakeConn) AddTable(t *nftables.Table) *nftables.Table {
	f.queue("add table "+t.Name, func(s *fakeState) error {
		if s.tables == nil {
			s.tables = map[string]*fakeTable{}
		}
		if _, ok := s.tables[t.Name]; !ok {
			s.tables[t.Name] = &fakeTable{chains: map[string]*fakeChain{}}
		}
		return nil
	})
	return t
}

// DelTable queues the deletion of a table and everything in it.
func (f *FakeConn) DelTable(t *nftables.Table) {
	f.queue("delete table "+t.Name, func(s *fakeState) error {
		if _, err := f.table(s, t.Name); err != nil {
			return err
		}
		delete(s.tables, t.Name)
		return nil
	})
}

// AddChain queues the creation of a chain; an existing one is kept.
func (f *FakeConn) AddChain(c *nftables.Chain) *nftables.Chain {
	f.queue("add chain "+c.Table.Name+" "+c.Name, func(s *fakeState) error {
		t, err := f.table(s, c.Table.Name)
		if err != nil {
			return err
		}
		if _, ok := t.chains[c.Name]; !ok {
			t.handle++
			t.chains[c.Name] = &fakeChain{chain: c}
		}
		return nil
	})
	return c
}

// FlushChain queues the removal of every rule of a chain.
func (f *FakeConn) FlushChain(c *nftables.Chain) {
	f.queue("flush chain "+c.Table.Name+" "+c.Name, func(s *fakeState) error {
		ch, err := f.chain(s, c.Table.Name, c.Name)
		if err != nil {
			return err
		}
		ch.rules = nil
		return nil
	})
}

func (f *FakeConn) newRule(op string, r *nftables.Rule, head bool) *nftables.Rule {
	f.queue(op+" rule "+r.Table.Name+" "+r.Chain.Name, func(s *fakeState) error {
		ch, err := f.chain(s, r.Table.Name, r.Chain.Name)
		if err != nil {
			return err
		}
		t := s.tables[r.Table.Name]
		t.handle++
		nr := &nftables.Rule{Table: r.Table, Chain: r.Chain, Handle: t.handle, Exprs: r.Exprs}
		if head {
			ch.rules = slices.Insert(ch.rules, 0, nr)
		} else {
			ch.rules = append(ch.rules, nr)
		}
		return nil
	})
	return r
}

// AddRule queues a rule appended at the end of its chain.
func (f *FakeConn) AddRule(r *nftables.Rule) *nftables.Rule { return f.newRule("add", r, false) }

// InsertRule queues a rule inserted at the head of its chain.
func (f *FakeConn) InsertRule(r *nftables.Rule) *nftables.Rule { return f.newRule("insert", r, true) }

// DelRule queues the deletion of the rule with r.Handle.
func (f *FakeConn) DelRule(r *nftables.Rule) error {
	if r.Handle == 0 {
		return fmt.Errorf("rule's handle cannot be 0")
	}
	f.queue(fmt.Sprintf("delete rule %s %s handle %d", r.Table.Name, r.Chain.Name, r.Handle), func(s *fakeState) error {
		ch, err := f.chain(s, r.Table.Name, r.Chain.Name)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(ch.rules, func(x *nftables.Rule) bool { return x.Handle == r.Handle })
		if i < 0 {
			return fmt.Errorf("rule handle %d: %w", r.Handle, syscall.ENOENT)
		}
		ch.rules = slices.Delete(ch.rules, i, i+1)
		return nil
	})
	return nil
}

// GetRules lists a chain's rules with their handles.
func (f *FakeConn) GetRules(t *nftables.Table, c *nftables.Chain) ([]*nftables.Rule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, err := f.chain(&f.state, t.Name, c.Name)
	if err != nil {
		return nil, err
	}
	return slices.Clone(ch.rules), nil
}

// ListChainsOfTableFamily lists every chain (the fake only holds one family).
func (f *FakeConn) ListChainsOfTableFamily(nftables.TableFamily) ([]*nftables.Chain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*nftables.Chain
	for _, t := range f.state.tables {
		for _, c := range t.chains {
			out = append(out, c.chain)
		}
	}
	return out, nil
}

// Flush applies the queued messages all or nothing and records them in Ops.
func (f *FakeConn) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	pending, ops := f.pending, f.ops
	f.pending, f.ops = nil, nil
	if len(pending) == 0 {
		return nil
	}
	f.Batches++
	f.Ops = append(f.Ops, ops...)
	if err := f.FailNext; err != nil {
		f.FailNext = nil
		return err
	}
	next := f.state.clone()
	for _, fn := range pending {
		if err := fn(&next); err != nil {
			return fmt.Errorf("fake batch: %w", err)
		}
	}
	f.state = next
	return nil
}

// Rules returns the handles of a chain's rules in chain order (nil if the chain is missing).
func (f *FakeConn) Rules(table, chain string) []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, err := f.chain(&f.state, table, chain)
	if err != nil {
		return nil
	}
	var hs []uint64
	for _, r := range ch.rules {
		hs = append(hs, r.Handle)
	}
	return hs
}

// DropTable removes a table behind the Table's back, as `nft flush ruleset` would.
func (f *FakeConn) DropTable(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.state.tables, name)
}

// Reset forgets the recorded Ops and Batches, keeping the state.
func (f *FakeConn) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Ops, f.Batches = nil, 0
}
