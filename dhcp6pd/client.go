package dhcp6pd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// Config configures a Client.
type Config struct {
	Interface    string
	DUID         []byte
	IAID         uint32
	PrefixLength int
	// MaxPrefixLength is ignored: every delegation of /64 or shorter is
	// accepted, and the daemon decides which LANs fit in it.
	//
	// Deprecated: leave it zero.
	MaxPrefixLength int
	RapidCommit     bool
	// RequestAddress asks for a WAN address (IA_NA) beside the prefix;
	// "" is AddressNever. The configuration's [wan] request_address.
	RequestAddress AddressMode
	ReleaseOnStop  bool
	// StopTimeout bounds how long a stop waits for the Release to be
	// confirmed (RFC 8415 §18.2.7 retransmits it up to REL_MAX_RC times);
	// zero means DefaultStopTimeout.
	StopTimeout time.Duration
	// StateDir holds the lease as <StateDir>/lease-<iface>-<iaid>.json;
	// empty keeps nothing on disk.
	StateDir string
	Logger   *slog.Logger
	// Notify is called from the client goroutine on every state or lease
	// change. It must not block.
	Notify func(Snapshot)
	// Listen opens the socket; nil means ListenUDP(ctx, Interface).
	Listen func(ctx context.Context) (Conn, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Tune may adjust the machine's RFC constants before it starts (tests,
	// labs).
	Tune func(*Machine)
}

// Client runs the PD machine on a socket. Create it with NewClient; all
// methods are safe for concurrent use.
type Client struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	wake chan struct{}

	mu      sync.Mutex
	pending []func(*Machine, time.Time) []Action
	snap    Snapshot
	// standby and standbyLease are the last SetStandby request, so that a
	// client told to be a backup before Run starts never sends a Solicit.
	standby      bool
	standbyLease *Lease
	// chosen is the prefix Chosen picked when the Snapshot was last
	// published (run goroutine only).
	chosen netip.Prefix
}

// DefaultStopTimeout is Config.StopTimeout's default: three Release
// transmissions at the RFC 8415 timing (0, ~1 s, ~3 s), well inside
// systemd's stop timeout.
const DefaultStopTimeout = 5 * time.Second

// NewClient returns a client; Run starts it.
func NewClient(cfg Config) *Client {
	c := &Client{cfg: cfg, log: cfg.Logger, now: cfg.Now, wake: make(chan struct{}, 1)}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c.log = c.log.With("iface", cfg.Interface)
	if c.now == nil {
		c.now = time.Now
	}
	c.snap = Snapshot{State: StateInit, DUID: slices.Clone(cfg.DUID)}
	return c
}

func (c *Client) String() string { return "dhcp6pd " + c.cfg.Interface }

// Snapshot returns the latest published state.
func (c *Client) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.snap
	s.Lease = s.Lease.Clone()
	s.Problems = slices.Clone(s.Problems)
	return s
}

