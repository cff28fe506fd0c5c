package dhcp6srv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Conn is the server's socket.
type Conn interface {
	ReadFrom(b []byte) (int, netip.AddrPort, error)
	WriteTo(b []byte, to netip.AddrPort) error
	Close() error
}

var _ Conn = (*udpConn)(nil)

// Ports and the multicast group of RFC 8415 §7.
const (
	serverPort = 547
)

// allServers is All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1).
var allServers = netip.MustParseAddr("ff02::1:2")

// Stats are the server's counters since it was created.
type Stats struct {
	Received, Replied, Dropped      uint64
	RateLimited, Malformed, Invalid uint64 // among Dropped
	NotForUs                        uint64 // among Dropped: Request/Renew/... for another server
	WriteErrors, SaveErrors         uint64
	Leases, Delegations             int
}

// Server binds a Handler to a socket, a clock and the lease file.
type Server struct {
	h     *Handler
	mu    sync.Mutex
	cfg   Config
	pdCh  chan []Delegation // latest delegations for the OnPD goroutine
	stats struct {
		received, replied, dropped, rateLimited, malformed, invalid, notForUs, writeErrors, saveErrors atomic.Uint64
	}
}

// NewServer returns a Server for cfg; Run serves it.
func NewServer(cfg Config) *Server {
	s := &Server{cfg: cfg.withDefaults(), pdCh: make(chan []Delegation, 1)}
	s.h = NewHandler(s.handlerConfig(cfg))
	return s
}

// handlerConfig routes the Handler's OnPD calls through the Server's own
// goroutine, so a slow callback never holds up replies.
func (s *Server) handlerConfig(cfg Config) Config {
	if cfg.OnPD != nil {
		cfg.OnPD = s.queuePD
	}
	return cfg
}

func (s *Server) queuePD(d []Delegation) {
	for {
		select {
		case s.pdCh <- d:
			return
		default:
		}
		select { // replace the unread older set with this one
		case <-s.pdCh:
		default:
		}
	}
}

// Handler is the protocol core the server runs (for status and tests).
func (s *Server) Handler() *Handler { return s.h }

// Update installs a new configuration (see Handler.Update).
func (s *Server) Update(cfg Config) {
	s.mu.Lock()
	if len(cfg.ServerDUID) == 0 {
		cfg.ServerDUID = s.cfg.ServerDUID
	}
	s.cfg = cfg.withDefaults()
	s.mu.Unlock()
	s.h.Update(s.handlerConfig(cfg))
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	now := s.config().Now()
	return Stats{
		Received: s.stats.received.Load(), Replied: s.stats.replied.Load(), Dropped: s.stats.dropped.Load(),
		RateLimited: s.stats.rateLimited.Load(), Malformed: s.stats.malformed.Load(), Invalid: s.stats.invalid.Load(),
		NotForUs: s.stats.notForUs.Load(), WriteErrors: s.stats.writeErrors.Load(), SaveErrors: s.stats.saveErrors.Load(),
		Leases: len(s.h.Leases()), Delegations: len(s.h.Delegations(now)),
	}
}

func (s *Server) config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// Run serves until ctx is cancelled (then it returns nil, after saving the
// leases). It restores the saved leases first.
func (s *Server) Run(ctx context.Context) error {
	cfg := s.config()
	log := cfg.Logger.With("iface", cfg.Interface)
	if len(cfg.ServerDUID) == 0 {
		duid, err := InterfaceDUID(cfg.Interface)
		if err != nil {
			return fmt.Errorf("dhcp6srv: server DUID: %w", err)
		}
		cfg.ServerDUID = duid
		s.mu.Lock()
		s.cfg.ServerDUID = duid
		s.mu.Unlock()
		s.h.Update(s.handlerConfig(cfg))
	}
	path := ""
	if cfg.StateDir != "" {
		path = LeasePath(cfg.StateDir, cfg.Interface)
		leases, err := LoadLeases(path)
		if err != nil {
			// A damaged file costs the clients a Rebind, not the service.
			log.Error("dhcp6srv: leases not restored", "err", err)
		}
		s.h.Restore(cfg.Now(), leases)
		if len(leases) > 0 {
			log.Info("dhcp6srv: leases restored", "count", len(s.h.Leases()))
		}
	}
	listen := cfg.Listen
	if listen == nil {
		listen = func(ctx context.Context) (Conn, error) { return ListenUDP(ctx, cfg.Interface) }
	}
	conn, err := listen(ctx)
	if err != nil {
		return fmt.Errorf("dhcp6srv: listening on %s: %w", cfg.Interface, err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	readErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		readErr <- s.serve(ctx, conn)
	}()
	go func() {
		defer wg.Done()
		s.notifyPD(ctx)
	}()

	saved := s.h.generation()
	var lastSave time.Time
	var lastCost time.Duration
	save := func(force bool) {
		if path == "" {
			return
		}
		g := s.h.generation()
		if g == saved {
			return
		}
		// A big table under a storm of changes: writing it must not eat
		// the CPU the replies need, so wait 20 times as long as the last
		// write took (at most 5 % of the time goes to saving).
		if !force && time.Since(lastSave) < 20*lastCost {
			return
		}
		start := time.Now()
		if err := SaveLeases(path, cfg.Interface, s.h.Leases()); err != nil {
			s.stats.saveErrors.Add(1)
			log.Error("dhcp6srv: saving leases", "err", err)
			return
		}
		lastSave, lastCost = time.Now(), time.Since(start)
		saved = g
	}
	saveTick := time.NewTicker(cfg.SaveDelay)
	defer saveTick.Stop()
	expire := time.NewTimer(0)
	defer expire.Stop()
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-readErr:
			runErr = fmt.Errorf("dhcp6srv: reading on %s: %w", cfg.Interface, err)
			break loop
		case <-saveTick.C:
			save(false)
		case <-expire.C:
			now := cfg.Now()
			next := s.h.Expire(now)
			// Wake at the next end, and at least every minute so a
			// jump of the wall clock is noticed.
			d := time.Minute
			if !next.IsZero() && next.Sub(now) < d {
				d = max(next.Sub(now), 10*time.Millisecond)
			}
			expire.Reset(d)
		}
	}
	conn.Close()
	wg.Wait()
	save(true)
	return runErr
}

