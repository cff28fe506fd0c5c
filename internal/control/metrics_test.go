package control

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollectorReflectsStatus(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	st := Status{
		WAN: WAN{Interface: "wan0", State: "bound", Prefix: "2001:db8:100::/56",
			PreferredUntil: now.Add(90 * time.Second).Format(time.RFC3339), ValidUntil: now.Add(300 * time.Second).Format(time.RFC3339),
			PrefixChanges: 2, Messages: map[string]uint64{"sent:SOLICIT": 1, "rejected:bad-client-id": 3}},
		NAT:         NAT{Installed: true, Swaps: 3},
		LAN:         []LAN{{Interface: "lan0", RAsSent: 7, RSReceived: 2}},
		HA:          HA{Role: "master", Transitions: 1},
		Addresses:   []Address{{Interface: "lan0", Address: "fd00::1/64", State: "dadfailed"}},
		Problems:    []string{"x"},
		DADFailures: 4,
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&Collector{Status: func() Status { return st }, Now: func() time.Time { return now }})
	want := `
# HELP v6edge_dad_failures_total Duplicate Address Detection failures of addresses v6edge manages.
# TYPE v6edge_dad_failures_total counter
v6edge_dad_failures_total 4
# HELP v6edge_lease_valid_seconds Seconds left of the delegated prefix's valid lifetime.
# TYPE v6edge_lease_valid_seconds gauge
v6edge_lease_valid_seconds{interface="wan0",prefix="2001:db8:100::/56"} 300
# HELP v6edge_nat_swaps_total NETMAP mapping swaps.
# TYPE v6edge_nat_swaps_total counter
v6edge_nat_swaps_total 3
# HELP v6edge_ra_sent_total Router Advertisements sent.
# TYPE v6edge_ra_sent_total counter
v6edge_ra_sent_total{interface="lan0"} 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "v6edge_dad_failures_total", "v6edge_lease_valid_seconds", "v6edge_nat_swaps_total", "v6edge_ra_sent_total"); err != nil {
		t.Error(err)
	}
	n, err := testutil.GatherAndCount(reg, "v6edge_wan_state")
	if err != nil || n != len(wanStates) {
		t.Errorf("wan_state series = %d (%v), want one per state", n, err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP v6edge_dhcp6_messages_total DHCPv6 client messages by direction or outcome and type.
# TYPE v6edge_dhcp6_messages_total counter
v6edge_dhcp6_messages_total{interface="wan0",kind="rejected",type="bad-client-id"} 3
v6edge_dhcp6_messages_total{interface="wan0",kind="sent",type="SOLICIT"} 1
`), "v6edge_dhcp6_messages_total"); err != nil {
		t.Error(err)
	}
}
