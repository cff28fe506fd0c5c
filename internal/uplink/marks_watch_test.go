package uplink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
)

func TestMarksCheck(t *testing.T) {
	two := Policy{Uplinks: uplinks(2), LANs: []string{"lan0"}, Internal: internal}
	t.Run("an intact table sends nothing", func(t *testing.T) {
		c := &recordingConn{}
		m := NewMarksConn(c, discard())
		if err := m.Set(two); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := m.Check(); err != nil {
				t.Fatal(err)
			}
		}
		if len(c.batches) != 1 || m.Restores() != 0 {
			t.Errorf("%d batches, %d restores; want 1 and 0", len(c.batches), m.Restores())
		}
	})
	t.Run("before any Set there is nothing to keep", func(t *testing.T) {
		c := &recordingConn{}
		m := NewMarksConn(c, discard())
		if err := m.Check(); err != nil || len(c.batches) != 0 {
			t.Errorf("Check() = %v with %d batches, want nothing sent", err, len(c.batches))
		}
	})
	tests := []struct {
		name    string
		mangle  func(*recordingConn)
		problem string
	}{
		{"a removed table is rebuilt", func(c *recordingConn) { c.rules = nil }, "table v6edge-policy missing"},
		{"a deleted rule is put back", func(c *recordingConn) { c.rules[ChainMarkOut] = c.rules[ChainMarkOut][1:] },
			"chain postrouting: 1 rules missing"},
		{"a foreign rule is removed", func(c *recordingConn) {
			c.rules[ChainMarkIn] = append(c.rules[ChainMarkIn], &nftables.Rule{})
		}, "chain prerouting: 0 rules missing, 1 foreign"},
		{"a changed rule is rewritten", func(c *recordingConn) {
			c.rules[ChainMarkIn] = []*nftables.Rule{{}}
		}, "chain prerouting: 0 rules missing, 0 foreign, 1 changed"},
		{"a chain with another policy is recreated", func(c *recordingConn) {
			drop := nftables.ChainPolicyDrop
			ch := *c.chains[ChainMarkIn]
			ch.Policy = &drop
			c.chains[ChainMarkIn] = &ch
		}, "chain prerouting has the wrong type, hook, priority or policy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &recordingConn{}
			m := NewMarksConn(c, discard())
			if err := m.Set(two); err != nil {
				t.Fatal(err)
			}
			tc.mangle(c)
			m.mu.Lock()
			what, err := m.drift()
			m.mu.Unlock()
			if err != nil || !strings.Contains(what, tc.problem) {
				t.Errorf("drift() = %q, %v; want it to mention %q", what, err, tc.problem)
			}
			if err := m.Check(); err != nil {
				t.Fatal(err)
			}
			if len(c.batches) != 2 || m.Restores() != 1 {
				t.Errorf("%d batches, %d restores; want 2 and 1", len(c.batches), m.Restores())
			}
			m.mu.Lock()
			what, err = m.drift()
			m.mu.Unlock()
			if what != "" || err != nil {
				t.Errorf("drift() after the restore = %q, %v", what, err)
			}
		})
	}
	t.Run("Set counts the restore it makes", func(t *testing.T) {
		c := &recordingConn{}
		m := NewMarksConn(c, discard())
		_ = m.Set(two)
		c.rules = nil
		if err := m.Set(two); err != nil {
			t.Fatal(err)
		}
		if m.Restores() != 1 {
			t.Errorf("Restores() = %d, want 1", m.Restores())
		}
	})
	t.Run("a table removed by a policy without marks is not restored", func(t *testing.T) {
		c := &recordingConn{}
		m := NewMarksConn(c, discard())
		_ = m.Set(two)
		_ = m.Set(Policy{})
		if err := m.Check(); err != nil || len(c.batches) != 2 || c.rules != nil {
			t.Errorf("Check() = %v, %d batches, table %v; want no table and nothing sent", err, len(c.batches), c.rules)
		}
	})
}

// lockedConn serializes a recordingConn for the test that mangles it while Watch runs.
type lockedConn struct {
	*recordingConn
	mu chan struct{}
}

func (l lockedConn) lock()   { l.mu <- struct{}{} }
func (l lockedConn) unlock() { <-l.mu }
func (l lockedConn) GetRules(t *nftables.Table, c *nftables.Chain) ([]*nftables.Rule, error) {
	l.lock()
	defer l.unlock()
	return l.recordingConn.GetRules(t, c)
}
func (l lockedConn) ListChainsOfTableFamily(f nftables.TableFamily) ([]*nftables.Chain, error) {
	l.lock()
	defer l.unlock()
	return l.recordingConn.ListChainsOfTableFamily(f)
}
func (l lockedConn) Flush() error {
	l.lock()
	defer l.unlock()
	return l.recordingConn.Flush()
}

func TestMarksWatchPolls(t *testing.T) {
	c := lockedConn{&recordingConn{}, make(chan struct{}, 1)}
	m := NewMarksConn(c, discard())
	if err := m.Set(Policy{Uplinks: uplinks(2), LANs: []string{"lan0"}, Internal: internal}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Watch(ctx, time.Millisecond) }()
	c.lock()
	c.rules = nil
	c.unlock()
	for deadline := time.Now().Add(5 * time.Second); m.Restores() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch() = %v, want nil on cancel", err)
	}
	if m.Restores() == 0 {
		t.Error("Watch did not restore the removed table within 5 s")
	}
}
