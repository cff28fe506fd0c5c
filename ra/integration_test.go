package ra

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/ndp"

	"github.com/v6edge/v6edge/internal/nstest"
)

// startAdvertiser runs an Advertiser for cfg inside the lab's router
// namespace until the test ends (or stop is called).
func startAdvertiser(t *testing.T, l *vethLab, cfg Config, tune func(*Schedule)) (a *Advertiser, stop func()) {
	t.Helper()
	cfg.Interface = l.routerIf
	cfg.Enabled = true
	a = NewAdvertiser(cfg, nstest.Logger(t, slog.LevelWarn))
	a.link = nsLink{l.routerNS}
	a.tune = tune
	stop = nstest.RunTask(t, context.Background(), "Advertiser", a.Run)
	return a, stop
}

// labConfig is a LAN config in the given mode with every DNS option.
func labConfig(t *testing.T, mode Mode, prefix string) Config {
	t.Helper()
	m, o, auto, err := mode.Flags()
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Managed:        m,
		Other:          o,
		Prefixes:       []Prefix{{Prefix: pfx(prefix), Autonomous: auto, OnLink: true}},
		RDNSS:          []netip.Addr{netip.MustParseAddr("2001:db8:100:1::53")},
		DNSSL:          []string{"lan.example"},
		MTU:            1500,
		RouterLifetime: DefaultRouterLifetime,
		Routes:         []Route{{Prefix: pfx("fd00:aaaa:bbbb:cc00::/56"), Lifetime: 1800 * time.Second, Preference: ndp.High}},
		MaxInterval:    DefaultMaxInterval,
		FinalRA:        true,
		StateDir:       t.TempDir(),
	}
}

var spaces = regexp.MustCompile(`[ \t]+`)

