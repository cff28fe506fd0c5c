package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// BenchOps is what MeasureOps measured for one router setup in one run:
// the work of a router after start-up, where the incumbent's design (a
// client that runs a script per event) and v6edge's (one process applying
// the lease itself) differ most.
type BenchOps struct {
	// IdleCPU is the CPU time every process in the router namespace used
	// during IdleWindow of idle serving right after start-up: utime+stime
	// from /proc/<pid>/stat, plus the cutime+cstime of children reaped in
	// the window, so a hook that ran and exited counts too.
	IdleCPU, IdleWindow time.Duration
	// IdleRun is the same CPU use at nanosecond resolution: the run time
	// the scheduler accounts to every thread (/proc/<pid>/task/*/schedstat),
	// where /proc/<pid>/stat counts 10 ms ticks. A thread that ends in the
	// window is lost here.
	IdleRun time.Duration

	// Renumber: the upstream restarted with a new pool and without the
	// old binding (Lab.RestartKea), then the client was told to renew at
	// once (`v6edge renew`, `dhcpcd -6 -N`). From is the renew command.
	Renumber BenchExchange
	// Restart: SIGTERM, then a start on the same saved state (v6edge's
	// state_dir, dhcpcd's database directory). From is the process start.
	Restart BenchExchange
	// Kept: the restart's first successful Reply delegated the same
	// prefix the client held before it (the one from the renumbering).
	Kept bool
}

// BenchExchange is one DHCPv6 exchange seen on the upstream's link.
type BenchExchange struct {
	OK bool // a successful Reply arrived within the time limit
	// ToReply is from the measurement's starting point (a command or a
	// process start) to the packet timestamp of the first Reply that
	// delegates a prefix with a non-zero valid lifetime.
	ToReply time.Duration
	// ReplyToNAT is from that Reply to both NETMAP rules for its prefix
	// being in the kernel (renumbering only; polled over netlink).
	ReplyToNAT time.Duration
	// Client lists the client's messages from the starting point up to the
	// Reply, retransmissions folded: "Rebind" keeps a lease, "Solicit
	// Request" starts anew.
	Client []string
	Prefix netip.Prefix // what the Reply delegated
}

// BenchAltPool is the pool the operations bench renumbers to and back from.
var BenchAltPool = netip.MustParsePrefix("2001:db8:200::/40")

// benchRouter is a running router setup the operations bench drives.
type benchRouter struct {
	renew   func(ctx context.Context) error
	restart func(ctx context.Context) (time.Time, error) // returns the new process's start
	stop    func() error
}

func (l *Lab) benchStartRouter(ctx context.Context, which string, v V6edge) (*benchRouter, error) {
	switch which {
	case SetupV6edge:
		d, err := l.RunDaemon(ctx, v.Bin, WithRapidCommit(v.Config, l.opts.RapidCommit))
		if err != nil {
			return nil, err
		}
		return &benchRouter{
			renew: func(ctx context.Context) error {
				out, code, err := d.Ctl(ctx, "renew")
				if err == nil && code != 0 {
					err = fmt.Errorf("lab: v6edge renew exited %d: %s", code, out)
				}
				return err
			},
			restart: func(ctx context.Context) (time.Time, error) {
				if err := d.Stop(); err != nil {
					return time.Time{}, err
				}
				start := time.Now()
				nd, err := l.OpsRestartDaemon(ctx, d)
				if err != nil {
					return time.Time{}, err
				}
				d = nd
				return start, nil
			},
			stop: func() error { return d.Stop() },
		}, nil
	case SetupIncumbent:
		inc, err := l.RunIncumbent(ctx)
		if err != nil {
			return nil, err
		}
		return &benchRouter{
			renew: func(ctx context.Context) error {
				_, err := inc.Ctl(ctx, "-6", "-N")
				return err
			},
			restart: inc.RestartDhcpcd,
			stop:    inc.Stop,
		}, nil
	}
	return nil, fmt.Errorf("lab: unknown setup %q", which)
}

