package dhcp6srv

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/rfc1035label"
)

// iaKind tells the two IA types apart in binding keys.
type iaKind uint8

const (
	kindNA iaKind = iota
	kindPD
)

func (k iaKind) String() string {
	if k == kindPD {
		return "IA_PD"
	}
	return "IA_NA"
}

type bindingKey struct {
	duid string // the client DUID's bytes
	iaid uint32
	kind iaKind
}

// binding is one IA of one client. res is the current address (a /128) or
// prefix; stale holds what the client had before a renumbering, reported
// with zero lifetimes at its next Renew, Rebind or Request.
type binding struct {
	key                        bindingKey
	res                        netip.Prefix
	preferredUntil, validUntil time.Time
	via                        netip.Addr
	stale                      []staleLease
}

type staleLease struct {
	res        netip.Prefix
	validUntil time.Time
}

func (b *binding) lease() Lease {
	l := Lease{
		DUID: []byte(b.key.duid), IAID: b.key.iaid,
		ValidUntil: b.validUntil, PreferredUntil: b.preferredUntil, Via: b.via,
	}
	if b.key.kind == kindNA {
		l.Addr = b.res.Addr()
	} else {
		l.Prefix = b.res
	}
	return l
}

// Handler is the pure server: it answers one message at a time from its
// binding table. It never reads a clock or touches a socket, and it is safe
// for concurrent use.
type Handler struct {
	mu       sync.Mutex
	cfg      Config
	serverID dhcpv6.DUID
	pools    [2]pool // by iaKind; nil = that service is off

	bindings map[bindingKey]*binding
	owners   map[netip.Prefix]*binding // current resource → binding
	declined map[netip.Addr]time.Time  // quarantined until
	limiter  limiter

	gen    uint64 // bumped on every lease change, so the Server knows to save
	pdGen  uint64 // bumped on every change of the delegations
	lastPD []Delegation
}

// NewHandler returns a Handler serving cfg with an empty binding table.
// A pool that cannot be served (e.g. a Pool shorter than /64) is logged
// and switched off; the rest is served.
func NewHandler(cfg Config) *Handler {
	h := &Handler{
		bindings: make(map[bindingKey]*binding),
		owners:   make(map[netip.Prefix]*binding),
		declined: make(map[netip.Addr]time.Time),
	}
	h.configure(cfg)
	return h
}

// configure installs cfg without touching bindings.
func (h *Handler) configure(cfg Config) {
	cfg = cfg.withDefaults()
	h.cfg = cfg
	h.serverID = nil
	if len(cfg.ServerDUID) > 0 {
		if d, err := dhcpv6.DUIDFromBytes(cfg.ServerDUID); err == nil {
			h.serverID = d
		} else {
			cfg.Logger.Error("dhcp6srv: unusable server DUID", "iface", cfg.Interface, "err", err)
		}
	}
	h.pools = [2]pool{}
	if cfg.Pool.IsValid() {
		if r, err := newAddrRange(cfg); err != nil {
			cfg.Logger.Error("dhcp6srv: address service off", "iface", cfg.Interface, "err", err)
		} else {
			h.pools[kindNA] = naPool{r}
		}
	}
	if cfg.PDPool.IsValid() {
		if r, err := newPrefixRange(cfg); err != nil {
			cfg.Logger.Error("dhcp6srv: prefix delegation off", "iface", cfg.Interface, "err", err)
		} else {
			h.pools[kindPD] = pdPool{prefixRange: r, exclude: cfg.PDExclude}
		}
	}
	h.limiter = newLimiter(cfg.RateLimit, cfg.RateBurst)
}

// Handle answers one client message received from the address from. A nil
// reply means the message is dropped; err then says why (ErrMalformed,
// ErrInvalid, ErrNotForUs, ErrRateLimited, ...), for logs and metrics.
func (h *Handler) Handle(now time.Time, req []byte, from netip.Addr) (reply []byte, err error) {
	// The last line of defence only: every field is validated before use.
	defer func() {
		if r := recover(); r != nil {
			reply, err = nil, fmt.Errorf("%w: %w: %v", ErrMalformed, errPanic, r)
		}
	}()
	reply, notify, err := h.handle(now, req, from)
	if notify != nil {
		notify()
	}
	return reply, err
}

func (h *Handler) handle(now time.Time, req []byte, from netip.Addr) ([]byte, func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.limiter.allow("src "+from.WithZone("").String(), now) {
		return nil, nil, fmt.Errorf("%w: source %s", ErrRateLimited, from)
	}
	if h.serverID == nil {
		return nil, nil, ErrNotServing
	}
	pdGen := h.pdGen
	reply, err := h.dispatch(now, req, from)
	if err != nil {
		return nil, nil, err
	}
	return reply.ToBytes(), h.pdNotifier(now, pdGen), nil
}

