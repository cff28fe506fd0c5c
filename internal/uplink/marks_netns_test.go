package uplink

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// TestMarksWatchNetNS proves that the policy table is watched like the NAT table: in a
// fresh namespace v6mark-<random>, `nft flush ruleset` and `nft delete table ip6
// v6edge-policy` each get the table back as rendered within 2 s, counted once each, and
// an intact table is left alone.
func TestMarksWatchNetNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	ns := fmt.Sprintf("v6mark-%06x", rand.IntN(1<<24))
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s in %s: %v\n%s", strings.Join(args, " "), ns, err, out)
		}
		return string(out)
	}
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })

	m, err := NewMarks(int(h), discard())
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

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Watch(ctx, time.Second) }() // the daemon's interval
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch() = %v", err)
		}
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
		for m.Restores() < uint64(i+1) {
			if time.Since(start) > 2*time.Second {
				t.Fatalf("%s: table not restored within 2 s", strings.Join(breakIt, " "))
			}
			time.Sleep(5 * time.Millisecond)
		}
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
