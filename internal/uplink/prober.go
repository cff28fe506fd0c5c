package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/v6edge/v6edge/internal/netif"
)

// Prober checks that an uplink carries traffic: once per interval it sends an ICMPv6 Echo
// Request to the check target through that uplink and reports each probe as answered or
// missed (a probe is missed when it is not answered within the timeout, see WithTimeout).
//
// Path: the socket is bound to the WAN interface (SO_BINDTODEVICE) and carries the
// uplink's mark (SO_MARK). Binding to the device alone is not enough: the router's own
// packets are routed by the policy rules too, and main's default route may point at
// another uplink; with the mark, the fwmark rule picks the uplink's table (Router), and the
// device binding makes the lookup fail rather than leave by another WAN when that table has
// no route.
//
// Source: whatever source returns, set per packet (IPV6_PKTINFO). The daemon passes the
// router's internal LAN address (e.g. fd00:aaaa:bbbb:cc01::1): on the way out nat's NETMAP
// maps it into the uplink's delegated prefix, which is exactly what the upstream's BCP 38
// filter accepts and routes back, and conntrack maps the answer back. That works whether
// or not the WAN got a global address of its own, needs no extra address, and tests the
// same path the LAN hosts' traffic takes (translation included). A WAN global address
// would work too where the upstream routes its WAN link, but proves less. An invalid
// source counts as a missed probe.
type Prober struct {
	iface    string
	target   netip.Addr
	source   func() netip.Addr
	mark     uint32
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger
	result   func(ok bool)

	ns    netns.NsHandle // where to open the socket; -1: the caller's namespace
	ready chan struct{}
	once  sync.Once
}

// NewProber returns a Prober of the uplink on iface; result is called from Run's goroutine
// once per probe.
func NewProber(iface string, target netip.Addr, source func() netip.Addr, mark uint32, interval time.Duration,
	log *slog.Logger, result func(ok bool)) *Prober {
	if interval <= 0 {
		interval = DefaultHealthConfig().Interval
	}
	return &Prober{iface: iface, target: target, source: source, mark: mark, interval: interval,
		timeout: interval / 2, log: log, result: result, ns: -1, ready: make(chan struct{})}
}

// WithTimeout sets how long a probe waits for its answer before it counts as missed
// (default: half the interval, at most the interval). A fault then shows as the third miss
// after 2.5 to 3.5 intervals with the default three misses, instead of 3 to 4 when a probe
// had until the next one to be answered. Half a second of round trip is plenty on any
// uplink worth using.
func (p *Prober) WithTimeout(d time.Duration) *Prober {
	if d > 0 && d <= p.interval {
		p.timeout = d
	}
	return p
}

// InNamespace makes Run open its socket in the network namespace ns (the lab's router).
func (p *Prober) InNamespace(ns netns.NsHandle) *Prober {
	p.ns = ns
	return p
}

// String names the task.
func (p *Prober) String() string { return "uplink probe " + p.iface + " → " + p.target.String() }

// Ready is closed once the first probe went out, or the first attempt to open the socket
// failed.
func (p *Prober) Ready() <-chan struct{} { return p.ready }

// listen opens the raw ICMPv6 socket, bound to the WAN and marked.
func (p *Prober) listen(ctx context.Context) (*net.IPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = unix.BindToDevice(int(fd), p.iface); serr != nil {
				serr = fmt.Errorf("SO_BINDTODEVICE %s: %w", p.iface, serr)
				return
			}
			if p.mark != 0 {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(p.mark)); serr != nil {
					serr = fmt.Errorf("SO_MARK %#x: %w", p.mark, serr)
				}
			}
		})
		return errors.Join(err, serr)
	}}
	var c net.PacketConn
	open := func() error {
		var err error
		c, err = lc.ListenPacket(ctx, "ip6:ipv6-icmp", "::")
		return err
	}
	var err error
	if p.ns >= 0 {
		err = netif.InNamespace(p.ns, open)
	} else {
		err = open()
	}
	if err != nil {
		return nil, fmt.Errorf("uplink: opening probe socket on %s: %w", p.iface, err)
	}
	return c.(*net.IPConn), nil
}

type echoReply struct{ id, seq uint16 }

