package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Startup is how long a router setup took from process start until it
// served: NAT until both NETMAP rules were in the kernel, RA until the LAN
// host received the first Router Advertisement.
type Startup struct {
	NAT, RA time.Duration
	// Solicit is when the first DHCPv6 message reached the upstream:
	// NAT - Solicit is the client's own work plus the exchange, beyond
	// RFC 8415's random initial delay of 0–1 s (§18.2.1).
	Solicit time.Duration
	// RSS is the resident memory of every process in the router namespace
	// once serving (for the incumbent: dhcpcd with its helpers and radvd).
	RSS int64 // bytes
}

// Which router setup MeasureStartup starts.
const (
	SetupV6edge    = "v6edge"
	SetupIncumbent = "dhcpcd+hook+radvd"
)

// MeasureStartup starts one router setup in the lab, which is either
// SetupV6edge (v's binary with v's config) or SetupIncumbent, measures
// its Startup and stops it again, leaving the router namespace as it found
// it (no NAT tables, no global LAN address) for the next run.
//
// NAT presence is polled over netlink every 5 ms; the RA is caught by a raw
// ICMPv6 socket opened in the host namespace before the start, so neither
// measurement pays for a fork.
func MeasureStartup(ctx context.Context, l *Lab, which string, v V6edge) (Startup, error) {
	if err := l.resetRouter(ctx); err != nil {
		return Startup{}, err
	}
	ra, err := listenICMPv6(l.Hosts[0])
	if err != nil {
		return Startup{}, err
	}
	defer ra.Close()
	natConn, closeProbe, err := newNATProbe(l.Router)
	if err != nil {
		return Startup{}, err
	}
	defer closeProbe()

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	solicits, err := l.Capture(ctx, l.Upstream, UpstreamIface, "udp dst port 547")
	if err != nil {
		return Startup{}, err
	}
	start := time.Now()
	var stop func() error
	switch which {
	case SetupV6edge:
		d, err := l.RunDaemon(ctx, v.Bin, WithRapidCommit(v.Config, l.opts.RapidCommit))
		if err != nil {
			return Startup{}, err
		}
		stop = d.Stop
	case SetupIncumbent:
		inc, err := l.RunIncumbent(ctx)
		if err != nil {
			return Startup{}, err
		}
		stop = inc.Stop
	default:
		return Startup{}, fmt.Errorf("lab: unknown setup %q", which)
	}
	defer func() { _ = stop() }()

	raDone := make(chan error, 1)
	var raAt time.Time
	go func() {
		at, err := waitRA(ctx, ra)
		raAt = at
		raDone <- err
	}()
	var natAt time.Time
	err = waitFor(ctx, 30*time.Second, 5*time.Millisecond, which+"'s NETMAP rules", func() (bool, error) {
		ok, err := natConn()
		if ok {
			natAt = time.Now()
		}
		return ok, err
	})
	if err != nil {
		return Startup{}, err
	}
	if err := <-raDone; err != nil {
		return Startup{}, err
	}
	res := Startup{NAT: natAt.Sub(start), RA: raAt.Sub(start)}
	pkts, err := solicits.Stop()
	if err != nil {
		return Startup{}, err
	}
	if len(pkts) > 0 {
		res.Solicit = pkts[0].Time.Sub(start)
	}
	// Idle memory: after serving, once the start-up burst has settled.
	time.Sleep(500 * time.Millisecond)
	res.RSS = l.netnsRSS(ctx, l.Router)
	return res, nil
}

// netnsRSS sums VmRSS over every process in the namespace ns.
func (l *Lab) netnsRSS(ctx context.Context, ns string) int64 {
	out, err := run(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return 0
	}
	var total int64
	for _, f := range strings.Fields(out) {
		b, err := os.ReadFile("/proc/" + f + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				var kb int64
				if _, err := fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb); err == nil {
					total += kb * 1024
				}
			}
		}
	}
	return total
}