// MeasureOps starts one router setup (SetupV6edge: v's binary with v's
// config; SetupIncumbent), waits until it serves, and measures in turn
// its idle CPU over idle, a renumbering and a restart (see BenchOps). It
// stops the setup again and leaves the router namespace clean; the lab's
// Kea then delegates from the other of its pool and BenchAltPool.
//
// A client that does not reach the goal in time is no error: its
// BenchExchange has OK false, which the table shows.
func MeasureOps(ctx context.Context, l *Lab, which string, v V6edge, idle time.Duration) (BenchOps, error) {
	if err := l.resetRouter(ctx); err != nil {
		return BenchOps{}, err
	}
	// Kea outlives this run: it is restarted with the lab's context, as
	// a process started with a context ends with it.
	labCtx := ctx
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute+idle)
	defer cancel()
	r, err := l.benchStartRouter(ctx, which, v)
	if err != nil {
		return BenchOps{}, err
	}
	defer func() { _ = r.stop() }()

	if _, err := benchWaitNAT(ctx, l.Router, l.Pool, 30*time.Second); err != nil {
		return BenchOps{}, fmt.Errorf("%s serving: %w", which, err)
	}
	// Let the start-up settle (DAD of the LAN address, the first RA).
	if err := benchSleep(ctx, time.Second); err != nil {
		return BenchOps{}, err
	}
	var res BenchOps
	res.IdleWindow = idle
	if res.IdleCPU, res.IdleRun, err = l.benchIdleCPU(ctx, l.Router, idle); err != nil {
		return BenchOps{}, err
	}
	if res.Renumber, err = l.benchRenumber(ctx, labCtx, r); err != nil {
		return BenchOps{}, fmt.Errorf("%s renumbering: %w", which, err)
	}
	if res.Restart, err = l.benchRestart(ctx, r); err != nil {
		return BenchOps{}, fmt.Errorf("%s restart: %w", which, err)
	}
	res.Kept = res.Renumber.OK && res.Restart.OK && res.Restart.Prefix == res.Renumber.Prefix
	return res, nil
}

// benchRenumber restarts Kea with the other pool and no leases, tells the
// client to renew, and times the Reply with a prefix from the new pool and
// the NETMAP rules for it.
// Kea is restarted with labCtx, which must outlive the lab's use.
func (l *Lab) benchRenumber(ctx, labCtx context.Context, r *benchRouter) (BenchExchange, error) {
	pool := BenchAltPool
	if l.Pool == BenchAltPool {
		pool = DefaultPool
	}
	c, err := l.Capture(ctx, l.Upstream, UpstreamIface, "udp port 546 or udp port 547")
	if err != nil {
		return BenchExchange{}, err
	}
	if err := l.RestartKea(labCtx, pool, true); err != nil {
		_, _ = c.Stop()
		return BenchExchange{}, err
	}
	nat, err := benchWatchNAT(l.Router, pool)
	if err != nil {
		_, _ = c.Stop()
		return BenchExchange{}, err
	}
	defer nat.close()
	from := time.Now()
	if err := r.renew(ctx); err != nil {
		_, _ = c.Stop()
		return BenchExchange{}, err
	}
	natAt, natErr := nat.wait(ctx, 20*time.Second)
	if _, err := c.Stop(); err != nil {
		return BenchExchange{}, err
	}
	msgs, err := benchReadDHCPv6(ctx, c.File())
	if err != nil {
		return BenchExchange{}, err
	}
	ex := BenchExchangeAfter(msgs, from, pool)
	if natErr != nil || !ex.OK {
		// The client did not follow: the table says so.
		ex.OK = false
		return ex, ctx.Err()
	}
	ex.ReplyToNAT = natAt.Sub(from.Add(ex.ToReply))
	return ex, nil
}

