package testbed

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// EUI64LinkLocal returns the link-local address the kernel derives from a
// 48-bit MAC (RFC 4291 appendix A): ff:fe in the middle and the
// universal/local bit flipped, so 02:00:5e:00:01:33 gives
// fe80::5eff:fe00:133, not fe80::5e:ff:fe00:133. It returns the zero Addr for
// anything but a 6-byte MAC.
func EUI64LinkLocal(mac net.HardwareAddr) netip.Addr {
	if len(mac) != 6 {
		return netip.Addr{}
	}
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}

// Forever is the lifetime of an address that does not expire.
const Forever = time.Duration(1<<63 - 1)

// HostAddr is one IPv6 address of an interface as `ip -j -6 addr` shows it.
type HostAddr struct {
	Prefix     netip.Prefix // address with its prefix length
	Preferred  time.Duration
	Valid      time.Duration
	Tentative  bool
	Deprecated bool
	DADFailed  bool
	Dynamic    bool // learned from an RA (SLAAC)
}

// HostAddrs lists the addresses on eth0 of the LAN host namespace host that
// lie within the given prefix (all addresses when within is the zero value).
func (l *Lab) HostAddrs(ctx context.Context, host string, within netip.Prefix) ([]HostAddr, error) {
	return l.IfaceAddrs(ctx, host, HostIface, within)
}

// IfaceAddrs is HostAddrs for any interface in any namespace.
func (l *Lab) IfaceAddrs(ctx context.Context, ns, iface string, within netip.Prefix) ([]HostAddr, error) {
	out, err := l.Exec(ctx, ns, "ip", "-j", "-6", "addr", "show", "dev", iface)
	if err != nil {
		return nil, err
	}
	all, err := ParseIPAddrJSON([]byte(out))
	if err != nil {
		return nil, err
	}
	var res []HostAddr
	for _, a := range all {
		if !within.IsValid() || within.Contains(a.Prefix.Addr()) {
			res = append(res, a)
		}
	}
	return res, nil
}

