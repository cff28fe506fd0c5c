package migrate

import (
	"net"
	"net/netip"
	"time"

	"github.com/v6edge/v6edge/internal/testbed"
)

// pairOptions is node 1 of the lab's incumbent pair (integration/pairinc_test.go).
func pairOptions() testbed.PairIncOptions {
	shared, _ := net.ParseMAC("02:00:5e:00:01:33")
	own, _ := net.ParseMAC("02:00:5e:00:02:01")
	return testbed.PairIncOptions{
		VRID: 51, Priority: 150, Advert: time.Second, SharedMAC: shared, OwnMAC: own,
		VirtualAddrs: []string{"fe80::1/64", "fd00:aaaa:bbbb:cc01::1/64"},
		RASource:     netip.MustParseAddr("fe80::1"),
	}
}
