package ctflush

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ti-mo/conntrack"

	"github.com/v6edge/v6edge/internal/nstest"
)

// TestDeleteNetNS creates conntrack entries with the conntrack tool in a fresh namespace
// v6ct-<random> (and the same entries in a second one, which must stay untouched) and
// checks that Delete removes exactly the selected ones.
func TestDeleteNetNS(t *testing.T) {
	nstest.RequireRoot(t, "conntrack")
	const up1, up2 = "0x76650001", "0x76650002"
	old := netip.MustParsePrefix("2001:db8:100::/56")
	// Each entry is named by its original source address.
	entries := []struct{ src, dst, replySrc, replyDst, mark string }{
		// outbound via uplink 1, source mapped into the old prefix
		{"fd00::a", "2001:db8:ffff::2", "2001:db8:ffff::2", "2001:db8:100:1::a", up1},
		// outbound via uplink 2, mapped into another prefix
		{"fd00::b", "2001:db8:ffff::2", "2001:db8:ffff::2", "2001:db8:200:1::b", up2},
		// inbound via uplink 1, opened to an address in the old prefix
		{"2001:db8:ffff::3", "2001:db8:100:1::c", "fd00::c", "2001:db8:ffff::3", up1},
		// an unmarked LAN flow
		{"fd00::d", "fd00::e", "fd00::e", "fd00::d", "0"},
		// IPv4 with uplink 1's mark
		{"192.0.2.10", "198.51.100.2", "198.51.100.2", "192.0.2.10", up1},
	}
	setup := func(t *testing.T) (int, func() []string) {
		ns := nstest.NewNetns(t, "v6ct")
		for _, e := range entries {
			out, err := ns.Try("conntrack", "-I", "-p", "udp",
				"-s", e.src, "-d", e.dst, "-r", e.replySrc, "-q", e.replyDst,
				"--sport", "40000", "--dport", "53", "--reply-port-src", "53", "--reply-port-dst", "40000",
				"-t", "300", "--mark", e.mark)
			if err != nil {
				t.Fatalf("conntrack -I %+v: %v\n%s", e, err, out)
			}
		}
		// left lists the original sources of the entries still there.
		left := func() []string {
			out := ns.Run(t, "conntrack", "-L")
			var srcs []string
			for _, line := range strings.Split(out, "\n") {
				for _, f := range strings.Fields(line) {
					if s, ok := strings.CutPrefix(f, "src="); ok {
						srcs = append(srcs, s)
						break // the original direction's source comes first
					}
				}
			}
			slices.Sort(srcs)
			return srcs
		}
		if got := left(); len(got) != len(entries) {
			t.Fatalf("%d entries created, want %d: %v", len(got), len(entries), got)
		}
		return ns.Fd(), left
	}
	all := []string{"192.0.2.10", "2001:db8:ffff::3", "fd00::a", "fd00::b", "fd00::d"}
	usesOld := func(f conntrack.Flow) bool {
		return old.Contains(f.TupleReply.IP.DestinationAddress) || old.Contains(f.TupleOrig.IP.DestinationAddress)
	}

	tests := []struct {
		name string
		s    Select
		n    int
		left []string
	}{
		{"by mark: the IPv6 flows of uplink 1", Select{Mark: 0x76650001}, 2,
			[]string{"192.0.2.10", "fd00::b", "fd00::d"}},
		{"by match: the flows translated into or out of the old prefix", Select{Match: usesOld}, 2,
			[]string{"192.0.2.10", "fd00::b", "fd00::d"}},
		{"by mark and match", Select{Mark: 0x76650001, Match: func(f conntrack.Flow) bool {
			return old.Contains(f.TupleOrig.IP.DestinationAddress)
		}}, 1, []string{"192.0.2.10", "fd00::a", "fd00::b", "fd00::d"}},
		{"nothing selected", Select{Mark: 0x76650009}, 0, all},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fd, left := setup(t)
			_, bystander := setup(t)
			n, err := Delete(fd, tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.n {
				t.Errorf("Delete = %d, want %d", n, tc.n)
			}
			if got := left(); !slices.Equal(got, tc.left) {
				t.Errorf("left %v, want %v", got, tc.left)
			}
			if got := bystander(); !slices.Equal(got, all) {
				t.Errorf("another namespace lost entries: %v", got)
			}
		})
	}
}
