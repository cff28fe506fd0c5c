package uplink

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
)

// recordingConn records the messages Marks queues, per batch, and keeps the chains and
// rules of the table.
type recordingConn struct {
	queued  []string
	objs    []any // what each queued message adds: a chain, a rule or nil
	batches [][]string
	fail    error
	rules   map[string][]*nftables.Rule // chain → rules; nil: no table
	chains  map[string]*nftables.Chain
}

func (c *recordingConn) GetRules(_ *nftables.Table, ch *nftables.Chain) ([]*nftables.Rule, error) {
	rs, ok := c.rules[ch.Name]
	if !ok {
		return nil, errors.New("no such chain")
	}
	return rs, nil
}

func (c *recordingConn) ListChainsOfTableFamily(nftables.TableFamily) ([]*nftables.Chain, error) {
	var out []*nftables.Chain
	for name := range c.rules {
		out = append(out, c.chains[name])
	}
	return out, nil
}

var _ NFTConn = (*recordingConn)(nil)

func (c *recordingConn) queue(op string, obj any) {
	c.queued = append(c.queued, op)
	c.objs = append(c.objs, obj)
}

func (c *recordingConn) AddTable(t *nftables.Table) *nftables.Table {
	c.queue("add table "+t.Name, nil)
	return t
}
func (c *recordingConn) DelTable(t *nftables.Table) {
	c.queue("delete table "+t.Name, nil)
}
func (c *recordingConn) AddChain(ch *nftables.Chain) *nftables.Chain {
	c.queue("add chain "+ch.Name, ch)
	return ch
}
func (c *recordingConn) AddRule(r *nftables.Rule) *nftables.Rule {
	c.queue("add rule "+r.Chain.Name, r)
	return r
}
func (c *recordingConn) Flush() error {
	q, objs := c.queued, c.objs
	c.queued, c.objs = nil, nil
	if c.fail != nil {
		err := c.fail
		c.fail = nil
		return err
	}
	if len(q) > 0 {
		c.batches = append(c.batches, q)
	}
	for i, op := range q {
		switch verb, name, _ := strings.Cut(op, " table "); {
		case verb == "delete" && name != "":
			c.rules = nil
		case strings.HasPrefix(op, "add chain "):
			if c.rules == nil {
				c.rules, c.chains = map[string][]*nftables.Rule{}, map[string]*nftables.Chain{}
			}
			ch := objs[i].(*nftables.Chain)
			c.rules[ch.Name], c.chains[ch.Name] = nil, ch
		case strings.HasPrefix(op, "add rule "):
			r := objs[i].(*nftables.Rule)
			c.rules[r.Chain.Name] = append(c.rules[r.Chain.Name], r)
		}
	}
	return nil
}

func TestMarksSet(t *testing.T) {
	two := Policy{Uplinks: uplinks(2), LANs: []string{"lan0"}, Internal: internal}
	// built is a Marks on a recording connection that has built the table
	// for two.
	built := func(t *testing.T) (*recordingConn, *Marks) {
		t.Helper()
		c := &recordingConn{}
		m := NewMarksConn(c, discard())
		if err := m.Set(two); err != nil {
			t.Fatal(err)
		}
		return c, m
	}
	t.Run("the table is built in one batch and an unchanged policy sends nothing", func(t *testing.T) {
		c := &recordingConn{}
		m := NewMarksConn(c, discard())
		for range 3 {
			if err := m.Set(two); err != nil {
				t.Fatal(err)
			}
		}
		want := [][]string{{"add table v6edge-policy", "delete table v6edge-policy", "add table v6edge-policy",
			"add chain prerouting", "add chain postrouting", "add rule prerouting", "add rule postrouting", "add rule postrouting"}}
		if diff := cmp.Diff(want, c.batches); diff != "" {
			t.Errorf("batches (-want +got):\n%s", diff)
		}
	})
	t.Run("health changes alone do not touch the table", func(t *testing.T) {
		c := &recordingConn{}
		m := NewMarksConn(c, discard())
		failed := two
		failed.Uplinks = uplinks(2)
		failed.Uplinks[0].Healthy = false
		for _, p := range []Policy{two, failed, two} {
			if err := m.Set(p); err != nil {
				t.Fatal(err)
			}
		}
		if len(c.batches) != 1 {
			t.Errorf("%d batches, want 1", len(c.batches))
		}
	})
	t.Run("a table removed behind our back is rebuilt by the next Set", func(t *testing.T) {
		c, m := built(t)
		c.rules = nil // nft flush ruleset
		if err := m.Set(two); err != nil {
			t.Fatal(err)
		}
		_ = m.Set(two)
		if len(c.batches) != 2 {
			t.Errorf("%d batches, want 2 (the build and one rebuild)", len(c.batches))
		}
	})
	t.Run("a policy without marks removes the table", func(t *testing.T) {
		c, m := built(t)
		if err := m.Set(Policy{}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"add table v6edge-policy", "delete table v6edge-policy"}, c.batches[len(c.batches)-1]); diff != "" {
			t.Errorf("last batch (-want +got):\n%s", diff)
		}
	})
	t.Run("a failed batch is sent again on the next Set", func(t *testing.T) {
		c := &recordingConn{fail: errors.New("EPERM")}
		m := NewMarksConn(c, discard())
		if err := m.Set(two); err == nil {
			t.Fatal("Set succeeded despite the failing batch")
		}
		if err := m.Set(two); err != nil {
			t.Fatal(err)
		}
		if len(c.batches) != 1 {
			t.Errorf("%d batches after the retry, want 1", len(c.batches))
		}
	})
	t.Run("without LANs the internal prefix selects the packets to mark", func(t *testing.T) {
		rules := RenderMarks(Policy{Uplinks: uplinks(2), Internal: internal})
		if rules[0].Text != "ip6 saddr fd00:aaaa:bbbb:cc00::/56 meta mark set ct mark" {
			t.Errorf("first rule %q", rules[0].Text)
		}
	})
}
