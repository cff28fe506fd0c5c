package hook

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnvMatchesDhcpcd(t *testing.T) {
	e := Event{Reason: Bound, Interface: "wan0", IAID: 1,
		New: []Prefix{{netip.MustParsePrefix("2001:db8:200::/56"), 3000 * time.Second, 4000 * time.Second}},
		Old: []Prefix{{netip.MustParsePrefix("2001:db8:100::/56"), 0, 0}}}
	env := e.Env()
	for _, want := range []string{
		"reason=BOUND6", "interface=wan0",
		"new_dhcp6_ia_pd1_prefix1=2001:db8:200::", "new_dhcp6_ia_pd1_prefix1_length=56",
		"new_dhcp6_ia_pd1_prefix1_pltime=3000", "new_dhcp6_ia_pd1_prefix1_vltime=4000",
		"old_dhcp6_ia_pd1_prefix1=2001:db8:100::", "old_dhcp6_ia_pd1_prefix1_length=56",
		"new_dhcp6_ia_pd1_iaid=00000001",
	} {
		if !slices.Contains(env, want) {
			t.Errorf("env lacks %q: %q", want, env)
		}
	}
}

func TestClassify(t *testing.T) {
	p1, p2 := netip.MustParsePrefix("2001:db8:100::/56"), netip.MustParsePrefix("2001:db8:200::/56")
	for _, tc := range []struct {
		name, state string
		old, new    netip.Prefix
		restarted   bool
		want        string
	}{
		{"a first lease is BOUND6", "bound", netip.Prefix{}, p1, false, Bound},
		{"a renumbered lease is BOUND6", "bound", p1, p2, false, Bound},
		{"the same prefix renewed is RENEW6", "bound", p1, p1, false, Renew},
		{"the same prefix while rebinding is REBIND6", "rebinding", p1, p1, false, Rebind},
		{"the saved prefix confirmed after a restart is REBOOT6", "bound", p1, p1, true, Reboot},
		{"a lost prefix is EXPIRE6", "expired", p1, netip.Prefix{}, false, Expire},
		{"a released prefix is RELEASE6", "released", p1, netip.Prefix{}, false, Release},
		{"nothing before and after is no event", "soliciting", netip.Prefix{}, netip.Prefix{}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.state, tc.old, tc.new, tc.restarted); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunnerRunsInOrderWithTheEnvironment(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	r := &Runner{Path: script(t, `echo "$reason $interface $new_dhcp6_ia_pd1_prefix1/$new_dhcp6_ia_pd1_prefix1_length" >> `+out+"\n"), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	p := netip.MustParsePrefix("2001:db8:100::/56")
	for _, reason := range []string{Bound, Renew, Rebind} {
		r.Fire(context.Background(), Event{Reason: reason, Interface: "wan0", New: []Prefix{{Prefix: p}}})
	}
	r.Wait()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := "BOUND6 wan0 2001:db8:100::/56\nRENEW6 wan0 2001:db8:100::/56\nREBIND6 wan0 2001:db8:100::/56\n"
	if string(b) != want {
		t.Errorf("script saw:\n%s\nwant:\n%s", b, want)
	}
}

func TestRunnerKillsAHangingScript(t *testing.T) {
	var logs strings.Builder
	r := &Runner{Path: script(t, "sleep 30 &\nsleep 30\n"), Timeout: 200 * time.Millisecond, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	start := time.Now()
	r.Fire(context.Background(), Event{Reason: Bound, Interface: "wan0"})
	done := make(chan struct{})
	go func() { r.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a hanging script stalled the runner")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %s", took)
	}
	if !strings.Contains(logs.String(), "timeout") {
		t.Errorf("the timeout was not logged: %s", logs.String())
	}
}

func TestFireNeverBlocks(t *testing.T) {
	r := &Runner{Path: script(t, "sleep 1\n"), Timeout: 5 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); r.Wait() })
	start := time.Now()
	for i := 0; i < 100; i++ {
		r.Fire(ctx, Event{Reason: Renew, Interface: "wan0"})
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("Fire blocked for %s", took)
	}
	r.mu.Lock()
	n := len(r.queue)
	r.mu.Unlock()
	if n > maxQueue {
		t.Errorf("backlog %d exceeds %d", n, maxQueue)
	}
}