// benchRestart stops the client and starts it on its saved state, and
// times the first successful Reply after the new process started.
func (l *Lab) benchRestart(ctx context.Context, r *benchRouter) (BenchExchange, error) {
	c, err := l.Capture(ctx, l.Upstream, UpstreamIface, "udp port 546 or udp port 547")
	if err != nil {
		return BenchExchange{}, err
	}
	from, err := r.restart(ctx)
	if err != nil {
		_, _ = c.Stop()
		return BenchExchange{}, err
	}
	var ex BenchExchange
	_ = waitFor(ctx, 30*time.Second, 100*time.Millisecond, "a successful Reply after the restart", func() (bool, error) {
		msgs, err := benchReadDHCPv6(ctx, c.File())
		ex = BenchExchangeAfter(msgs, from, netip.Prefix{})
		return ex.OK, err
	})
	if _, err := c.Stop(); err != nil {
		return BenchExchange{}, err
	}
	msgs, err := benchReadDHCPv6(ctx, c.File())
	if err != nil {
		return BenchExchange{}, err
	}
	return BenchExchangeAfter(msgs, from, netip.Prefix{}), ctx.Err()
}

// benchReadDHCPv6 decodes a capture file with `tcpdump -v`, which prints
// DHCPv6 options. A file still being written may end in a partial packet:
// tcpdump then fails after printing the whole ones, which are used.
func benchReadDHCPv6(ctx context.Context, file string) ([]BenchDHCPv6, error) {
	out, err := run(ctx, "tcpdump", "-r", file, "-n", "-tt", "-v")
	if err != nil {
		if _, serr := os.Stat(file); serr != nil {
			return nil, fmt.Errorf("lab: %w", serr)
		}
	}
	return ParseBenchDHCPv6(out), nil
}

// BenchDHCPv6 is one DHCPv6 message from `tcpdump -n -tt -v`.
type BenchDHCPv6 struct {
	Time time.Time
	Type string // tcpdump's name: "solicit", "advertise", "request", "reply", "renew", "rebind", ...
	XID  string
	// Delegated lists the IA_PD prefixes with a non-zero valid lifetime;
	// a server drops a prefix by listing it with lifetime 0 (RFC 8415
	// §18.3.4), which is left out here.
	Delegated []netip.Prefix
}

var (
	benchDHCPv6Type   = regexp.MustCompile(`\bdhcp6 ([a-z-]+)`)
	benchDHCPv6XID    = regexp.MustCompile(`\(xid=([0-9a-f]+)`)
	benchDHCPv6Prefix = regexp.MustCompile(`IA_PD-prefix ([0-9a-fA-F:.]+/[0-9]+) pltime:[0-9]+ vltime:([0-9]+)`)
)

// ParseBenchDHCPv6 parses the DHCPv6 messages in `tcpdump -n -tt -v`
// output; other lines are skipped.
func ParseBenchDHCPv6(out string) []BenchDHCPv6 {
	var msgs []BenchDHCPv6
	for _, line := range strings.Split(out, "\n") {
		m := benchDHCPv6Type.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ts, _, _ := strings.Cut(line, " ")
		sec, frac, ok := strings.Cut(ts, ".")
		s, err1 := strconv.ParseInt(sec, 10, 64)
		us, err2 := strconv.ParseInt(frac, 10, 64)
		if !ok || err1 != nil || err2 != nil || len(frac) != 6 {
			continue
		}
		msg := BenchDHCPv6{Time: time.Unix(s, us*1000), Type: m[1]}
		if x := benchDHCPv6XID.FindStringSubmatch(line); x != nil {
			msg.XID = x[1]
		}
		for _, p := range benchDHCPv6Prefix.FindAllStringSubmatch(line, -1) {
			pfx, err := netip.ParsePrefix(p[1])
			valid, verr := strconv.ParseUint(p[2], 10, 32)
			if err == nil && verr == nil && valid > 0 {
				msg.Delegated = append(msg.Delegated, pfx)
			}
		}
		msgs = append(msgs, msg)
	}
	return msgs
}

// benchClientTypes are the DHCPv6 messages a client sends (RFC 8415 §7.3),
// by tcpdump's names, with the spelling the bench table uses.
var benchClientTypes = map[string]string{
	"solicit": "Solicit", "request": "Request", "confirm": "Confirm", "renew": "Renew",
	"rebind": "Rebind", "release": "Release", "decline": "Decline", "inf-req": "Information-request",
}

