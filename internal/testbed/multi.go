package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The multihoming lab (SPEC.md "Several uplinks"): one router with two
// uplinks, each to its own upstream namespace, and one LAN host.
//
//	host(eth0) ── lan0 router wan0 ── up0 upstream 1 (Kea pool 1, radvd, BCP 38)
//	                          wan1 ── up0 upstream 2 (Kea pool 2, radvd, BCP 38)
//
// Both upstreams hold InternetAddr on lo, so "the internet" answers through
// whichever uplink a packet takes. Each upstream drops what arrives from the
// router with a source outside its own pool (BCP 38) and counts it, so a test
// can tell that no packet left by the wrong uplink.

var (
	// MultiPools are the upstreams' default delegation pools.
	MultiPools = []netip.Prefix{
		netip.MustParsePrefix("2001:db8:100::/40"),
		netip.MustParsePrefix("2001:db8:200::/40"),
	}
	// MultiWANMACs are the router's WAN MACs: wan0 has the single-uplink
	// lab's MAC, wan1 the one configs/examples/multihome.toml names.
	MultiWANMACs = []net.HardwareAddr{
		DefaultWANMAC,
		{0x02, 0x00, 0x5e, 0x00, 0x02, 0x01},
	}
)

// MultiPingSize is the ICMPv6 payload size of Multi.Ping's echo requests;
// the upstreams count echo requests of exactly this size (MultiCounters.Pings)
// so the daemon's own probes to the same address are not counted.
const MultiPingSize = 123

// MultiBCP38Table is the nftables table (family ip6) of each upstream's
// source filter and counters.
const MultiBCP38Table = "multi-bcp38"

// multiSilentTable is the nftables table that makes an upstream silent.
const multiSilentTable = "multi-silent"

// MultiOptions describes a multihoming lab. The zero value is usable.
type MultiOptions struct {
	Name      string         // namespace name prefix, default "v6mh"
	Pools     []netip.Prefix // one per upstream, default MultiPools (two upstreams)
	Delegated int            // delegated prefix length, default 56
	Log       io.Writer
}

// MultiUpstream is one upstream namespace and its link to the router.
type MultiUpstream struct {
	NS     string           // namespace name; its end of the link is UpstreamIface
	WAN    string           // the router's interface on this link: wan0, wan1, ...
	WANMAC net.HardwareAddr // the router's MAC on this link
	Link   netip.Prefix     // the upstream's address on the link, 2001:db8:0:<n>::1/64
	Dir    string           // this upstream's files (Kea config, leases, pid, radvd)

	mu   sync.Mutex
	pool netip.Prefix
	kea  *Proc
}

// Pool is the prefix the upstream currently delegates from and accepts as
// source.
func (u *MultiUpstream) Pool() netip.Prefix {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.pool
}

// Multi is a running multihoming lab. The embedded Lab holds the router,
// the host and the lab directory; its Upstream is the first upstream. Its
// Close removes everything Multi created as well.
type Multi struct {
	*Lab
	Upstreams []*MultiUpstream
}

