package nat

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// nsPrefix names every namespace these tests create, so a leftover is easy to attribute.
const nsPrefix = "v6nat-"

func requireRoot(t testing.TB, bins ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces and load nftables rules")
	}
	for _, b := range append([]string{"ip"}, bins...) {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("skipping: %s is not installed", b)
		}
	}
}

// newNetns creates a uniquely named network namespace, removed when the test ends.
func newNetns(t testing.TB, role string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := nsPrefix + role + "-" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name
}

// nsRun runs a command inside ns and fails the test when it fails.
func nsRun(t testing.TB, ns string, args ...string) string {
	t.Helper()
	out, err := nsTry(ns, args...)
	if err != nil {
		t.Fatalf("ip netns exec %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return out
}

func nsTry(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// nsFd opens the namespace file, closed when the test ends.
func nsFd(t testing.TB, ns string) int {
	t.Helper()
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// nsTable returns a Table whose netlink connection lives in ns.
func nsTable(t testing.TB, ns string) *Table {
	t.Helper()
	tbl, err := NewTableNetNS("", nsFd(t, ns), nil)
	if err != nil {
		t.Fatalf("NewTableNetNS in %s: %v", ns, err)
	}
	t.Cleanup(func() { _ = tbl.Close() })
	return tbl
}

// listTable prints our table as nft does, without handles.
func listTable(t testing.TB, ns string) string {
	t.Helper()
	return nsRun(t, ns, "nft", "list", "table", "ip6", DefaultName)
}

func execCommand(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
