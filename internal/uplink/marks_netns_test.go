package uplink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/nstest"
)

// TestMarksWatchNetNS proves that the policy table is watched like the NAT table: in a
// fresh namespace v6mark-<random>, `nft flush ruleset` and `nft delete table ip6
// v6edge-policy` each get the table back as rendered within 2 s, counted once each, and
// an intact table is left alone.
func TestMarksWatchNetNS(t *testing.T) {
	nstest.RequireRoot(t, "nft")
	ns := nstest.NewNetns(t, "v6mark")
	run := func(args ...string) string {
		t.Helper()
		return ns.Run(t, args...)
	}

	m, err := NewMarks(ns.Fd(), discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	p := Policy{Uplinks: uplinks(2), LANs: []string{"lan0"}, Internal: internal}
	if err := m.Set(p); err != nil {
		t.Fatal(err)
	}
	want := FormatMarks(RenderMarks(p))
	if got := run("nft", "list", "table", "ip6", MarksTable); got != want {
		t.Fatalf("nft list table after Set:\n%s\nwant:\n%s", got, want)
	}

	nstest.RunTask(t, context.Background(), "Marks.Watch", func(ctx context.Context) error {
		return m.Watch(ctx, time.Second) // the daemon's interval
	})
	// Our own Set and an unrelated table's transactions: events, but no drift.
	run("nft", "add", "table", "ip6", "other")
	time.Sleep(200 * time.Millisecond)
	if n := m.Restores(); n != 0 {
		t.Fatalf("Restores() = %d on an intact table", n)
	}

	for i, breakIt := range [][]string{
		{"nft", "flush", "ruleset"},
		{"nft", "delete", "table", "ip6", MarksTable},
		{"nft", "flush", "chain", "ip6", MarksTable, ChainMarkOut},
	} {
		start := time.Now()
		run(breakIt...)
		nstest.Eventually(t, 2*time.Second, 5*time.Millisecond, strings.Join(breakIt, " ")+": the table restored",
			func() bool { return m.Restores() >= uint64(i+1) })
		t.Logf("%s: restored after %v", strings.Join(breakIt, " "), time.Since(start).Round(time.Millisecond))
		if got := run("nft", "list", "table", "ip6", MarksTable); got != want {
			t.Errorf("after %s:\n%s\nwant:\n%s", strings.Join(breakIt, " "), got, want)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := m.Restores(); n != 3 {
		t.Errorf("Restores() = %d, want 3 (one per break)", n)
	}
}
