package ha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// NodeConfig configures a Node.
type NodeConfig struct {
	// Interface is the link the adverts go to (the LAN).
	Interface string
	Config    Config
	Logger    *slog.Logger // nil: discard
	// OnRole is called from the Node's goroutine on every role change, after
	// the advert that goes with it has been sent. It must not block for
	// long: adverts wait while it runs. Run reports (RoleBackup,
	// ReasonShutdown) when it stops.
	OnRole func(role Role, reason string)
	// Listen opens the socket; nil means ListenFrom(Interface) with the
	// interface's own link-local (OwnLinkLocal, excluding Config.Addrs).
	Listen func() (Conn, error)
	// Announce sends unsolicited Neighbor Advertisements for the virtual
	// addresses; it runs right after OnRole(RoleMaster) returns and twice
	// more a second apart while master. nil means Announce(Interface, addrs);
	// a no-op disables it (when the caller announces by itself).
	Announce func(addrs []netip.Addr) error
	// Now is the clock the machine runs on; nil means time.Now. Run waits
	// with real timers, so a fake clock must move with real time (or run the
	// Node inside testing/synctest, which fakes both).
	Now func() time.Time
}

// Error kinds counted in Status.Errors.
const (
	ErrKindHopLimit     = "hop_limit"     // arrived with a hop limit other than 255: off link
	ErrKindTruncated    = "truncated"     // ErrTruncated
	ErrKindAddrCount    = "addr_count"    // ErrAddrCount
	ErrKindVersion      = "version"       // ErrVersion
	ErrKindType         = "type"          // ErrType
	ErrKindChecksum     = "checksum"      // ErrChecksum
	ErrKindVRID         = "vrid"          // for another virtual router: ignored
	ErrKindAddrMismatch = "addr_mismatch" // address list differs from ours (still obeyed, §7.1)
	ErrKindIntervalDiff = "interval"      // the master advertises another interval (learned, §6.4.2)
	ErrKindOwn          = "own"           // our own advert came back
	ErrKindAnnounce     = "announce"      // an unsolicited NA could not be sent
	ErrKindRead         = "read"
	ErrKindWrite        = "write"
)

// Status is a snapshot of a Node for the control socket and metrics.
type Status struct {
	Role     Role  `json:"role"`
	VRID     uint8 `json:"vrid"`
	Priority uint8 `json:"priority"`
	// Master is the primary address of the current master: the peer's while
	// backup, our own while master.
	Master              netip.Addr    `json:"master,omitzero"`
	MasterAdverInterval time.Duration `json:"master_advert_interval_ns"`
	LastTransition      time.Time     `json:"last_transition,omitzero"`
	Reason              string        `json:"reason,omitempty"`
	AdvertsSent         uint64        `json:"adverts_sent"`
	AdvertsReceived     uint64        `json:"adverts_received"`
	// LastAdvert is when the last valid advert for our VRID arrived.
	LastAdvert time.Time         `json:"last_advert,omitzero"`
	Errors     map[string]uint64 `json:"errors,omitempty"`
}

// Node runs one VRRP instance: it binds a Machine to a Conn and the clock.
type Node struct {
	cfg NodeConfig
	log *slog.Logger

	ready    chan struct{} // closed once the socket is open and the machine started
	priority chan uint8    // SetPriority requests for the Run loop

	mu     sync.Mutex
	status Status
	// lastMismatch remembers the last address list we complained about so
	// that a misconfigured peer is logged once, not once per advert.
	lastMismatch string

	// Unsolicited NAs still to send after becoming master, and when the
	// next is due. Only the Run goroutine touches these.
	announceLeft int
	announceAt   time.Time
	lastWriteErr string // the last advert send failure logged
}

// NewNode returns a Node; Run starts it.
func NewNode(cfg NodeConfig) *Node {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Listen == nil {
		ifname, virtual := cfg.Interface, slices.Clone(cfg.Config.Addrs)
		cfg.Listen = func() (Conn, error) {
			src, err := OwnLinkLocal(ifname, virtual...)
			if err != nil {
				return nil, err
			}
			return ListenFrom(ifname, src)
		}
	}
	if cfg.Announce == nil {
		ifname := cfg.Interface
		cfg.Announce = func(addrs []netip.Addr) error { return Announce(ifname, addrs) }
	}
	if cfg.OnRole == nil {
		cfg.OnRole = func(Role, string) {}
	}
	cfg.Config.Addrs = slices.Clone(cfg.Config.Addrs)
	return &Node{
		cfg:      cfg,
		log:      cfg.Logger.With("iface", cfg.Interface, "vrid", cfg.Config.VRID),
		ready:    make(chan struct{}),
		priority: make(chan uint8, 1),
		status: Status{
			Role:                RoleInitialize,
			VRID:                cfg.Config.VRID,
			Priority:            cfg.Config.Priority,
			MasterAdverInterval: cfg.Config.AdvertInterval,
			Errors:              map[string]uint64{},
		},
	}
}

