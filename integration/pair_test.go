package integration

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"

	"github.com/v6edge/v6edge/internal/nstest"
	"github.com/v6edge/v6edge/internal/testbed"
)

// Daemon-level HA tests: two real nodes (v6edge and v6edge, or v6edge and
// keepalived 2.2.7) in an HA lab (testbed.Options.Routers = 2), traffic from the
// LAN host through the pair, and the failover measured from the host's side.

const (
	// pairVRID and the addresses below are what pairConfig advertises; a
	// keepalived peer must list the same (cmd/v6edge/ha.go virtualAddrs:
	// the virtual link-local first, then each LAN's router address).
	pairVRID = 51
	// pairSharedMAC is ha.wan_mac: the master's WAN MAC, and the DUID-LL
	// Kea knows the pair by.
	pairSharedMAC = "02:00:5e:00:01:33"
	pairDUID      = "00:03:00:01:02:00:5e:00:01:33"
	// pairBackupPriority is node 2's priority in every v6edge pair here.
	pairBackupPriority = 100
)

var (
	pairVirtualLL = netip.MustParseAddr("fe80::1")
	pairRouterULA = netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::1/64")
	// pairOwnMAC is node 1's own WAN MAC. The lab gives router 1 the
	// shared MAC as its own; a real pair has two distinct MACs, and only
	// with them can a test see the shared one leave a node that stopped or
	// stepped down (both ports of the upstream bridge would carry it
	// otherwise).
	pairOwnMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x02, 0x01}
)

// pairMasterDown is RFC 5798 §6.1's Master_Down_Interval for a backup of
// the given priority: 3 × Master_Adver_Interval + Skew_Time.
func pairMasterDown(advert time.Duration, priority int) time.Duration {
	return 3*advert + pairSkew(advert, priority)
}

// pairSkew is Skew_Time = (256 - Priority) × Master_Adver_Interval / 256:
// how long a backup waits after a master's priority 0 advert.
func pairSkew(advert time.Duration, priority int) time.Duration {
	return time.Duration(256-priority) * advert / 256
}

