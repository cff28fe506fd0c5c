package nat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/v6edge/v6edge/internal/nstest"
)

// lab is lan-host ↔ router ↔ upstream, each in its own namespace.
type lab struct {
	host, host2, router, upstream nstest.Netns
	table                         *Table
}

const (
	hostA    = "fd00:aaaa:bbbb:cc01::10" // the LAN host
	hostB    = "fd00:aaaa:bbbb:cc01::11" // a second address of it, for hairpin on one link
	hostC    = "fd00:aaaa:bbbb:cc02::20" // a host on a second LAN
	routerUp = "2001:db8:ffff::1"
	upstream = "2001:db8:ffff::2"
)

// mapped returns addr (internal) translated into ext, as NETMAP does.
func mapped(t testing.TB, addr string, ext netip.Prefix) netip.Addr {
	t.Helper()
	a := netip.MustParseAddr(addr).As16()
	e := ext.Addr().As16()
	mask := prefixMask(ext.Bits())
	for i := range a {
		a[i] = e[i]&mask[i] | a[i]&^mask[i]
	}
	return netip.AddrFrom16(a)
}

func newLab(t *testing.T) *lab {
	t.Helper()
	nstest.RequireRoot(t, "nft", "conntrack")
	l := &lab{host: newNetns(t, "host"), host2: newNetns(t, "host2"), router: newNetns(t, "rtr"), upstream: newNetns(t, "up")}
	for _, ns := range []nstest.Netns{l.host, l.host2, l.router, l.upstream} {
		// Addresses are ours alone: skip Duplicate Address Detection so nothing is tentative.
		ns.NoDAD(t)
		ns.Run(t, "ip", "link", "set", "lo", "up")
	}
	l.router.Run(t, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	nstest.Veth(t, l.host, "h0", l.router, "lan0")
	nstest.Veth(t, l.host2, "h0", l.router, "lan1")
	nstest.Veth(t, l.router, "wan0", l.upstream, "u0")
	l.host.Run(t, "ip", "link", "set", "h0", "up")
	l.host.Run(t, "ip", "-6", "addr", "add", hostA+"/64", "dev", "h0", "nodad")
	l.host.Run(t, "ip", "-6", "addr", "add", hostB+"/64", "dev", "h0", "nodad")
	l.host.Run(t, "ip", "-6", "route", "add", "default", "via", "fd00:aaaa:bbbb:cc01::1")
	l.host2.Run(t, "ip", "link", "set", "h0", "up")
	l.host2.Run(t, "ip", "-6", "addr", "add", hostC+"/64", "dev", "h0", "nodad")
	l.host2.Run(t, "ip", "-6", "route", "add", "default", "via", "fd00:aaaa:bbbb:cc02::1")
	l.router.Run(t, "ip", "link", "set", "lan0", "up")
	l.router.Run(t, "ip", "link", "set", "lan1", "up")
	l.router.Run(t, "ip", "-6", "addr", "add", "fd00:aaaa:bbbb:cc02::1/64", "dev", "lan1", "nodad")
	l.router.Run(t, "ip", "link", "set", "wan0", "up")
	l.router.Run(t, "ip", "-6", "addr", "add", "fd00:aaaa:bbbb:cc01::1/64", "dev", "lan0", "nodad")
	l.router.Run(t, "ip", "-6", "addr", "add", routerUp+"/64", "dev", "wan0", "nodad")
	l.upstream.Run(t, "ip", "link", "set", "u0", "up")
	l.upstream.Run(t, "ip", "-6", "addr", "add", upstream+"/64", "dev", "u0", "nodad")
	// Every external prefix the tests use lies in 2001:db8::/32, delegated to the router.
	l.upstream.Run(t, "ip", "-6", "route", "add", "2001:db8::/32", "via", routerUp)
	l.table = nsTable(t, l.router)
	return l
}

func listenUDP(t testing.TB, ns nstest.Netns, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	nstest.In(t, ns, func() error {
		var err error
		c, err = net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(addr), 0)))
		if err != nil {
			t.Fatalf("listen udp in %s on %s: %v", ns, addr, err)
		}
		return nil
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends a datagram from `from` to dst, and returns the source the receiver saw and
// the source the answer came back from.
func exchange(t *testing.T, from, to *net.UDPConn, dst netip.Addr) (seen, answeredFrom netip.Addr) {
	t.Helper()
	port := to.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	if _, err := from.WriteToUDPAddrPort([]byte("ping"), netip.AddrPortFrom(dst, port)); err != nil {
		t.Fatalf("send to %v: %v", dst, err)
	}
	buf := make([]byte, 64)
	_ = to.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, src, err := to.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no datagram reached %v within 3 s: %v", dst, err)
	}
	if _, err := to.WriteToUDPAddrPort([]byte("pong"), src); err != nil {
		t.Fatalf("answer to %v: %v", src, err)
	}
	_ = from.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, back, err := from.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no answer from %v within 3 s: %v", src, err)
	}
	return src.Addr().Unmap(), back.Addr().Unmap()
}