// String names the task for logs.
func (n *Node) String() string { return "vrrp " + n.cfg.Interface }

// Ready is closed once Run has opened its socket and started the protocol.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// SetPriority changes the priority of the running instance, for tracking
// (e.g. lower it while the uplink is down so that the peer preempts). A
// master advertises the new priority at once. Only the latest request counts
// when several arrive before Run picks them up. Priority 0 is reserved for a
// master that stops (RFC 5798 §5.2.4) and refused.
func (n *Node) SetPriority(p uint8) error {
	if p == 0 {
		return errors.New("ha: priority 0 is reserved for a stopping master")
	}
	for {
		select {
		case n.priority <- p:
			return nil
		default:
		}
		select {
		case <-n.priority: // replace a request Run has not seen yet
		default:
		}
	}
}

// Status returns a snapshot; it is safe to call from any goroutine.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.status
	s.Errors = maps.Clone(s.Errors)
	return s
}

// received is one packet handed from the reader goroutine to Run.
type received struct {
	b        []byte
	src      netip.Addr
	hopLimit int
}

// Run opens the socket and runs the protocol until ctx is cancelled. On
// cancel it stops gracefully: a master sends a priority 0 advert so that the
// backup takes over after Skew_Time, and OnRole reports (RoleBackup,
// ReasonShutdown). It returns nil after a cancel, an error if the socket
// cannot be opened. While the interface has no usable link-local yet
// (ErrNoLinkLocal: DAD still running at boot) it keeps retrying.
func (n *Node) Run(ctx context.Context) error {
	if err := n.cfg.Config.Validate(); err != nil {
		return fmt.Errorf("ha: %s: %w", n.cfg.Interface, err)
	}
	conn, err := n.listen(ctx)
	if err != nil {
		return err
	}
	if conn == nil {
		return nil // cancelled while waiting for the link
	}
	cfg := n.cfg.Config
	if !cfg.Primary.IsValid() {
		cfg.Primary = conn.LocalAddr()
	}
	m := NewMachine(cfg, nil)

	pkts := make(chan received, 16)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		n.read(ctx, conn, pkts)
	}()
	// Closing the socket is what stops a blocked ReadFrom.
	defer func() { conn.Close(); <-readerDone }()

	n.log.Info("vrrp starting", "src", conn.LocalAddr(), "priority", cfg.Priority, "interval", cfg.AdvertInterval)
	n.apply(conn, m, m.Start(n.cfg.Now()))
	close(n.ready)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		dl := m.Deadline()
		if n.announceLeft > 0 && (dl.IsZero() || n.announceAt.Before(dl)) {
			dl = n.announceAt
		}
		if dl.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(max(dl.Sub(n.cfg.Now()), 0))
		}
		select {
		case <-ctx.Done():
			n.apply(conn, m, m.Shutdown(n.cfg.Now()))
			n.setRole(RoleBackup, ReasonShutdown, m)
			return nil
		case <-timer.C:
			now := n.cfg.Now()
			if n.announceLeft > 0 && !now.Before(n.announceAt) {
				n.announce(now)
			}
			n.apply(conn, m, m.Timer(now))
		case p := <-pkts:
			n.apply(conn, m, n.receive(conn, m, p))
		case p := <-n.priority:
			n.log.Info("vrrp priority changed", "from", m.Priority(), "to", p)
			n.apply(conn, m, m.SetPriority(n.cfg.Now(), p))
		}
	}
}

// listenRetry is how often Run retries a Listen that failed with
// ErrNoLinkLocal; DAD takes one to two seconds.
const listenRetry = 250 * time.Millisecond

// listen opens the socket, waiting for a usable link-local. It returns
// (nil, nil) when ctx is cancelled first.
func (n *Node) listen(ctx context.Context) (Conn, error) {
	for logged := false; ; {
		conn, err := n.cfg.Listen()
		if err == nil {
			return conn, nil
		}
		if !errors.Is(err, ErrNoLinkLocal) {
			return nil, fmt.Errorf("ha: listening on %s: %w", n.cfg.Interface, err)
		}
		if !logged {
			n.log.Info("vrrp waiting for a usable link-local", "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(listenRetry):
		}
	}
}

// read feeds received packets to pkts until the socket is closed.
func (n *Node) read(ctx context.Context, conn Conn, pkts chan<- received) {
	buf := make([]byte, 1500)
	lastErr := ""
	for {
		nb, src, hl, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			n.count(ErrKindRead)
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				n.log.Warn("vrrp read failed", "err", err)
			}
			// Back off a little so that a persistent error cannot spin.
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		p := received{b: append([]byte(nil), buf[:nb]...), src: src, hopLimit: hl}
		select {
		case pkts <- p:
		case <-ctx.Done():
			return
		}
	}
}