// pairNewLab builds an HA lab (routers namespaces, one LAN host) and gives
// router 1 its own WAN MAC, distinct from the shared one. Everything is
// removed when the test ends.
func pairNewLab(t *testing.T, routers int) *testbed.Lab {
	t.Helper()
	ctx := t.Context()
	l := newLab(t, "v6pair", testbed.Options{Routers: routers})
	// Down, new MAC, up: the kernel drops the old EUI-64 link-local with
	// the link and derives a new one from the new MAC.
	rt := l.Routers[0]
	for _, args := range [][]string{
		{"link", "set", testbed.WANIface, "down"},
		{"link", "set", testbed.WANIface, "address", pairOwnMAC.String()},
		{"link", "set", testbed.WANIface, "up"},
	} {
		if _, err := l.Exec(ctx, rt, append([]string{"ip"}, args...)...); err != nil {
			t.Fatal(err)
		}
	}
	err := l.WaitFor(ctx, 10*time.Second, "router 1's new WAN link-local to pass DAD", func() (bool, error) {
		addrs, err := l.IfaceAddrs(ctx, rt, testbed.WANIface, netip.MustParsePrefix("fe80::/10"))
		if err != nil {
			return false, err
		}
		want := testbed.EUI64LinkLocal(pairOwnMAC)
		return len(addrs) == 1 && addrs[0].Prefix.Addr() == want && !addrs[0].Tentative, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// pairLab is a running v6edge pair with traffic flowing through node 1.
type pairLab struct {
	*testbed.Lab
	nodes    []*testbed.Daemon // node 1 (priority 150, master), node 2 (backup)
	advert   time.Duration
	deleg    netip.Prefix
	hostAddr netip.Addr // the host's SLAAC address in subnet1
	mapped   netip.Addr // hostAddr as the upstream sees it
}

// pairStart runs a v6edge pair with the given advert interval and waits
// until node 1 is master and bound, node 2 is backup holding the same
// lease, and the host reaches the internet through fe80::1.
func pairStart(t *testing.T, advert time.Duration) *pairLab {
	t.Helper()
	p := &pairLab{Lab: pairNewLab(t, 2), advert: advert}
	p.nodes = runNodes(t, p.Lab, func(prio int) string { return pairConfig(prio, advert) }, 150, pairBackupPriority)
	p.deleg = waitMasterBound(t, p.nodes)
	p.hostAddr = waitHostThroughPair(t, p.Lab)
	p.mapped = testbed.MapAddr(p.hostAddr, internal, p.deleg)
	return p
}

// killNode1 makes node 1 die as in a power cut: the daemon is killed and
// the box drops off both links (a killed process alone leaves fe80::1 and
// the shared MAC answering from its kernel).
func (p *pairLab) killNode1(t *testing.T) {
	t.Helper()
	if err := p.nodes[0].Kill(); err != nil {
		t.Fatal(err)
	}
	for _, ifc := range []string{testbed.WANIface, testbed.LANIface} {
		if _, err := p.Exec(t.Context(), p.Routers[0], "ip", "link", "set", ifc, "down"); err != nil {
			t.Fatal(err)
		}
	}
}

// waitNode2Master waits until node 2 reports master.
func (p *pairLab) waitNode2Master(t *testing.T, timeout time.Duration) {
	t.Helper()
	if _, err := p.nodes[1].WaitStatus(t.Context(), timeout, "node 2 master", func(doc map[string]any) bool {
		return testbed.GetString(doc, "ha", "role") == "master"
	}); err != nil {
		t.Fatal(err)
	}
}

// pairCheckOneKeaLease checks that Kea knows the pair as one client: its
// lease file (append-only CSV: a renewal adds a line) names exactly one
// delegated prefix, deleg, for the shared MAC's DUID-LL and no prefix for
// any other client.
func pairCheckOneKeaLease(t *testing.T, l *testbed.Lab, deleg netip.Prefix) {
	t.Helper()
	leases, err := l.KeaLeases()
	if err != nil {
		t.Fatal(err)
	}
	byDUID := map[string][]netip.Prefix{}
	for _, le := range leases {
		if le.Type != "IA_PD" || le.Valid == 0 {
			continue
		}
		if !slices.Contains(byDUID[le.DUID], le.Prefix) {
			byDUID[le.DUID] = append(byDUID[le.DUID], le.Prefix)
		}
	}
	want := map[string][]netip.Prefix{pairDUID: {deleg}}
	if fmt.Sprint(byDUID) != fmt.Sprint(want) {
		t.Errorf("Kea's PD leases by DUID = %v, want %v (one client, one prefix)", byDUID, want)
	}
}

// pairPinger sends ICMPv6 echo requests from a namespace at a fixed
// spacing and records when each reply came back.
type pairPinger struct {
	conn  *icmp.PacketConn
	dst   netip.Addr
	id    int
	every time.Duration

	mu   sync.Mutex
	sent []time.Time       // by sequence number
	got  map[int]time.Time // reply arrival by sequence number

	stop chan struct{}
	wg   sync.WaitGroup
}

// pairStartPinger starts pinging dst from ns every `every`.
func pairStartPinger(t *testing.T, ns string, dst netip.Addr, every time.Duration) *pairPinger {
	t.Helper()
	p := &pairPinger{dst: dst, id: os.Getpid() & 0xffff, every: every, got: map[int]time.Time{}, stop: make(chan struct{})}
	err := nstest.DoNamed(ns, func() error {
		var err error
		p.conn, err = icmp.ListenPacket("ip6:ipv6-icmp", "::")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Only echo replies reach the socket: RAs and NDP would crowd them.
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeEchoReply)
	if err := p.conn.IPv6PacketConn().SetICMPFilter(&f); err != nil {
		p.conn.Close()
		t.Fatal(err)
	}
	p.wg.Add(2)
	go p.receive()
	go p.send()
	t.Cleanup(func() { p.Stop() })
	return p
}

func (p *pairPinger) send() {
	defer p.wg.Done()
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	dst := &net.IPAddr{IP: p.dst.AsSlice()}
	for {
		p.mu.Lock()
		seq := len(p.sent)
		p.sent = append(p.sent, time.Now())
		p.mu.Unlock()
		msg := icmp.Message{Type: ipv6.ICMPTypeEchoRequest, Body: &icmp.Echo{ID: p.id, Seq: seq & 0xffff, Data: []byte("v6edge-pair")}}
		// The kernel fills in the ICMPv6 checksum on raw sockets.
		if b, err := msg.Marshal(nil); err == nil {
			_, _ = p.conn.WriteTo(b, dst)
		}
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}

func (p *pairPinger) receive() {
	defer p.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := p.conn.ReadFrom(buf)
		if err != nil {
			return // closed by Stop
		}
		at := time.Now()
		m, err := icmp.ParseMessage(ipv6.ICMPTypeEchoReply.Protocol(), buf[:n])
		if err != nil || m.Type != ipv6.ICMPTypeEchoReply {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		if !ok || e.ID != p.id || from.String() != p.dst.String() {
			continue
		}
		p.mu.Lock()
		// Sequence numbers wrap at 16 bits; the newest send with these low
		// bits is the one answered (at 10 ms that is 10 minutes apart).
		seq := e.Seq
		for seq+0x10000 < len(p.sent) {
			seq += 0x10000
		}
		if _, dup := p.got[seq]; !dup && seq < len(p.sent) {
			p.got[seq] = at
		}
		p.mu.Unlock()
	}
}

// Replies is the number of replies so far.
func (p *pairPinger) Replies() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got)
}

// RepliesSince is the number of replies that arrived after t.
func (p *pairPinger) RepliesSince(t time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, at := range p.got {
		if at.After(t) {
			n++
		}
	}
	return n
}

// Stop stops sending, waits a second for late replies and closes the
// socket. It is safe to call twice.
func (p *pairPinger) Stop() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	time.Sleep(time.Second) // replies in flight; bounded, not a wait for a condition
	p.conn.Close()
	p.wg.Wait()
}

// pairOutage is what the host saw of a failover.
type pairOutage struct {
	Sent, Lost int
	// Gap is the longest time between two consecutive replies: from the
	// last reply through the old master to the first through the new one.
	Gap time.Duration
	// GapStart is when the last reply before the gap arrived.
	GapStart time.Time
	// ViaOld and ViaNew count the replies node 1 and node 2 forwarded to
	// the host (by source MAC); Handover is the time from the last reply
	// through node 1 to the first through node 2, negative when both
	// forwarded for a while.
	ViaOld, ViaNew int
	Handover       time.Duration
}

func (o pairOutage) String() string {
	return fmt.Sprintf("%d of %d echo replies lost, longest gap between replies %v; %d replies via node 1, %d via node 2, last via node 1 to first via node 2 %v",
		o.Lost, o.Sent, o.Gap.Round(time.Millisecond), o.ViaOld, o.ViaNew, o.Handover.Round(time.Millisecond))
}

// Outage sums up a stopped pinger.
func (p *pairPinger) Outage() pairOutage {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := pairOutage{Sent: len(p.sent), Lost: len(p.sent) - len(p.got)}
	var arrivals []time.Time
	for _, at := range p.got {
		arrivals = append(arrivals, at)
	}
	slices.SortFunc(arrivals, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(arrivals); i++ {
		if g := arrivals[i].Sub(arrivals[i-1]); g > o.Gap {
			o.Gap, o.GapStart = g, arrivals[i-1]
		}
	}
	return o
}

// pairMeasure is measureFailover in p, with 20 s for traffic to come back.
func (p *pairLab) pairMeasure(t *testing.T, failover func()) pairOutage {
	t.Helper()
	return measureFailover(t, p.Lab, 20*time.Second, failover)
}

// measureFailover pings the internet from the host of the HA lab l at
// 10 ms spacing, runs failover once 50 replies have come back, waits (up
// to recover) until 100 replies came back after it returned, and returns
// what the host saw. A capture on the host tells by the replies' source
// MAC which node forwarded each.
func measureFailover(t *testing.T, l *testbed.Lab, recover time.Duration, failover func()) pairOutage {
	t.Helper()
	ctx := t.Context()
	var macs []string
	for _, rt := range l.Routers {
		out, err := l.Exec(ctx, rt, "cat", "/sys/class/net/"+testbed.LANIface+"/address")
		if err != nil {
			t.Fatal(err)
		}
		macs = append(macs, strings.TrimSpace(out))
	}
	c, err := l.Capture(ctx, l.Hosts[0], testbed.HostIface, "icmp6 and ip6[40] == 129")
	if err != nil {
		t.Fatal(err)
	}
	pg := pairStartPinger(t, l.Hosts[0], testbed.InternetAddr, 10*time.Millisecond)
	if err := l.WaitFor(ctx, 10*time.Second, "50 echo replies before the failover", func() (bool, error) {
		return pg.Replies() >= 50, nil
	}); err != nil {
		t.Fatal(err)
	}
	failover()
	// Counted from when failover returned: a stopped node 1 has exited by
	// then, so these replies all come through node 2.
	after := time.Now()
	if err := l.WaitFor(ctx, recover, "100 echo replies through node 2", func() (bool, error) {
		return pg.RepliesSince(after) >= 100, nil
	}); err != nil {
		pg.Stop()
		_, _ = c.Stop()
		t.Fatalf("%v (%v)", err, pg.Outage())
	}
	pg.Stop()
	o := pg.Outage()
	if _, err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, "tcpdump", "-r", c.File(), "-e", "-n", "-tt").Output()
	if err != nil {
		t.Fatalf("reading the capture: %v", err)
	}
	o.pairViaMACs(string(out), macs[0], macs[1])
	return o
}

// pairViaMACs fills in ViaOld, ViaNew and Handover from `tcpdump -e -n
// -tt` lines ("<time> <src MAC> > <dst MAC>, ...").
func (o *pairOutage) pairViaMACs(tcpdump, oldMAC, newMAC string) {
	var lastOld, firstNew time.Time
	for _, line := range strings.Split(tcpdump, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		sec, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		switch f[1] {
		case oldMAC:
			o.ViaOld++
			lastOld = at
		case newMAC:
			o.ViaNew++
			if firstNew.IsZero() {
				firstNew = at
			}
		}
	}
	if !lastOld.IsZero() && !firstNew.IsZero() {
		o.Handover = firstNew.Sub(lastOld)
	}
}

// TestPairTCPStreamSurvivesNodeDeath: a TCP stream from the LAN host to the
// internet, translated by node 1, carries on through node 2 after node 1
// dies, without losing or reordering a byte, from the same mapped source.
func TestPairTCPStreamSurvivesNodeDeath(t *testing.T) {
	parallel(t)
	ctx := t.Context()
	p := pairStart(t, 500*time.Millisecond)

	srv := pairStartCounterServer(t, p.Upstream)
	cli := pairStartCounterClient(t, p.Hosts[0], srv.addr, 2*time.Millisecond)
	if err := p.WaitFor(ctx, 10*time.Second, "200 counters at the server", func() (bool, error) {
		return srv.received() >= 200, srv.failed()
	}); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	p.killNode1(t)
	p.waitNode2Master(t, 15*time.Second)
	// Everything written up to a second after node 2 took over must
	// arrive: TCP retransmits what node 1 took down with it.
	time.Sleep(time.Second) // lets the client write across the takeover; bounded
	mark := cli.written()
	if err := p.WaitFor(ctx, 20*time.Second, fmt.Sprintf("counter %d at the server", mark), func() (bool, error) {
		return srv.received() >= mark, srv.failed()
	}); err != nil {
		t.Fatalf("%v (client wrote %d, error %v)", err, cli.written(), cli.err())
	}
	t.Logf("the stream carried on through node 2: counter %d arrived %v after node 1 died; the server's longest silence was %v",
		mark, time.Since(killed).Round(time.Millisecond), srv.longestGap().Round(time.Millisecond))
	total := cli.finish(t)
	if err := srv.wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}

	t.Run("every counter the host sent arrived once and in order", func(t *testing.T) {
		if got := srv.received(); got != total {
			t.Errorf("server received %d counters, the client wrote %d", got, total)
		}
	})
	t.Run("the server saw the host's address mapped into the delegated prefix, before and after", func(t *testing.T) {
		if got := srv.peer(0); got != p.mapped {
			t.Errorf("stream source %s, want %s", got, p.mapped)
		}
		// A new connection after the failover leaves from the same address.
		cli2 := pairStartCounterClient(t, p.Hosts[0], srv.addr, time.Millisecond)
		if err := p.WaitFor(ctx, 5*time.Second, "a second stream at the server", func() (bool, error) {
			return srv.conns() >= 2, nil
		}); err != nil {
			t.Fatal(err)
		}
		cli2.finish(t)
		if got := srv.peer(1); got != p.mapped {
			t.Errorf("new stream source %s, want %s", got, p.mapped)
		}
	})
	t.Run("node 2 is master with the same delegated prefix", func(t *testing.T) {
		doc, _, err := p.nodes[1].Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r, pf := testbed.GetString(doc, "ha", "role"), testbed.GetString(doc, "wan", "prefix"); r != "master" || pf != p.deleg.String() {
			t.Errorf("node 2: role %s prefix %s, want master %s", r, pf, p.deleg)
		}
	})
	t.Run("kea knows the pair as one client with one prefix after node 2 renewed it", func(t *testing.T) {
		// Bound, with a Reply from Kea: node 2's own Renew or Rebind (as
		// backup it sent nothing) came back.
		doc, err := p.nodes[1].WaitStatus(ctx, 15*time.Second, "node 2 bound by a Reply of its own", func(doc map[string]any) bool {
			reply, _ := testbed.Get(doc, "wan", "messages", "received:REPLY").(float64)
			return testbed.GetString(doc, "wan", "state") == "bound" && reply > 0
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("node 2's DHCPv6 messages: %v", testbed.Get(doc, "wan", "messages"))
		pairCheckOneKeaLease(t, p.Lab, p.deleg)
	})
}

// pairCounterServer accepts TCP streams of 8-byte big-endian counters
// (0, 1, 2, ...) in a namespace and checks each stream's order.
type pairCounterServer struct {
	ln   net.Listener
	addr netip.AddrPort

	mu    sync.Mutex
	peers []netip.Addr
	count []uint64 // counters received per connection, in order
	bad   error
	// last and gap: when the first stream's latest counter arrived, and the
	// longest silence between two of its counters.
	last, gap time.Duration
	start     time.Time
	done      chan struct{} // closed when the first stream ended
}

func pairStartCounterServer(t *testing.T, ns string) *pairCounterServer {
	t.Helper()
	s := &pairCounterServer{done: make(chan struct{}), start: time.Now()}
	err := nstest.DoNamed(ns, func() error {
		var err error
		s.ln, err = net.Listen("tcp6", net.JoinHostPort(testbed.InternetAddr.String(), "0"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s.addr = netip.MustParseAddrPort(s.ln.Addr().String())
	t.Cleanup(func() { s.ln.Close() })
	go s.serve()
	return s
}

func (s *pairCounterServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		i := len(s.peers)
		s.peers = append(s.peers, netip.MustParseAddrPort(c.RemoteAddr().String()).Addr())
		s.count = append(s.count, 0)
		s.mu.Unlock()
		go s.read(i, c)
	}
}

func (s *pairCounterServer) read(i int, c net.Conn) {
	defer c.Close()
	var b [8]byte
	for {
		_, err := io.ReadFull(c, b[:])
		s.mu.Lock()
		if err != nil {
			if !errors.Is(err, io.EOF) && s.bad == nil {
				s.bad = fmt.Errorf("stream %d after %d counters: %w", i, s.count[i], err)
			}
			s.mu.Unlock()
			if i == 0 {
				close(s.done)
			}
			return
		}
		if v := binary.BigEndian.Uint64(b[:]); v != s.count[i] && s.bad == nil {
			s.bad = fmt.Errorf("stream %d: counter %d arrived where %d was due", i, v, s.count[i])
		}
		s.count[i]++
		if i == 0 {
			now := time.Since(s.start)
			if s.count[0] > 1 && now-s.last > s.gap {
				s.gap = now - s.last
			}
			s.last = now
		}
		s.mu.Unlock()
	}
}

// received is the number of counters of the first stream so far.
func (s *pairCounterServer) received() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.count) == 0 {
		return 0
	}
	return s.count[0]
}

// longestGap is the longest silence within the first stream.
func (s *pairCounterServer) longestGap() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gap
}

func (s *pairCounterServer) conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.peers)
}

func (s *pairCounterServer) peer(i int) netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= len(s.peers) {
		return netip.Addr{}
	}
	return s.peers[i]
}

