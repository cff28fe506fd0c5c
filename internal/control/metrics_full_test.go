package control

import (
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var fullNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// fullStatus is a status document with every field the collector reads
// set, so every metric has at least one series.
func fullStatus() Status {
	at := func(d time.Duration) string { return fullNow.Add(d).Format(time.RFC3339) }
	wan0 := WAN{Interface: "wan0", State: "bound", DUID: "00:03:00:01:02:00:00:00:00:01", Prefix: "2001:db8:100::/56",
		PreferredUntil: at(90 * time.Second), ValidUntil: at(300 * time.Second), ServerDUID: "00:01",
		OtherPrefixes: []string{"2001:db8:200::/56"}, DefaultRouter: "fe80::1", Healthy: true,
		RecentProblems: []string{"rejected Reply: NoPrefixAvail"}, LastFailover: at(-time.Hour), LastFailoverWhy: "wan1 unhealthy",
		Preferred: true, PrefixChanges: 2,
		Messages:  map[string]uint64{"sent:SOLICIT": 1, "received:REPLY": 2, "rejected:bad-client-id": 3},
		Addresses: []string{"2001:db8:ffff::10", "2001:db8:ffff::10"}, Excluded: "2001:db8:100:ff::/64",
		DNS: []string{"2001:db8::53", "2001:db8::54"}, Domains: []string{"isp.example"}}
	wan1 := WAN{Interface: "wan1", State: "soliciting", Unhealthy: "no lease", LastFailover: wan0.LastFailover}
	return Status{
		WAN: wan0, WANs: []WAN{wan0, wan1},
		NAT: NAT{Internal: "fd00::/56", External: "2001:db8:100::/56", Installed: true, Swaps: 3, Restores: 1,
			LastSwap: fullNow.Add(-time.Minute).Format(time.RFC3339Nano), LastSwapSeconds: 0.012},
		LAN: []LAN{{Interface: "lan0", Mode: "stateful", Managed: true, Other: true,
			Prefixes:   []Prefix{{Prefix: "2001:db8:100::/64", PreferredS: 90, ValidS: 300}},
			Deprecated: []Prefix{{Prefix: "2001:db8:300::/64", PreferredS: 0, ValidS: 7200}, {Prefix: "2001:db8:100::/64"}},
			RAsSent:    7, RSReceived: 2, Routers: []string{"fe80::2"},
			DHCP: &DHCP{Leases: 5, Delegations: []string{"fd00:0:0:10::/60 via fe80::99"}, Received: 100, Replied: 90, Dropped: 10,
				DroppedBy:   map[string]uint64{"rate_limited": 4, "malformed": 3, "invalid": 1, "not_for_us": 1, "other": 1},
				WriteErrors: 1, SaveErrors: 2}}},
		HA: HA{Role: "master", VRID: 7, Priority: 150, Peer: "fe80::3", LastTransition: at(-2 * time.Hour), Reason: "higher priority", Transitions: 1},
		Addresses: []Address{{Interface: "lan0", Address: "fd00::1/64", State: "dadfailed"},
			{Interface: "lan0", Address: "fd00::1/64", State: "ok"}},
		Problems:    []string{"x"},
		DADFailures: 4,
		Version:     "1.2.3",
		Started:     at(-24 * time.Hour),
	}
}

func fullRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(&Collector{Status: fullStatus, Now: func() time.Time { return fullNow }})
	return reg
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// describedNames are the names the collector's Describe announces.
func describedNames() []string {
	ch := make(chan *prometheus.Desc, len(allDescs))
	(&Collector{}).Describe(ch)
	close(ch)
	var names []string
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}

// TestCollectorFullStatusHasEverySeries: on a full status every described
// metric has a series, so no part of the document goes unexported, and the
// scrape is lint clean (promlint, what `promtool check metrics` runs).
func TestCollectorFullStatusHasEverySeries(t *testing.T) {
	reg := fullRegistry(t)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	described := describedNames()
	if len(described) != len(allDescs) {
		t.Fatalf("Describe gave %d names, want %d", len(described), len(allDescs))
	}
	for _, n := range described {
		if !got[n] {
			t.Errorf("%s has no series on a full status", n)
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestServedRegistryIsLintClean: what /metrics serves, Go and process
// collectors included, passes promlint.
func TestServedRegistryIsLintClean(t *testing.T) {
	reg := NewRegistry(fullStatus)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{"go_goroutines", "go_memstats_alloc_bytes", "v6edge_build_info"} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s among %v", want, names)
		}
	}
	if runtime.GOOS == "linux" && !slices.Contains(names, "process_resident_memory_bytes") {
		t.Errorf("no process collector: %v", names)
	}
}

func TestCollectorFullStatusValues(t *testing.T) {
	reg := fullRegistry(t)
	goVersion := runtime.Version()
	want := `
# HELP v6edge_build_info 1, labelled with the daemon's version and the Go version it was built with.
# TYPE v6edge_build_info gauge
v6edge_build_info{goversion="` + goVersion + `",version="1.2.3"} 1
# HELP v6edge_dhcp6_server_dropped_total Messages the LAN's DHCPv6 server dropped, by reason.
# TYPE v6edge_dhcp6_server_dropped_total counter
v6edge_dhcp6_server_dropped_total{interface="lan0",reason="invalid"} 1
v6edge_dhcp6_server_dropped_total{interface="lan0",reason="malformed"} 3
v6edge_dhcp6_server_dropped_total{interface="lan0",reason="not_for_us"} 1
v6edge_dhcp6_server_dropped_total{interface="lan0",reason="other"} 1
v6edge_dhcp6_server_dropped_total{interface="lan0",reason="rate_limited"} 4
# HELP v6edge_dhcp6_server_leases Leases the LAN's DHCPv6 server holds.
# TYPE v6edge_dhcp6_server_leases gauge
v6edge_dhcp6_server_leases{interface="lan0"} 5
# HELP v6edge_dhcp6_server_delegations Prefixes the LAN's DHCPv6 server delegates.
# TYPE v6edge_dhcp6_server_delegations gauge
v6edge_dhcp6_server_delegations{interface="lan0"} 1
# HELP v6edge_dhcp6_server_received_total Messages the LAN's DHCPv6 server received.
# TYPE v6edge_dhcp6_server_received_total counter
v6edge_dhcp6_server_received_total{interface="lan0"} 100
# HELP v6edge_dhcp6_server_replied_total Replies the LAN's DHCPv6 server sent.
# TYPE v6edge_dhcp6_server_replied_total counter
v6edge_dhcp6_server_replied_total{interface="lan0"} 90
# HELP v6edge_dhcp6_server_save_errors_total Failed writes of the LAN's DHCPv6 lease file.
# TYPE v6edge_dhcp6_server_save_errors_total counter
v6edge_dhcp6_server_save_errors_total{interface="lan0"} 2
# HELP v6edge_dhcp6_server_write_errors_total Replies the LAN's DHCPv6 server could not send.
# TYPE v6edge_dhcp6_server_write_errors_total counter
v6edge_dhcp6_server_write_errors_total{interface="lan0"} 1
# HELP v6edge_lan_prefix_deprecated 1 while the prefix is being withdrawn (preferred lifetime 0, RFC 9096).
# TYPE v6edge_lan_prefix_deprecated gauge
v6edge_lan_prefix_deprecated{interface="lan0",prefix="2001:db8:100::/64"} 0
v6edge_lan_prefix_deprecated{interface="lan0",prefix="2001:db8:300::/64"} 1
# HELP v6edge_lan_prefix_preferred_seconds Preferred lifetime the last RA carried for the prefix.
# TYPE v6edge_lan_prefix_preferred_seconds gauge
v6edge_lan_prefix_preferred_seconds{interface="lan0",prefix="2001:db8:100::/64"} 90
v6edge_lan_prefix_preferred_seconds{interface="lan0",prefix="2001:db8:300::/64"} 0
# HELP v6edge_lan_prefix_valid_seconds Valid lifetime the last RA carried for the prefix.
# TYPE v6edge_lan_prefix_valid_seconds gauge
v6edge_lan_prefix_valid_seconds{interface="lan0",prefix="2001:db8:100::/64"} 300
v6edge_lan_prefix_valid_seconds{interface="lan0",prefix="2001:db8:300::/64"} 7200
# HELP v6edge_lan_managed 1 while the LAN's RAs carry the M flag.
# TYPE v6edge_lan_managed gauge
v6edge_lan_managed{interface="lan0"} 1
# HELP v6edge_lease_preferred_until_timestamp_seconds When the delegated prefix's preferred lifetime ends (Unix time).
# TYPE v6edge_lease_preferred_until_timestamp_seconds gauge
v6edge_lease_preferred_until_timestamp_seconds{interface="wan0",prefix="2001:db8:100::/56"} 1.79569449e+09
# HELP v6edge_lease_valid_until_timestamp_seconds When the delegated prefix's valid lifetime ends (Unix time).
# TYPE v6edge_lease_valid_until_timestamp_seconds gauge
v6edge_lease_valid_until_timestamp_seconds{interface="wan0",prefix="2001:db8:100::/56"} 1.7956947e+09
# HELP v6edge_lease_preferred_seconds Seconds left of the delegated prefix's preferred lifetime.
# TYPE v6edge_lease_preferred_seconds gauge
v6edge_lease_preferred_seconds{interface="wan0",prefix="2001:db8:100::/56"} 90
# HELP v6edge_wan_address_info 1 for each IA_NA address of the uplink.
# TYPE v6edge_wan_address_info gauge
v6edge_wan_address_info{address="2001:db8:ffff::10",interface="wan0"} 1
# HELP v6edge_wan_dns_servers DNS servers the uplink's server sent (DHCPv6 option 23).
# TYPE v6edge_wan_dns_servers gauge
v6edge_wan_dns_servers{interface="wan0"} 2
v6edge_wan_dns_servers{interface="wan1"} 0
# HELP v6edge_uplink_healthy 1 while the uplink is healthy (link, lease, probe).
# TYPE v6edge_uplink_healthy gauge
v6edge_uplink_healthy{interface="wan0"} 1
v6edge_uplink_healthy{interface="wan1"} 0
# HELP v6edge_uplink_last_failover_timestamp_seconds When new flows last moved to another uplink (Unix time).
# TYPE v6edge_uplink_last_failover_timestamp_seconds gauge
v6edge_uplink_last_failover_timestamp_seconds 1.7956908e+09
# HELP v6edge_nat_last_swap_duration_seconds How long the last NAT swap took until the kernel acknowledged it.
# TYPE v6edge_nat_last_swap_duration_seconds gauge
v6edge_nat_last_swap_duration_seconds 0.012
# HELP v6edge_nat_last_swap_timestamp_seconds When the last NAT swap happened (Unix time).
# TYPE v6edge_nat_last_swap_timestamp_seconds gauge
v6edge_nat_last_swap_timestamp_seconds 1.79569434e+09
# HELP v6edge_nat_restores_total Times the NAT table was restored after someone else removed or changed it.
# TYPE v6edge_nat_restores_total counter
v6edge_nat_restores_total 1
# HELP v6edge_address_state 1 for each managed address's DAD state.
# TYPE v6edge_address_state gauge
v6edge_address_state{address="fd00::1/64",interface="lan0",state="dadfailed"} 1
v6edge_address_state{address="fd00::1/64",interface="lan0",state="ok"} 0
v6edge_address_state{address="fd00::1/64",interface="lan0",state="tentative"} 0
# HELP v6edge_ha_role 1 for the node's current HA role.
# TYPE v6edge_ha_role gauge
v6edge_ha_role{role="backup"} 0
v6edge_ha_role{role="fault"} 0
v6edge_ha_role{role="initialize"} 0
v6edge_ha_role{role="master"} 1
v6edge_ha_role{role="standalone"} 0
# HELP v6edge_ha_transitions_total HA role transitions.
# TYPE v6edge_ha_transitions_total counter
v6edge_ha_transitions_total 1
# HELP v6edge_ha_last_transition_timestamp_seconds When the node last changed HA role (Unix time).
# TYPE v6edge_ha_last_transition_timestamp_seconds gauge
v6edge_ha_last_transition_timestamp_seconds 1.7956872e+09
# HELP v6edge_ha_priority The node's VRRP priority.
# TYPE v6edge_ha_priority gauge
v6edge_ha_priority{vrid="7"} 150
# HELP v6edge_start_time_seconds When the daemon started (Unix time).
# TYPE v6edge_start_time_seconds gauge
v6edge_start_time_seconds 1.795608e+09
`
	names := []string{}
	for _, line := range strings.Split(want, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" {
			names = append(names, f[2])
		}
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

// TestCollectorOmitsUnsetTimes: times the document leaves empty (or at
// Go's zero time, as an HA-less daemon's last_transition was) have no
// series rather than a 1970 or year-1 timestamp; a LAN without a DHCPv6
// server has no server series.
func TestCollectorOmitsUnsetTimes(t *testing.T) {
	st := Status{WANs: []WAN{{Interface: "wan0", State: "init"}}, LAN: []LAN{{Interface: "lan0"}},
		HA: HA{Role: "standalone", LastTransition: time.Time{}.Format(time.RFC3339)}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&Collector{Status: func() Status { return st }})
	for _, n := range []string{"v6edge_ha_last_transition_timestamp_seconds", "v6edge_nat_last_swap_timestamp_seconds",
		"v6edge_uplink_last_failover_timestamp_seconds", "v6edge_lease_valid_until_timestamp_seconds", "v6edge_start_time_seconds",
		"v6edge_dhcp6_server_received_total", "v6edge_ha_priority"} {
		if c, err := testutil.GatherAndCount(reg, n); err != nil || c != 0 {
			t.Errorf("%s: %d series (%v), want none", n, c, err)
		}
	}
}