// errReopen asks Run for a fresh socket: the WAN the socket was bound to is gone (the
// binding is by interface index, which a recreated interface does not get back).
var errReopen = errors.New("probe socket lost its interface")

// Run probes until ctx is done and returns nil then. A socket that cannot be opened (the
// WAN does not exist yet, or was recreated) is retried every interval, each attempt
// reported as a missed probe, so a missing uplink is unhealthy rather than fatal. Only a
// target that is not an IPv6 address is an error.
func (p *Prober) Run(ctx context.Context) error {
	if !p.target.Is6() {
		return fmt.Errorf("uplink: check target %v of %s is not an IPv6 address", p.target, p.iface)
	}
	defer p.once.Do(func() { close(p.ready) })
	logged := false
	for {
		conn, err := p.open(ctx)
		if err == nil {
			logged = false
			err = p.probe(ctx, conn)
			if err == nil {
				return nil
			}
		}
		if !logged {
			p.log.Warn("cannot probe uplink, retrying", "iface", p.iface, "err", err)
			logged = true
		}
		p.once.Do(func() { close(p.ready) })
		p.result(false)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.interval):
		}
	}
}

// open returns the socket, bound and marked (listen), receiving echo replies only.
func (p *Prober) open(ctx context.Context) (*ipv6.PacketConn, error) {
	conn, err := p.listen(ctx)
	if err != nil {
		return nil, err
	}
	pc := ipv6.NewPacketConn(conn)
	var filter ipv6.ICMPFilter
	filter.SetAll(true)
	filter.Accept(ipv6.ICMPTypeEchoReply)
	if err := pc.SetICMPFilter(&filter); err != nil {
		conn.Close()
		return nil, fmt.Errorf("uplink: filtering probe socket on %s: %w", p.iface, err)
	}
	return pc, nil
}

// probe sends a probe every interval through pc until ctx is done (nil) or the socket
// needs reopening (errReopen). It closes pc.
func (p *Prober) probe(ctx context.Context, pc *ipv6.PacketConn) error {
	replies := make(chan echoReply, 8)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.read(ctx, pc, replies)
	}()
	defer func() {
		pc.Close() // ends read
		wg.Wait()
	}()

	book := probeBook{id: uint16(rand.Uint32())}
	send := func() error {
		missed, seq := book.next()
		if missed {
			p.result(false)
		}
		src := p.source()
		if !src.Is6() {
			book.unsent()
			p.log.Debug("no probe source address", "iface", p.iface)
			p.result(false)
			return nil
		}
		cm := &ipv6.ControlMessage{Src: src.AsSlice()}
		_, err := pc.WriteTo(marshalEcho(book.id, seq), cm, &net.IPAddr{IP: p.target.AsSlice()})
		if err == nil {
			return nil
		}
		// ENETUNREACH (no route in the uplink's table) or ENETDOWN: the uplink cannot
		// carry the probe, which is a miss.
		book.unsent()
		p.log.Debug("probe not sent", "iface", p.iface, "err", err)
		if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
			return fmt.Errorf("uplink: probing through %s: %w: %w", p.iface, errReopen, err)
		}
		p.result(false)
		return nil
	}

	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	overdue := time.NewTimer(p.timeout)
	defer overdue.Stop()
	if err := send(); err != nil {
		return err
	}
	p.once.Do(func() { close(p.ready) })
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := send(); err != nil {
				return err
			}
			overdue.Reset(p.timeout)
		case <-overdue.C:
			if book.expire() {
				p.result(false)
			}
		case r := <-replies:
			if book.answer(r.id, r.seq) {
				p.result(true)
			}
		}
	}
}

// read passes the echo replies from the target to replies until the socket is closed.
func (p *Prober) read(ctx context.Context, pc *ipv6.PacketConn, replies chan<- echoReply) {
	buf := make([]byte, 1500)
	for {
		n, _, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				p.log.Warn("reading probe replies", "iface", p.iface, "err", err)
			}
			return
		}
		ip, ok := from.(*net.IPAddr)
		if !ok {
			continue
		}
		if a, ok := netip.AddrFromSlice(ip.IP); !ok || a.Unmap() != p.target {
			continue
		}
		id, seq, err := parseEchoReply(buf[:n])
		if err != nil {
			continue
		}
		select {
		case replies <- echoReply{id, seq}:
		case <-ctx.Done():
			return
		}
	}
}
