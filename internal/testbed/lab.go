package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Addresses and names of the topology. Interface names are the same in every
// lab because each lives in its own namespace.
const (
	UpstreamIface = "up0"
	WANIface      = "wan0"
	LANIface      = "lan0"
	HostIface     = "eth0"
)

var (
	// UpstreamAddr is the upstream's address on the shared WAN link.
	UpstreamAddr = netip.MustParsePrefix("2001:db8:0:1::1/64")
	// InternetAddr stands for "the internet": a /128 on the upstream's
	// loopback, reachable only through the router's NAT.
	InternetAddr = netip.MustParseAddr("2001:db8:ffff::1")
	// DefaultWANMAC is the router's WAN MAC; DUID-LL and the link-local
	// address derive from it.
	DefaultWANMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x01, 0x33}
	// DefaultPool is the space Kea delegates prefixes from.
	DefaultPool = netip.MustParsePrefix("2001:db8:100::/40")
)

// Options describes a lab. The zero value is a usable lab named "v6lab".
type Options struct {
	Name      string       // prefix for namespace names, e.g. "v6it" or "v6demo"
	Pool      netip.Prefix // default 2001:db8:100::/40
	Delegated int          // delegated prefix length, default 56

	// Kea timers; defaults 1000s/1600s/3000s/4000s.
	T1, T2, Preferred, Valid time.Duration

	Hosts       int  // LAN hosts, default 1; 2 or more share a bridge lan0 in the router namespace
	Routers     int  // routers, default 1; 2 (an HA pair) share the upstream link and a LAN switch
	RapidCommit bool // Kea answers a Solicit with Rapid Commit directly with a Reply
	// Preference is the Preference option (RFC 8415 §21.8) Kea puts in its
	// Advertises; 255 lets a client skip collecting Advertises. 0 = none.
	Preference int
	Log        io.Writer

	// ISP varieties (rendered by keaConfig; see isp.go). ExcludedPrefix:
	// Kea's pd-pool carries an RFC 6603 excluded prefix, the last /64 of
	// every delegated prefix (ExcludedOf), sent only to a client whose ORO
	// asks for option 67. AddressPool: an IA_NA pool inside the upstream
	// /64, not holding UpstreamAddr (a Lab's link; a Multi's upstreams
	// have other links). DNS and Domains: option-data
	// dns-servers and domain-search, sent to a client that requests them.
	ExcludedPrefix bool
	AddressPool    netip.Prefix
	DNS            []netip.Addr
	Domains        []string

	// Dir holds every peer's files. Empty: a fresh temporary directory that
	// Close removes. A given Dir is left in place.
	Dir string
	// Keep leaves the lab directory (logs, configs, captures, leases) in
	// place at Close, for a look after the fact; namespaces and processes
	// are removed all the same.
	Keep bool
}

// Lab is a running topology. Its methods are safe for concurrent use.
type Lab struct {
	Upstream, Router string   // namespace names; Router is Routers[0]
	Hosts            []string // LAN host namespace names, eth0 in each
	Dir              string   // temporary directory holding every peer's files
	WANMAC           net.HardwareAddr
	Pool             netip.Prefix // the pool Kea currently delegates from

	// With Options.Routers > 1: every router namespace, each router's own
	// WAN MAC (the first is WANMAC, the others count up from it), and the
	// switch namespace whose bridge joins the routers' lan0 and the hosts.
	Routers []string
	WANMACs []net.HardwareAddr
	Switch  string

	opts    Options
	ownDir  bool
	log     io.Writer
	kea     *Proc
	keaConf string

	mu        sync.Mutex
	procs     []*Proc
	created   []string // namespaces created so far, for Close
	etcDirs   []string // /etc/netns/<ns> directories created so far
	routes    map[netip.Prefix]bool
	seq       int
	closeOnce sync.Once
	closeErr  error
}

const ownerFile = "owner.pid"

var staleDir = regexp.MustCompile(`^(.+-[0-9a-f]{6})-[0-9]+$`)