// BenchExchangeAfter finds the first Reply at or after from that delegates
// a prefix inside within (any prefix for the zero Prefix), and lists the
// client's messages from from up to it, retransmissions folded. OK is false
// when there is no such Reply.
func BenchExchangeAfter(msgs []BenchDHCPv6, from time.Time, within netip.Prefix) BenchExchange {
	var ex BenchExchange
	for _, m := range msgs {
		if m.Time.Before(from) {
			continue
		}
		if name, ok := benchClientTypes[m.Type]; ok {
			if n := len(ex.Client); n == 0 || ex.Client[n-1] != name {
				ex.Client = append(ex.Client, name)
			}
			continue
		}
		if m.Type != "reply" {
			continue
		}
		for _, p := range m.Delegated {
			if !within.IsValid() || within.Contains(p.Addr()) {
				ex.OK, ex.ToReply, ex.Prefix = true, m.Time.Sub(from), p
				return ex
			}
		}
	}
	return ex
}

// benchWaitNAT polls the namespace's nftables over netlink every 5 ms
// until both NETMAP rules for a prefix inside pool are there, and returns
// when it saw them.
func benchWaitNAT(ctx context.Context, ns string, pool netip.Prefix, timeout time.Duration) (time.Time, error) {
	f, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return time.Time{}, fmt.Errorf("lab: %w", err)
	}
	defer f.Close()
	var at time.Time
	err = waitFor(ctx, timeout, 5*time.Millisecond, "NETMAP rules for a prefix in "+pool.String(), func() (bool, error) {
		c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
		if err != nil {
			return false, err
		}
		ok, err := benchHasNetmapTo(c, pool)
		if ok {
			at = time.Now()
		}
		return ok, err
	})
	return at, err
}

// benchNATWatch follows the commits of nftables rules in a namespace.
type benchNATWatch struct {
	events <-chan *nftables.MonitorEvent
	close  func()
	pool   netip.Prefix
}

// benchWatchNAT starts following rule commits in the namespace ns, for
// NETMAP rules to a prefix inside pool. The kernel announces a committed
// transaction's rules at its end, so the event's arrival is when they took
// effect. Polling with dumps would see them later when the same client
// deletes the old rules in a second transaction right after: a dump waits
// for that commit (~13 ms for a deletion on these machines) while packets
// are already translated by the new rules.
func benchWatchNAT(ns string, pool netip.Prefix) (*benchNATWatch, error) {
	f, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		return nil, fmt.Errorf("lab: nftables in %s: %w", ns, err)
	}
	// Every event: google/nftables v0.3.0 hands events over at the end of
	// each transaction (NEWGEN), and a narrower monitor filters NEWGEN out
	// too, so it would never hand anything over.
	m := nftables.NewMonitor()
	events, err := c.AddMonitor(m)
	if err != nil {
		return nil, fmt.Errorf("lab: nftables monitor in %s: %w", ns, err)
	}
	stop := func() {
		_ = m.Close()
		// The monitor's forwarding goroutine ends once nobody blocks it.
		go func() {
			for range events {
			}
		}()
	}
	return &benchNATWatch{events: events, close: stop, pool: pool}, nil
}

// wait returns when the SNAT and the DNAT rule to the pool have both been
// committed.
func (w *benchNATWatch) wait(ctx context.Context, timeout time.Duration) (time.Time, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	var snat, dnat bool
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-t.C:
			return time.Time{}, fmt.Errorf("lab: no NETMAP rules for %s committed within %v", w.pool, timeout)
		case ev, ok := <-w.events:
			if !ok {
				return time.Time{}, errors.New("lab: nftables monitor closed")
			}
			r, isRule := ev.Data.(*nftables.Rule)
			if ev.Error != nil || !isRule || ev.Type != nftables.MonitorEventTypeNewRule {
				continue
			}
			s, d := BenchNetmapTo(r.Exprs, w.pool)
			snat, dnat = snat || s, dnat || d
			if snat && dnat {
				return time.Now(), nil
			}
		}
	}
}

