package nat

import (
	"testing"

	"github.com/v6edge/v6edge/internal/nstest"
)

// nsPrefix names every namespace these tests create, so a leftover is easy to attribute.
const nsPrefix = "v6nat-"

// newNetns creates a uniquely named network namespace, removed when the test ends.
func newNetns(t testing.TB, role string) nstest.Netns {
	t.Helper()
	return nstest.NewNetns(t, nsPrefix+role)
}

// nsTable returns a Table whose netlink connection lives in ns.
func nsTable(t testing.TB, ns nstest.Netns) *Table {
	t.Helper()
	tbl, err := NewTableNetNS("", ns.Fd(), nil)
	if err != nil {
		t.Fatalf("NewTableNetNS in %s: %v", ns, err)
	}
	t.Cleanup(func() { _ = tbl.Close() })
	return tbl
}

// listTable prints our table as nft does, without handles.
func listTable(t testing.TB, ns nstest.Netns) string {
	t.Helper()
	return ns.Run(t, "nft", "list", "table", "ip6", DefaultName)
}
