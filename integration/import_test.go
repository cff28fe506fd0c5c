package integration

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/v6edge/v6edge/internal/testbed"
)

// `v6edge import` (issue 20) against the setups the lab runs as the
// incumbent: the imported config must make v6edge do what they did, so
// each test runs the incumbent, records what it did (delegated prefix,
// NETMAP, radvd's RA as rdisc6 prints it), stops it, imports its files,
// runs v6edge on the result and checks the same things.

// runImport runs `v6edge import args...` and returns the config, stderr
// and the exit status.
func runImport(t *testing.T, args ...string) (config, stderr string, status int) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "v6edge.toml")
	cmd := exec.CommandContext(t.Context(), bin, append(append([]string{"import"}, args...), "-o", out)...)
	var errb strings.Builder
	cmd.Stderr = &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		status = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	text, _ := os.ReadFile(out)
	return string(text), errb.String(), status
}

// raFields are the "key: value" lines of the first RA rdisc6 printed,
// sorted: every field and option it shows, to compare two routers' RAs
// field by field. Sorted, because the order of options is free (RFC 4861
// §4.2; radvd puts the source link-layer address last, v6edge first);
// with one prefix, its lines cannot mix with another's.
func raFields(out string) []string {
	var f []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "from ") {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "Soliciting") {
			f = append(f, strings.TrimSpace(k)+": "+strings.TrimSpace(v))
		}
	}
	slices.Sort(f)
	return f
}

