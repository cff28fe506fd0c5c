//go:build perf

package dhcp6srv

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPerf runs perfdhcp (Kea's load generator) against this server and
// against kea-dhcp6 configured the same way, one after the other on the
// same veth, and reports exchanges per second, drops and latency for both.
// It is a load measurement, not a pass/fail test, so it is built only when asked:
// go test -tags perf -run TestPerf -v ./dhcp6srv/
// Knobs: V6EDGE_PERF_RATE (Solicit/Request exchanges initiated per second,
// default 2000), V6EDGE_PERF_CLIENTS (default 5000), V6EDGE_PERF_COUNT
// (exchanges, default 20000), V6EDGE_PERF_MODE (address-only,
// prefix-only, address-and-prefix).
func TestPerf(t *testing.T) {
	requireRoot(t, "perfdhcp", "kea-dhcp6")
	rate, clients, count := envInt("V6EDGE_PERF_RATE", 2000), envInt("V6EDGE_PERF_CLIENTS", 5000), envInt("V6EDGE_PERF_COUNT", 20000)
	mode := os.Getenv("V6EDGE_PERF_MODE")
	if mode == "" {
		mode = "address-only"
	}
	lan := newLANPair(t)
	dir := t.TempDir()
	perf := func(name string) perfResult {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(count/rate+60)*time.Second)
		defer cancel()
		args := []string{"ip", "netns", "exec", lan.client, "perfdhcp", "-6", "-l", "eth0", "-e", mode,
			"-r", strconv.Itoa(rate), "-R", strconv.Itoa(clients), "-n", strconv.Itoa(count), "-d", "2", "-W", "2000000", "-s", "1"}
		rb, cb := rcvbufErrors(t, lan.router), rcvbufErrors(t, lan.client)
		out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
		ra, ca := rcvbufErrors(t, lan.router), rcvbufErrors(t, lan.client)
		os.WriteFile(filepath.Join(dir, name+"-perfdhcp.txt"), out, 0o644)
		// perfdhcp exits 3 when packets were dropped: still a result.
		if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 3) {
			t.Fatalf("perfdhcp against %s: %v:\n%s", name, err, out)
		}
		if testing.Verbose() && os.Getenv("V6EDGE_PERF_RAW") == "1" {
			t.Logf("perfdhcp against %s:\n%s", name, out)
		}
		r := parsePerfdhcp(string(out))
		r.Name = name
		r.ServerBufDrops, r.ClientBufDrops = ra-rb, ca-cb
		return r
	}

	// This server.
	cfg := Config{
		Interface:  "lan0",
		ServerDUID: serverDUID,
		DNS:        []netip.Addr{netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1")},
		Pool:       lanPool,
		PDPool:     pdPoolA,
		PDLength:   64,
		StateDir:   dir,
		RateLimit:  -1, // perfdhcp's clients all share one source address
		Listen:     listenIn(lan.router, "lan0"),
	}
	srv := NewServer(cfg)
	stop := runServer(t, srv)
	ours := perf("v6edge")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ours.Leases = len(srv.Handler().Leases())
	st := srv.Stats()
	t.Logf("v6edge server stats: %+v", st)

	// Kea, same pool and lifetimes, leases persisted to a memfile too.
	keaConf := map[string]any{"Dhcp6": map[string]any{
		"interfaces-config":  map[string]any{"interfaces": []string{"lan0"}},
		"data-directory":     dir,
		"server-id":          map[string]any{"type": "LL", "persist": false},
		"lease-database":     map[string]any{"type": "memfile", "persist": true, "name": filepath.Join(dir, "kea-leases6.csv"), "lfc-interval": 0},
		"preferred-lifetime": 2700, "valid-lifetime": 5400, "renew-timer": 1350, "rebind-timer": 2160,
		"subnet6": []any{map[string]any{
			"id": 1, "subnet": lanPool.String(), "interface": "lan0",
			"pools":       []any{map[string]any{"pool": "fd00:aaaa:bbbb:cc01::1000-fd00:aaaa:bbbb:cc01::ffff"}},
			"pd-pools":    []any{map[string]any{"prefix": pdPoolA.Addr().String(), "prefix-len": pdPoolA.Bits(), "delegated-len": 64}},
			"option-data": []any{map[string]any{"name": "dns-servers", "data": "fd00:aaaa:bbbb:cc01::1"}},
		}},
		"loggers": []any{map[string]any{"name": "kea-dhcp6", "severity": "WARN", "output_options": []any{map[string]any{"output": "stdout"}}}},
	}}
	b, _ := json.MarshalIndent(keaConf, "", "  ")
	confPath := filepath.Join(dir, "kea-dhcp6.json")
	if err := os.WriteFile(confPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	kea := startPeer(t, dir, "kea", []string{"KEA_PIDFILE_DIR=" + dir, "KEA_LOCKFILE_DIR=" + dir},
		"ip", "netns", "exec", lan.router, "kea-dhcp6", "-c", confPath)
	waitFor(t, 15*time.Second, "kea-dhcp6 listening on :547", func() bool {
		if kea.exited() {
			t.Fatalf("kea-dhcp6 exited:\n%s", kea.logText())
		}
		return strings.Contains(run(t, "ip", "netns", "exec", lan.router, "ss", "-Hnul", "sport", "=", ":547"), ":547")
	})
	theirs := perf("kea-dhcp6")
	kea.stop()
	if data, err := os.ReadFile(filepath.Join(dir, "kea-leases6.csv")); err == nil {
		// The memfile appends a row per change: count distinct addresses.
		seen := map[string]bool{}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			if a, _, ok := strings.Cut(line, ","); ok {
				seen[a] = true
			}
		}
		theirs.Leases = len(seen)
	}

	t.Logf("perfdhcp -6 -e %s -r %d -R %d -n %d; delays are Request-Reply; leases = distinct bindings at the end;", mode, rate, clients, count)
	t.Logf("srv-buf/cli-buf = UDP receive-buffer overflows (Udp6RcvbufErrors) in the server / perfdhcp namespace")
	t.Logf("%-10s %7s %7s %7s %8s %8s %8s %8s %7s %7s %7s", "server", "sent", "recv", "drop%", "xchg/s", "min ms", "avg ms", "max ms", "leases", "srv-buf", "cli-buf")
	for _, r := range []perfResult{ours, theirs} {
		t.Logf("%-10s %7d %7d %7.2f %8.1f %8.3f %8.3f %8.3f %7d %7d %7d", r.Name, r.Sent, r.Received, r.DropPct, r.Rate, r.MinMS, r.AvgMS, r.MaxMS, r.Leases, r.ServerBufDrops, r.ClientBufDrops)
	}
	if ours.Received == 0 {
		t.Errorf("perfdhcp got no answer from this server; see %s", dir)
	}
}