func (c *Client) enqueue(f func(*Machine, time.Time) []Action) {
	c.mu.Lock()
	c.pending = append(c.pending, f)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Renew asks for a Renew now (a Solicit when there is no lease).
func (c *Client) Renew() { c.enqueue((*Machine).Renew) }

// Release gives the prefixes back.
func (c *Client) Release() { c.enqueue((*Machine).Release) }

// SetStandby enters (true) or leaves HA standby; lease, when not nil, is the
// lease synced from the active node.
func (c *Client) SetStandby(standby bool, lease *Lease) {
	lease = lease.Clone()
	c.mu.Lock()
	c.standby, c.standbyLease = standby, lease
	c.mu.Unlock()
	c.enqueue(func(m *Machine, now time.Time) []Action { return m.SetStandby(now, standby, lease) })
}

// LinkChanged reports the WAN link going down or up; up Rebinds (RFC 8415
// §18.2.12).
func (c *Client) LinkChanged(up bool) {
	if !up {
		return // nothing to send on a dead link; retransmissions carry on
	}
	c.enqueue((*Machine).LinkUp)
}

type packet struct {
	b    []byte
	from netip.Addr
}

// Run talks DHCPv6 until ctx ends. It returns nil on cancellation; with
// ReleaseOnStop it first Releases the lease, retransmitting until a Reply
// comes, REL_MAX_RC runs out or StopTimeout passes.
func (c *Client) Run(ctx context.Context) error {
	var saved *Lease
	if c.cfg.StateDir != "" {
		var err error
		saved, err = LoadLease(c.cfg.StateDir, c.cfg.Interface, c.cfg.IAID)
		if err != nil {
			c.log.Warn("ignoring saved lease", "err", err)
			saved = nil
		}
	}
	if saved != nil && saved.IAID == c.cfg.IAID && c.now().Before(saved.lastValid()) {
		// Publish the saved lease before the socket is up (DAD on the
		// link-local takes a second or two), so NAT and RA keep their
		// state across a restart instead of flapping.
		c.mu.Lock()
		c.snap.Lease = saved.Clone()
		c.snap.LastChange = c.now()
		s := c.snap
		c.mu.Unlock()
		if c.cfg.Notify != nil {
			s.Lease = s.Lease.Clone()
			c.cfg.Notify(s)
		}
	}

	seed := uint64(c.now().UnixNano())
	m := NewMachine(MachineConfig{
		DUID:           c.cfg.DUID,
		IAID:           c.cfg.IAID,
		PrefixLength:   c.cfg.PrefixLength,
		RapidCommit:    c.cfg.RapidCommit,
		RequestAddress: c.cfg.RequestAddress,
	}, rand.New(rand.NewPCG(seed, uint64(c.cfg.IAID)^0x76366564)))
	if c.cfg.Tune != nil {
		c.cfg.Tune(m)
	}

	s := &session{c: c, m: m, packets: make(chan packet), failed: make(chan readFailure, 1), opened: make(chan Conn)}
	defer s.close()
	s.opening = true
	go s.open(ctx)

	// Wait for the first socket (the link-local may still be doing DAD, or
	// the interface may not exist yet). The saved lease stays published
	// meanwhile, but not past its valid lifetime.
	var expiry <-chan time.Time
	if saved != nil && c.now().Before(saved.lastValid()) {
		t := time.NewTimer(saved.lastValid().Sub(c.now()))
		defer t.Stop()
		expiry = t.C
	}
	for s.conn == nil {
		select {
		case <-ctx.Done():
			return nil
		case conn := <-s.opened:
			s.use(ctx, conn)
		case <-expiry:
			saved = nil
			c.withdrawSaved()
		}
	}

	c.mu.Lock()
	standby, standbyLease := c.standby, c.standbyLease
	c.mu.Unlock()
	if standby {
		// An HA backup from the start: hold the lease, send nothing.
		if standbyLease == nil {
			standbyLease = saved
		}
		s.apply(m.SetStandby(c.now(), true, standbyLease))
	} else {
		s.apply(m.Start(c.now(), saved))
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Stop()
		d := m.Deadline()
		if ch := m.lease.NextChoiceChange(c.cfg.PrefixLength, c.now()); !ch.IsZero() && (d.IsZero() || ch.Before(d)) {
			// A prefix's lifetime runs out before the machine has
			// anything to do: wake up then to re-publish the choice.
			d = ch
		}
		if !d.IsZero() {
			timer.Reset(max(d.Sub(c.now()), 0))
		}
		var acts []Action
		select {
		case <-ctx.Done():
			s.stop()
			return nil
		case p := <-s.packets:
			acts = m.Receive(c.now(), p.b, p.from)
		case <-timer.C:
			acts = m.Timer(c.now())
		case <-c.wake:
			c.mu.Lock()
			fs := c.pending
			c.pending = nil
			c.mu.Unlock()
			for _, f := range fs {
				acts = append(acts, f(m, c.now())...)
			}
		case f := <-s.failed:
			if f.conn == s.conn {
				s.reopen(ctx, f.err)
			}
		case conn := <-s.opened:
			s.use(ctx, conn)
		}
		s.apply(acts)
		c.republishIfChoiceChanged(m)
		if s.broken != nil {
			s.reopen(ctx, s.broken)
		}
	}
}

// republishIfChoiceChanged publishes a fresh Snapshot when the prefix
// Chosen picks has changed since the last one although the lease has not:
// a lifetime ran out (the old prefix of a renumbering stopped being
// preferred or valid), and NAT and RA must move now, not at the next
// Renew.
func (c *Client) republishIfChoiceChanged(m *Machine) {
	lease := m.lease
	if lease == nil || m.state == StateStandby {
		return
	}
	p, _ := lease.Chosen(c.cfg.PrefixLength, c.now())
	if p.Prefix == c.chosen {
		return
	}
	c.log.Info("chosen prefix changed as a lifetime ran out", "from", c.chosen.String(), "to", p.Prefix.String())
	c.apply(m, nil, []Action{{LeaseChanged: true}})
}

// withdrawSaved publishes that the saved lease ran out before the client
// could even open its socket.
func (c *Client) withdrawSaved() {
	c.log.Warn("saved lease expired before the socket opened")
	if c.cfg.StateDir != "" {
		if err := RemoveLease(c.cfg.StateDir, c.cfg.Interface, c.cfg.IAID); err != nil {
			c.log.Error("lease store", "err", err)
		}
	}
	c.mu.Lock()
	c.snap.State, c.snap.Lease, c.snap.LastChange = StateExpired, nil, c.now()
	snap := c.snap
	c.mu.Unlock()
	if c.cfg.Notify != nil {
		c.cfg.Notify(snap)
	}
}

// session is one Run: the machine and the socket it currently talks
// through. The socket may be replaced (the interface was recreated, the
// link-local changed) while the machine and its timers carry on, so a lease
// still expires on time when the WAN is gone.
type session struct {
	c       *Client
	m       *Machine
	conn    Conn // nil while (re)opening: sends are dropped and retransmitted later
	packets chan packet
	failed  chan readFailure
	opened  chan Conn
	opening bool
	broken  error // set by apply when a send shows the socket is dead
	stopped context.CancelFunc
}

type readFailure struct {
	conn Conn
	err  error
}

// open opens a socket in the background and hands it to the run loop.
func (s *session) open(ctx context.Context) {
	conn, err := s.c.listen(ctx)
	if err != nil {
		return // ctx ended
	}
	select {
	case s.opened <- conn:
	case <-ctx.Done():
		conn.Close()
	}
}

func (s *session) use(ctx context.Context, conn Conn) {
	s.opening = false
	s.conn = conn
	// The reader outlives ctx: a Release on stop still wants its Reply.
	// s.close ends it.
	readCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopped = cancel
	go s.c.read(readCtx, conn, s.packets, s.failed)
}

func (s *session) reopen(ctx context.Context, err error) {
	s.broken = nil
	if s.opening {
		return
	}
	s.c.log.Warn("socket failed; reopening", "err", err)
	s.close()
	s.opening = true
	go s.open(ctx)
}

func (s *session) close() {
	if s.stopped != nil {
		s.stopped()
		s.stopped = nil
	}
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// stop runs on cancellation: a Release when configured (never in standby,
// never without a lease), retransmitted per RFC 8415 §18.2.7 until a Reply
// confirms it, REL_MAX_RC transmissions went out, or StopTimeout passed.
func (s *session) stop() {
	if !s.c.cfg.ReleaseOnStop || s.m.State() == StateStandby || s.m.Lease() == nil {
		return
	}
	s.apply(s.m.Release(s.c.now()))
	limit := s.c.cfg.StopTimeout
	if limit <= 0 {
		limit = DefaultStopTimeout
	}
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for s.conn != nil && s.m.ex != nil && s.m.ex.typ == dhcpv6.MessageTypeRelease {
		timer.Stop()
		if d := s.m.Deadline(); !d.IsZero() {
			timer.Reset(max(d.Sub(s.c.now()), 0))
		}
		select {
		case p := <-s.packets:
			s.apply(s.m.Receive(s.c.now(), p.b, p.from))
		case <-timer.C:
			s.apply(s.m.Timer(s.c.now()))
		case <-s.failed:
			return
		case <-deadline.C:
			s.c.log.Warn("stopping without a Reply to the Release", "waited", limit)
			return
		}
	}
}

// send writes one message. A unicast send that fails falls back to
// multicast, which every server accepts (RFC 8415 §18.2.10 UseMulticast
// spirit): our link-local source may not reach a far unicast address.
func (s *session) send(o *Outgoing) {
	if s.conn == nil {
		s.c.log.Debug("no socket; message dropped, retransmission will follow", "type", typeName(o.Type))
		return
	}
	to := netip.AddrPortFrom(o.To, ServerPort)
	err := s.conn.WriteTo(o.Msg, to)
	if err != nil && o.To != AllServers && !socketDead(err) {
		s.c.log.Warn("unicast send failed; using multicast", "type", typeName(o.Type), "to", to.String(), "err", err)
		to = netip.AddrPortFrom(AllServers, ServerPort)
		err = s.conn.WriteTo(o.Msg, to)
	}
	if err != nil {
		s.c.log.Warn("sending failed", "type", typeName(o.Type), "to", to.String(), "err", err)
		if socketDead(err) {
			s.broken = err
		}
	}
}

// socketDead tells errors that need a new socket (the device or its
// address is gone) from transient ones (link down, no buffer).
func socketDead(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ENODEV) ||
		errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EBADF)
}

