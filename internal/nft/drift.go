package nft

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
)

// Reader is the part of *nftables.Conn that Drift reads with.
type Reader interface {
	ListChainsOfTableFamily(nftables.TableFamily) ([]*nftables.Chain, error)
	GetRules(*nftables.Table, *nftables.Chain) ([]*nftables.Rule, error)
}

var _ Reader = (*nftables.Conn)(nil)

// Chain is one chain of a table as its owner installed it.
type Chain struct {
	// Chain is what was added: its name and, for a base chain, type, hook, priority
	// and policy.
	Chain *nftables.Chain
	Rules []Rule
}

// Rule is one installed rule.
type Rule struct {
	// Handle is the kernel's handle of the rule; 0 when the owner did not read it back:
	// the chain's rules are then compared by position.
	Handle uint64
	// Exprs is how many expressions the rule has.
	Exprs int
}

// Drift says what differs between the kernel's table and want ("" when nothing does),
// e.g. "table v6edge missing" or "chain prerouting: 6 rules missing, 0 foreign, 0
// changed". A chain whose rules google/nftables cannot parse (a foreign rule) counts as
// drift, not as an error: restoring removes it. The error is for a kernel that could not
// be read at all.
func Drift(c Reader, table *nftables.Table, want []Chain) (string, error) {
	chains, err := c.ListChainsOfTableFamily(table.Family)
	if err != nil {
		return "", fmt.Errorf("listing chains: %w", err)
	}
	var problems []string
	missing := 0
	for _, w := range want {
		name := w.Chain.Name
		i := slices.IndexFunc(chains, func(c *nftables.Chain) bool {
			return c.Table != nil && c.Table.Name == table.Name && c.Name == name
		})
		if i < 0 {
			problems = append(problems, fmt.Sprintf("chain %s missing", name))
			missing++
			continue
		}
		if c := chains[i]; c.Type != w.Chain.Type || !samePtr(c.Hooknum, w.Chain.Hooknum) ||
			!samePtr(c.Priority, w.Chain.Priority) || !samePtr(c.Policy, w.Chain.Policy) {
			problems = append(problems, fmt.Sprintf("chain %s has the wrong type, hook, priority or policy", name))
			continue
		}
		got, err := c.GetRules(table, w.Chain)
		if err != nil {
			problems = append(problems, fmt.Sprintf("chain %s unreadable: %v", name, err))
			continue
		}
		if p := compareRules(got, w.Rules); p != "" {
			problems = append(problems, fmt.Sprintf("chain %s: %s", name, p))
		}
	}
	if len(want) > 0 && missing == len(want) {
		return "table " + table.Name + " missing", nil
	}
	return strings.Join(problems, "; "), nil
}

// compareRules compares a chain's rules: by handle where want has them, else by
// position.
func compareRules(got []*nftables.Rule, want []Rule) string {
	var extra, changed, missing int
	if slices.ContainsFunc(want, func(r Rule) bool { return r.Handle == 0 }) {
		for i, r := range got {
			switch {
			case i >= len(want):
				extra++
			case len(r.Exprs) != want[i].Exprs:
				changed++
			}
		}
		missing = max(len(want)-len(got), 0)
	} else {
		exprs := map[uint64]int{}
		for _, r := range want {
			exprs[r.Handle] = r.Exprs
		}
		for _, r := range got {
			n, ok := exprs[r.Handle]
			switch {
			case !ok:
				extra++
			case n != len(r.Exprs):
				changed++
			}
			delete(exprs, r.Handle)
		}
		missing = len(exprs)
	}
	if extra+changed+missing == 0 {
		return ""
	}
	return fmt.Sprintf("%d rules missing, %d foreign, %d changed", missing, extra, changed)
}

// samePtr compares optional chain attributes: both unset (a regular chain) or equal.
func samePtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}
