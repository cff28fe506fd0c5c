package uplink

import (
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/v6edge/v6edge/internal/netif"
)

// FakeHandle is an in-memory Handle for tests: links and routes come from a
// netif.FakeHandle, rules are kept here. Writes counts the calls that change something
// (RouteReplace, RouteDel, RuleAdd, RuleDel).
type FakeHandle struct {
	*netif.FakeHandle

	mu     sync.Mutex
	rules  []netlink.Rule
	Writes int
}

var _ Handle = (*FakeHandle)(nil)

// NewFakeHandle returns a FakeHandle with the named links.
func NewFakeHandle(links ...string) *FakeHandle {
	return &FakeHandle{FakeHandle: netif.NewFakeHandle(links...)}
}

// RouteReplace implements Handle.
func (f *FakeHandle) RouteReplace(r *netlink.Route) error {
	f.mu.Lock()
	f.Writes++
	f.mu.Unlock()
	return f.FakeHandle.RouteReplace(r)
}

// RouteDel implements Handle.
func (f *FakeHandle) RouteDel(r *netlink.Route) error {
	f.mu.Lock()
	f.Writes++
	f.mu.Unlock()
	return f.FakeHandle.RouteDel(r)
}

// RuleAdd implements Handle: like the kernel, a rule goes after the existing rules of
// the same priority.
func (f *FakeHandle) RuleAdd(r *netlink.Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Writes++
	nr := *r
	if nr.Mark != 0 && nr.Mask == nil {
		all := uint32(0xffffffff) // the kernel reports the default mask
		nr.Mask = &all
	}
	i := len(f.rules)
	for j, have := range f.rules {
		if have.Priority > nr.Priority {
			i = j
			break
		}
	}
	f.rules = slices.Insert(f.rules, i, nr)
	return nil
}

// RuleDel implements Handle: it deletes the first rule that matches r's priority, table,
// mark and source, like the kernel.
func (f *FakeHandle) RuleDel(r *netlink.Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Writes++
	k := keyOfRule(*r)
	for i, have := range f.rules {
		if keyOfRule(have) == k {
			f.rules = slices.Delete(f.rules, i, i+1)
			return nil
		}
	}
	return unix.ENOENT
}

// RuleList implements Handle.
func (f *FakeHandle) RuleList(family int) ([]netlink.Rule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []netlink.Rule
	for _, r := range f.rules {
		if family == unix.AF_UNSPEC || r.Family == family {
			out = append(out, r)
		}
	}
	return out, nil
}

// PutRule adds a rule as another party would, without counting it as a write.
func (f *FakeHandle) PutRule(r netlink.Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
}
