package nft

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/v6edge/v6edge/internal/nstest"
)

// TestNetNS drives a real kernel: a batch of 2000 rules through Open's connection (the
// echo needs the big buffer, and so does the monitor for the notifications), Drift reading it back intact and noticing each kind of
// change nft makes, and Monitor signalling transactions of anyone in the namespace only.
func TestNetNS(t *testing.T) {
	nstest.RequireRoot(t, "nft")
	ns := nstest.NewNetns(t, "v6nft")
	c, err := Open(ns.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseLasting()

	events, stop, err := Monitor(ns.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// waitEvent waits for the signals of one transaction: a large one may come as more
	// than one (Keeper lets such a burst settle).
	waitEvent := func(what string) {
		t.Helper()
		select {
		case _, ok := <-events:
			if !ok {
				t.Fatalf("the monitor died at %s", what)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("no change event after %s", what)
		}
		for {
			select {
			case _, ok := <-events:
				if !ok {
					t.Fatalf("the monitor died at %s", what)
				}
				continue
			case <-time.After(100 * time.Millisecond):
			}
			return
		}
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case _, ok := <-events:
			t.Fatalf("a change event after %s (monitor alive: %v)", what, ok)
		case <-time.After(200 * time.Millisecond):
		}
	}

	tbl := &nftables.Table{Name: "v6nft-test", Family: nftables.TableFamilyIPv6}
	accept := nftables.ChainPolicyAccept
	chain := &nftables.Chain{Name: "postrouting", Table: tbl, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityMangle, Policy: &accept}
	c.AddTable(tbl)
	c.AddChain(chain)
	const n = 2000
	for range n {
		c.AddRule(&nftables.Rule{Table: tbl, Chain: chain, Exprs: []expr.Any{&expr.Counter{}}})
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("a batch of %d rules: %v", n, err)
	}
	waitEvent("our own batch")
	quiet("nothing")

	want := []Chain{{Chain: chain}}
	for range n {
		want[0].Rules = append(want[0].Rules, Rule{Exprs: 1})
	}
	if what, err := Drift(c, tbl, want); err != nil || what != "" {
		t.Fatalf("Drift() on the fresh table = %q, %v", what, err)
	}

	// Another namespace's transactions are not ours to see.
	other := nstest.NewNetns(t, "v6nft")
	other.Run(t, "nft", "add", "table", "ip6", "elsewhere")
	quiet("a transaction in another namespace")

	for _, tc := range []struct {
		cmd  string
		what string
	}{
		{"add rule ip6 v6nft-test postrouting counter accept", "chain postrouting: 0 rules missing, 1 foreign, 0 changed"},
		{"flush chain ip6 v6nft-test postrouting", fmt.Sprintf("chain postrouting: %d rules missing, 0 foreign, 0 changed", n)},
		{"chain ip6 v6nft-test postrouting { policy drop; }", "chain postrouting has the wrong type, hook, priority or policy"},
		{"flush ruleset", "table v6nft-test missing"},
	} {
		ns.Run(t, "nft", tc.cmd)
		waitEvent(tc.cmd)
		what, err := Drift(c, tbl, want)
		if err != nil {
			t.Fatal(err)
		}
		if what != tc.what {
			t.Errorf("after nft %s: Drift() = %q, want %q", tc.cmd, what, tc.what)
		}
	}
}