// benchHasNetmapTo reports whether some ip6 chain has a prefix SNAT to a
// prefix inside pool and a prefix DNAT matching a destination inside pool:
// v6edge's and the hook's NETMAP pair alike.
func benchHasNetmapTo(c *nftables.Conn, pool netip.Prefix) (bool, error) {
	return ip6SNATAndDNAT(c, func(exprs []expr.Any) (bool, bool) { return BenchNetmapTo(exprs, pool) })
}

// ip6SNATAndDNAT reports whether, over every rule of every ip6 chain,
// match found both a rule that is a SNAT and one that is a DNAT.
func ip6SNATAndDNAT(c *nftables.Conn, match func(exprs []expr.Any) (snat, dnat bool)) (bool, error) {
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv6)
	if err != nil {
		return false, err
	}
	var snat, dnat bool
	for _, ch := range chains {
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			return false, err
		}
		for _, r := range rules {
			s, d := match(r.Exprs)
			snat, dnat = snat || s, dnat || d
		}
	}
	return snat && dnat, nil
}

// BenchNetmapTo reports whether one rule's expressions are a prefix SNAT
// to a prefix inside pool (the first address loaded into a register), or a
// prefix DNAT of packets whose destination is compared against a prefix
// inside pool (nft and v6edge compare only the prefix's bytes when its
// length is a multiple of 8, hence the padding).
func BenchNetmapTo(exprs []expr.Any, pool netip.Prefix) (snat, dnat bool) {
	inPool := func(b []byte, atLeast int) bool {
		if len(b) == 0 || len(b) > 16 || len(b)*8 < atLeast {
			return false
		}
		var a [16]byte
		copy(a[:], b)
		return pool.Contains(netip.AddrFrom16(a))
	}
	loaded := map[uint32][]byte{} // register → immediate data
	var cmp bool
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Immediate:
			loaded[e.Register] = e.Data
		case *expr.Cmp:
			cmp = cmp || (e.Op == expr.CmpOpEq && inPool(e.Data, pool.Bits()))
		case *expr.NAT:
			if !e.Prefix {
				continue
			}
			first := loaded[e.RegAddrMin]
			snat = snat || (e.Type == expr.NATTypeSourceNAT && len(first) == 16 && inPool(first, 128))
			dnat = dnat || (e.Type == expr.NATTypeDestNAT && cmp)
		}
	}
	return snat, dnat
}

// benchIdleCPU returns the CPU time the processes of namespace ns use over
// window, by /proc/<pid>/stat and by schedstat (see BenchOps).
func (l *Lab) benchIdleCPU(ctx context.Context, ns string, window time.Duration) (stat, run time.Duration, err error) {
	before, err := benchNetnsCPU(ctx, ns)
	if err != nil {
		return 0, 0, err
	}
	if err := benchSleep(ctx, window); err != nil {
		return 0, 0, err
	}
	after, err := benchNetnsCPU(ctx, ns)
	if err != nil {
		return 0, 0, err
	}
	stat, run = BenchCPUDelta(before, after)
	return stat, run, nil
}

// BenchProcCPU is the CPU account of one process from /proc/<pid>/stat.
type BenchProcCPU struct {
	Start uint64 // start time in clock ticks after boot: tells a reused pid apart
	Ticks uint64 // utime + stime + cutime + cstime
	Run   uint64 // nanoseconds on a CPU, summed over the live threads' schedstat
}