// receive validates one packet (RFC 5798 §7.1) and hands it to the machine.
func (n *Node) receive(conn Conn, m *Machine, p received) []Event {
	if p.hopLimit != HopLimit {
		n.count(ErrKindHopLimit)
		return nil
	}
	if p.src == conn.LocalAddr() {
		// Our own advert looped back (another socket on this host, or a
		// bridge reflecting it): never a peer.
		n.count(ErrKindOwn)
		return nil
	}
	a, err := ParseAdvert(p.b, p.src, Group)
	if err != nil {
		n.count(errKind(err))
		n.log.Debug("vrrp advert dropped", "src", p.src, "err", err)
		return nil
	}
	if a.VRID != n.cfg.Config.VRID {
		n.count(ErrKindVRID)
		return nil
	}
	now := n.cfg.Now()
	n.mu.Lock()
	n.status.AdvertsReceived++
	n.status.LastAdvert = now
	n.mu.Unlock()
	if !slices.Equal(a.Addrs, n.cfg.Config.Addrs) {
		// §7.1: log the misconfiguration but still obey the advert; the
		// priorities decide who is master whatever the addresses say.
		n.count(ErrKindAddrMismatch)
		if s := fmt.Sprint(a.Addrs); s != n.lastMismatch {
			n.lastMismatch = s
			n.log.Warn("vrrp peer advertises other virtual addresses", "src", p.src, "theirs", a.Addrs, "ours", n.cfg.Config.Addrs)
		}
	}
	if a.Priority != 0 && a.MaxAdvertInt != n.cfg.Config.AdvertInterval {
		n.count(ErrKindIntervalDiff)
	}
	return m.Receive(now, a, p.src)
}

// apply sends the adverts and reports the role changes of evs, in order.
func (n *Node) apply(conn Conn, m *Machine, evs []Event) {
	for _, ev := range evs {
		if ev.Send != nil {
			n.send(conn, ev.Send)
		}
		// Initialize is only reached on shutdown, which Run reports itself.
		if ev.RoleChanged && ev.Role != RoleInitialize {
			n.setRole(ev.Role, ev.Reason, m)
		}
		if ev.RoleChanged {
			n.announceLeft = 0
			if ev.Role == RoleMaster {
				n.announceLeft = announceCount
				n.announce(n.cfg.Now())
			}
		}
	}
	n.mu.Lock()
	n.status.Master = m.Master()
	n.status.Priority = m.Priority()
	n.status.MasterAdverInterval = m.MasterAdverInterval()
	n.mu.Unlock()
}

// announce sends one round of unsolicited NAs and schedules the next.
func (n *Node) announce(now time.Time) {
	n.announceLeft--
	n.announceAt = now.Add(announceGap)
	if err := n.cfg.Announce(n.cfg.Config.Addrs); err != nil {
		n.count(ErrKindAnnounce)
		n.log.Warn("vrrp unsolicited neighbor advertisement failed", "err", err)
	}
}

func (n *Node) send(conn Conn, a *Advert) {
	b, err := a.Marshal(conn.LocalAddr(), Group)
	if err == nil {
		err = conn.WriteTo(b)
	}
	if err != nil {
		n.count(ErrKindWrite)
		// A link that is down fails every advert: log when the failure
		// starts or changes, not ten times a second.
		if msg := err.Error(); msg != n.lastWriteErr {
			n.lastWriteErr = msg
			n.log.Warn("vrrp advert not sent", "err", err)
		}
		return
	}
	if n.lastWriteErr != "" {
		n.lastWriteErr = ""
		n.log.Info("vrrp adverts sent again")
	}
	n.mu.Lock()
	n.status.AdvertsSent++
	n.mu.Unlock()
}

func (n *Node) setRole(r Role, reason string, m *Machine) {
	n.mu.Lock()
	n.status.Role = r
	n.status.Reason = reason
	n.status.LastTransition = n.cfg.Now()
	n.mu.Unlock()
	n.log.Info("vrrp role changed", "state", r, "reason", reason, "master", m.Master())
	n.cfg.OnRole(r, reason)
}

func (n *Node) count(kind string) {
	n.mu.Lock()
	n.status.Errors[kind]++
	n.mu.Unlock()
}

// errKind maps a ParseAdvert error to its Status.Errors key.
func errKind(err error) string {
	for _, k := range []struct {
		err  error
		kind string
	}{
		{ErrTruncated, ErrKindTruncated},
		{ErrAddrCount, ErrKindAddrCount},
		{ErrVersion, ErrKindVersion},
		{ErrType, ErrKindType},
		{ErrChecksum, ErrKindChecksum},
	} {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	return ErrKindRead
}