func TestIntegrationRdisc6Modes(t *testing.T) {
	nstest.RequireRoot(t, "rdisc6")
	tests := []struct {
		mode                Mode
		managed, other, aut string
	}{
		{SLAAC, "No", "No", "Yes"},
		{Stateless, "No", "Yes", "Yes"},
		{Stateful, "Yes", "Yes", "No"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("rdisc6 on the host shows the %s flags, prefix and DNS options", tt.mode), func(t *testing.T) {
			l := newVethLab(t, map[string]string{"accept_ra": "0"})
			startAdvertiser(t, l, labConfig(t, tt.mode, "2001:db8:100:1::/64"), nil)
			out := nstest.Run(t, "ip", "netns", "exec", l.host, "rdisc6", "-1", "-n", "-w", "2000", l.hostIf)
			norm := spaces.ReplaceAllString(out, " ")
			for _, want := range []string{
				"Stateful address conf. : " + tt.managed,
				"Stateful other conf. : " + tt.other,
				"Prefix : 2001:db8:100:1::/64",
				"Autonomous address conf.: " + tt.aut,
				"Valid time : 5400",
				"Pref. time : 2700",
				"Recursive DNS server : 2001:db8:100:1::53",
				"DNS search list : lan.example",
				"MTU : 1500",
				"Route : fd00:aaaa:bbbb:cc00::/56",
				"Router lifetime : 1800",
				"Source link-layer address: 02:00:5E:10:00:01",
			} {
				if !strings.Contains(norm, want) {
					t.Errorf("rdisc6 output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// startOnHost runs a decoder in the host namespace of l for at most 10 s
// (it is stopped at cleanup) and returns its output so far.
func startOnHost(t *testing.T, l *vethLab, args ...string) *nstest.SyncBuffer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.host}, args...)...)
	var buf nstest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	return &buf
}

// TestIntegrationDecoders checks that independent decoders read every
// option: radvdump (when installed) and tcpdump.
func TestIntegrationDecoders(t *testing.T) {
	nstest.RequireRoot(t)
	wantOpts := []string{"source link-address option", "mtu option", "prefix info option", "route info option", "rdnss option", "dnssl option"}
	t.Run("radvdump decodes every option", func(t *testing.T) {
		if _, err := exec.LookPath("radvdump"); err != nil {
			t.Skipf("radvdump is not installed here (Debian's radvd package ships without it): %v", err)
		}
		l := newVethLab(t, map[string]string{"accept_ra": "0"})
		buf := startOnHost(t, l, "radvdump", "-d", "1")
		time.Sleep(200 * time.Millisecond) // let radvdump open its socket; the burst repeats anyway
		startAdvertiser(t, l, labConfig(t, Stateless, "2001:db8:100:1::/64"), nil)
		for _, want := range []string{"AdvOtherConfigFlag on", "prefix 2001:db8:100:1::/64", "RDNSS 2001:db8:100:1::53", "DNSSL lan.example", "AdvLinkMTU 1500", "route fd00:aaaa:bbbb:cc00::/56", "AdvSourceLLAddress on"} {
			waitFor(t, 8*time.Second, "radvdump to show "+want, func() bool { return strings.Contains(buf.String(), want) })
		}
	})
	t.Run("tcpdump decodes every option", func(t *testing.T) {
		if _, err := exec.LookPath("tcpdump"); err != nil {
			t.Skipf("needs tcpdump: %v", err)
		}
		l := newVethLab(t, map[string]string{"accept_ra": "0"})
		buf := startOnHost(t, l, "tcpdump", "-l", "-n", "-vv", "-i", l.hostIf, "-c", "1", "icmp6 and ip6[40] == 134")
		waitFor(t, 5*time.Second, "tcpdump to listen", func() bool { return strings.Contains(buf.String(), "listening on") })
		startAdvertiser(t, l, labConfig(t, Stateless, "2001:db8:100:1::/64"), nil)
		waitFor(t, 5*time.Second, "tcpdump to decode an RA", func() bool { return strings.Contains(buf.String(), "1 packet captured") })
		out := buf.String()
		for _, want := range append(wantOpts, "2001:db8:100:1::/64", "2001:db8:100:1::53", "lan.example", "fd00:aaaa:bbbb:cc00::/56", "02:00:5e:10:00:01") {
			if !strings.Contains(out, want) {
				t.Errorf("tcpdump output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "bad") || strings.Contains(out, "[|icmp6]") {
			t.Errorf("tcpdump reports a malformed RA:\n%s", out)
		}
	})
}

// hostAddrs returns the host's global addresses as "address preferred_lft"
// lines.
func hostAddrs(t *testing.T, l *vethLab) string {
	return nstest.Run(t, "ip", "-n", l.host, "-6", "addr", "show", "dev", l.hostIf, "scope", "global")
}

var addrLine = regexp.MustCompile(`inet6 (\S+)/64 [^\n]*\n\s+valid_lft (\S+) preferred_lft (\S+)`)

// addrPreferred maps each host address inside p to its preferred_lft.
func addrPreferred(out string, p netip.Prefix) map[string]string {
	m := map[string]string{}
	for _, sm := range addrLine.FindAllStringSubmatch(out, -1) {
		if a, err := netip.ParseAddr(sm[1]); err == nil && p.Contains(a) {
			m[sm[1]] = sm[3]
		}
	}
	return m
}

func TestIntegrationSLAACAndRenumbering(t *testing.T) {
	nstest.RequireRoot(t)
	l := newVethLab(t, map[string]string{"accept_ra": "1", "autoconf": "1", "forwarding": "0"})
	oldP, newP := pfx("2001:db8:100:1::/64"), pfx("2001:db8:200:1::/64")
	cfg := labConfig(t, SLAAC, oldP.String())
	cfg.Interface, cfg.Enabled = l.routerIf, true
	a, stop := startAdvertiser(t, l, cfg, nil)

	t.Log("the host forms an address in the advertised /64 and a default route via the router's link-local")
	waitFor(t, 10*time.Second, "a SLAAC address in "+oldP.String(), func() bool {
		out := hostAddrs(t, l)
		return len(addrPreferred(out, oldP)) > 0 && !strings.Contains(out, "tentative")
	})
	waitFor(t, 5*time.Second, "a default route via the router", func() bool {
		out := nstest.Run(t, "ip", "-n", l.host, "-6", "route", "show", "default")
		return strings.Contains(out, "via fe80::5eff:fe10:1 ") && strings.Contains(out, l.hostIf)
	})

	t.Log("renumbering: the old address is deprecated within 5 s, the new prefix is used")
	cfg.Prefixes = []Prefix{{Prefix: newP, Autonomous: true, OnLink: true}}
	changed := time.Now()
	a.Update(cfg)
	waitFor(t, 5*time.Second, "the old address to show preferred_lft 0", func() bool {
		for _, pref := range addrPreferred(hostAddrs(t, l), oldP) {
			if pref == "0sec" {
				return true
			}
		}
		return false
	})
	t.Logf("old address deprecated on the host %s after the Update", time.Since(changed).Round(time.Millisecond))
	waitFor(t, 5*time.Second, "an address in the new prefix", func() bool { return len(addrPreferred(hostAddrs(t, l), newP)) > 0 })

	t.Log("a restart in the middle of renumbering still deprecates the old prefix")
	stop()
	host := listenHost(t, l)
	b, _ := startAdvertiser(t, l, cfg, nil)
	if d := b.Status().Deprecated; len(d) != 1 || d[0].Prefix != oldP {
		t.Fatalf("after restart Status.Deprecated = %+v, want %s", d, oldP)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		ra, _, got := host.nextRA(t, time.Until(deadline))
		if !got {
			t.Fatal("no RA deprecating the old prefix within 2s of the restart")
		}
		if lt, ok := pioSummary(ra)[oldP]; ok && lt.Preferred == 0 && lt.Valid > 0 {
			break
		}
	}
}

// measureRS sends n Router Solicitations from the lab host and returns the
// delay until the first RA after each.
func measureRS(t *testing.T, host *realHost, n int) []time.Duration {
	t.Helper()
	var out []time.Duration
	for i := 0; i < n; i++ {
		// Drain what is in flight, so the next RA is the answer.
		for {
			if _, _, got := host.nextRA(t, 20*time.Millisecond); !got {
				break
			}
		}
		start := time.Now()
		host.solicit(t)
		if _, _, got := host.nextRA(t, 4*time.Second); !got {
			t.Fatalf("RS %d: no RA within 4s", i+1)
		}
		out = append(out, time.Since(start))
	}
	return out
}

func summarize(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	q := func(f float64) time.Duration { return s[int(f*float64(len(s)-1))].Round(time.Millisecond) }
	return fmt.Sprintf("n=%d min=%s p50=%s p90=%s max=%s mean=%s", len(s), q(0), q(0.5), q(0.9), q(1), (sum / time.Duration(len(s))).Round(time.Millisecond))
}

// TestIntegrationRSLatency measures RS→RA latency for this package and for
// radvd in the same lab, and requires ours to stay within 0.6 s.
func TestIntegrationRSLatency(t *testing.T) {
	nstest.RequireRoot(t)
	const n = 20
	l := newVethLab(t, map[string]string{"accept_ra": "0", "router_solicitations": "0"})
	host := listenHost(t, l)
	cfg := labConfig(t, SLAAC, "2001:db8:100:1::/64")

	_, stop := startAdvertiser(t, l, cfg, func(s *Schedule) { s.MaxInitialAdverts = 1 })
	ours := measureRS(t, host, n)
	stop()
	t.Logf("v6edge ra RS→RA: %s", summarize(ours))
	checkRSLatency(t, ours)

	if walls, wire := rdisc6Latency(t, l, cfg); walls != nil {
		t.Logf("v6edge ra, rdisc6 wall time incl. process start: %s", summarize(walls))
		if wire != nil {
			t.Logf("v6edge ra, rdisc6 RS→RA on the wire (tcpdump): %s", summarize(wire))
			checkRSLatency(t, wire)
		}
	}

	radvd, err := exec.LookPath("radvd")
	if err != nil {
		t.Logf("radvd not installed; no comparison: %v", err)
		return
	}
	// radvd refuses to run unless forwarding is on.
	nstest.Run(t, "ip", "netns", "exec", l.router, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	dir := t.TempDir()
	conf := filepath.Join(dir, "radvd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`interface %s {
	AdvSendAdvert on;
	MaxRtrAdvInterval 600;
	prefix 2001:db8:100:1::/64 { };
};
`, l.routerIf)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.router, radvd, "-C", conf, "-p", filepath.Join(dir, "radvd.pid"), "-n", "-m", "stderr")
	var logs nstest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	// radvd sends its initial RAs up to 16 s apart; start after the first.
	if _, _, got := host.nextRA(t, 5*time.Second); !got {
		t.Fatalf("radvd sent no RA within 5s:\n%s", logs.String())
	}
	theirs := measureRS(t, host, n)
	t.Logf("radvd RS→RA: %s", summarize(theirs))
}

var tcpdumpLine = regexp.MustCompile(`^(\d+)\.(\d{6}) .*router (solicitation|advertisement)`)

// rdisc6Latency runs rdisc6 on the lab host five times against a fresh
// Advertiser and returns the wall time of each run and, when tcpdump is
// there, the RS→RA delay seen on the host's interface.
func rdisc6Latency(t *testing.T, l *vethLab, cfg Config) (walls, wire []time.Duration) {
	t.Helper()
	if _, err := exec.LookPath("rdisc6"); err != nil {
		t.Logf("no rdisc6: %v", err)
		return nil, nil
	}
	var dump *exec.Cmd
	var buf nstest.SyncBuffer
	if _, err := exec.LookPath("tcpdump"); err == nil {
		dump = exec.Command("ip", "netns", "exec", l.host, "tcpdump", "-l", "-n", "-tt", "-i", l.hostIf, "icmp6 and (ip6[40] == 133 or ip6[40] == 134)")
		dump.Stdout, dump.Stderr = &buf, &buf
		if err := dump.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dump.Process.Kill(); dump.Wait() })
		waitFor(t, 5*time.Second, "tcpdump to listen", func() bool { return strings.Contains(buf.String(), "listening on") })
	}
	_, stop := startAdvertiser(t, l, cfg, func(s *Schedule) { s.MaxInitialAdverts = 1 })
	time.Sleep(100 * time.Millisecond) // let the first RA pass
	for range 5 {
		start := time.Now()
		nstest.Run(t, "ip", "netns", "exec", l.host, "rdisc6", "-1", "-n", "-w", "1000", "-r", "1", l.hostIf)
		walls = append(walls, time.Since(start))
	}
	stop()
	if dump == nil {
		return walls, nil
	}
	time.Sleep(100 * time.Millisecond) // let tcpdump print the last lines
	dump.Process.Signal(os.Interrupt)
	dump.Wait()
	var rs time.Time
	for _, line := range strings.Split(buf.String(), "\n") {
		m := tcpdumpLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var sec, usec int64
		fmt.Sscan(m[1], &sec)
		fmt.Sscan(m[2], &usec)
		at := time.Unix(sec, usec*1000)
		switch {
		case m[3] == "solicitation":
			rs = at
		case !rs.IsZero():
			wire = append(wire, at.Sub(rs))
			rs = time.Time{}
		}
	}
	if len(wire) != 5 {
		t.Errorf("tcpdump saw %d RS→RA pairs, want 5:\n%s", len(wire), buf.String())
	}
	return walls, wire
}

// checkRSLatency wants answers within 0.6 s (MAX_RA_DELAY_TIME plus
// delivery). On this shared machine (load average up to 15 on two CPUs
// while other suites run) the scheduler sometimes adds up to ~200 ms, so
// one late answer in ten (at least one) is tolerated, and none may take a
// second. On an idle machine all answers are within 0.53 s.
func checkRSLatency(t *testing.T, ds []time.Duration) {
	t.Helper()
	late := 0
	for _, d := range ds {
		if d > 600*time.Millisecond {
			late++
		}
		if d > time.Second {
			t.Errorf("an RS was answered after %s, want within 0.6s", d)
		}
	}
	if late > max(1, len(ds)/10) {
		t.Errorf("%d of %d RSs answered after more than 0.6s: %s", late, len(ds), summarize(ds))
	}
}

// TestIntegrationVirtualSource runs the Advertiser from an HA virtual
// link-local against the real kernel: nothing while the address is
// missing, RAs from it once it is added, silence within seconds once it is
// removed, and RAs again when it comes back.
func TestIntegrationVirtualSource(t *testing.T) {
	nstest.RequireRoot(t)
	l := newVethLab(t, map[string]string{"accept_ra": "0", "router_solicitations": "0"})
	host := listenHost(t, l)
	vip := netip.MustParseAddr("fe80::1")
	cfg := labConfig(t, SLAAC, "2001:db8:100:1::/64")
	cfg.Source = vip
	a, _ := startAdvertiser(t, l, cfg, nil)

	sawFrom := func(d time.Duration) bool {
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			if _, _, got := host.nextRA(t, time.Until(deadline)); got {
				return true
			}
		}
		return false
	}
	waitFor(t, 3*time.Second, "the missing source to be reported", func() bool {
		p := a.Status().Problems
		return len(p) == 1 && strings.Contains(p[0], "source address not on the interface")
	})
	if sawFrom(500 * time.Millisecond) {
		t.Fatal("an RA went out before the virtual link-local existed")
	}

	nstest.Run(t, "ip", "-n", l.router, "addr", "add", "fe80::1/64", "dev", l.routerIf, "nodad")
	added := time.Now()
	if !sawFrom(retryDelay + time.Second) {
		t.Fatal("no RA within 2s of adding the virtual link-local")
	}
	t.Logf("first RA %s after the virtual link-local was added", time.Since(added).Round(time.Millisecond))
	if src := a.Status().Source; src.WithZone("") != vip {
		t.Fatalf("Status.Source = %s, want %s", src, vip)
	}

	nstest.Run(t, "ip", "-n", l.router, "addr", "del", "fe80::1/64", "dev", l.routerIf)
	removed := time.Now()
	waitFor(t, sourceCheckInterval+2*time.Second, "the lost source to be reported", func() bool {
		return len(a.Status().Problems) > 0
	})
	t.Logf("source loss noticed %s after removal", time.Since(removed).Round(time.Millisecond))
	for sawFrom(100 * time.Millisecond) {
		// drain what was sent before the loss was noticed
	}
	if sawFrom(3 * time.Second) {
		t.Fatal("RAs continued after the virtual link-local was removed")
	}

	nstest.Run(t, "ip", "-n", l.router, "addr", "add", "fe80::1/64", "dev", l.routerIf, "nodad")
	if !sawFrom(retryDelay + time.Second) {
		t.Fatal("no RA within 2s of the virtual link-local coming back")
	}
}
