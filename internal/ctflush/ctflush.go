package ctflush

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
)

// Select says which IPv6 conntrack entries Delete deletes: those with Mark (when non-zero)
// for which Match (when set) is true. At least one of them must be set.
type Select struct {
	// Mark selects the entries with this conntrack mark (exact match).
	Mark uint32
	// Match selects by the flow's tuples.
	Match func(conntrack.Flow) bool
}

// ErrEmpty is Delete's error for a Select that would delete every IPv6 entry.
var ErrEmpty = errors.New("refusing to delete every IPv6 conntrack entry (no mark, no match)")

// selects reports whether s selects f.
func (s Select) selects(f conntrack.Flow) bool {
	if !f.TupleOrig.IP.SourceAddress.Is6() || f.TupleOrig.IP.SourceAddress.Is4In6() {
		return false // an older kernel ignored the family
	}
	if s.Mark != 0 && f.Mark != s.Mark {
		return false // or the mark
	}
	return s.Match == nil || s.Match(f)
}

func (s Select) filter() conntrack.Filter {
	f := conntrack.NewFilter().Family(netfilter.ProtoIPv6)
	if s.Mark != 0 {
		f = f.Mark(s.Mark)
	}
	return f
}

// Delete deletes the IPv6 conntrack entries s selects in the network namespace open at
// nsFd (-1: the current one) and returns how many it deleted. Errors deleting single
// entries are joined; the others are still deleted.
func Delete(nsFd int, s Select) (int, error) {
	if s.Mark == 0 && s.Match == nil {
		return 0, ErrEmpty
	}
	var cfg *netlink.Config
	if nsFd >= 0 {
		cfg = &netlink.Config{NetNS: nsFd}
	}
	c, err := conntrack.Dial(cfg)
	if err != nil {
		return 0, fmt.Errorf("opening conntrack netlink: %w", err)
	}
	defer c.Close()
	flows, err := c.DumpFilter(s.filter(), nil)
	if err != nil {
		return 0, fmt.Errorf("listing conntrack entries: %w", err)
	}
	return deleteFlows(c, flows, s)
}

// deleter is the part of *conntrack.Conn that deleteFlows uses.
type deleter interface {
	Delete(conntrack.Flow) error
}

func deleteFlows(c deleter, flows []conntrack.Flow, s Select) (int, error) {
	n := 0
	var errs []error
	for _, f := range flows {
		if !s.selects(f) {
			continue
		}
		if err := c.Delete(f); err != nil {
			if errors.Is(err, syscall.ENOENT) {
				continue // expired meanwhile
			}
			errs = append(errs, err)
			continue
		}
		n++
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("deleting conntrack entries: %w", errors.Join(errs...))
	}
	return n, nil
}