// serve is the receive loop: one message in, at most one reply out.
func (s *Server) serve(ctx context.Context, conn Conn) error {
	buf := make([]byte, 65536)
	cfg := s.config()
	log := cfg.Logger.With("iface", cfg.Interface)
	for {
		n, from, err := conn.ReadFrom(buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			log.Warn("dhcp6srv: read", "err", err)
			continue
		}
		s.stats.received.Add(1)
		reply, err := s.h.Handle(s.clockNow(), buf[:n], from.Addr())
		if err != nil {
			s.countDrop(err)
			log.Debug("dhcp6srv: dropped", "from", from, "err", err)
			continue
		}
		if err := conn.WriteTo(reply, from); err != nil {
			s.stats.writeErrors.Add(1)
			log.Warn("dhcp6srv: sending reply", "to", from, "err", err)
			continue
		}
		s.stats.replied.Add(1)
	}
}

func (s *Server) clockNow() time.Time { return s.config().Now() }

func (s *Server) countDrop(err error) {
	s.stats.dropped.Add(1)
	switch {
	case errors.Is(err, ErrRateLimited):
		s.stats.rateLimited.Add(1)
	case errors.Is(err, ErrMalformed):
		s.stats.malformed.Add(1)
	case errors.Is(err, ErrNotForUs):
		s.stats.notForUs.Add(1)
	case errors.Is(err, ErrInvalid):
		s.stats.invalid.Add(1)
	}
}

// notifyPD calls the configured OnPD with the latest delegations.
func (s *Server) notifyPD(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-s.pdCh:
			if f := s.config().OnPD; f != nil {
				f(d)
			}
		}
	}
}

// InterfaceDUID is the DUID-LL (RFC 8415 §11.4) of the interface's MAC.
func InterfaceDUID(iface string) ([]byte, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	if len(ifi.HardwareAddr) == 0 {
		return nil, fmt.Errorf("%s has no hardware address", iface)
	}
	return append([]byte{0, serverDUIDTypeLL, 0, hardwareTypeEthernet}, ifi.HardwareAddr...), nil
}

// udpConn is the real socket.
type udpConn struct{ c *net.UDPConn }

func (u *udpConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	return u.c.ReadFromUDPAddrPort(b)
}

func (u *udpConn) WriteTo(b []byte, to netip.AddrPort) error {
	_, err := u.c.WriteToUDPAddrPort(b, to)
	return err
}

func (u *udpConn) Close() error { return u.c.Close() }

// ListenUDP opens UDP [::]:547 bound to iface (SO_BINDTODEVICE, so one
// server per LAN interface can share the port) and joined to ff02::1:2
// there. It runs in the caller's network namespace.
func ListenUDP(ctx context.Context, iface string) (Conn, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
				return
			}
			if serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, iface); serr != nil {
				return
			}
			// A burst of Solicits (every host after a power cut) should
			// queue, not drop: ask for 1 MiB; the kernel caps it at
			// net.core.rmem_max, which is fine too.
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(ctx, "udp6", fmt.Sprintf("[::]:%d", serverPort))
	if err != nil {
		return nil, err
	}
	p := ipv6.NewPacketConn(pc)
	if err := p.JoinGroup(ifi, &net.UDPAddr{IP: allServers.AsSlice()}); err != nil {
		pc.Close()
		return nil, fmt.Errorf("joining %s on %s: %w", allServers, iface, err)
	}
	return &udpConn{c: pc.(*net.UDPConn)}, nil
}