// BenchCPUDelta is the CPU time used between two snapshots of the same
// processes: for a process in both, the growth of its account; for a new
// one, all of it. A process gone by the second snapshot is lost, unless a
// process in the namespace reaped it (then its parent's cutime has it).
// Stat counts /proc/<pid>/stat ticks, run schedstat nanoseconds.
func BenchCPUDelta(before, after map[int]BenchProcCPU) (stat, run time.Duration) {
	var ticks, ns uint64
	grow := func(a, b uint64) uint64 {
		if a >= b {
			return a - b
		}
		return 0 // a thread ended: its time left the sum
	}
	for pid, a := range after {
		if b, ok := before[pid]; ok && b.Start == a.Start {
			ticks += grow(a.Ticks, b.Ticks)
			ns += grow(a.Run, b.Run)
			continue
		}
		ticks += a.Ticks
		ns += a.Run
	}
	return time.Duration(ticks) * benchTick, time.Duration(ns)
}

// benchTick is USER_HZ, the unit of /proc/<pid>/stat's times; it is 100 on
// every Linux architecture whatever the kernel's HZ.
const benchTick = 10 * time.Millisecond

func benchNetnsCPU(ctx context.Context, ns string) (map[int]BenchProcCPU, error) {
	out, err := run(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return nil, err
	}
	cpu := map[int]BenchProcCPU{}
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + f + "/stat")
		if err != nil {
			continue // exited since
		}
		c, err := ParseBenchProcStat(b)
		if err != nil {
			continue
		}
		tasks, _ := filepath.Glob("/proc/" + f + "/task/*/schedstat")
		for _, t := range tasks {
			if b, err := os.ReadFile(t); err == nil {
				c.Run += ParseBenchSchedstat(b)
			}
		}
		cpu[pid] = c
	}
	return cpu, nil
}

