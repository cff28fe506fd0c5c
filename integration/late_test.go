package integration

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/testbed"
)

// TestInterfacesThatAppearLate: router firmware brings links up in any
// order. v6edge started before its WAN and LAN exist keeps running, says
// in status what it waits for, and serves within 15 s of their creation:
// lease, NAT, RAs, the host's address and default route, a translated ping.
func TestInterfacesThatAppearLate(t *testing.T) {
	t.Parallel()
	l := opsLab(t, testbed.Options{})
	ctx := t.Context()
	// "Not there yet": the lab's interfaces under other names, as a PPPoE
	// or VLAN link is until its daemon creates it.
	for _, c := range [][]string{
		{"ip", "link", "set", "wan0", "down"}, {"ip", "link", "set", "wan0", "name", "wan0-late"},
		{"ip", "link", "set", "lan0", "down"}, {"ip", "link", "set", "lan0", "name", "lan0-late"},
	} {
		if _, err := l.Exec(ctx, l.Router, c...); err != nil {
			t.Fatal(err)
		}
	}
	d := opsRun(t, l, daemonConfig("slaac"), "")
	doc, err := d.WaitStatus(ctx, 15*time.Second, "status naming the missing interfaces", func(doc map[string]any) bool {
		probs, _ := testbed.Get(doc, "problems").([]any)
		has := func(s string) bool {
			return slices.ContainsFunc(probs, func(p any) bool { ps, _ := p.(string); return strings.Contains(ps, s) })
		}
		return has("wan0: interface not found") && has("lan0: interface not found")
	})
	if err != nil {
		t.Fatal(err)
	}
	if code := testbed.GetString(doc, "wan", "state"); code == "bound" {
		t.Fatalf("bound without a WAN: %v", doc)
	}
	time.Sleep(2 * time.Second) // still alive after a while, not restarting
	if _, code, err := d.Status(ctx); err != nil || code == 2 {
		t.Fatalf("the daemon stopped while waiting: exit %d, %v", code, err)
	}

	created := time.Now()
	for _, c := range [][]string{
		{"ip", "link", "set", "wan0-late", "name", "wan0"}, {"ip", "link", "set", "wan0", "up"},
		{"ip", "link", "set", "lan0-late", "name", "lan0"}, {"ip", "link", "set", "lan0", "up"},
	} {
		if _, err := l.Exec(ctx, l.Router, c...); err != nil {
			t.Fatal(err)
		}
	}
	deleg := waitBoundWithin(t, d, l.Pool, 15*time.Second)
	host := l.Hosts[0]
	hostAddr, err := l.WaitHostSLAAC(ctx, host, subnet1, 15*time.Second-time.Since(created))
	if err != nil {
		t.Fatal(err)
	}
	waitHostDefaultRoute(t, l, host)
	serving := time.Since(created)
	t.Logf("v6edge: WAN and LAN created %d ms before the host had its address and default route", serving.Milliseconds())
	if serving > 15*time.Second {
		t.Errorf("serving %v after the interfaces appeared, want within 15 s", serving)
	}
	want := testbed.MapAddr(hostAddr, internal, deleg)
	for _, s := range pingUpstream(t, l, host) {
		if s != want {
			t.Errorf("upstream saw source %s, want %s", s, want)
		}
	}
	if _, code, err := d.Status(ctx); err != nil || code != 0 {
		t.Errorf("status exit %d (%v) once serving", code, err)
	}
}