func TestIntegration(t *testing.T) {
	l := newLab(t)
	ext := netip.MustParsePrefix("2001:db8:100::/56")
	r := Ruleset{Internal: internal, LANs: []string{"lan0", "lan1"}, Hairpin: true,
		Uplinks: []Uplink{{WAN: "wan0", External: ext}}}
	if err := l.table.Set(r); err != nil {
		t.Fatalf("Set: %v", err)
	}
	a := listenUDP(t, l.host, hostA)
	b := listenUDP(t, l.host, hostB)
	c := listenUDP(t, l.host2, hostC)
	up := listenUDP(t, l.upstream, upstream)

	t.Run("the upstream sees the host's source in the external prefix and answers it", func(t *testing.T) {
		seen, back := exchange(t, a, up, netip.MustParseAddr(upstream))
		if want := mapped(t, hostA, ext); seen != want {
			t.Errorf("upstream saw source %v, want %v", seen, want)
		}
		if back != netip.MustParseAddr(upstream) {
			t.Errorf("answer came from %v, want %v", back, upstream)
		}
	})

	t.Run("the upstream reaches the host at its mapped address", func(t *testing.T) {
		seen, back := exchange(t, up, a, mapped(t, hostA, ext))
		if seen != netip.MustParseAddr(upstream) {
			t.Errorf("host saw source %v, want %v", seen, upstream)
		}
		if want := mapped(t, hostA, ext); back != want {
			t.Errorf("answer came from %v, want %v", back, want)
		}
	})

	for _, dir := range []struct {
		name         string
		from, to     *net.UDPConn
		fromIP, toIP string
	}{
		{"A to B on the same link", a, b, hostA, hostB},
		{"B to A on the same link", b, a, hostB, hostA},
		{"A to C on another LAN", a, c, hostA, hostC},
		{"C to A from another LAN", c, a, hostC, hostA},
	} {
		t.Run("hairpin "+dir.name+" through the external address works both ways", func(t *testing.T) {
			seen, back := exchange(t, dir.from, dir.to, mapped(t, dir.toIP, ext))
			if want := mapped(t, dir.fromIP, ext); seen != want {
				t.Errorf("peer saw source %v, want the sender's external %v", seen, want)
			}
			if want := mapped(t, dir.toIP, ext); back != want {
				t.Errorf("answer came from %v, want the external address dialled, %v", back, want)
			}
		})
	}

	for _, s := range strategies {
		t.Run("renumbering 20 times under load ("+s.name+") leaks no internal source and leaves no old conntrack entry", func(t *testing.T) {
			l.table.strategy = s.s
			r = l.renumberUnderLoad(t, r)
		})
	}
	l.table.strategy = insertThenDelete

	t.Run("nft flush ruleset in the router is undone within 2 s", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- l.table.Watch(ctx, time.Second) }() // the daemon's interval
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Watch: %v", err)
			}
		}()
		before := l.table.Status().Restores
		want := listTable(t, l.router)
		l.router.Run(t, "nft", "flush", "ruleset")
		start := time.Now()
		for {
			if out, err := l.router.Try("nft", "list", "table", "ip6", DefaultName); err == nil && out == want {
				break
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("table not restored within 2 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("table restored %v after nft flush ruleset", time.Since(start).Round(time.Millisecond))
		if got := l.table.Status().Restores; got != before+1 {
			t.Errorf("Restores = %d, want %d", got, before+1)
		}
		seen, _ := exchange(t, a, up, netip.MustParseAddr(upstream))
		if !l.table.Status().External[0].Contains(seen) {
			t.Errorf("after the restore the upstream saw %v", seen)
		}
	})
}