func (s *pairCounterServer) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bad
}

// wait waits for the first stream to end and returns any error seen.
func (s *pairCounterServer) wait(timeout time.Duration) error {
	select {
	case <-s.done:
		return s.failed()
	case <-time.After(timeout):
		return fmt.Errorf("the server's stream did not end within %v", timeout)
	}
}

// pairCounterClient writes counters to a server every `every`.
type pairCounterClient struct {
	conn *net.TCPConn
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	n     uint64
	werr  error
	ended bool
}

func pairStartCounterClient(t *testing.T, ns string, to netip.AddrPort, every time.Duration) *pairCounterClient {
	t.Helper()
	c := &pairCounterClient{stop: make(chan struct{}), done: make(chan struct{})}
	err := nstest.DoNamed(ns, func() error {
		conn, err := net.DialTimeout("tcp6", to.String(), 5*time.Second)
		if err == nil {
			c.conn = conn.(*net.TCPConn)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.halt()
		c.conn.Close()
	})
	go c.write(every)
	return c
}

func (c *pairCounterClient) write(every time.Duration) {
	defer close(c.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var b [8]byte
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		c.mu.Lock()
		binary.BigEndian.PutUint64(b[:], c.n)
		c.mu.Unlock()
		// A write only blocks when the socket buffer is full, which 4 kB/s
		// across a few seconds' outage does not do.
		if _, err := c.conn.Write(b[:]); err != nil {
			c.mu.Lock()
			c.werr = err
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
}

func (c *pairCounterClient) written() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *pairCounterClient) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.werr
}

func (c *pairCounterClient) halt() {
	c.mu.Lock()
	ended := c.ended
	c.ended = true
	c.mu.Unlock()
	if !ended {
		close(c.stop)
	}
	<-c.done
}

// finish stops writing, half-closes the stream (the server reads to EOF)
// and returns the number of counters written.
func (c *pairCounterClient) finish(t *testing.T) uint64 {
	t.Helper()
	c.halt()
	if err := c.err(); err != nil {
		t.Fatalf("client write: %v", err)
	}
	if err := c.conn.CloseWrite(); err != nil {
		t.Fatalf("client close: %v", err)
	}
	return c.written()
}

// pairIntervals are the advert intervals the failover times are measured
// at: the RFC default, the lab's steady choice, and the fastest common one.
var pairIntervals = []time.Duration{time.Second, 500 * time.Millisecond, 100 * time.Millisecond}

// TestPairGracefulStopHandsOver: SIGTERM to the master daemon makes it send
// a priority 0 advert (RFC 5798 §6.4.2), so the backup takes over after
// Skew_Time instead of Master_Down_Interval, while node 1 forwards on until
// then. The host pings at 10 ms spacing; the figures are logged for each
// advert interval.
func TestPairGracefulStopHandsOver(t *testing.T) {
	parallel(t)
	for _, advert := range pairIntervals {
		t.Run(fmt.Sprintf("at %v adverts the backup takes over soon after a priority 0 advert", advert), func(t *testing.T) {
			p := pairStart(t, advert)
			o := p.pairMeasure(t, func() {
				// SIGTERM, then SIGKILL only if it has not exited in 5 s.
				if err := p.nodes[0].Stop(); err != nil {
					t.Fatal(err)
				}
			})
			p.waitNode2Master(t, 5*time.Second)
			skew := pairSkew(advert, pairBackupPriority)
			t.Logf("graceful stop at %v adverts: %v (Skew_Time %v)", advert, o, skew)
			// RFC 5798 §6.4.2: after the priority 0 advert the backup takes
			// over after Skew_Time; node 1 keeps forwarding for one advert
			// interval more (make before break), so the host loses nothing.
			if o.Lost > 1 {
				t.Errorf("%d echo replies lost, want at most 1", o.Lost)
			}
			if o.ViaOld == 0 || o.ViaNew == 0 {
				t.Errorf("replies via node 1: %d, via node 2: %d; want both", o.ViaOld, o.ViaNew)
			}
			pairCheckStoppedNodeLetGo(t, p)
			pairCheckOneKeaLease(t, p.Lab, p.deleg)
		})
	}
}

// TestPairNodeDeathFailover: node 1 loses power; node 2 takes over after
// Master_Down_Interval. The host pings at 10 ms spacing.
func TestPairNodeDeathFailover(t *testing.T) {
	parallel(t)
	for _, advert := range pairIntervals {
		t.Run(fmt.Sprintf("at %v adverts the backup takes over within Master_Down_Interval", advert), func(t *testing.T) {
			p := pairStart(t, advert)
			o := p.pairMeasure(t, func() { p.killNode1(t) })
			p.waitNode2Master(t, 5*time.Second)
			mdi := pairMasterDown(advert, pairBackupPriority)
			t.Logf("node death at %v adverts: %v (Master_Down_Interval %v)", advert, o, mdi)
			// The gap starts at the last reply, which is at most one
			// advert interval after the last advert node 2 heard.
			if limit := mdi + 1500*time.Millisecond; o.Gap > limit {
				t.Errorf("longest gap %v, want at most Master_Down_Interval + 1.5s = %v", o.Gap, limit)
			}
			if o.ViaNew == 0 {
				t.Error("no reply came through node 2")
			}
			pairCheckOneKeaLease(t, p.Lab, p.deleg)
		})
	}
}

// pairCheckStoppedNodeLetGo checks that node 1, stopped, holds nothing of
// the virtual router: no floating LAN address (its kernel would answer
// neighbor solicitations for fe80::1 beside the new master), not the
// shared MAC, and no WAN address derived from it (the new master's SLAAC
// address would collide with it).
func pairCheckStoppedNodeLetGo(t *testing.T, p *pairLab) {
	t.Helper()
	ctx := t.Context()
	rt := p.Routers[0]
	lan, err := p.IfaceAddrs(ctx, rt, testbed.LANIface, netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range lan {
		if a.Prefix.Addr() == pairVirtualLL || a.Prefix.Addr() == pairRouterULA.Addr() {
			t.Errorf("stopped node 1 still holds %s on %s", a.Prefix, testbed.LANIface)
		}
	}
	mac, err := p.Exec(ctx, rt, "cat", "/sys/class/net/"+testbed.WANIface+"/address")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(mac) != pairOwnMAC.String() {
		t.Errorf("stopped node 1's WAN MAC is %s, want its own %s", strings.TrimSpace(mac), pairOwnMAC)
	}
	wan, err := p.IfaceAddrs(ctx, rt, testbed.WANIface, netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	sharedIID := testbed.EUI64LinkLocal(net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x01, 0x33}).As16()
	for _, a := range wan {
		b := a.Prefix.Addr().As16()
		if [8]byte(b[8:]) == [8]byte(sharedIID[8:]) {
			t.Errorf("stopped node 1 still holds %s on %s, derived from the shared MAC", a.Prefix, testbed.WANIface)
		}
	}
}

// pairKeepalivedConf is a keepalived 2.2.7 VRRPv3 instance that peers with
// pairConfig: same VRID and advert interval, and virtual_ipaddress listing
// exactly the addresses v6edge advertises, in its order.
func pairKeepalivedConf(priority int, advert time.Duration) string {
	return testbed.KeepalivedConf{
		RouterID: "pair-keepalived", VRID: pairVRID, Priority: priority, Advert: advert,
		VirtualIPs: []string{pairVirtualLL.String() + "/64", pairRouterULA.String()},
	}.String()
}

// pairKeepalived is a keepalived running in a router namespace with its
// config, pid files and log in the lab directory.
type pairKeepalived struct{ *testbed.Proc }

func pairStartKeepalived(t *testing.T, l *testbed.Lab, ns, name string, priority int, advert time.Duration) pairKeepalived {
	t.Helper()
	conf := filepath.Join(l.Dir, name+".conf")
	if err := os.WriteFile(conf, []byte(pairKeepalivedConf(priority, advert)), 0o644); err != nil {
		t.Fatal(err)
	}
	pid := func(s string) string { return filepath.Join(l.Dir, name+"-"+s+".pid") }
	// -n: stay in the foreground (the lab owns the process), -l -D: log
	// in detail to the console (the lab's log file).
	p, err := l.Start(t.Context(), ns, name, "keepalived", "-n", "-l", "-D", "-f", conf,
		"-p", pid("main"), "-r", pid("vrrp"), "-c", pid("check"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() {
			t.Logf("%s log (last lines):\n%s", name, lastLines(p.Log(), 30))
		}
	})
	return pairKeepalived{p}
}

// entered counts the log lines in which keepalived entered state (MASTER,
// BACKUP, FAULT).
func (k pairKeepalived) entered(state string) int {
	return strings.Count(k.Log(), "Entering "+state+" STATE")
}

// pairHolds polls d's status every 100 ms for d and fails the test if cond
// stops holding.
func pairHolds(t *testing.T, d *testbed.Daemon, dur time.Duration, what string, cond func(doc map[string]any) bool) {
	t.Helper()
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		doc, _, err := d.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !cond(doc) {
			t.Fatalf("%s stopped holding; status: role %s, ras_sent %v, transitions %v", what,
				testbed.GetString(doc, "ha", "role"), testbed.Get(doc, "lan", 0, "ras_sent"), testbed.Get(doc, "ha", "transitions"))
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func pairRAsSent(doc map[string]any) float64 {
	v, _ := testbed.Get(doc, "lan", 0, "ras_sent").(float64)
	return v
}

// pairWaitRAFrom waits until rdisc6 on the host gets an RA from src.
func pairWaitRAFrom(t *testing.T, l *testbed.Lab, src netip.Addr, timeout time.Duration) {
	t.Helper()
	ctx := t.Context()
	var out string
	err := l.WaitFor(ctx, timeout, "an RA from "+src.String()+" on the host", func() (bool, error) {
		var err error
		out, err = l.Exec(ctx, l.Hosts[0], "rdisc6", "-1", "-w", "500", testbed.HostIface)
		for _, ra := range testbed.ParseRdisc6(out) {
			if ra.From == src {
				return true, nil
			}
		}
		return false, err
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// pairCaptureRAs captures the RAs the host receives.
func pairCaptureRAs(t *testing.T, l *testbed.Lab) *testbed.Capture {
	t.Helper()
	c, err := l.Capture(t.Context(), l.Hosts[0], testbed.HostIface, "icmp6 and ip6[40] == 134")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPairKeepalivedPeer replaces node 1 with keepalived 2.2.7
// (vrrp_version 3): v6edge follows a higher-priority keepalived as backup
// and sends no RA, takes over when keepalived stops, and stays master when
// a lower-priority keepalived joins, which then reports BACKUP.
func TestPairKeepalivedPeer(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("needs keepalived")
	}
	t.Parallel()
	ctx := t.Context()
	const advert = 500 * time.Millisecond
	l := pairNewLab(t, 2)
	ka := pairStartKeepalived(t, l, l.Routers[0], "keepalived-high", 200, advert)
	if err := l.WaitFor(ctx, 15*time.Second, "keepalived (priority 200) to become master", func() (bool, error) {
		return ka.entered("MASTER") > 0, nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, lastLines(ka.Log(), 20))
	}
	d := runDaemonOn(t, l, l.Routers[1], pairConfig(pairBackupPriority, advert), 40)
	if _, err := d.WaitStatus(ctx, 10*time.Second, "v6edge serving as backup", func(doc map[string]any) bool {
		return testbed.GetString(doc, "ha", "role") == "backup"
	}); err != nil {
		t.Fatal(err)
	}

	t.Run("below a higher-priority keepalived v6edge stays backup and sends no RA", func(t *testing.T) {
		c := pairCaptureRAs(t, l)
		// Longer than v6edge's Master_Down_Interval (1.8 s): had it
		// ignored keepalived's adverts it would have taken over by now.
		pairHolds(t, d, 3*time.Second, "backup with no RA sent", func(doc map[string]any) bool {
			return testbed.GetString(doc, "ha", "role") == "backup" && pairRAsSent(doc) == 0
		})
		pkts, err := c.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if len(pkts) > 0 {
			t.Errorf("the host received %d RAs while keepalived was master, first: %s", len(pkts), pkts[0].Line)
		}
		if n := ka.entered("MASTER"); n != 1 {
			t.Errorf("keepalived entered MASTER %d times, want once", n)
		}
	})

	t.Run("when keepalived stops v6edge becomes master and the host hears RAs from fe80::1", func(t *testing.T) {
		stopped := time.Now()
		if err := ka.Stop(); err != nil {
			t.Fatal(err)
		}
		// keepalived resigns with a priority 0 advert: Skew_Time, not
		// Master_Down_Interval; slack for a loaded machine.
		limit := pairMasterDown(advert, pairBackupPriority) + 2*time.Second
		if _, err := d.WaitStatus(ctx, limit, "v6edge master", func(doc map[string]any) bool {
			return testbed.GetString(doc, "ha", "role") == "master"
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("v6edge master %v after keepalived was told to stop", time.Since(stopped).Round(time.Millisecond))
		pairWaitRAFrom(t, l, pairVirtualLL, 10*time.Second)
	})

	t.Run("a lower-priority keepalived joins as BACKUP and v6edge stays master", func(t *testing.T) {
		doc, _, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		transitions := testbed.Get(doc, "ha", "transitions")
		low := pairStartKeepalived(t, l, l.Routers[0], "keepalived-low", 50, advert)
		if err := l.WaitFor(ctx, 10*time.Second, "keepalived (priority 50) in BACKUP", func() (bool, error) {
			return low.entered("BACKUP") > 0, nil
		}); err != nil {
			t.Fatal(err)
		}
		// keepalived's own Master_Down_Interval at priority 50 is 1.9 s: a
		// keepalived that refused our adverts would be master by the end.
		pairHolds(t, d, 3*time.Second, "v6edge master without a transition", func(doc map[string]any) bool {
			return testbed.GetString(doc, "ha", "role") == "master" && testbed.Get(doc, "ha", "transitions") == transitions
		})
		for _, complaint := range []string{"invalid", "not present in MASTER advert", "mismatch"} {
			if strings.Contains(low.Log(), complaint) {
				t.Errorf("keepalived complains (%q) about v6edge's adverts:\n%s", complaint, lastLines(low.Log(), 20))
			}
		}
		if n := low.entered("MASTER"); n != 0 {
			t.Errorf("keepalived (priority 50) entered MASTER %d times while v6edge was master", n)
		}
		if out, _ := l.Exec(ctx, l.Routers[0], "ip", "-6", "addr", "show", "dev", testbed.LANIface); strings.Contains(out, pairVirtualLL.String()+"/") {
			t.Errorf("the keepalived node holds %s as backup:\n%s", pairVirtualLL, out)
		}
	})
}

// TestPairExternalRoles: with ha.mode = "external" the role comes from
// `v6edge ha master|backup`; master adds the floating addresses, takes the
// WAN MAC and sends RAs, backup undoes all three.
func TestPairExternalRoles(t *testing.T) {
	parallel(t)
	ctx := t.Context()
	l := pairNewLab(t, 1)
	d := runDaemon(t, l, pairExternalConfig(), 40)
	setRole := func(t *testing.T, role string) {
		t.Helper()
		// The role comes first: `v6edge ha ROLE -socket PATH`.
		out, err := l.Exec(ctx, d.NS, d.Bin, "ha", role, "-socket", d.Socket)
		if err != nil {
			t.Fatalf("v6edge ha %s: %v\n%s", role, err, out)
		}
	}
	lanHas := func(a netip.Addr) (bool, error) {
		addrs, err := l.IfaceAddrs(ctx, l.Router, testbed.LANIface, netip.PrefixFrom(a, 128))
		return len(addrs) > 0, err
	}
	wanMAC := func() (string, error) {
		out, err := l.Exec(ctx, l.Router, "cat", "/sys/class/net/"+testbed.WANIface+"/address")
		return strings.TrimSpace(out), err
	}
	sharedLL := testbed.EUI64LinkLocal(net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x01, 0x33})

	if _, err := d.WaitStatus(ctx, 10*time.Second, "v6edge serving as backup", func(doc map[string]any) bool {
		return testbed.GetString(doc, "ha", "role") == "backup"
	}); err != nil {
		t.Fatal(err)
	}
	t.Run("it starts as a silent backup", func(t *testing.T) {
		pairHolds(t, d, time.Second, "backup with no RA sent", func(doc map[string]any) bool {
			return testbed.GetString(doc, "ha", "role") == "backup" && pairRAsSent(doc) == 0
		})
		if has, err := lanHas(pairVirtualLL); has || err != nil {
			t.Errorf("lan0 holds %s as backup (%v)", pairVirtualLL, err)
		}
	})

	t.Run("v6edge ha master adds the floating addresses, takes the WAN MAC and sends RAs", func(t *testing.T) {
		setRole(t, "master")
		doc, err := d.WaitStatus(ctx, 30*time.Second, "master and bound", func(doc map[string]any) bool {
			return testbed.GetString(doc, "ha", "role") == "master" && testbed.GetString(doc, "wan", "state") == "bound"
		})
		if err != nil {
			t.Fatal(err)
		}
		deleg := netip.MustParsePrefix(testbed.GetString(doc, "wan", "prefix"))
		for _, a := range []netip.Addr{pairVirtualLL, pairRouterULA.Addr()} {
			if err := l.WaitFor(ctx, 5*time.Second, a.String()+" on lan0", func() (bool, error) { return lanHas(a) }); err != nil {
				t.Error(err)
			}
		}
		if mac, err := wanMAC(); mac != pairSharedMAC || err != nil {
			t.Errorf("wan0 MAC = %s (%v), want the shared %s", mac, err, pairSharedMAC)
		}
		pairWaitRAFrom(t, l, pairVirtualLL, 10*time.Second)
		host := hostSLAAC(t, l, l.Hosts[0], subnet1)
		want := testbed.MapAddr(host, internal, deleg)
		waitInternet(t, l, l.Hosts[0], 10*time.Second, "the host reaching the internet")
		for _, s := range pingUpstream(t, l, l.Hosts[0]) {
			if s != want {
				t.Errorf("upstream saw %s, want %s", s, want)
			}
		}
	})

	t.Run("v6edge ha backup stops RAs, drops the floating addresses and releases the WAN MAC", func(t *testing.T) {
		setRole(t, "backup")
		if _, err := d.WaitStatus(ctx, 5*time.Second, "backup", func(doc map[string]any) bool {
			return testbed.GetString(doc, "ha", "role") == "backup"
		}); err != nil {
			t.Fatal(err)
		}
		for _, a := range []netip.Addr{pairVirtualLL, pairRouterULA.Addr()} {
			if err := l.WaitFor(ctx, 5*time.Second, a.String()+" gone from lan0", func() (bool, error) {
				has, err := lanHas(a)
				return !has, err
			}); err != nil {
				t.Error(err)
			}
		}
		if err := l.WaitFor(ctx, 5*time.Second, "wan0 back on its own MAC without the shared link-local", func() (bool, error) {
			mac, err := wanMAC()
			if err != nil || mac != pairOwnMAC.String() {
				return false, err
			}
			addrs, err := l.IfaceAddrs(ctx, l.Router, testbed.WANIface, netip.PrefixFrom(sharedLL, 128))
			return len(addrs) == 0, err
		}); err != nil {
			t.Error(err)
		}
		doc, _, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sent := pairRAsSent(doc)
		c := pairCaptureRAs(t, l)
		pairHolds(t, d, 2*time.Second, "no further RA", func(doc map[string]any) bool {
			return pairRAsSent(doc) == sent
		})
		pkts, err := c.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if len(pkts) > 0 {
			t.Errorf("the host received %d RAs after `v6edge ha backup`, first: %s", len(pkts), pkts[0].Line)
		}
	})
}

func TestPairHelpers(t *testing.T) {
	t.Run("Master_Down_Interval and Skew_Time follow RFC 5798 §6.1", func(t *testing.T) {
		tests := []struct {
			advert     time.Duration
			priority   int
			skew, down time.Duration
		}{
			{100 * time.Millisecond, 100, 60937500 * time.Nanosecond, 360937500 * time.Nanosecond},
			{time.Second, 100, 609375 * time.Microsecond, 3609375 * time.Microsecond},
			{time.Second, 255, 3906250 * time.Nanosecond, 3003906250 * time.Nanosecond},
		}
		for _, tt := range tests {
			if got := pairSkew(tt.advert, tt.priority); got != tt.skew {
				t.Errorf("pairSkew(%v, %d) = %v, want %v", tt.advert, tt.priority, got, tt.skew)
			}
			if got := pairMasterDown(tt.advert, tt.priority); got != tt.down {
				t.Errorf("pairMasterDown(%v, %d) = %v, want %v", tt.advert, tt.priority, got, tt.down)
			}
		}
	})
	t.Run("replies are attributed to the node whose MAC sent them", func(t *testing.T) {
		const (
			oldMAC = "aa:00:00:00:00:01"
			newMAC = "aa:00:00:00:00:02"
		)
		line := func(sec, mac string) string {
			return sec + " " + mac + " > 02:00:00:00:00:09, ethertype IPv6 (0x86dd), length 118: 2001:db8:ffff::1 > fd00::2: ICMP6, echo reply, id 1, seq 1, length 64"
		}
		tests := []struct {
			name           string
			capture        string
			viaOld, viaNew int
			handover       time.Duration
		}{
			{"a clean switch counts both and measures last old to first new", strings.Join([]string{line("100.000", oldMAC), line("100.010", oldMAC), line("100.380", newMAC), line("100.390", newMAC)}, "\n"), 2, 2, 370 * time.Millisecond},
			{"an overlap gives a negative handover", strings.Join([]string{line("100.000", oldMAC), line("100.010", newMAC), line("100.020", oldMAC)}, "\n"), 2, 1, -10 * time.Millisecond},
			{"replies from the old node only give no handover", line("100.000", oldMAC), 1, 0, 0},
			{"lines that are not packets are skipped", "reading from file x, link-type EN10MB\n\nnot a line", 0, 0, 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var o pairOutage
				o.pairViaMACs(tt.capture, oldMAC, newMAC)
				if o.ViaOld != tt.viaOld || o.ViaNew != tt.viaNew {
					t.Errorf("via old %d new %d, want %d %d", o.ViaOld, o.ViaNew, tt.viaOld, tt.viaNew)
				}
				if d := o.Handover - tt.handover; d > time.Millisecond || d < -time.Millisecond {
					t.Errorf("handover %v, want %v", o.Handover, tt.handover)
				}
			})
		}
	})
}
