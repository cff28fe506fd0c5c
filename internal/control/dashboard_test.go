package control

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dashboardFile is the Grafana dashboard the package ships.
const dashboardFile = "../../packaging/grafana/v6edge-dashboard.json"

var (
	promStrings  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\[\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promIdent    = regexp.MustCompile(`(?:^|[^a-zA-Z0-9_:$.])([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	labelValues  = regexp.MustCompile(`^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)
	labelValuesL = regexp.MustCompile(`^\s*label_values\(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)
	promKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan", "atan2"}
)

// promMetricNames returns the metric names a PromQL expression (or a
// Grafana label_values query) selects: identifiers that are not functions,
// keywords, labels, strings, durations or Grafana variables.
func promMetricNames(expr string) []string {
	if labelValuesL.MatchString(expr) {
		return nil // label_values(label): no metric
	}
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	expr = promStrings.ReplaceAllString(expr, `""`)
	expr = promMatchers.ReplaceAllString(expr, " ")
	expr = promRanges.ReplaceAllString(expr, " ")
	expr = promGrouping.ReplaceAllString(expr, " ")
	var names []string
	for _, loc := range promIdent.FindAllStringSubmatchIndex(expr, -1) {
		name := expr[loc[2]:loc[3]]
		rest := strings.TrimLeft(expr[loc[3]:], " \t\n")
		if strings.HasPrefix(rest, "(") || slices.Contains(promKeywords, strings.ToLower(name)) {
			continue
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

func TestPromMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`v6edge_problems`: {"v6edge_problems"},
		`sum by (interface, reason) (rate(v6edge_dhcp6_server_dropped_total{instance=~"$instance", reason!="x{y}"}[$__rate_interval]))`: {"v6edge_dhcp6_server_dropped_total"},
		`time() - v6edge_start_time_seconds{job="a"} offset 5m`:                                                                         {"v6edge_start_time_seconds"},
		`v6edge_lease_valid_until_timestamp_seconds * 1000 > bool 1e3 and on (interface) v6edge_uplink_healthy == 1`:                    {"v6edge_lease_valid_until_timestamp_seconds", "v6edge_uplink_healthy"},
		`label_values(v6edge_wan_state{instance=~"$instance"}, interface)`:                                                              {"v6edge_wan_state"},
		`label_values(instance)`: nil,
		`count by (instance) (v6edge_address_state{state!="ok"} == 1) / ignoring (state) group_left (x) process_cpu_seconds_total`: {"v6edge_address_state", "process_cpu_seconds_total"},
	} {
		if got := promMetricNames(expr); !slices.Equal(got, want) {
			t.Errorf("promMetricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// dashboardQueries returns every query of the dashboard, by where it is:
// every panel's targets (rows' nested panels too) and the templating
// variables' queries.
func dashboardQueries(t *testing.T, doc map[string]any) map[string]string {
	t.Helper()
	queries := map[string]string{}
	var walk func(panels []any)
	walk = func(panels []any) {
		for _, p := range panels {
			panel, _ := p.(map[string]any)
			title, _ := panel["title"].(string)
			if nested, ok := panel["panels"].([]any); ok {
				walk(nested)
			}
			if panel["type"] == "row" {
				continue
			}
			targets, _ := panel["targets"].([]any)
			if len(targets) == 0 {
				t.Errorf("panel %q has no query", title)
			}
			for _, tg := range targets {
				target, _ := tg.(map[string]any)
				expr, _ := target["expr"].(string)
				ref, _ := target["refId"].(string)
				if strings.TrimSpace(expr) == "" {
					t.Errorf("panel %q target %s has no expr", title, ref)
					continue
				}
				queries["panel "+title+" "+ref] = expr
			}
		}
	}
	panels, _ := doc["panels"].([]any)
	walk(panels)
	tmpl, _ := doc["templating"].(map[string]any)
	vars, _ := tmpl["list"].([]any)
	for _, v := range vars {
		vr, _ := v.(map[string]any)
		if vr["type"] != "query" {
			continue
		}
		name, _ := vr["name"].(string)
		switch q := vr["query"].(type) {
		case string:
			queries["variable "+name] = q
		case map[string]any:
			s, _ := q["query"].(string)
			queries["variable "+name] = s
		}
	}
	return queries
}

// exportedNames are the metric families /metrics serves on a full status:
// the collector's and the Go and process collectors'.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	mfs, err := NewRegistry(fullStatus).Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		// Histograms and summaries are queried by their series' names.
		switch mf.GetType().String() {
		case "HISTOGRAM":
			names[mf.GetName()+"_bucket"] = true
			fallthrough
		case "SUMMARY":
			names[mf.GetName()+"_sum"], names[mf.GetName()+"_count"] = true, true
		}
	}
	for _, n := range describedNames() {
		if !names[n] {
			t.Fatalf("%s is described but has no series on the full status", n)
		}
	}
	return names
}

// TestDashboardNamesOnlyExportedMetrics: every query of the shipped
// Grafana dashboard selects metrics the daemon exports, and the dashboard
// shows what issue 19 asked of it.
func TestDashboardNamesOnlyExportedMetrics(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	exported := exportedNames(t)
	queries := dashboardQueries(t, doc)
	if len(queries) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	used := map[string]bool{}
	for where, expr := range queries {
		names := promMetricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", where, expr)
		}
		for _, n := range names {
			used[n] = true
			if !exported[n] {
				t.Errorf("%s: %s is not a metric the daemon exports (%q)", where, n, expr)
			}
		}
	}
	for _, n := range []string{
		"v6edge_lease_preferred_seconds", "v6edge_lease_valid_seconds", "v6edge_lease_valid_until_timestamp_seconds",
		"v6edge_lan_prefix_preferred_seconds", "v6edge_lan_prefix_valid_seconds",
		"v6edge_nat_swaps_total", "v6edge_nat_restores_total",
		"v6edge_ra_sent_total", "v6edge_rs_received_total",
		"v6edge_dhcp6_server_received_total", "v6edge_dhcp6_server_replied_total", "v6edge_dhcp6_server_dropped_total",
		"v6edge_ha_role", "v6edge_ha_transitions_total", "v6edge_dad_failures_total", "v6edge_uplink_healthy",
	} {
		if !used[n] {
			t.Errorf("the dashboard shows no %s", n)
		}
	}
}