// renumberUnderLoad sends a datagram to a fresh upstream port every millisecond, each a new
// connection the NAT rules must translate, while the external prefix changes 20 times. A raw
// socket in the upstream namespace sees the source of every UDP datagram that arrives.
func (l *lab) renumberUnderLoad(t *testing.T, r Ruleset) Ruleset {
	var raw *net.IPConn
	nstest.In(t, l.upstream, func() error {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			t.Fatalf("raw socket: %v", err)
		}
		f := os.NewFile(uintptr(fd), "raw-udp")
		pc, err := net.FilePacketConn(f)
		f.Close()
		if err != nil {
			t.Fatalf("raw socket: %v", err)
		}
		raw = pc.(*net.IPConn)
		return nil
	})
	defer raw.Close()
	var sender *net.UDPConn
	nstest.In(t, l.host, func() error {
		var err error
		sender, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.ParseIP(hostA)})
		if err != nil {
			t.Fatal(err)
		}
		return nil
	})
	defer sender.Close()

	var (
		received, leaked, foreign atomic.Int64
		firstLeak                 atomic.Value
		wg                        sync.WaitGroup
		seenMu                    sync.Mutex
		seenPrefixes              = map[netip.Prefix]int{}
	)
	stop := make(chan struct{})
	wg.Add(2)
	go func() { // capture
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			_ = raw.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			_, src, err := raw.ReadFromIP(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					select {
					case <-stop:
						return
					default:
						continue
					}
				}
				return
			}
			a, _ := netip.AddrFromSlice(src.IP)
			a = a.Unmap()
			received.Add(1)
			switch {
			case r.Internal.Contains(a):
				leaked.Add(1)
				firstLeak.CompareAndSwap(nil, a)
			case !netip.MustParsePrefix("2001:db8::/32").Contains(a):
				foreign.Add(1)
			default:
				p, _ := a.Prefix(r.Internal.Bits())
				seenMu.Lock()
				seenPrefixes[p]++
				seenMu.Unlock()
			}
		}
	}()
	var sent, sendErrs atomic.Int64
	go func() { // load
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			dst := netip.AddrPortFrom(netip.MustParseAddr(upstream), uint16(20000+i%40000))
			if _, err := sender.WriteToUDPAddrPort([]byte("load"), dst); err == nil {
				sent.Add(1)
			} else {
				sendErrs.Add(1)
			}
		}
	}()

	var olds []netip.Prefix
	var swapTimes, setTimes, cleanTimes []time.Duration
	begin := time.Now()
	cur := r
	base := int(r.Uplinks[0].External.Addr().As16()[4])<<8 | int(r.Uplinks[0].External.Addr().As16()[5])
	for i := base/0x100 + 1; i <= base/0x100+20; i++ {
		// Let traffic flow on each prefix: a few datagrams must arrive translated to it.
		waitFor(t, 3*time.Second, func() bool {
			seenMu.Lock()
			defer seenMu.Unlock()
			return seenPrefixes[cur.Uplinks[0].External] >= 5
		}, "5 datagrams from "+cur.Uplinks[0].External.String())
		olds = append(olds, cur.Uplinks[0].External)
		cur.Uplinks = []Uplink{{WAN: "wan0", External: netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x00::/56", i))}}
		start := time.Now()
		if err := l.table.Set(cur); err != nil {
			t.Errorf("swap %d: %v", i, err)
		}
		setTimes = append(setTimes, time.Since(start).Round(10*time.Microsecond))
		swapTimes = append(swapTimes, l.table.Status().LastSwapDuration)
		cleanTimes = append(cleanTimes, l.table.Status().LastCleanupDuration.Round(10*time.Microsecond))
	}
	waitFor(t, 3*time.Second, func() bool {
		seenMu.Lock()
		defer seenMu.Unlock()
		return seenPrefixes[cur.Uplinks[0].External] >= 5
	}, "5 datagrams from "+cur.Uplinks[0].External.String())
	close(stop)
	wg.Wait()

	t.Logf("in %v sent %d datagrams (%d send errors), upstream received %d from %d external prefixes",
		time.Since(begin).Round(time.Millisecond), sent.Load(), sendErrs.Load(), received.Load(), len(seenPrefixes))
	t.Logf("new mapping live after (batch 1): %v", swapTimes)
	t.Logf("deleting the old rules (batch 2): %v", cleanTimes)
	t.Logf("whole Set incl. deleting old rules and flushing conntrack: %v", setTimes)
	if len(seenPrefixes) < 21 {
		t.Errorf("traffic reached the upstream from %d prefixes, want all 21: %v", len(seenPrefixes), seenPrefixes)
	}
	if leaked.Load() != 0 {
		t.Errorf("%d datagrams left with an internal source (first %v)", leaked.Load(), firstLeak.Load())
	}
	if foreign.Load() != 0 {
		t.Errorf("%d datagrams had a source outside 2001:db8::/32", foreign.Load())
	}
	if received.Load() < sent.Load()/2 {
		t.Errorf("upstream received only %d of %d datagrams", received.Load(), sent.Load())
	}
	if l.table.Status().ConntrackFlushed == 0 {
		t.Error("no conntrack entry was flushed across 20 renumberings")
	}
	out := l.router.Run(t, "conntrack", "-L", "-f", "ipv6")
	if !strings.Contains(out, strings.TrimSuffix(cur.Uplinks[0].External.Addr().String(), "::")) {
		t.Errorf("conntrack holds no entry of the current prefix %v: the check below proves nothing:\n%s", cur.Uplinks[0].External, out)
	}
	for _, a := range regexp.MustCompile(`(?:src|dst)=([0-9a-f:]+)`).FindAllStringSubmatch(out, -1) {
		addr, err := netip.ParseAddr(a[1])
		if err != nil {
			continue
		}
		for _, old := range olds {
			if old.Contains(addr) {
				t.Errorf("conntrack still holds %v of old prefix %v", addr, old)
			}
		}
	}
	return cur
}

// waitFor polls cond every few milliseconds until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("gave up waiting %v for %s", timeout, what)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}