// pdNotifier returns the OnPD call to make once the lock is released, when
// the delegations changed since generation before.
func (h *Handler) pdNotifier(now time.Time, before uint64) func() {
	if h.pdGen == before || h.cfg.OnPD == nil {
		return nil
	}
	d := h.delegations(now)
	if slices.Equal(d, h.lastPD) {
		return nil
	}
	h.lastPD = d
	h.cfg.Logger.Info("dhcp6srv: downstream delegations changed", "iface", h.cfg.Interface, "count", len(d))
	onPD := h.cfg.OnPD
	return func() { onPD(slices.Clone(d)) }
}

// messageRule is RFC 8415 §16: which identifiers a client message must or
// must not carry.
type messageRule struct {
	clientID bool // required
	serverID int  // 1 required (and ours), -1 forbidden, 0 optional (ours if present)
	noIA     bool // IA options are not allowed
}

var rules = map[dhcpv6.MessageType]messageRule{
	dhcpv6.MessageTypeSolicit:            {clientID: true, serverID: -1}, // §16.2
	dhcpv6.MessageTypeRequest:            {clientID: true, serverID: 1},  // §16.4
	dhcpv6.MessageTypeConfirm:            {clientID: true, serverID: -1}, // §16.5
	dhcpv6.MessageTypeRenew:              {clientID: true, serverID: 1},  // §16.6
	dhcpv6.MessageTypeRebind:             {clientID: true, serverID: -1}, // §16.7
	dhcpv6.MessageTypeDecline:            {clientID: true, serverID: 1},  // §16.8
	dhcpv6.MessageTypeRelease:            {clientID: true, serverID: 1},  // §16.9
	dhcpv6.MessageTypeInformationRequest: {noIA: true},                   // §16.12
}

const (
	maxDUIDLen = 130 // RFC 8415 §11.1: 2 octets of type and up to 128 more
	maxIAs     = 32  // IAs answered per message; more is not a real client
)

func (h *Handler) dispatch(now time.Time, req []byte, from netip.Addr) (*dhcpv6.Message, error) {
	if len(req) < 4 {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(req))
	}
	typ := dhcpv6.MessageType(req[0])
	rule, ok := rules[typ]
	if !ok {
		// Advertise, Reply, Reconfigure are server messages; relayed
		// messages are not served on a LAN interface.
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, typ)
	}
	m, err := dhcpv6.MessageFromBytes(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	client, err := h.validate(m, rule)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", typ, err)
	}
	if client != nil && !h.limiter.allow("duid "+string(client), now) {
		return nil, fmt.Errorf("%w: client %x", ErrRateLimited, client)
	}
	via := from.WithZone("")
	switch typ {
	case dhcpv6.MessageTypeSolicit:
		return h.solicit(now, m, client, via), nil
	case dhcpv6.MessageTypeRequest:
		return h.stateful(now, m, client, via, modeRequest), nil
	case dhcpv6.MessageTypeRenew:
		return h.stateful(now, m, client, via, modeRenew), nil
	case dhcpv6.MessageTypeRebind:
		return h.stateful(now, m, client, via, modeRebind), nil
	case dhcpv6.MessageTypeConfirm:
		return h.confirm(m)
	case dhcpv6.MessageTypeRelease:
		return h.release(now, m, client), nil
	case dhcpv6.MessageTypeDecline:
		return h.decline(now, m, client), nil
	default: // Information-request
		r := h.newReply(dhcpv6.MessageTypeReply, m)
		h.addInfo(r, m, true)
		return r, nil
	}
}