// NewMulti builds the namespaces and links, waits for Duplicate Address
// Detection everywhere, and starts Kea, radvd and the BCP 38 filter in every
// upstream. On error everything created so far is removed again.
func NewMulti(ctx context.Context, o MultiOptions) (m *Multi, err error) {
	if o.Name == "" {
		o.Name = "v6mh"
	}
	if len(o.Pools) == 0 {
		o.Pools = MultiPools
	}
	if len(o.Pools) > len(MultiWANMACs) {
		return nil, fmt.Errorf("lab: %d upstreams, at most %d", len(o.Pools), len(MultiWANMACs))
	}
	lo := Options{Name: o.Name, Pool: o.Pools[0], Delegated: o.Delegated, Log: o.Log}.withDefaults()
	for _, p := range o.Pools {
		if lo.Delegated <= p.Bits() || lo.Delegated > 64 {
			return nil, fmt.Errorf("lab: delegated length /%d does not fit pool %s", lo.Delegated, p)
		}
	}
	base, err := labBase(o.Name)
	if err != nil {
		return nil, err
	}
	l := &Lab{
		Router:  base + "-rt",
		Hosts:   []string{base + "-h1"},
		WANMAC:  MultiWANMACs[0],
		Pool:    o.Pools[0],
		opts:    lo,
		log:     lo.Log,
		routes:  map[netip.Prefix]bool{},
		WANMACs: MultiWANMACs[:len(o.Pools)],
	}
	l.Routers = []string{l.Router}
	m = &Multi{Lab: l}
	for i, p := range o.Pools {
		m.Upstreams = append(m.Upstreams, &MultiUpstream{
			NS:     fmt.Sprintf("%s-up%d", base, i+1),
			WAN:    fmt.Sprintf("wan%d", i),
			WANMAC: MultiWANMACs[i],
			Link:   netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, byte(i + 1), 15: 1}), 64),
			pool:   p,
		})
	}
	l.Upstream = m.Upstreams[0].NS
	sweepStale(ctx, o.Name)
	if l.Dir, err = os.MkdirTemp("", base+"-"); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	l.ownDir = true
	if err := l.writeOwner(); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	steps := []func(context.Context) error{m.build}
	for i := range m.Upstreams {
		steps = append(steps, func(ctx context.Context) error { return m.startUpstream(ctx, i) })
	}
	if err := l.bringUp(ctx, steps...); err != nil {
		return nil, err
	}
	l.logf("multihoming lab %s ready (dir %s)", base, l.Dir)
	return m, nil
}

func (m *Multi) namespaces() []string {
	ns := []string{m.Router, m.Hosts[0]}
	for _, u := range m.Upstreams {
		ns = append(ns, u.NS)
	}
	return ns
}

func (m *Multi) build(ctx context.Context) error {
	for _, ns := range m.namespaces() {
		if err := m.addNetns(ctx, ns); err != nil {
			return err
		}
	}
	host := m.Hosts[0]
	steps := [][]string{
		{"ip", "-n", m.Router, "link", "add", LANIface, "type", "veth", "peer", "name", HostIface, "netns", host},
	}
	for _, u := range m.Upstreams {
		u.Dir = m.path(shortNS(u.NS))
		if err := os.MkdirAll(u.Dir, 0o755); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		// Forwarding on, as on a real ISP router (radvd insists on it).
		if err := m.Sysctl(ctx, u.NS, "net.ipv6.conf.all.forwarding", "1"); err != nil {
			return err
		}
		steps = append(steps,
			[]string{"ip", "-n", u.NS, "link", "add", UpstreamIface, "type", "veth", "peer", "name", u.WAN,
				"address", u.WANMAC.String(), "netns", m.Router},
			[]string{"ip", "-n", u.NS, "addr", "add", u.Link.String(), "dev", UpstreamIface},
			[]string{"ip", "-n", u.NS, "addr", "add", netip.PrefixFrom(InternetAddr, 128).String(), "dev", "lo"},
		)
	}
	if err := runAll(ctx, steps); err != nil {
		return err
	}
	if err := m.slaacHost(ctx, host); err != nil {
		return err
	}
	ups := [][]string{
		{"ip", "-n", m.Router, "link", "set", LANIface, "up"},
		{"ip", "-n", host, "link", "set", HostIface, "up"},
	}
	for _, u := range m.Upstreams {
		ups = append(ups,
			[]string{"ip", "-n", u.NS, "link", "set", UpstreamIface, "up"},
			[]string{"ip", "-n", m.Router, "link", "set", u.WAN, "up"})
	}
	if err := runAll(ctx, ups); err != nil {
		return err
	}
	return m.waitDAD(ctx, m.namespaces())
}

