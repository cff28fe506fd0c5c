package integration

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/testbed"
)

// TestMetricsScrapePassesPromtool: a real scrape of the daemon, bound
// upstream and serving a DHCPv6 client on the LAN, passes `promtool check
// metrics` with no problem at all (a lint warning fails the test too), and
// carries the series the issue asked for: the LAN DHCPv6 server, the LAN
// prefixes, the lease's end times, the build and the Go/process collectors.
func TestMetricsScrapePassesPromtool(t *testing.T) {
	t.Parallel()
	l := opsLab(t, testbed.Options{})
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skipf("needs promtool (apt-get install prometheus, or make deps): %v", err)
	}
	ctx := t.Context()
	host := l.Hosts[0]
	d := opsRun(t, l, opsConfig(opsOptions{mode: "stateful", pdLength: 60}), `metrics = "[::1]:9430"`)
	waitBoundWithin(t, d, l.Pool, 30*time.Second)
	c, err := l.OpsStartDhcpcd(ctx, host, "dhcpcd-metrics", "noipv6rs\ninterface eth0\n\tia_na 1\n\tia_pd 2 nosuch0/0/60\n")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Exit() })
	opsDhcpcdEvent(t, l, c, 20*time.Second, "BOUND6")

	const url = "http://[::1]:9430/metrics"
	checks := []metricCheck{
		{"v6edge_wan_state", []string{`state="bound"`}, func(v float64) bool { return v == 1 }, "1"},
		{"v6edge_dhcp6_server_leases", []string{`interface="` + testbed.LANIface + `"`}, func(v float64) bool { return v >= 1 }, "≥ 1"},
		{"v6edge_dhcp6_server_delegations", nil, func(v float64) bool { return v >= 1 }, "≥ 1"},
		{"v6edge_dhcp6_server_replied_total", nil, func(v float64) bool { return v >= 2 }, "≥ 2 (Advertise, Reply)"},
		{"v6edge_dhcp6_server_dropped_total", []string{`reason="rate_limited"`}, func(v float64) bool { return v == 0 }, "0"},
		{"v6edge_lan_prefix_valid_seconds", nil, func(v float64) bool { return v > 0 }, "> 0"},
		{"v6edge_lease_valid_until_timestamp_seconds", nil, func(v float64) bool { return v > float64(time.Now().Unix()) }, "in the future"},
		{"v6edge_build_info", nil, func(v float64) bool { return v == 1 }, "1"},
		{"v6edge_nat_last_swap_duration_seconds", nil, func(v float64) bool { return v >= 0 }, "present"},
		{"go_goroutines", nil, func(v float64) bool { return v > 0 }, "> 0"},
		{"process_resident_memory_bytes", nil, func(v float64) bool { return v > 0 }, "> 0"},
	}
	text := waitMetrics(t, l, url, checks)
	if strings.Contains(text, "v6edge_nat_last_swap_seconds") {
		t.Error("the scrape still has v6edge_nat_last_swap_seconds, renamed v6edge_nat_last_swap_duration_seconds")
	}

	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("promtool: %v", err)
	}
	if err != nil || strings.TrimSpace(out.String()) != "" {
		t.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}
	t.Logf("promtool check metrics: clean on %d lines", strings.Count(text, "\n"))
}