// ParseBenchProcStat parses the CPU account of /proc/<pid>/stat (proc(5)):
// fields 14–17 (utime, stime, cutime, cstime) and 22 (starttime), counted
// after the command name, which is in parentheses and may itself contain
// spaces and parentheses.
func ParseBenchProcStat(stat []byte) (BenchProcCPU, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return BenchProcCPU{}, errors.New("lab: /proc/pid/stat: no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state).
	if len(f) < 20 {
		return BenchProcCPU{}, fmt.Errorf("lab: /proc/pid/stat: %d fields after the name, want ≥ 20", len(f))
	}
	var c BenchProcCPU
	for _, idx := range []int{11, 12, 13, 14} {
		v, err := strconv.ParseInt(f[idx], 10, 64)
		if err != nil {
			return BenchProcCPU{}, fmt.Errorf("lab: /proc/pid/stat field %d: %w", idx+3, err)
		}
		if v > 0 {
			c.Ticks += uint64(v)
		}
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return BenchProcCPU{}, fmt.Errorf("lab: /proc/pid/stat field 22: %w", err)
	}
	c.Start = st
	return c, nil
}

// ParseBenchSchedstat returns the first field of a schedstat file: the
// nanoseconds the task has run on a CPU (0 if unreadable).
func ParseBenchSchedstat(b []byte) uint64 {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseUint(f[0], 10, 64)
	return v
}

func benchSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// BenchOpsIdle is the idle window the bench measures CPU over.
const BenchOpsIdle = 10 * time.Second

// benchOps runs MeasureOps runs times per setup, alternating, in one lab
// with Kea's defaults.
func benchOps(ctx context.Context, v V6edge, runs int, idle time.Duration) (map[string][]BenchOps, error) {
	return benchAlternating(ctx, Options{}, runs, "operations run", func(l *Lab, which string) (BenchOps, error) {
		return MeasureOps(ctx, l, which, v, idle)
	})
}

// WriteBenchOpsTable prints the medians of MeasureOps results as markdown:
// one row per figure, v6edge beside the incumbent, and how many times
// v6edge is faster (or leaner). A cell counts the runs where the client
// did not get there.
func WriteBenchOpsTable(out io.Writer, results map[string][]BenchOps, runs int) {
	setups := []string{SetupV6edge, SetupIncumbent}
	row := func(title string, pick func(BenchOps) (time.Duration, bool), format func(time.Duration) string) {
		var med [2]time.Duration
		var cells [2]string
		for i, which := range setups {
			var d []time.Duration
			for _, r := range results[which] {
				if v, ok := pick(r); ok {
					d = append(d, v)
				}
			}
			med[i] = Median(d)
			switch failed := len(results[which]) - len(d); {
			case len(d) == 0:
				cells[i] = "never"
			case failed > 0:
				cells[i] = fmt.Sprintf("%s (%d of %d runs never got there)", format(med[i]), failed, len(results[which]))
			default:
				cells[i] = format(med[i])
			}
		}
		ratio := benchRatio(med[1], med[0])
		fmt.Fprintf(out, "| %s | %s | %s | %s |\n", title, cells[0], cells[1], ratio)
	}
	text := func(title string, describe func(BenchOps) string) {
		var cells [2]string
		for i, which := range setups {
			cells[i] = BenchTally(results[which], describe)
		}
		fmt.Fprintf(out, "| %s | %s | %s | |\n", title, cells[0], cells[1])
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

	fmt.Fprintf(out, "| after start-up, median of %d | v6edge | dhcpcd+hook+radvd | incumbent ÷ v6edge (> 1: v6edge better) |\n|---|---|---|---|\n", runs)
	row("renumbering: Reply with the new prefix on the wire → new NETMAP rules committed in the kernel",
		func(r BenchOps) (time.Duration, bool) { return r.Renumber.ReplyToNAT, r.Renumber.OK }, ms)
	row("renumbering: renew command (`v6edge renew`, `dhcpcd -6 -N`, each a fork) → that Reply",
		func(r BenchOps) (time.Duration, bool) { return r.Renumber.ToReply, r.Renumber.OK }, ms)
	text("renumbering: client messages up to that Reply", func(r BenchOps) string {
		return benchExchangeName(r.Renumber)
	})
	row("restart (SIGTERM, start on the saved state): process start → Reply of the first successful exchange",
		func(r BenchOps) (time.Duration, bool) { return r.Restart.ToReply, r.Restart.OK }, ms)
	text("restart: client messages up to that Reply; prefix kept", func(r BenchOps) string {
		if !r.Restart.OK {
			return "no Reply"
		}
		kept := "new prefix"
		if r.Kept {
			kept = "same prefix"
		}
		return benchExchangeName(r.Restart) + ", " + kept
	})
	var window time.Duration
	for _, rs := range results {
		for _, r := range rs {
			window = max(window, r.IdleWindow)
		}
	}
	row(fmt.Sprintf("idle CPU (user+system, every process in the router namespace) over %v after serving, per minute", window),
		func(r BenchOps) (time.Duration, bool) {
			if r.IdleWindow <= 0 {
				return 0, false
			}
			return time.Duration(float64(r.IdleCPU) * float64(time.Minute) / float64(r.IdleWindow)), true
		},
		func(d time.Duration) string { return fmt.Sprintf("%.0f ms/min", float64(d)/float64(time.Millisecond)) })
	row("idle CPU as above, by the scheduler's run time at ns resolution (schedstat), per minute",
		func(r BenchOps) (time.Duration, bool) {
			if r.IdleWindow <= 0 {
				return 0, false
			}
			return time.Duration(float64(r.IdleRun) * float64(time.Minute) / float64(r.IdleWindow)), true
		},
		func(d time.Duration) string { return fmt.Sprintf("%.2f ms/min", float64(d)/float64(time.Millisecond)) })
}

func benchExchangeName(ex BenchExchange) string {
	if !ex.OK {
		return "no Reply"
	}
	return strings.Join(ex.Client, " → ")
}

// BenchTally describes each result and counts the descriptions, the most
// frequent first: "Rebind 4/5, Solicit → Request 1/5".
func BenchTally(results []BenchOps, describe func(BenchOps) string) string {
	count := map[string]int{}
	var names []string
	for _, r := range results {
		d := describe(r)
		if count[d] == 0 {
			names = append(names, d)
		}
		count[d]++
	}
	slices.SortStableFunc(names, func(a, b string) int { return count[b] - count[a] })
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d/%d", n, count[n], len(results)))
	}
	return strings.Join(parts, ", ")
}