// sweepStale removes labs named name whose owning process is gone: their
// namespaces, /etc/netns directories and lab directory. Only labs that
// carry an owner file in their temporary directory are touched, and only
// when that pid no longer exists.
func sweepStale(ctx context.Context, name string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), name+"-*", ownerFile))
	for _, f := range dirs {
		dir := filepath.Dir(f)
		m := staleDir.FindStringSubmatch(filepath.Base(dir))
		if m == nil || !strings.HasPrefix(m[1], name+"-") || len(m[1]) != len(name)+7 {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		base := m[1]
		nss, _ := filepath.Glob(filepath.Join("/run/netns", base+"-*"))
		for _, nsPath := range nss {
			ns := filepath.Base(nsPath)
			stale := &Lab{}
			stale.killNetnsPids(ctx, ns)
			_, _ = run(ctx, "ip", "netns", "del", ns)
		}
		etcs, _ := filepath.Glob(filepath.Join("/etc/netns", base+"-*"))
		for _, e := range etcs {
			_ = os.RemoveAll(e)
		}
		_ = os.RemoveAll(dir)
	}
}

// Requirements lists the programs a lab needs.
func Requirements() []string {
	return []string{"ip", "nft", "kea-dhcp6", "radvd", "tcpdump", "ping", "rdisc6", "dhcpcd", "ss", "unshare"}
}

// Missing lists the required programs that are not installed, so that tests
// can skip with a reason.
func Missing() []string {
	var m []string
	for _, b := range Requirements() {
		if _, err := exec.LookPath(b); err != nil {
			m = append(m, b)
		}
	}
	return m
}

func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = "v6lab"
	}
	if !o.Pool.IsValid() {
		o.Pool = DefaultPool
	}
	if o.Delegated == 0 {
		o.Delegated = 56
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.T1, 1000*time.Second)
	def(&o.T2, 1600*time.Second)
	def(&o.Preferred, 3000*time.Second)
	def(&o.Valid, 4000*time.Second)
	if o.Hosts <= 0 {
		o.Hosts = 1
	}
	if o.Routers <= 0 {
		o.Routers = 1
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// New builds the namespaces and links, waits for Duplicate Address Detection
// to finish everywhere, and starts Kea and radvd on the upstream. On error
// everything created so far is removed again.
func New(ctx context.Context, o Options) (l *Lab, err error) {
	o = o.withDefaults()
	if o.Delegated <= o.Pool.Bits() || o.Delegated > 64 {
		return nil, fmt.Errorf("lab: delegated length /%d does not fit pool %s", o.Delegated, o.Pool)
	}
	base, err := labBase(o.Name)
	if err != nil {
		return nil, err
	}
	l = &Lab{
		Upstream: base + "-up",
		Router:   base + "-rt",
		WANMAC:   DefaultWANMAC,
		Pool:     o.Pool,
		opts:     o,
		log:      o.Log,
		routes:   map[netip.Prefix]bool{},
	}
	for i := 1; i <= o.Hosts; i++ {
		l.Hosts = append(l.Hosts, fmt.Sprintf("%s-h%d", base, i))
	}
	for i := range o.Routers {
		mac := slices.Clone(DefaultWANMAC)
		if o.Routers > 1 {
			// An HA pair's nodes have WAN MACs of their own; DefaultWANMAC
			// is the shared one the master takes over (ha.wan_mac).
			mac = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x02, byte(i + 1)}
		}
		l.WANMACs = append(l.WANMACs, mac)
		if i == 0 {
			l.Routers = append(l.Routers, l.Router)
		} else {
			l.Routers = append(l.Routers, fmt.Sprintf("%s-rt%d", base, i+1))
		}
	}
	if o.Routers > 1 {
		l.Switch = base + "-sw"
	}
	sweepStale(ctx, o.Name)
	if o.Dir != "" {
		l.Dir = o.Dir
	} else {
		if l.Dir, err = os.MkdirTemp("", base+"-"); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		l.ownDir = true
		if err := l.writeOwner(); err != nil {
			return nil, err
		}
	}
	if err := l.bringUp(ctx, l.build, l.startUpstream); err != nil {
		return nil, err
	}
	l.logf("lab %s ready (dir %s)", base, l.Dir)
	return l, nil
}