func (m *Multi) startUpstream(ctx context.Context, i int) error {
	u := m.Upstreams[i]
	if err := m.startKeaOn(ctx, i, u.Pool()); err != nil {
		return err
	}
	if err := m.writeBCP38(ctx, i, true); err != nil {
		return err
	}
	conf := filepath.Join(u.Dir, "radvd.conf")
	radvd := strings.Replace(radvdConfig(), UpstreamAddr.Masked().String(), u.Link.Masked().String(), 1)
	if err := os.WriteFile(conf, []byte(radvd), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	name := "radvd-" + shortNS(u.NS)
	p, err := m.Start(ctx, u.NS, name, "radvd", "-n", "-m", "stderr", "-d", "1",
		"-C", conf, "-p", filepath.Join(u.Dir, "radvd.pid"))
	if err != nil {
		return err
	}
	// radvd checks its config and exits at once if it dislikes it.
	if err := p.Wait(200 * time.Millisecond); p.exited() {
		return fmt.Errorf("lab: radvd in %s exited (%v): %s", u.NS, err, lastLines(p.Log(), 5))
	}
	m.logf("%s: radvd advertises %s, Kea delegates from %s, BCP 38 accepts only that", u.NS, u.Link.Masked(), u.Pool())
	return nil
}

// startKeaOn starts Kea in upstream i delegating from pool, with every file
// in the upstream's own directory, and routes pool to the router's
// link-local on that link.
func (m *Multi) startKeaOn(ctx context.Context, i int, pool netip.Prefix) error {
	u := m.Upstreams[i]
	leases := filepath.Join(u.Dir, "kea-leases6.csv")
	conf, err := keaConfig(u.Dir, leases, pool, m.opts)
	if err != nil {
		return fmt.Errorf("lab: kea config: %w", err)
	}
	// keaConfig names the single-uplink lab's link; this upstream has its own.
	var doc map[string]any
	if err := json.Unmarshal(conf, &doc); err != nil {
		return fmt.Errorf("lab: kea config: %w", err)
	}
	if subnets, ok := Get(doc, "Dhcp6", "subnet6").([]any); ok && len(subnets) == 1 {
		if s, ok := subnets[0].(map[string]any); ok {
			s["subnet"] = u.Link.Masked().String()
		}
	}
	if conf, err = json.MarshalIndent(doc, "", "  "); err != nil {
		return fmt.Errorf("lab: kea config: %w", err)
	}
	path := filepath.Join(u.Dir, "kea-dhcp6.json")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if _, err := m.Exec(ctx, u.NS, "ip", "-6", "route", "replace", pool.String(),
		"via", EUI64LinkLocal(u.WANMAC).String(), "dev", UpstreamIface); err != nil {
		return err
	}
	env := []string{"KEA_PIDFILE_DIR=" + u.Dir, "KEA_LOCKFILE_DIR=" + u.Dir}
	p, err := m.startEnv(ctx, u.NS, fmt.Sprintf("kea-%s-%d", shortNS(u.NS), m.next()), env, "kea-dhcp6", "-c", path)
	if err != nil {
		return err
	}
	u.mu.Lock()
	u.kea, u.pool = p, pool
	u.mu.Unlock()
	return m.waitServing547(ctx, u.NS, p, "kea-dhcp6 in "+u.NS, "kea-dhcp6", 5)
}

// writeBCP38 installs (create) or updates the source filter of upstream i
// so that it accepts the current pool. Packets arriving on the router link
// pass when their source is link-local, unspecified (DAD), on the link's own
// /64, or in the pool; every other one is counted and dropped, whether it
// was addressed to the upstream (InternetAddr) or to be forwarded.
func (m *Multi) writeBCP38(ctx context.Context, i int, create bool) error {
	u := m.Upstreams[i]
	pool := u.Pool()
	var text string
	if create {
		text = fmt.Sprintf(`table ip6 %[1]s {
	counter dropped {}
	counter pings {}
	counter probes {}
	set pool {
		type ipv6_addr
		flags interval
		elements = { %[2]s }
	}
	chain prerouting {
		type filter hook prerouting priority -150; policy accept;
		iifname != %[3]q accept
		ip6 saddr { fe80::/10, ::/128, %[4]s } accept
		ip6 saddr != @pool counter name dropped drop
		icmpv6 type echo-request meta length %[5]d counter name pings
		ip6 daddr %[6]s icmpv6 type echo-request meta length != %[5]d counter name probes
	}
}
`, MultiBCP38Table, pool, UpstreamIface, u.Link.Masked(), 40+8+MultiPingSize, InternetAddr)
	} else {
		text = fmt.Sprintf("flush set ip6 %[1]s pool\nadd element ip6 %[1]s pool { %[2]s }\n", MultiBCP38Table, pool)
	}
	f := filepath.Join(u.Dir, fmt.Sprintf("bcp38-%d.nft", m.next()))
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	_, err := m.Exec(ctx, u.NS, "nft", "-f", f)
	return err
}

// RestartKea restarts upstream i's DHCPv6 server delegating from pool, for
// renumbering tests: the upstream routes pool to the router and its BCP 38
// filter accepts pool instead of the old one. With deleteLeases the lease
// file is removed first, so the server has forgotten the old binding.
func (m *Multi) RestartKea(ctx context.Context, i int, pool netip.Prefix, deleteLeases bool) error {
	u := m.Upstreams[i]
	u.mu.Lock()
	p := u.kea
	u.kea = nil
	u.mu.Unlock()
	if p != nil {
		if err := p.Stop(); err != nil {
			return err
		}
	}
	if deleteLeases {
		leases := filepath.Join(u.Dir, "kea-leases6.csv")
		for _, f := range []string{leases, leases + ".2"} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("lab: %w", err)
			}
		}
	}
	if err := m.startKeaOn(ctx, i, pool); err != nil {
		return err
	}
	return m.writeBCP38(ctx, i, false)
}