// validate applies the rules of RFC 8415 §16 and returns the client DUID.
func (h *Handler) validate(m *dhcpv6.Message, rule messageRule) ([]byte, error) {
	cids, sids := m.Options.Get(dhcpv6.OptionClientID), m.Options.Get(dhcpv6.OptionServerID)
	if len(cids) > 1 || len(sids) > 1 {
		return nil, fmt.Errorf("%w: repeated client or server identifier", ErrInvalid)
	}
	var client []byte
	if len(cids) == 1 {
		client = cids[0].ToBytes()
		if len(client) < 3 || len(client) > maxDUIDLen {
			return nil, fmt.Errorf("%w: client DUID of %d bytes", ErrInvalid, len(client))
		}
	}
	if rule.clientID && client == nil {
		return nil, fmt.Errorf("%w: no client identifier", ErrInvalid)
	}
	switch {
	case len(sids) == 0 && rule.serverID == 1:
		return nil, fmt.Errorf("%w: no server identifier", ErrInvalid)
	case len(sids) == 1 && rule.serverID == -1:
		return nil, fmt.Errorf("%w: server identifier not allowed", ErrInvalid)
	case len(sids) == 1 && !bytes.Equal(sids[0].ToBytes(), h.serverID.ToBytes()):
		return nil, ErrNotForUs
	}
	nIA := len(m.Options.Get(dhcpv6.OptionIANA)) + len(m.Options.Get(dhcpv6.OptionIAPD)) + len(m.Options.Get(dhcpv6.OptionIATA))
	if rule.noIA && nIA > 0 {
		return nil, fmt.Errorf("%w: IA option in an Information-request", ErrInvalid)
	}
	if nIA > maxIAs {
		return nil, fmt.Errorf("%w: %d IA options", ErrInvalid, nIA)
	}
	return client, nil
}

func (h *Handler) newReply(typ dhcpv6.MessageType, m *dhcpv6.Message) *dhcpv6.Message {
	r := &dhcpv6.Message{MessageType: typ, TransactionID: m.TransactionID}
	if c := m.Options.GetOne(dhcpv6.OptionClientID); c != nil {
		r.AddOption(c)
	}
	r.AddOption(dhcpv6.OptServerID(h.serverID))
	return r
}

// addInfo adds the stateless configuration: always to a reply to an
// Information-request, otherwise when the client's ORO asks for it.
// Option 32 only ever goes into the reply to an Information-request
// (RFC 8415 §21.23).
func (h *Handler) addInfo(r, m *dhcpv6.Message, infoRequest bool) {
	oro := m.Options.RequestedOptions()
	if len(h.cfg.DNS) > 0 && (infoRequest || oro.Contains(dhcpv6.OptionDNSRecursiveNameServer)) {
		ips := make([]net.IP, 0, len(h.cfg.DNS))
		for _, a := range h.cfg.DNS {
			ips = append(ips, a.AsSlice())
		}
		r.AddOption(dhcpv6.OptDNS(ips...))
	}
	if len(h.cfg.Domains) > 0 && (infoRequest || oro.Contains(dhcpv6.OptionDomainSearchList)) {
		r.AddOption(dhcpv6.OptDomainSearchList(&rfc1035label.Labels{Labels: h.cfg.Domains}))
	}
	if infoRequest {
		r.AddOption(dhcpv6.OptInformationRefreshTime(h.cfg.InfoRefresh))
	}
}

// lifetimes are the preferred and valid lifetimes handed out at now: the
// configured ones, never beyond LifetimeCap, in whole seconds.
func (h *Handler) lifetimes(now time.Time) (preferred, valid time.Duration) {
	preferred, valid = h.cfg.Preferred, h.cfg.Valid
	if !h.cfg.LifetimeCap.IsZero() {
		left := max(h.cfg.LifetimeCap.Sub(now), 0)
		preferred, valid = min(preferred, left), min(valid, left)
	}
	return preferred.Truncate(time.Second), valid.Truncate(time.Second)
}

// Leases returns the current bindings, addresses first, in a stable order.
func (h *Handler) Leases() []Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Lease, 0, len(h.bindings))
	for _, b := range h.bindings {
		if b.res.IsValid() {
			out = append(out, b.lease())
		}
	}
	slices.SortFunc(out, compareLeases)
	return out
}

func compareLeases(a, b Lease) int {
	if c := cmp.Compare(boolInt(a.Prefix.IsValid()), boolInt(b.Prefix.IsValid())); c != 0 {
		return c
	}
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
		return c
	}
	if c := bytes.Compare(a.DUID, b.DUID); c != 0 {
		return c
	}
	return cmp.Compare(a.IAID, b.IAID)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Delegations returns the active downstream delegations at now.
func (h *Handler) Delegations(now time.Time) []Delegation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.delegations(now)
}

func (h *Handler) delegations(now time.Time) []Delegation {
	var out []Delegation
	for _, b := range h.bindings {
		if b.key.kind == kindPD && b.res.IsValid() && now.Before(b.validUntil) {
			out = append(out, Delegation{Prefix: b.res, Via: b.via, Interface: h.cfg.Interface, ValidUntil: b.validUntil})
		}
	}
	slices.SortFunc(out, func(a, b Delegation) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	return out
}

// generation changes whenever the leases change.
func (h *Handler) generation() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen
}