// ParseIPAddrJSON parses the output of `ip -j -6 addr show`.
func ParseIPAddrJSON(data []byte) ([]HostAddr, error) {
	var links []struct {
		AddrInfo []struct {
			Family     string  `json:"family"`
			Local      string  `json:"local"`
			PrefixLen  int     `json:"prefixlen"`
			Valid      *uint64 `json:"valid_life_time"`
			Preferred  *uint64 `json:"preferred_life_time"`
			Tentative  bool    `json:"tentative"`
			Deprecated bool    `json:"deprecated"`
			DADFailed  bool    `json:"dadfailed"`
			Dynamic    bool    `json:"dynamic"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(data, &links); err != nil {
		return nil, fmt.Errorf("lab: ip -j addr: %w", err)
	}
	life := func(v *uint64) time.Duration {
		switch {
		case v == nil || *v >= 0xffffffff:
			return Forever
		default:
			return time.Duration(*v) * time.Second
		}
	}
	var res []HostAddr
	for _, link := range links {
		for _, ai := range link.AddrInfo {
			if ai.Family != "inet6" {
				continue
			}
			a, err := netip.ParseAddr(ai.Local)
			if err != nil {
				return nil, fmt.Errorf("lab: ip -j addr: %w", err)
			}
			p, err := a.Prefix(ai.PrefixLen)
			if err != nil {
				return nil, fmt.Errorf("lab: ip -j addr: %w", err)
			}
			res = append(res, HostAddr{
				Prefix:     netip.PrefixFrom(a, p.Bits()),
				Preferred:  life(ai.Preferred),
				Valid:      life(ai.Valid),
				Tentative:  ai.Tentative,
				Deprecated: ai.Deprecated,
				DADFailed:  ai.DADFailed,
				Dynamic:    ai.Dynamic,
			})
		}
	}
	return res, nil
}

// Packet is one packet from a capture.
type Packet struct {
	Time     time.Time
	Src, Dst netip.Addr
	Line     string // tcpdump's one-line summary
}

// Capture is a running tcpdump writing a pcap file into the lab directory.
type Capture struct {
	lab  *Lab
	proc *Proc
	file string
}

// Capture starts tcpdump on iface in namespace ns with a pcap filter
// expression (may be empty) and returns once it is listening.
func (l *Lab) Capture(ctx context.Context, ns, iface, filter string) (*Capture, error) {
	name := fmt.Sprintf("tcpdump-%s-%s-%d", shortNS(ns), iface, l.next())
	file := l.path(name + ".pcap")
	// -Z root: tcpdump otherwise drops to its own user and cannot write the
	// lab directory. --immediate-mode: without it TPACKET_V3 hands packets
	// over in blocks, and a capture stopped right after the traffic shows
	// "received by filter" but none captured. -U: write each packet at once.
	args := []string{"tcpdump", "-i", iface, "-n", "--immediate-mode", "-U", "-Z", "root", "-w", file}
	if filter != "" {
		args = append(args, filter)
	}
	p, err := l.Start(ctx, ns, name, args...)
	if err != nil {
		return nil, err
	}
	err = l.WaitFor(ctx, 5*time.Second, "tcpdump on "+iface+" to listen", func() (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("tcpdump exited: %s", lastLines(p.Log(), 3))
		}
		return strings.Contains(p.Log(), "listening on"), nil
	})
	if err != nil {
		_ = p.Kill()
		return nil, err
	}
	return &Capture{lab: l, proc: p, file: file}, nil
}

// File is the pcap file's path.
func (c *Capture) File() string { return c.file }

// Stop ends the capture and returns the packets it saw. It first lets the
// pcap file settle (no growth for 100 ms, at most 1 s), so packets sent just
// before are not lost to the SIGTERM.
func (c *Capture) Stop() ([]Packet, error) {
	last := int64(-1)
	_ = waitFor(context.Background(), time.Second, 100*time.Millisecond, "the capture to settle", func() (bool, error) {
		fi, err := os.Stat(c.file)
		if err != nil {
			return false, err
		}
		settled := fi.Size() == last
		last = fi.Size()
		return settled, nil
	})
	if err := c.proc.Stop(); err != nil {
		return nil, err
	}
	out, err := run(context.Background(), "tcpdump", "-r", c.file, "-n", "-tt")
	if err != nil {
		return nil, err
	}
	return ParseTcpdump(out), nil
}

// ParseTcpdump parses `tcpdump -n -tt` output lines of IPv6 packets; other
// lines are skipped.
func ParseTcpdump(out string) []Packet {
	var pkts []Packet
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if p, ok := parseTcpdumpLine(sc.Text()); ok {
			pkts = append(pkts, p)
		}
	}
	return pkts
}

func parseTcpdumpLine(line string) (Packet, bool) {
	f := strings.Fields(line)
	// 1700000000.123456 IP6 src > dst: ...
	if len(f) < 5 || f[1] != "IP6" || f[3] != ">" {
		return Packet{}, false
	}
	src, ok1 := tcpdumpAddr(f[2])
	dst, ok2 := tcpdumpAddr(strings.TrimSuffix(f[4], ":"))
	if !ok1 || !ok2 {
		return Packet{}, false
	}
	var t time.Time
	if sec, frac, ok := strings.Cut(f[0], "."); ok {
		s, err1 := strconv.ParseInt(sec, 10, 64)
		us, err2 := strconv.ParseInt(frac, 10, 64)
		if err1 == nil && err2 == nil && us >= 0 && us < 1e6 {
			t = time.Unix(s, us*1000)
		}
	}
	return Packet{Time: t, Src: src, Dst: dst, Line: line}, true
}

// tcpdumpAddr parses "2001:db8::1" or, for UDP/TCP, "2001:db8::1.547".
func tcpdumpAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if i := strings.LastIndexByte(s, '.'); i > 0 {
		if a, err := netip.ParseAddr(s[:i]); err == nil {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// shortNS drops the lab prefix from a namespace name for file names.
func shortNS(ns string) string {
	if i := strings.LastIndexByte(ns, '-'); i >= 0 {
		return ns[i+1:]
	}
	return ns
}

// HasNetmap reports whether an `nft list` output holds both NETMAP rules
// between internal and external: "snat ip6 prefix to <external>" and
// "dnat ip6 prefix to <internal>" (nft omits "ip6" in an ip6-family table).
func HasNetmap(ruleset string, internal, external netip.Prefix) bool {
	has := func(verb string, to netip.Prefix) bool {
		return strings.Contains(ruleset, verb+" ip6 prefix to "+to.String()) ||
			strings.Contains(ruleset, verb+" prefix to "+to.String())
	}
	return has("snat", external) && has("dnat", internal)
}

// WaitNetmap waits until the ruleset in namespace ns maps internal onto
// external (both NETMAP rules) and, when stale is valid, no longer mentions
// stale. It returns the last listing, for the caller's error messages and
// further checks.
func (l *Lab) WaitNetmap(ctx context.Context, ns string, internal, external, stale netip.Prefix, timeout time.Duration) (string, error) {
	what := "NETMAP rules for " + external.String()
	if stale.IsValid() {
		what += " and none for " + stale.String()
	}
	var out string
	err := l.WaitFor(ctx, timeout, what, func() (bool, error) {
		var err error
		out, err = l.Exec(ctx, ns, "nft", "list", "ruleset")
		ok := HasNetmap(out, internal, external) && (!stale.IsValid() || !strings.Contains(out, stale.String()))
		return ok, err
	})
	return out, err
}