// abandon removes a lab whose build failed with err and returns err,
// joined with what Close says. An interrupted build fails in whatever step
// it was in; abandon says that it was interrupted so callers can tell
// (errors.Is ctx.Err()).
// labBase is name with a random suffix: the start of the name of every
// namespace of one lab, and of its directory.
func labBase(name string) (string, error) {
	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		return "", fmt.Errorf("lab: random suffix: %w", err)
	}
	return name + "-" + hex.EncodeToString(suffix), nil
}

// writeOwner records our pid in the lab directory. It lets a later lab
// remove this one if our process dies without Close (a `go test -timeout`
// panic, SIGKILL).
func (l *Lab) writeOwner() error {
	if err := os.WriteFile(filepath.Join(l.Dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// bringUp runs the steps that build and start a lab in order; when one
// fails it removes everything created so far (see abandon).
func (l *Lab) bringUp(ctx context.Context, steps ...func(context.Context) error) error {
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return l.abandon(ctx, err)
		}
	}
	return nil
}

func (l *Lab) abandon(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	return errors.Join(err, l.Close())
}

func (l *Lab) logf(format string, args ...any) {
	fmt.Fprintf(l.log, format+"\n", args...)
}

func (l *Lab) path(name string) string { return filepath.Join(l.Dir, name) }

func (l *Lab) track(p *Proc) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.procs = append(l.procs, p)
}

// next returns a per-lab sequence number for unique file names.
func (l *Lab) next() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	return l.seq
}

func (l *Lab) namespaces() []string {
	ns := append([]string{l.Upstream}, l.Routers...)
	if l.Switch != "" {
		ns = append(ns, l.Switch)
	}
	return append(ns, l.Hosts...)
}

// addNetns creates a namespace and its private /etc/netns/<ns>/resolv.conf;
// `ip netns exec` bind-mounts that file over /etc/resolv.conf, so a peer that
// rewrites resolv.conf (dhcpcd) never touches the host's.
func (l *Lab) addNetns(ctx context.Context, ns string) error {
	// Recorded before it exists: a cancelled `ip netns add` may still have
	// created the namespace, and Close must remove it.
	l.mu.Lock()
	l.created = append(l.created, ns)
	l.mu.Unlock()
	if _, err := run(ctx, "ip", "netns", "add", ns); err != nil {
		return err
	}
	etc := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	l.mu.Lock()
	l.etcDirs = append(l.etcDirs, etc)
	l.mu.Unlock()
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("# v6edge lab "+ns+"\n"), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	_, err := l.Exec(ctx, ns, "ip", "link", "set", "lo", "up")
	return err
}

func (l *Lab) build(ctx context.Context) error {
	for _, ns := range l.namespaces() {
		if err := l.addNetns(ctx, ns); err != nil {
			return err
		}
	}
	// Links are created inside the namespaces (peer moved at creation), so
	// nothing ever appears in the host's namespace.
	if err := runAll(ctx, l.linkSteps()); err != nil {
		return err
	}
	up := l.Upstream
	// Upstream: forwarding on, as on a real ISP router (radvd insists on it).
	if err := l.Sysctl(ctx, up, "net.ipv6.conf.all.forwarding", "1"); err != nil {
		return err
	}
	// Hosts: plain SLAAC hosts, set before the link comes up.
	for _, h := range l.Hosts {
		if err := l.slaacHost(ctx, h); err != nil {
			return err
		}
	}
	ups := [][]string{{"ip", "-n", up, "link", "set", UpstreamIface, "up"}}
	for _, rt := range l.Routers {
		ups = append(ups,
			[]string{"ip", "-n", rt, "link", "set", WANIface, "up"},
			[]string{"ip", "-n", rt, "link", "set", LANIface, "up"})
	}
	if l.Switch != "" {
		ups = append(ups, []string{"ip", "-n", l.Switch, "link", "set", SwitchBridge, "up"})
	}
	for _, h := range l.Hosts {
		ups = append(ups, []string{"ip", "-n", h, "link", "set", HostIface, "up"})
	}
	if err := runAll(ctx, ups); err != nil {
		return err
	}
	if err := l.routePool(ctx, l.Pool); err != nil {
		return err
	}
	return l.waitDAD(ctx, l.namespaces())
}

