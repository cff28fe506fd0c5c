package dhcp6pd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Config configures a Client.
type Config struct {
	Interface       string
	DUID            []byte
	IAID            uint32
	PrefixLength    int
	MaxPrefixLength int
	RapidCommit     bool
	ReleaseOnStop   bool
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
}

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
// ReleaseOnStop it sends one Release first.
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

	conn, err := c.listen(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer func() { conn.Close() }()
	seed := uint64(c.now().UnixNano())
	m := NewMachine(MachineConfig{
		DUID:            c.cfg.DUID,
		IAID:            c.cfg.IAID,
		PrefixLength:    c.cfg.PrefixLength,
		RapidCommit:     c.cfg.RapidCommit,
		MaxPrefixLength: c.cfg.MaxPrefixLength,
	}, rand.New(rand.NewPCG(seed, uint64(c.cfg.IAID)^0x76366564)))
	if c.cfg.Tune != nil {
		c.cfg.Tune(m)
	}

	packets := make(chan packet)
	readErr := make(chan error, 1)
	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	go c.read(readCtx, conn, packets, readErr)

	c.mu.Lock()
	standby, standbyLease := c.standby, c.standbyLease
	c.mu.Unlock()
	if standby {
		// An HA backup from the start: hold the lease, send nothing.
		if standbyLease == nil {
			standbyLease = saved
		}
		c.apply(m, conn, m.SetStandby(c.now(), true, standbyLease))
	} else {
		c.apply(m, conn, m.Start(c.now(), saved))
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Stop()
		if d := m.Deadline(); !d.IsZero() {
			timer.Reset(max(d.Sub(c.now()), 0))
		}
		var acts []Action
		select {
		case <-ctx.Done():
			c.stop(m, conn)
			return nil
		case p := <-packets:
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
		case err := <-readErr:
			// The socket died (e.g. the link-local went away with the
			// link): open a new one and carry on with the same machine.
			c.log.Warn("socket failed; reopening", "err", err)
			conn.Close()
			if conn, err = c.listen(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			go c.read(readCtx, conn, packets, readErr)
		}
		c.apply(m, conn, acts)
	}
}

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

func (c *Client) read(ctx context.Context, conn Conn, out chan<- packet, errc chan<- error) {
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, io.EOF) {
				select {
				case errc <- err:
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

// stop runs on cancellation: a Release when configured (never in standby,
// never without a lease), sent once without waiting for the Reply.
func (c *Client) stop(m *Machine, conn Conn) {
	if !c.cfg.ReleaseOnStop || m.State() == StateStandby || m.Lease() == nil {
		return
	}
	c.apply(m, conn, m.Release(c.now()))
}

// apply carries out the machine's actions: send, log, save, publish.
func (c *Client) apply(m *Machine, conn Conn, acts []Action) {
	changed, leaseChanged := false, false
	for _, a := range acts {
		if a.Send != nil {
			to := netip.AddrPortFrom(a.Send.To, ServerPort)
			if err := conn.WriteTo(a.Send.Msg, to); err != nil {
				c.log.Warn("sending failed", "type", typeName(a.Send.Type), "to", to.String(), "err", err)
			}
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
	if p, ok := lease.Chosen(c.cfg.PrefixLength); ok && leaseChanged {
		c.log.Info("lease changed", "state", string(s.State), "prefix", p.Prefix.String(),
			"valid_until", lease.ValidUntil().Format(time.RFC3339))
	} else if leaseChanged {
		c.log.Info("lease withdrawn", "state", string(s.State))
	}
	if c.cfg.Notify != nil {
		cp := s
		cp.Lease = s.Lease.Clone()
		c.cfg.Notify(cp)
	}
}

// String helpers for the status JSON.

// StateString is s as the status JSON shows it.
func (s State) String() string { return string(s) }

var _ fmt.Stringer = StateInit