// resetRouter removes what a previous run left in the router namespace:
// NAT tables and global LAN addresses (so every run performs DAD alike).
func (l *Lab) resetRouter(ctx context.Context) error {
	if _, err := l.Exec(ctx, l.Router, "nft", "flush", "ruleset"); err != nil {
		return err
	}
	_, err := l.Exec(ctx, l.Router, "ip", "-6", "addr", "flush", "dev", LANIface, "scope", "global")
	return err
}

// newNATProbe returns a function that reports whether the router namespace
// has both a prefix SNAT and a prefix DNAT rule in some ip6 table.
func newNATProbe(ns string) (probe func() (bool, error), closeProbe func(), err error) {
	f, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return nil, nil, fmt.Errorf("lab: %w", err)
	}
	fd := int(f.Fd())
	return func() (bool, error) {
		c, err := nftables.New(nftables.WithNetNSFd(fd))
		if err != nil {
			return false, err
		}
		return ip6SNATAndDNAT(c, func(exprs []expr.Any) (snat, dnat bool) {
			for _, e := range exprs {
				if n, ok := e.(*expr.NAT); ok && n.Prefix {
					snat = snat || n.Type == expr.NATTypeSourceNAT
					dnat = dnat || n.Type == expr.NATTypeDestNAT
				}
			}
			return snat, dnat
		})
	}, func() { f.Close() }, nil
}

// listenICMPv6 opens a raw ICMPv6 socket inside the namespace ns. The socket
// belongs to the namespace it was created in, so only the creating thread
// has to switch namespaces, and switches back before it is released.
func listenICMPv6(ns string) (net.PacketConn, error) {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("lab: setns %s: %w", ns, err)
	}
	conn, lerr := net.ListenPacket("ip6:ipv6-icmp", "::")
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in the wrong namespace: leave it locked so
		// the runtime ends it instead of reusing it.
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("lab: setns back: %w", err)
	}
	runtime.UnlockOSThread()
	if lerr != nil {
		return nil, fmt.Errorf("lab: icmpv6 socket in %s: %w", ns, lerr)
	}
	return conn, nil
}

// waitRA returns when the first Router Advertisement (ICMPv6 type 134,
// RFC 4861 §4.2) arrives on conn.
func waitRA(ctx context.Context, conn net.PacketConn) (time.Time, error) {
	b := make([]byte, 1500)
	for {
		if err := ctx.Err(); err != nil {
			return time.Time{}, fmt.Errorf("lab: waiting for an RA: %w", err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _, err := conn.ReadFrom(b)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			continue
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("lab: waiting for an RA: %w", err)
		}
		if n > 0 && b[0] == 134 {
			return time.Now(), nil
		}
	}
}

// Bench measures the startup of v6edge (v) and of the
// incumbent dhcpcd + hook + radvd, runs times each, alternating, and prints
// markdown tables of the medians and their ratio to out: once against Kea's
// defaults (Solicit, Advertise, Request, Reply: RFC 8415 §18.2.1 and
// §18.2.9 make a client wait up to 1 s plus the first retransmission time
// for Advertises, which dominates), and once with Rapid Commit on both sides,
// which shows the clients' own overhead; then, in one more lab, what
// MeasureOps measures after start-up (WriteBenchOpsTable).
func Bench(ctx context.Context, out io.Writer, v V6edge, runs int) error {
	if runs < 1 {
		runs = 5
	}
	rounds := []struct {
		title string
		o     Options
	}{
		{"Kea defaults (four-message exchange; RFC 8415 §18.2.1 makes a client collect Advertises for ~1 s)", Options{}},
		{"Kea sends Preference 255 (a client may take the first Advertise at once)", Options{Preference: 255}},
		{"Rapid Commit (Kea and both clients)", Options{RapidCommit: true}},
	}
	for i, r := range rounds {
		results, err := benchOnce(ctx, v, runs, r.o)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(out)
		}
		fmt.Fprintf(out, "%s:\n\n", r.title)
		WriteBenchTable(out, results, runs)
	}
	ops, err := benchOps(ctx, v, runs, BenchOpsIdle)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nAfter start-up (Kea defaults): a renumbering (Kea restarted with a new pool and the old binding deleted, then the client told to renew), a restart on the saved lease, and idle CPU. Reply times are tcpdump timestamps on the upstream's %s; NETMAP rules are timed by the kernel's nftables commit event (a netlink monitor):\n\n", UpstreamIface)
	WriteBenchOpsTable(out, ops, runs)
	return nil
}