// runAll runs each command (name first) in turn, up to the first error.
func runAll(ctx context.Context, cmds [][]string) error {
	for _, c := range cmds {
		if _, err := run(ctx, c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// slaacHost makes the namespace h a plain SLAAC host on HostIface; set
// before the link comes up.
func (l *Lab) slaacHost(ctx context.Context, h string) error {
	for k, v := range map[string]string{"forwarding": "0", "accept_ra": "1", "autoconf": "1", "use_tempaddr": "0"} {
		if err := l.Sysctl(ctx, h, "net.ipv6.conf."+HostIface+"."+k, v); err != nil {
			return err
		}
	}
	return nil
}

// waitDAD waits until no address in any of namespaces is tentative: Kea
// cannot bind a tentative link-local, and a ping started during DAD
// sources from the wrong address.
func (l *Lab) waitDAD(ctx context.Context, namespaces []string) error {
	return l.WaitFor(ctx, 10*time.Second, "duplicate address detection in every namespace", func() (bool, error) {
		for _, ns := range namespaces {
			out, err := l.Exec(ctx, ns, "ip", "-6", "addr", "show", "tentative")
			if err != nil {
				return false, err
			}
			if strings.TrimSpace(out) != "" {
				return false, nil
			}
		}
		return true, nil
	})
}

// SwitchBridge is the bridge in the switch namespace of a multi-router lab.
const SwitchBridge = "br0"

// linkSteps returns the ip commands that create every link.
func (l *Lab) linkSteps() [][]string {
	ipn := func(ns string, args ...string) []string { return append([]string{"ip", "-n", ns}, args...) }
	up := l.Upstream
	var steps [][]string
	if len(l.Routers) == 1 {
		steps = append(steps, ipn(up, "link", "add", UpstreamIface, "type", "veth", "peer", "name", WANIface,
			"address", l.WANMACs[0].String(), "netns", l.Routers[0]))
	} else {
		// Routers share the upstream link: up0 is a bridge with one port per
		// router. Multicast snooping off, so RAs, DHCPv6 and DAD reach
		// every port without MLD state.
		steps = append(steps, ipn(up, "link", "add", UpstreamIface, "type", "bridge", "mcast_snooping", "0"))
		for i, rt := range l.Routers {
			port := fmt.Sprintf("%sp%d", UpstreamIface, i+1)
			steps = append(steps,
				ipn(up, "link", "add", port, "type", "veth", "peer", "name", WANIface, "address", l.WANMACs[i].String(), "netns", rt),
				ipn(up, "link", "set", port, "master", UpstreamIface, "up"))
		}
	}
	steps = append(steps,
		ipn(up, "addr", "add", UpstreamAddr.String(), "dev", UpstreamIface),
		ipn(up, "addr", "add", netip.PrefixFrom(InternetAddr, 128).String(), "dev", "lo"))
	switch {
	case len(l.Routers) == 1 && len(l.Hosts) == 1:
		steps = append(steps, ipn(l.Router, "link", "add", LANIface, "type", "veth", "peer", "name", HostIface, "netns", l.Hosts[0]))
	case len(l.Routers) == 1:
		// Several hosts share one L2 segment: a bridge named lan0 in the
		// router namespace, one veth port per host.
		steps = append(steps, ipn(l.Router, "link", "add", LANIface, "type", "bridge", "mcast_snooping", "0"))
		for i, h := range l.Hosts {
			port := fmt.Sprintf("%sp%d", LANIface, i+1)
			steps = append(steps,
				ipn(l.Router, "link", "add", port, "type", "veth", "peer", "name", HostIface, "netns", h),
				ipn(l.Router, "link", "set", port, "master", LANIface, "up"))
		}
	default:
		// Several routers: a switch namespace whose bridge joins every
		// router's lan0 and every host's eth0, as on a real LAN.
		sw := l.Switch
		steps = append(steps, ipn(sw, "link", "add", SwitchBridge, "type", "bridge", "mcast_snooping", "0"))
		for i, rt := range l.Routers {
			port := fmt.Sprintf("r%d", i+1)
			steps = append(steps,
				ipn(sw, "link", "add", port, "type", "veth", "peer", "name", LANIface, "netns", rt),
				ipn(sw, "link", "set", port, "master", SwitchBridge, "up"))
		}
		for i, h := range l.Hosts {
			port := fmt.Sprintf("h%d", i+1)
			steps = append(steps,
				ipn(sw, "link", "add", port, "type", "veth", "peer", "name", HostIface, "netns", h),
				ipn(sw, "link", "set", port, "master", SwitchBridge, "up"))
		}
	}
	return steps
}

// routePool routes a delegation pool from the upstream to the router's WAN
// link-local, as an ISP routes a delegated prefix to its customer.
func (l *Lab) routePool(ctx context.Context, pool netip.Prefix) error {
	l.mu.Lock()
	done := l.routes[pool]
	l.routes[pool] = true
	l.mu.Unlock()
	if done {
		return nil
	}
	_, err := run(ctx, "ip", "-n", l.Upstream, "-6", "route", "replace", pool.String(),
		"via", EUI64LinkLocal(l.WANMAC).String(), "dev", UpstreamIface)
	return err
}

// Sysctl sets a sysctl inside the namespace ns, e.g.
// "net.ipv6.conf.wan0.accept_ra". Interface names must not contain dots.
func (l *Lab) Sysctl(ctx context.Context, ns, key, value string) error {
	p := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	_, err := l.Exec(ctx, ns, "sh", "-c", `echo "$1" > "$2"`, "sh", value, p)
	return err
}

// Exec runs args in the namespace ns (`ip netns exec`) and returns the
// combined output. The error includes the output.
func (l *Lab) Exec(ctx context.Context, ns string, args ...string) (string, error) {
	return run(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// run executes a command with a bound on its runtime: no lab command should
// take more than 30 s, so a hung one does not hang the test.
func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	// Bounds a stuck pipe, generously: on a loaded machine the copying
	// goroutine can lag the exit of a short command by more than a second.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return b.String(), fmt.Errorf("lab: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(b.String()))
	}
	return b.String(), nil
}

// WaitFor polls cond every 50 ms until it returns true, it fails to hold
// for timeout, or ctx ends. The error names what was awaited and the last
// error cond returned.
func (l *Lab) WaitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	return waitFor(ctx, timeout, 50*time.Millisecond, what, cond)
}

func waitFor(ctx context.Context, timeout, every time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok && err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab: waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
		case <-deadline.C:
			return fmt.Errorf("lab: %s did not happen within %v (last error: %v)", what, timeout, last)
		case <-tick.C:
		}
	}
}