type perfResult struct {
	Name                string
	Sent, Received      int
	DropPct, Rate       float64
	MinMS, AvgMS, MaxMS float64
	Leases              int
	ServerBufDrops      int
	ClientBufDrops      int
}

// rcvbufErrors is Udp6RcvbufErrors of namespace ns: datagrams the kernel
// dropped because a socket's receive buffer was full.
func rcvbufErrors(t *testing.T, ns string) int {
	for _, line := range strings.Split(run(t, "ip", "netns", "exec", ns, "cat", "/proc/net/snmp6"), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "Udp6RcvbufErrors" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// parsePerfdhcp reads the summary of perfdhcp's final report: the
// Solicit-Advertise and Request-Reply sections, summed, and the overall
// 4-way exchange rate.
func parsePerfdhcp(out string) perfResult {
	var r perfResult
	num := func(re string) []float64 {
		var v []float64
		for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(out, -1) {
			f, _ := strconv.ParseFloat(m[1], 64)
			v = append(v, f)
		}
		return v
	}
	sum := func(v []float64) (s float64) {
		for _, x := range v {
			s += x
		}
		return s
	}
	r.Sent = int(sum(num(`sent packets: (\d+)`)))
	r.Received = int(sum(num(`received packets: (\d+)`)))
	if r.Sent > 0 {
		r.DropPct = 100 * float64(r.Sent-r.Received) / float64(r.Sent)
	}
	if v := num(`Rate: ([\d.]+)`); len(v) > 0 {
		r.Rate = v[0]
	}
	// Delays per exchange type: report the Request-Reply one (the last).
	pick := func(re string) float64 {
		v := num(re)
		if len(v) == 0 {
			return 0
		}
		return v[len(v)-1]
	}
	r.MinMS, r.AvgMS, r.MaxMS = pick(`min delay: ([\d.]+) ms`), pick(`avg delay: ([\d.]+) ms`), pick(`max delay: ([\d.]+) ms`)
	return r
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}