// hostRA waits for an RA on the lab's host and returns rdisc6's output.
func hostRA(t *testing.T, l *testbed.Lab) string {
	t.Helper()
	ctx := t.Context()
	var out string
	err := l.WaitFor(ctx, 15*time.Second, "an RA on the host", func() (bool, error) {
		var err error
		out, err = l.Exec(ctx, l.Hosts[0], "rdisc6", "-1", "-w", "1000", testbed.HostIface)
		return len(testbed.ParseRdisc6(out)) > 0, err
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// compareRAs checks that v6edge's RA carries what radvd's did.
func compareRAs(t *testing.T, radvd, v6edge string) {
	t.Helper()
	if diff := cmp.Diff(testbed.ParseRdisc6(radvd)[0], testbed.ParseRdisc6(v6edge)[0], cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
		t.Errorf("RA (-radvd +v6edge):\n%s", diff)
	}
	if diff := cmp.Diff(raFields(radvd), raFields(v6edge)); diff != "" {
		t.Errorf("rdisc6 fields (-radvd +v6edge):\n%s\nradvd:\n%s\nv6edge:\n%s", diff, radvd, v6edge)
	}
}

func kepaPD(t *testing.T, l *testbed.Lab, duid string) netip.Prefix {
	t.Helper()
	var deleg netip.Prefix
	err := l.WaitFor(t.Context(), 30*time.Second, "a PD lease", func() (bool, error) {
		leases, err := l.KeaLeases()
		for _, le := range leases {
			if le.Type == "IA_PD" && le.Valid > 0 && (duid == "" || le.DUID == duid) {
				deleg = le.Prefix
			}
		}
		return deleg.IsValid(), err
	})
	if err != nil {
		t.Fatal(err)
	}
	return deleg
}

// TestImportIncumbentSingleRouter: dhcpcd + NETMAP hook + radvd, as
// RunIncumbent runs them, imported and replaced by v6edge.
func TestImportIncumbentSingleRouter(t *testing.T) {
	parallel(t)
	for _, prog := range []string{"dhcpcd", "radvd", "unshare", "rdisc6"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("needs %s", prog)
		}
	}
	ctx := t.Context()
	l := newLab(t, "v6import", testbed.Options{})
	inc, err := l.RunIncumbent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deleg := kepaPD(t, l, "")
	if out, err := l.WaitNetmap(ctx, l.Router, internal, deleg, netip.Prefix{}, 10*time.Second); err != nil {
		t.Fatalf("incumbent NETMAP: %v\n%s", err, out)
	}
	radvdRA := hostRA(t, l)
	hostAddr := hostSLAAC(t, l, l.Hosts[0], subnet1)
	if err := inc.Stop(); err != nil {
		t.Fatal(err)
	}
	// What the incumbent leaves behind that v6edge would otherwise find:
	// its nft table and the LAN address the operator added by hand.
	for _, cmd := range [][]string{
		{"nft", "delete", "table", "ip6", "incumbent"},
		{"ip", "addr", "del", lanRouter.String() + "/64", "dev", testbed.LANIface},
	} {
		if out, err := l.Exec(ctx, l.Router, cmd...); err != nil {
			t.Fatalf("%v: %v\n%s", cmd, err, out)
		}
	}

	config, stderr, status := runImport(t, "-dhcpcd", inc.DhcpcdConf, "-hook", inc.Hook, "-radvd", inc.RadvdConf, "-keepalived", "")
	t.Logf("imported config:\n%s", config)
	if status != 0 {
		t.Fatalf("v6edge import: exit %d, want 0 (everything imported)\n%s", status, stderr)
	}
	d := runDaemon(t, l, config, 40)

	t.Run("v6edge binds the prefix dhcpcd had", func(t *testing.T) {
		if got := waitBound(t, d, l.Pool); got != deleg {
			t.Errorf("delegated %s, dhcpcd had %s", got, deleg)
		}
	})
	t.Run("v6edge installs the hook's NETMAP pair", func(t *testing.T) {
		netmapPresent(t, l, deleg)
		wantStatusNAT(t, d, deleg)
	})
	t.Run("the host keeps its address and leaves mapped as before", func(t *testing.T) {
		waitInternet(t, l, l.Hosts[0], 15*time.Second, "the host reaching the internet through v6edge")
		want := testbed.MapAddr(hostAddr, internal, deleg)
		seen := pingSources(t, l, l.Hosts[0], hostAddr)
		if len(seen) == 0 || seen[0] != want {
			t.Errorf("upstream saw %v, want %s", seen, want)
		}
	})
	t.Run("v6edge's RA carries what radvd's did, field by field", func(t *testing.T) {
		compareRAs(t, radvdRA, hostRA(t, l))
	})
}

// TestImportIncumbentPair: the keepalived pair (pairinc_test.go) imported
// on each node and replaced by a v6edge VRRPv3 pair, which must hold the
// same prefix, send the RA radvd sent and survive node 1's death.
func TestImportIncumbentPair(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	for _, prog := range []string{"keepalived", "dhcpcd", "radvd", "unshare", "setsid", "rdisc6"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("needs %s", prog)
		}
	}
	t.Parallel()
	ctx := t.Context()
	l := pairNewLab(t, 2)
	shared, err := net.ParseMAC(pairSharedMAC)
	if err != nil {
		t.Fatal(err)
	}
	const advert = 500 * time.Millisecond // haConfig's: 100 ms flaps on a loaded machine
	var nodes []*testbed.PairIncNode
	for i, prio := range []int{150, pairBackupPriority} {
		own := pairOwnMAC
		if i > 0 {
			own = l.WANMACs[i]
		}
		n, err := l.PairIncStart(ctx, i, testbed.PairIncOptions{
			VRID: pairVRID, Priority: prio, Advert: advert, SharedMAC: shared, OwnMAC: own,
			VirtualAddrs: []string{pairVirtualLL.String() + "/64", pairRouterULA.String()},
			RASource:     pairVirtualLL,
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, n := range nodes {
				t.Logf("incumbent node %d keepalived (last lines):\n%s\n%s", i+1, lastLines(n.Keepalived.Log(), 30), n.Log())
			}
		}
	})
	deleg := kepaPD(t, l, pairDUID)
	if !pairIncWaitNetmap(t, l, nodes[0], deleg, 15*time.Second) {
		t.Fatal("the incumbent's node 1 never mapped the prefix")
	}
	hostAddr := hostSLAAC(t, l, l.Hosts[0], subnet1)
	radvdRA := hostRA(t, l)

	// Import on each node from the files it runs.
	var configs []string
	for i, n := range nodes {
		config, stderr, status := runImport(t,
			"-dhcpcd", filepath.Join(n.Dir, "dhcpcd.conf"), "-hook", filepath.Join(n.Dir, "dhcpcd-hook.sh"),
			"-radvd", filepath.Join(n.Dir, "radvd.conf"), "-keepalived", filepath.Join(n.Dir, "keepalived.conf"))
		t.Logf("node %d imported config:\n%s", i+1, config)
		if status != 0 {
			t.Fatalf("node %d: v6edge import: exit %d, want 0\n%s", i+1, status, stderr)
		}
		configs = append(configs, config)
	}

	// The incumbent goes away as in a maintenance window: keepalived
	// stopped (it removes its virtual addresses), then each node's notify
	// script run for backup, which stops dhcpcd (SIGTERM: no Release, and
	// its privsep helpers exit with it, freeing port 546) and radvd,
	// deletes the hook's table and gives the WAN its own MAC back.
	for i, n := range nodes {
		if err := n.Keepalived.Stop(); err != nil {
			t.Fatal(err)
		}
		if out, err := l.Exec(ctx, l.Routers[i], filepath.Join(n.Dir, "notify.sh"), "backup"); err != nil {
			t.Fatalf("node %d notify.sh backup: %v\n%s", i+1, err, out)
		}
	}
	v6 := runNodes(t, l, func(prio int) string {
		if prio == 150 {
			return configs[0]
		}
		return configs[1]
	}, 150, pairBackupPriority)

	t.Run("the v6edge pair holds the prefix the incumbent had", func(t *testing.T) {
		if got := waitMasterBound(t, v6); got != deleg {
			t.Errorf("delegated %s, the incumbent had %s", got, deleg)
		}
		pairCheckOneKeaLease(t, l, deleg)
	})
	if t.Failed() {
		t.FailNow()
	}
	t.Run("the host keeps its address and reaches the internet mapped", func(t *testing.T) {
		waitHostThroughPair(t, l)
		if !pairIncHostHas(t, l, hostAddr) {
			t.Errorf("the host lost %s", hostAddr)
		}
		want := testbed.MapAddr(hostAddr, internal, deleg)
		if seen := pingSources(t, l, l.Hosts[0], hostAddr); len(seen) == 0 || seen[0] != want {
			t.Errorf("upstream saw %v, want %s", seen, want)
		}
	})
	t.Run("the master's RA carries what radvd's did, field by field", func(t *testing.T) {
		compareRAs(t, radvdRA, hostRA(t, l))
	})
	t.Run("node 1 dies and node 2 takes over with the same prefix", func(t *testing.T) {
		p := &pairLab{Lab: l, nodes: v6, advert: advert, deleg: deleg, hostAddr: hostAddr}
		o := p.pairMeasure(t, func() { p.killNode1(t) })
		p.waitNode2Master(t, 5*time.Second)
		doc, _, err := v6[1].Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := testbed.GetString(doc, "wan", "prefix"); got != deleg.String() {
			t.Errorf("node 2 has prefix %s, want %s", got, deleg)
		}
		if o.ViaNew == 0 {
			t.Error("no reply came through node 2")
		}
		if !pairIncHostHas(t, l, hostAddr) {
			t.Errorf("the host lost %s", hostAddr)
		}
		t.Logf("imported pair, node death at %v adverts: %v", advert, o)
	})
}
