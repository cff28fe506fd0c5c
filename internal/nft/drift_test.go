package nft

import (
	"errors"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// reader is a fixed kernel view for Drift.
type reader struct {
	chains []*nftables.Chain
	rules  map[string][]*nftables.Rule
	err    error // of ListChainsOfTableFamily
}

func (r reader) ListChainsOfTableFamily(nftables.TableFamily) ([]*nftables.Chain, error) {
	return r.chains, r.err
}

func (r reader) GetRules(_ *nftables.Table, c *nftables.Chain) ([]*nftables.Rule, error) {
	rs, ok := r.rules[c.Name]
	if !ok {
		return nil, errors.New("unparsable rule")
	}
	return rs, nil
}

func rule(handle uint64, n int) *nftables.Rule {
	r := &nftables.Rule{Handle: handle}
	for range n {
		r.Exprs = append(r.Exprs, &expr.Counter{})
	}
	return r
}

func TestDrift(t *testing.T) {
	tbl := &nftables.Table{Name: "mine", Family: nftables.TableFamilyIPv6}
	other := &nftables.Table{Name: "other", Family: nftables.TableFamilyIPv6}
	accept, drop := nftables.ChainPolicyAccept, nftables.ChainPolicyDrop
	base := &nftables.Chain{Name: "pre", Table: tbl, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle, Policy: &accept}
	regular := &nftables.Chain{Name: "sub", Table: tbl}
	with := func(c nftables.Chain, f func(*nftables.Chain)) *nftables.Chain { f(&c); return &c }

	byHandle := []Chain{{Chain: regular, Rules: []Rule{{Handle: 4, Exprs: 2}}}, {Chain: base, Rules: []Rule{{Handle: 5, Exprs: 3}, {Handle: 6, Exprs: 1}}}}
	byPosition := []Chain{{Chain: regular, Rules: []Rule{{Exprs: 2}}}, {Chain: base, Rules: []Rule{{Exprs: 3}, {Exprs: 1}}}}
	intact := reader{chains: []*nftables.Chain{regular, base}, rules: map[string][]*nftables.Rule{
		"sub": {rule(4, 2)}, "pre": {rule(5, 3), rule(6, 1)}}}

	tests := []struct {
		name string
		r    reader
		want []Chain
		what string
	}{
		{"intact, by handle", intact, byHandle, ""},
		{"intact, by position", intact, byPosition, ""},
		{"the table is gone", reader{}, byHandle, "table mine missing"},
		{"only another table's chains of the same name", reader{chains: []*nftables.Chain{
			with(*regular, func(c *nftables.Chain) { c.Table = other }), with(*base, func(c *nftables.Chain) { c.Table = other })}},
			byHandle, "table mine missing"},
		{"a chain is gone", reader{chains: []*nftables.Chain{base}, rules: intact.rules}, byHandle, "chain sub missing"},
		{"a chain has another policy", reader{chains: []*nftables.Chain{regular,
			with(*base, func(c *nftables.Chain) { c.Policy = &drop })}, rules: intact.rules}, byHandle,
			"chain pre has the wrong type, hook, priority or policy"},
		{"a chain has another priority", reader{chains: []*nftables.Chain{regular,
			with(*base, func(c *nftables.Chain) { c.Priority = nftables.ChainPriorityFilter })}, rules: intact.rules}, byHandle,
			"chain pre has the wrong type, hook, priority or policy"},
		{"a regular chain became a base chain", reader{chains: []*nftables.Chain{
			with(*base, func(c *nftables.Chain) { c.Name = "sub" }), base}, rules: intact.rules}, byHandle,
			"chain sub has the wrong type, hook, priority or policy"},
		{"a chain cannot be read", reader{chains: intact.chains, rules: map[string][]*nftables.Rule{"pre": intact.rules["pre"]}},
			byHandle, "chain sub unreadable: unparsable rule"},
		{"by handle: a rule replaced by one with another handle", reader{chains: intact.chains, rules: map[string][]*nftables.Rule{
			"sub": {rule(4, 2)}, "pre": {rule(5, 3), rule(7, 1)}}}, byHandle, "chain pre: 1 rules missing, 1 foreign, 0 changed"},
		{"by handle: a rule changed", reader{chains: intact.chains, rules: map[string][]*nftables.Rule{
			"sub": {rule(4, 3)}, "pre": intact.rules["pre"]}}, byHandle, "chain sub: 0 rules missing, 0 foreign, 1 changed"},
		{"by position: a flushed chain", reader{chains: intact.chains, rules: map[string][]*nftables.Rule{
			"sub": {rule(4, 2)}, "pre": nil}}, byPosition, "chain pre: 2 rules missing, 0 foreign, 0 changed"},
		{"by position: a rule added", reader{chains: intact.chains, rules: map[string][]*nftables.Rule{
			"sub": {rule(4, 2), rule(9, 2)}, "pre": intact.rules["pre"]}}, byPosition, "chain sub: 0 rules missing, 1 foreign, 0 changed"},
		{"by position: two rules swapped", reader{chains: intact.chains, rules: map[string][]*nftables.Rule{
			"sub": {rule(4, 2)}, "pre": {rule(6, 1), rule(5, 3)}}}, byPosition, "chain pre: 0 rules missing, 0 foreign, 2 changed"},
		{"several problems are joined", reader{chains: []*nftables.Chain{base}, rules: map[string][]*nftables.Rule{"pre": nil}},
			byHandle, "chain sub missing; chain pre: 2 rules missing, 0 foreign, 0 changed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			what, err := Drift(tc.r, tbl, tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if what != tc.what {
				t.Errorf("Drift() = %q, want %q", what, tc.what)
			}
		})
	}
	t.Run("a kernel that cannot be listed is an error", func(t *testing.T) {
		if _, err := Drift(reader{err: errors.New("EPERM")}, tbl, byHandle); err == nil {
			t.Error("no error")
		}
	})
}