func (s *session) apply(acts []Action) { s.c.apply(s.m, s.send, acts) }

// listen opens the socket, retrying transient failures with backoff.
func (c *Client) listen(ctx context.Context) (Conn, error) {
	listen := c.cfg.Listen
	if listen == nil {
		listen = func(ctx context.Context) (Conn, error) { return ListenUDP(ctx, c.cfg.Interface) }
	}
	backoff := time.Second
	for {
		conn, err := listen(ctx)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c.log.Warn("cannot open DHCPv6 socket; retrying", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (c *Client) read(ctx context.Context, conn Conn, out chan<- packet, errc chan<- readFailure) {
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, io.EOF) {
				select {
				case errc <- readFailure{conn, err}:
				default:
				}
			}
			return
		}
		if from.Port() != ServerPort {
			continue // not from a server or relay agent (RFC 8415 §7.2)
		}
		p := packet{b: slices.Clone(buf[:n]), from: from.Addr().WithZone("")}
		select {
		case out <- p:
		case <-ctx.Done():
			return
		}
	}
}

// apply carries out the machine's actions: send, log, save, publish.
func (c *Client) apply(m *Machine, send func(*Outgoing), acts []Action) {
	changed, leaseChanged := false, false
	for _, a := range acts {
		if a.Send != nil {
			send(a.Send)
		}
		if a.Info != "" {
			c.log.Info(a.Info, "state", string(m.State()))
		}
		if a.Problem != "" {
			c.log.Warn(a.Problem, "state", string(m.State()))
		}
		changed = changed || a.StateChanged || a.LeaseChanged
		leaseChanged = leaseChanged || a.LeaseChanged
	}
	if !changed {
		c.mu.Lock()
		c.snap.Problems = m.Problems()
		c.mu.Unlock()
		return
	}
	lease := m.Lease()
	s := Snapshot{
		State:      m.State(),
		Lease:      lease,
		DUID:       slices.Clone(c.cfg.DUID),
		Problems:   m.Problems(),
		LastChange: m.LastChange(),
	}
	c.mu.Lock()
	c.snap = s
	c.mu.Unlock()
	now := c.now()
	p, ok := lease.Chosen(c.cfg.PrefixLength, now)
	c.chosen = p.Prefix
	if ok && leaseChanged {
		c.log.Info("lease changed", "state", string(s.State), "prefix", p.Prefix.String(),
			"valid_until", lease.ValidUntil(now).Format(time.RFC3339))
	} else if leaseChanged {
		c.log.Info("lease withdrawn", "state", string(s.State))
	}
	if c.cfg.Notify != nil {
		cp := s
		cp.Lease = s.Lease.Clone()
		c.cfg.Notify(cp)
	}
	// Saved after the daemon heard of it: the NAT swap does not wait for two
	// fsyncs. A crash in between costs nothing: the restart Rebinds the
	// previous saved lease (or Solicits) and converges on the server's answer.
	if leaseChanged && c.cfg.StateDir != "" {
		var err error
		if lease != nil {
			err = SaveLease(c.cfg.StateDir, c.cfg.Interface, lease)
		} else {
			err = RemoveLease(c.cfg.StateDir, c.cfg.Interface, c.cfg.IAID)
		}
		if err != nil {
			c.log.Error("lease store", "err", err)
		}
	}
}

// String is s as the status JSON shows it.
func (s State) String() string { return string(s) }