// Close stops every process the lab started, removes the namespaces and
// their /etc/netns directories, and the lab's directory if it created it. It
// is safe to call more than once and after a failed New.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.close() })
	return l.closeErr
}

func (l *Lab) close() error {
	var errs []error
	l.mu.Lock()
	procs := append([]*Proc(nil), l.procs...)
	created := append([]string(nil), l.created...)
	etcDirs := append([]string(nil), l.etcDirs...)
	l.mu.Unlock()
	var (
		wg  sync.WaitGroup
		emu sync.Mutex
	)
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Stop(); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, ns := range created {
		// Anything still running in one of our namespaces was started by
		// this lab (directly or by a daemon it ran): end it, or the
		// namespace lingers after `ip netns del`.
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); errors.Is(err, os.ErrNotExist) {
			continue
		}
		l.killNetnsPids(ctx, ns)
		if _, err := run(ctx, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range etcDirs {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("lab: %w", err))
		}
	}
	if l.ownDir && l.Dir != "" && !l.opts.Keep {
		if err := os.RemoveAll(l.Dir); err != nil {
			errs = append(errs, fmt.Errorf("lab: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (l *Lab) killNetnsPids(ctx context.Context, ns string) {
	for range 3 {
		out, err := run(ctx, "ip", "netns", "pids", ns)
		if err != nil || strings.TrimSpace(out) == "" {
			return
		}
		for _, f := range strings.Fields(out) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
				_ = killPid(pid)
			}
		}
		_ = waitFor(ctx, 2*time.Second, 20*time.Millisecond, "processes in "+ns+" to exit", func() (bool, error) {
			out, err := run(ctx, "ip", "netns", "pids", ns)
			return err == nil && strings.TrimSpace(out) == "", nil
		})
	}
}