// MultiCounters are an upstream's BCP 38 counters.
type MultiCounters struct {
	Dropped uint64 // packets from the router with a source outside the pool
	Pings   uint64 // Multi.Ping echo requests that passed the filter
	Probes  uint64 // other echo requests to InternetAddr that passed: the daemon's probes
}

var multiPackets = regexp.MustCompile(`packets (\d+) bytes`)

// Counters reads upstream i's BCP 38 counters.
func (m *Multi) Counters(ctx context.Context, i int) (MultiCounters, error) {
	var c MultiCounters
	for _, x := range []struct {
		name string
		dst  *uint64
	}{{"dropped", &c.Dropped}, {"pings", &c.Pings}, {"probes", &c.Probes}} {
		out, err := m.Exec(ctx, m.Upstreams[i].NS, "nft", "list", "counter", "ip6", MultiBCP38Table, x.name)
		if err != nil {
			return c, err
		}
		sm := multiPackets.FindStringSubmatch(out)
		if sm == nil {
			return c, fmt.Errorf("lab: no packet count in %q", out)
		}
		if *x.dst, err = strconv.ParseUint(sm[1], 10, 64); err != nil {
			return c, fmt.Errorf("lab: %w", err)
		}
	}
	return c, nil
}

// Silence makes upstream i drop everything it receives (input and
// forward), with its link up: a dead ISP behind a live modem. Silence with
// false lifts it.
func (m *Multi) Silence(ctx context.Context, i int, silent bool) error {
	ns := m.Upstreams[i].NS
	if !silent {
		_, err := m.Exec(ctx, ns, "nft", "delete", "table", "ip6", multiSilentTable)
		return err
	}
	text := fmt.Sprintf(`table ip6 %s {
	chain input { type filter hook input priority -200; policy drop; }
	chain forward { type filter hook forward priority -200; policy drop; }
}
`, multiSilentTable)
	f := filepath.Join(m.Upstreams[i].Dir, fmt.Sprintf("silent-%d.nft", m.next()))
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	_, err := m.Exec(ctx, ns, "nft", "-f", f)
	return err
}

// SetWANLink sets the router's interface to upstream i down or up (`ip
// link set wanN down`): a pulled cable as the router sees it.
func (m *Multi) SetWANLink(ctx context.Context, i int, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	_, err := run(ctx, "ip", "-n", m.Router, "link", "set", m.Upstreams[i].WAN, state)
	return err
}

// Ping sends one echo request of MultiPingSize bytes from the host to
// InternetAddr, from a new ping process and so a new flow (its own ICMP
// identifier), and reports whether the answer came within timeout.
func (m *Multi) Ping(ctx context.Context, timeout time.Duration) bool {
	w := strconv.FormatFloat(timeout.Seconds(), 'f', 3, 64)
	_, err := m.Exec(ctx, m.Hosts[0], "ping", "-n", "-c", "1", "-s", strconv.Itoa(MultiPingSize), "-W", w, InternetAddr.String())
	return err == nil
}
