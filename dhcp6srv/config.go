package dhcp6srv

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"
)

// Config is what the server hands out on one LAN interface.
type Config struct {
	Interface  string
	ServerDUID []byte // our DUID (DUID-LL of the LAN interface MAC); empty = derived from Interface by Server

	DNS     []netip.Addr
	Domains []string
	// InfoRefresh is option 32 in replies to Information-request: how long a
	// stateless client keeps its configuration. Zero means the RFC 8415
	// §21.23 default of 86400 s; values below IRT_MINIMUM (600 s) are raised.
	InfoRefresh time.Duration

	// Pool is the LAN /64 (or a longer prefix) addresses come from; the zero
	// Pool disables address service (IA_NA is answered with NoAddrsAvail).
	Pool netip.Prefix
	// PoolStart and PoolEnd bound the range handed out inside Pool; the
	// default is ::1000 .. ::ffff of the Pool.
	PoolStart, PoolEnd netip.Addr
	// Preferred and Valid are the lifetimes handed out (defaults 2700 s and
	// 5400 s, the RFC 9096 §4 bounds for LAN prefixes: a host learns of a
	// renumbering no later than it would from the RA).
	Preferred, Valid time.Duration
	// LifetimeCap is the moment the upstream delegation ends (lease
	// ValidUntil): addresses and prefixes never outlive it. Zero = none.
	LifetimeCap time.Time

	// PDPool is the prefix sub-prefixes are delegated from; zero = no PD.
	PDPool netip.Prefix
	// PDLength is the length delegated (default 60, at most 64).
	PDLength int
	// PDCount is the maximum number of delegations (0 = all that fit).
	PDCount int
	// PDExclude lists prefixes that are never delegated, e.g. the /64s the
	// router's own LANs use inside PDPool.
	PDExclude []netip.Prefix

	// RapidCommit answers a Solicit carrying Rapid Commit (option 14) with a
	// committed Reply (RFC 8415 §18.3.1).
	RapidCommit bool
	// StateDir holds the leases in <StateDir>/dhcp6srv-<Interface>.json;
	// empty = leases are not persisted.
	StateDir string
	Logger   *slog.Logger
	// OnPD is called when the set of active downstream delegations changes,
	// so the daemon installs a route per delegation: Prefix via the
	// requester's link-local on Interface. The Handler calls it
	// synchronously, outside its lock; the Server calls it from its own
	// goroutine with the latest set so a slow callback never stalls replies.
	OnPD func([]Delegation)
	// Now is the clock of the Server (default time.Now). The Handler never
	// reads it: it takes now as an argument.
	Now func() time.Time
	// Listen opens the socket; nil = UDP [::]:547 bound to Interface with
	// SO_BINDTODEVICE, joined to ff02::1:2 on it.
	Listen func(ctx context.Context) (Conn, error)

	// RateLimit is the per-client budget in messages per second, applied to
	// each client DUID and each source address separately (default 10/s);
	// negative disables rate limiting. RateBurst is the bucket size
	// (default 20).
	RateLimit float64
	RateBurst int
	// DeclineQuarantine is how long a declined address is not handed out
	// again (default 1 h).
	DeclineQuarantine time.Duration
	// SaveDelay coalesces lease-file writes: a change is on disk about
	// this long after it happened (default 250 ms; longer while the table
	// is big and changing fast, and always on stop). A lost write costs
	// nothing worse than a Rebind, which the server accepts again.
	SaveDelay time.Duration
}

// Delegation is one active downstream prefix delegation: the daemon routes
// Prefix via Via on Interface until ValidUntil.
type Delegation struct {
	Prefix     netip.Prefix
	Via        netip.Addr // the requester's link-local
	Interface  string
	ValidUntil time.Time
}

// Lease is one binding: an address (IA_NA) or a prefix (IA_PD) for one IA
// of one client.
type Lease struct {
	DUID                       []byte
	IAID                       uint32
	Addr                       netip.Addr   // set for IA_NA
	Prefix                     netip.Prefix // set for IA_PD
	ValidUntil, PreferredUntil time.Time
	Via                        netip.Addr // the address the client spoke from
}

// Protocol constants (RFC 8415 §7.6 and §21.23), and this server's defaults.
const (
	defaultInfoRefresh   = 86400 * time.Second // IRT_DEFAULT
	minInfoRefresh       = 600 * time.Second   // IRT_MINIMUM
	defaultPreferred     = 2700 * time.Second
	defaultValid         = 5400 * time.Second
	defaultPDLength      = 60
	defaultRateLimit     = 10
	defaultRateBurst     = 20
	defaultQuarantine    = time.Hour
	defaultSaveDelay     = 250 * time.Millisecond
	defaultRangeStart    = 0x1000
	defaultRangeEnd      = 0xffff
	maxPDSlots           = 1 << 16 // bound on sub-prefixes considered, so probing stays cheap
	fullScanLimit        = 1 << 17 // pools up to this size are scanned whole before NoAddrsAvail
	maxProbes            = 4096    // larger pools: probes from the hashed slot before giving up
	serverDUIDTypeLL     = 3
	hardwareTypeEthernet = 1
)

// Reasons a message is dropped, for logs and metrics (errors.Is).
var (
	ErrMalformed   = errors.New("malformed message")
	ErrInvalid     = errors.New("message fails RFC 8415 §16 validation")
	ErrNotForUs    = errors.New("message is for another server")
	ErrUnsupported = errors.New("message type not served")
	ErrRateLimited = errors.New("client over its rate limit")
	ErrNoReply     = errors.New("nothing to answer")
	ErrNotServing  = errors.New("server has no DUID")

	// errPanic marks a recovered panic: a bug, which the fuzz test hunts.
	errPanic = errors.New("panic while handling")
)

// withDefaults fills the zero fields of c.
func (c Config) withDefaults() Config {
	if c.InfoRefresh == 0 {
		c.InfoRefresh = defaultInfoRefresh
	}
	if c.InfoRefresh < minInfoRefresh {
		c.InfoRefresh = minInfoRefresh
	}
	if c.Preferred <= 0 {
		c.Preferred = defaultPreferred
	}
	if c.Valid <= 0 {
		c.Valid = defaultValid
	}
	if c.Valid < c.Preferred {
		c.Valid = c.Preferred
	}
	if c.PDLength == 0 {
		c.PDLength = defaultPDLength
	}
	if c.RateLimit == 0 {
		c.RateLimit = defaultRateLimit
	}
	if c.RateBurst <= 0 {
		c.RateBurst = defaultRateBurst
	}
	if c.DeclineQuarantine <= 0 {
		c.DeclineQuarantine = defaultQuarantine
	}
	if c.SaveDelay <= 0 {
		c.SaveDelay = defaultSaveDelay
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Pool.IsValid() {
		c.Pool = c.Pool.Masked()
	}
	if c.PDPool.IsValid() {
		c.PDPool = c.PDPool.Masked()
	}
	return c
}
