package integration

import (
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/testbed"
)

// TestRecreatedLANGetsRAsAgain: a LAN interface deleted and created anew
// (a re-plugged vNIC, a bridge rebuilt by the firmware) has a new ifindex;
// the advertiser's old socket stays bound to the deleted one and would
// never send again. v6edge reconfigures the new interface and its hosts
// get RAs again within 10 s (radvd 2.19: 1.65 s in the same lab, per the
// issue).
func TestRecreatedLANGetsRAsAgain(t *testing.T) {
	t.Parallel()
	l := opsLab(t, testbed.Options{})
	ctx := t.Context()
	d := opsRun(t, l, daemonConfig("slaac"), "")
	waitBoundWithin(t, d, l.Pool, 30*time.Second)
	host := l.Hosts[0]
	if _, err := l.WaitHostSLAAC(ctx, host, subnet1, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	// Delete the router's LAN (its veth peer, the host's eth0, goes with
	// it) and create the pair again.
	for _, c := range [][]string{
		{"ip", "link", "del", testbed.LANIface},
		{"ip", "link", "add", testbed.LANIface, "type", "veth", "peer", "name", testbed.HostIface, "netns", host},
		{"ip", "link", "set", testbed.LANIface, "up"},
	} {
		if _, err := l.Exec(ctx, l.Router, c...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Exec(ctx, host, "ip", "link", "set", testbed.HostIface, "up"); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	var ra testbed.RA
	err := l.WaitFor(ctx, 10*time.Second, "an RA on the re-created LAN", func() (bool, error) {
		out, _ := l.Exec(ctx, host, "rdisc6", "-1", "-w", "1000", testbed.HostIface)
		ras := testbed.ParseRdisc6(out)
		if len(ras) == 0 {
			return false, nil
		}
		ra = ras[0]
		return true, nil
	})
	if err != nil {
		out, _ := l.Exec(ctx, l.Router, "ip", "-6", "addr", "show", "dev", testbed.LANIface)
		doc, _, _ := d.Status(ctx)
		t.Fatalf("%v\nrouter's lan0 now:\n%s\nstatus lan: %v problems %v", err, out, testbed.Get(doc, "lan"), testbed.Get(doc, "problems"))
	}
	took := time.Since(created)
	t.Logf("v6edge: LAN deleted and re-created: the host heard an RA after %d ms", took.Milliseconds())
	found := false
	for _, p := range ra.Prefixes {
		found = found || p.Prefix == subnet1
	}
	if !found {
		t.Errorf("the RA on the new LAN lacks %v: %+v", subnet1, ra.Prefixes)
	}
	if _, err := l.WaitHostSLAAC(ctx, host, subnet1, 15*time.Second); err != nil {
		t.Errorf("the host on the new LAN got no address: %v", err)
	}
}