func benchOnce(ctx context.Context, v V6edge, runs int, o Options) (map[string][]Startup, error) {
	return benchAlternating(ctx, o, runs, "run", func(l *Lab, which string) (Startup, error) {
		return MeasureStartup(ctx, l, which, v)
	})
}

// benchAlternating measures each setup runs times, v6edge and the incumbent
// taking turns, in one lab named v6bench built from o; run names the
// measurement in errors.
func benchAlternating[R any](ctx context.Context, o Options, runs int, run string, measure func(l *Lab, which string) (R, error)) (map[string][]R, error) {
	o.Name = "v6bench"
	l, err := New(ctx, o)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	results := map[string][]R{}
	for i := range runs {
		for _, which := range []string{SetupV6edge, SetupIncumbent} {
			r, err := measure(l, which)
			if err != nil {
				return nil, fmt.Errorf("%s %d of %s: %w", run, i+1, which, err)
			}
			results[which] = append(results[which], r)
		}
	}
	return results, nil
}

// WriteBenchTable prints the medians of startup measurements as markdown.
func WriteBenchTable(out io.Writer, results map[string][]Startup, runs int) {
	med := func(which string, pick func(Startup) time.Duration) time.Duration {
		var d []time.Duration
		for _, s := range results[which] {
			d = append(d, pick(s))
		}
		return Median(d)
	}
	nat := func(s Startup) time.Duration { return s.NAT }
	ra := func(s Startup) time.Duration { return s.RA }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	ratio := func(a, b time.Duration) string { return benchRatio(b, a) }
	fmt.Fprintf(out, "| startup, median of %d | v6edge | dhcpcd+hook+radvd | incumbent ÷ v6edge (> 1: v6edge better) |\n|---|---|---|---|\n", runs)
	fmt.Fprintf(out, "| process start → NETMAP rules in the kernel | %s | %s | %s |\n",
		ms(med(SetupV6edge, nat)), ms(med(SetupIncumbent, nat)), ratio(med(SetupV6edge, nat), med(SetupIncumbent, nat)))
	fmt.Fprintf(out, "| process start → first RA on the LAN host | %s | %s | %s |\n",
		ms(med(SetupV6edge, ra)), ms(med(SetupIncumbent, ra)), ratio(med(SetupV6edge, ra), med(SetupIncumbent, ra)))
	beyond := func(s Startup) time.Duration { return s.NAT - s.Solicit }
	fmt.Fprintf(out, "| first DHCPv6 message on the wire → NETMAP rules (beyond the RFC's random 0–1 s start delay) | %s | %s | %s |\n",
		ms(med(SetupV6edge, beyond)), ms(med(SetupIncumbent, beyond)), ratio(med(SetupV6edge, beyond), med(SetupIncumbent, beyond)))
	rss := func(s Startup) time.Duration { return time.Duration(s.RSS) }
	mib := func(d time.Duration) string { return fmt.Sprintf("%.1f MiB", float64(d)/(1<<20)) }
	fmt.Fprintf(out, "| resident memory once serving (all processes) | %s | %s | %s |\n",
		mib(med(SetupV6edge, rss)), mib(med(SetupIncumbent, rss)), ratio(med(SetupV6edge, rss), med(SetupIncumbent, rss)))
}

// Median returns the median of d (the mean of the middle two for an even
// count), or 0 for none.
func Median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// benchRatio formats incumbent ÷ v6edge, with enough digits that a
// ratio far below 1 does not print as 0; "n/a" when either is not positive.
func benchRatio(incumbent, v6edge time.Duration) string {
	if incumbent <= 0 || v6edge <= 0 {
		return "n/a"
	}
	r := float64(incumbent) / float64(v6edge)
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f×", r)
	case r >= 0.1:
		return fmt.Sprintf("%.1f×", r)
	default:
		return fmt.Sprintf("%.2f×", r)
	}
}
