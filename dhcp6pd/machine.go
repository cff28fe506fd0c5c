package dhcp6pd

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// MachineConfig is what the protocol needs to know about us.
type MachineConfig struct {
	DUID         []byte
	IAID         uint32
	PrefixLength int // the hint sent in IA_PD; 0 sends no hint
	RapidCommit  bool
	// RequestAddress says whether an IA_NA (same IAID) goes beside the
	// IA_PD; "" is AddressNever.
	RequestAddress AddressMode
}

// Action is one output of the Machine. Several may come from one input.
type Action struct {
	Send         *Outgoing // bytes to put on the wire
	StateChanged bool
	LeaseChanged bool   // Lease() is different: save it, publish it
	Info         string // a change worth an info log line
	Problem      string // a rejected message or failed exchange, worth a warning
}

// Outgoing is one message to send.
type Outgoing struct {
	Msg  []byte
	To   netip.Addr // AllServers (the Server Unicast option is not used)
	Type dhcpv6.MessageType
}

// Machine is the RFC 8415 client state machine for one IA_PD. It is not
// safe for concurrent use; Client serialises all calls.
//
// The exported fields are the RFC 8415 §7.6 transmission parameters.
// NewMachine sets the RFC values; tests may shrink them before Start.
type Machine struct {
	SolMaxDelay time.Duration // SOL_MAX_DELAY: the first Solicit waits 0..this (§18.2.1)
	SolTimeout  time.Duration // SOL_TIMEOUT
	SolMaxRT    time.Duration // SOL_MAX_RT, unless the server sent option 82 (§21.24)
	ReqTimeout  time.Duration // REQ_TIMEOUT
	ReqMaxRT    time.Duration // REQ_MAX_RT
	ReqMaxRC    int           // REQ_MAX_RC
	RenTimeout  time.Duration // REN_TIMEOUT
	RenMaxRT    time.Duration // REN_MAX_RT
	RebTimeout  time.Duration // REB_TIMEOUT
	RebMaxRT    time.Duration // REB_MAX_RT
	RelTimeout  time.Duration // REL_TIMEOUT
	RelMaxRC    int           // REL_MAX_RC
	// MaxProblems is how many kinds of recent problems Problems keeps.
	MaxProblems int

	cfg MachineConfig
	rnd *rand.Rand

	state      State
	lease      *Lease
	ex         *exchange
	adverts    []candidate // collected during the first RT of a Solicit
	serverMRT  time.Duration
	problems   []problemEntry
	lastChange time.Time
	replay     uint64 // last Reconfigure replay counter seen (§20.3)
	haveReplay bool
	refusals   int // Requests refused in a row, see refused
}

// exchange is one message exchange with its §15 retransmission state.
type exchange struct {
	typ      dhcpv6.MessageType
	xid      dhcpv6.TransactionID
	irt, mrt time.Duration
	mrc      int
	end      time.Time // MRD runs out here; zero: no MRD
	first    time.Time // first transmission; Elapsed Time counts from it
	rt       time.Duration
	sent     int
	next     time.Time // next transmission (or, for Solicit, selection)
	to       netip.Addr
	serverID []byte
	prefixes []netip.Prefix // put into the IA_PD
	withNA   bool           // the exchange asks for an IA_NA ...
	naNow    bool           // ... and the transmission being built carries it
	addrs    []netip.Addr   // put into the IA_NA

	collectUntil time.Time   // Solicit: Advertises are collected until the first RT ends
	others       []candidate // Request: servers to try if this one stays silent
}

// candidate is a server that Advertised a usable prefix.
type candidate struct {
	serverID   []byte
	addr       netip.Addr
	preference int
	prefixes   []netip.Prefix
	withNA     bool // the Advertise had our IA_NA, even one without addresses
	addrs      []netip.Addr
}

// NewMachine returns a machine in state init with the RFC 8415 §7.6
// parameters. Call Start to begin.
func NewMachine(cfg MachineConfig, rnd *rand.Rand) *Machine {
	return &Machine{
		SolMaxDelay: 1 * time.Second,
		SolTimeout:  1 * time.Second,
		SolMaxRT:    3600 * time.Second,
		ReqTimeout:  1 * time.Second,
		ReqMaxRT:    30 * time.Second,
		ReqMaxRC:    10,
		RenTimeout:  10 * time.Second,
		RenMaxRT:    600 * time.Second,
		RebTimeout:  10 * time.Second,
		RebMaxRT:    600 * time.Second,
		RelTimeout:  1 * time.Second,
		RelMaxRC:    4,
		MaxProblems: 8,
		cfg:         cfg,
		rnd:         rnd,
		state:       StateInit,
	}
}

// State is the current state.
func (m *Machine) State() State { return m.state }

// Lease is a copy of the current lease, nil when there is none.
func (m *Machine) Lease() *Lease { return m.lease.Clone() }

// Problems returns the most recent problems, oldest first: one line per
// kind of problem, the latest text with how often it happened ("… (×12)").
func (m *Machine) Problems() []string {
	out := make([]string, 0, len(m.problems))
	for _, p := range m.problems {
		if p.count > 1 {
			out = append(out, fmt.Sprintf("%s (×%d)", p.text, p.count))
		} else {
			out = append(out, p.text)
		}
	}
	return out
}

// problemEntry is one kind of problem: its latest text and how many times
// it happened.
type problemEntry struct {
	kind, text string
	count      int
}

// problemKind is s with every word that holds a number, an address or a
// transaction id blanked out: two Advertises rejected for the same reason
// are one kind, whatever their transaction ids or lifetimes.
func problemKind(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		if strings.ContainsAny(w, "0123456789") || strings.Contains(strings.TrimRight(w, ":"), ":") {
			words[i] = "#"
		}
	}
	return strings.Join(words, " ")
}

// LastChange is when the state or the lease last changed.
func (m *Machine) LastChange() time.Time { return m.lastChange }

// Deadline is when Timer must next be called; zero when nothing is due.
func (m *Machine) Deadline() time.Time {
	var d time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if m.state == StateStandby || m.state == StateReleased {
		if m.ex != nil {
			earlier(m.ex.next)
		}
		return d
	}
	if m.ex != nil {
		earlier(m.ex.next)
	}
	if m.lease != nil {
		if m.state == StateBound {
			earlier(m.lease.Acquired.Add(m.lease.T1))
		}
		earlier(m.lease.lastValid())
	}
	return d
}

// Start begins. With a saved lease that is still valid the client Rebinds
// it (RFC 8415 §18.2.12: after a restart the client may be on another link
// and does not know whether its server is still there); the lease stays
// visible meanwhile so NAT and RA keep their state. Otherwise it Solicits.
func (m *Machine) Start(now time.Time, saved *Lease) []Action {
	if saved != nil && saved.IAID == m.cfg.IAID && now.Before(saved.lastValid()) && len(saved.Prefixes) > 0 {
		m.lease = saved.Clone()
		m.lease.Hint = m.cfg.PrefixLength
		acts := m.startRebind(now)
		return append([]Action{{LeaseChanged: true, Info: "rebinding saved lease"}}, acts...)
	}
	return m.startSolicit(now, false)
}

// Timer handles everything due at now: transmissions, server selection,
// T1, T2 and expiry.
func (m *Machine) Timer(now time.Time) []Action {
	var acts []Action
	// Each round changes state or moves a deadline past now; the bound
	// only protects against a bug turning into a busy loop.
	for range 16 {
		d := m.Deadline()
		if d.IsZero() || now.Before(d) {
			return acts
		}
		acts = append(acts, m.timerStep(now)...)
	}
	return acts
}

func (m *Machine) timerStep(now time.Time) []Action {
	if m.lease != nil && m.state != StateStandby && m.state != StateReleased && !now.Before(m.lease.lastValid()) {
		return m.expire(now)
	}
	if m.state == StateBound && m.lease != nil && !now.Before(m.lease.Acquired.Add(m.lease.T1)) {
		return m.startRenew(now)
	}
	ex := m.ex
	if ex == nil || now.Before(ex.next) {
		return nil
	}
	if ex.typ == dhcpv6.MessageTypeSolicit && ex.sent > 0 && len(m.adverts) > 0 {
		return m.selectServer(now)
	}
	if (ex.mrc > 0 && ex.sent >= ex.mrc) || (!ex.end.IsZero() && !now.Before(ex.end)) {
		return m.exchangeFailed(now)
	}
	return m.transmit(now)
}

// jitter is RAND of RFC 8415 §15: uniform in [-0.1, +0.1], or in (0, 0.1]
// for the first Solicit, whose first RT must be strictly greater than IRT
// (§18.2.1) so that Advertises are collected for longer than IRT.
func (m *Machine) jitter(positive bool) float64 {
	if positive {
		return 0.1 * (1 - m.rnd.Float64())
	}
	return 0.2*m.rnd.Float64() - 0.1
}

func scale(d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) * f)
}

// transmit sends the exchange's message once and schedules the next
// transmission per RFC 8415 §15.
func (m *Machine) transmit(now time.Time) []Action {
	ex := m.ex
	var acts []Action
	if ex.sent == 0 {
		ex.first = now
		// RT = IRT + RAND*IRT
		positive := ex.typ == dhcpv6.MessageTypeSolicit
		ex.rt = ex.irt + scale(ex.irt, m.jitter(positive))
		if positive && ex.rt <= ex.irt {
			ex.rt = ex.irt + time.Nanosecond // strictly greater, even after rounding
		}
		if ex.typ == dhcpv6.MessageTypeSolicit {
			ex.collectUntil = now.Add(ex.rt)
		}
	} else {
		// RT = 2*RTprev + RAND*RTprev, and RT = MRT + RAND*MRT past MRT.
		rand := m.jitter(false)
		ex.rt = 2*ex.rt + scale(ex.rt, rand)
		if ex.mrt > 0 && ex.rt > ex.mrt {
			ex.rt = ex.mrt + scale(ex.mrt, rand)
		}
	}
	// In try mode the first two Solicit transmissions carry both IAs, and
	// from the third on every other one leaves the IA_NA out: some
	// servers ignore a Solicit holding both (RFC 7084 WPD-6 asks the
	// router to cope) and answer the one with the IA_PD alone, while a
	// first Solicit lost at link-up does not cost the address.
	ex.naNow = ex.withNA && !(ex.typ == dhcpv6.MessageTypeSolicit && m.cfg.RequestAddress == AddressTry && ex.sent >= 2 && ex.sent%2 == 0)
	ex.sent++
	ex.next = now.Add(ex.rt)
	if !ex.end.IsZero() && ex.next.After(ex.end) {
		// The exchange fails when MRD runs out, not at the next RT.
		ex.next = ex.end
	}
	if ex.sent == 1 {
		switch {
		case ex.typ == dhcpv6.MessageTypeSolicit && m.state != StateSoliciting:
			acts = append(acts, m.setState(now, StateSoliciting))
		}
	}
	acts = append(acts, Action{Send: &Outgoing{Msg: m.build(ex, now), To: ex.to, Type: ex.typ}})
	return acts
}

func (m *Machine) setState(now time.Time, s State) Action {
	m.state = s
	m.lastChange = now
	return Action{StateChanged: true}
}

func (m *Machine) newXID() dhcpv6.TransactionID {
	var x dhcpv6.TransactionID
	v := m.rnd.Uint32()
	x[0], x[1], x[2] = byte(v>>16), byte(v>>8), byte(v)
	return x
}

func (m *Machine) solMaxRT() time.Duration {
	if m.serverMRT > 0 {
		return m.serverMRT
	}
	return m.SolMaxRT
}

// startSolicit begins server discovery (RFC 8415 §18.2.1). The first
// Solicit waits a random 0..SOL_MAX_DELAY so that routers powered on
// together do not all ask at once. backoff (after more than refusedFree
// refused Requests in a row) waits longer instead: SOL_TIMEOUT doubled per
// further refusal, capped at SOL_MAX_RT, with the usual RAND; the Solicit
// itself then retransmits on the normal schedule.
func (m *Machine) startSolicit(now time.Time, backoff bool) []Action {
	var acts []Action
	m.adverts = nil
	ex := &exchange{
		typ:    dhcpv6.MessageTypeSolicit,
		xid:    m.newXID(),
		irt:    m.SolTimeout,
		mrt:    m.solMaxRT(),
		to:     AllServers,
		withNA: m.wantNA(),
	}
	if m.cfg.PrefixLength > 0 {
		ex.prefixes = []netip.Prefix{netip.PrefixFrom(netip.IPv6Unspecified(), m.cfg.PrefixLength)}
	}
	delay := scale(m.SolMaxDelay, m.rnd.Float64())
	if backoff {
		wait := ex.mrt
		if n := m.refusals - refusedFree; n < 32 {
			wait = min(m.SolTimeout<<n, ex.mrt)
		}
		delay = wait + scale(wait, m.jitter(false))
	}
	ex.next = now.Add(delay)
	m.ex = ex
	if m.state != StateInit && m.state != StateExpired && m.state != StateSoliciting {
		acts = append(acts, m.setState(now, StateSoliciting))
	}
	if delay <= 0 {
		acts = append(acts, m.transmit(now)...)
	}
	return acts
}

// startRequest asks the chosen server for its offer (RFC 8415 §18.2.2).
func (m *Machine) startRequest(now time.Time, c candidate, others []candidate) []Action {
	m.adverts = nil
	m.ex = &exchange{
		typ:      dhcpv6.MessageTypeRequest,
		xid:      m.newXID(),
		irt:      m.ReqTimeout,
		mrt:      m.ReqMaxRT,
		mrc:      m.ReqMaxRC,
		to:       AllServers,
		serverID: c.serverID,
		prefixes: c.prefixes,
		others:   others,
		// Ask for the IA_NA only from a server that showed it knows one:
		// one that ignores Solicits holding both would ignore the Request.
		withNA: m.wantNA() && (c.withNA || m.cfg.RequestAddress == AddressRequire),
		addrs:  c.addrs,
	}
	acts := []Action{m.setState(now, StateRequesting)}
	return append(acts, m.transmit(now)...)
}

// wantNA is whether IA_NA is asked for at all.
func (m *Machine) wantNA() bool {
	return m.cfg.RequestAddress == AddressTry || m.cfg.RequestAddress == AddressRequire
}

// leaseNA is whether a Renew, Rebind or Release of l carries the IA_NA:
// when l holds addresses (they are renewed and released with the
// prefixes), and always in require mode.
func (m *Machine) leaseNA(l *Lease) bool {
	return m.wantNA() && (len(l.Addresses) > 0 || m.cfg.RequestAddress == AddressRequire)
}

// countDown is what is left of a preferred and a valid lifetime once gone
// has passed: valid may go negative (expired), preferred stops at 0, and
// Infinity stays infinite.
func countDown(preferred, valid, gone time.Duration) (time.Duration, time.Duration) {
	if valid != Infinity {
		valid -= gone
	}
	if preferred != Infinity {
		preferred = max(preferred-gone, 0)
	}
	return preferred, valid
}

func leaseAddrs(l *Lease) []netip.Addr {
	var as []netip.Addr
	for _, a := range l.Addresses {
		as = append(as, a.Addr)
	}
	return as
}

func leasePrefixes(l *Lease) []netip.Prefix {
	var ps []netip.Prefix
	for _, p := range l.Prefixes {
		ps = append(ps, p.Prefix)
	}
	return ps
}

// startRenew extends the lease with its server (RFC 8415 §18.2.4), until
// T2 (MRD = T2 - T1).
func (m *Machine) startRenew(now time.Time) []Action {
	l := m.lease
	end := l.Acquired.Add(l.T2)
	if !now.Before(end) {
		return m.startRebind(now)
	}
	return m.extend(now, StateRenewing, exchange{
		typ:      dhcpv6.MessageTypeRenew,
		irt:      m.RenTimeout,
		mrt:      m.RenMaxRT,
		end:      end,
		serverID: l.ServerID,
	})
}

// startRebind asks any server to extend the lease (RFC 8415 §18.2.5),
// until the last prefix expires.
func (m *Machine) startRebind(now time.Time) []Action {
	return m.extend(now, StateRebinding, exchange{
		typ: dhcpv6.MessageTypeRebind,
		irt: m.RebTimeout,
		mrt: m.RebMaxRT,
		end: m.lease.lastValid(),
	})
}

// extend enters state and starts ex, a Renew or a Rebind of the lease:
// ex says its type, timers, end and server, extend adds a new transaction
// ID and what the lease holds, and sends the first transmission.
func (m *Machine) extend(now time.Time, state State, ex exchange) []Action {
	l := m.lease
	ex.xid = m.newXID()
	ex.to = AllServers
	ex.prefixes = leasePrefixes(l)
	ex.withNA = m.leaseNA(l)
	ex.addrs = leaseAddrs(l)
	m.ex = &ex
	acts := []Action{m.setState(now, state)}
	return append(acts, m.transmit(now)...)
}

// expire withdraws a lease whose every prefix ran out and starts over.
func (m *Machine) expire(now time.Time) []Action {
	m.lease = nil
	m.ex = nil
	acts := []Action{m.setState(now, StateExpired)}
	acts[0].LeaseChanged = true
	acts = append(acts, m.problem(now, "lease expired: no prefix left valid"))
	return append(acts, m.startSolicit(now, false)...)
}

// exchangeFailed handles MRC or MRD running out.
func (m *Machine) exchangeFailed(now time.Time) []Action {
	ex := m.ex
	switch ex.typ {
	case dhcpv6.MessageTypeRequest:
		// §18.2.2: try the next server that Advertised, else start over.
		if len(ex.others) > 0 {
			acts := []Action{m.problem(now, fmt.Sprintf("no Reply to Request after %d tries; trying the next server", ex.sent))}
			return append(acts, m.startRequest(now, ex.others[0], ex.others[1:])...)
		}
		acts := []Action{m.problem(now, fmt.Sprintf("no Reply to Request after %d tries; soliciting again", ex.sent))}
		if m.lease != nil && now.Before(m.lease.lastValid()) {
			// We got here from NoBinding during a Renew: the lease is still
			// ours to use; Rebind asks any server.
			return append(acts, m.startRebind(now)...)
		}
		m.lease = nil
		acts[0].LeaseChanged = true
		return append(acts, m.startSolicit(now, false)...)
	case dhcpv6.MessageTypeRenew:
		// §18.2.5: T2 reached without a Reply: ask any server.
		return m.startRebind(now)
	case dhcpv6.MessageTypeRebind:
		return m.expire(now)
	case dhcpv6.MessageTypeRelease:
		// §18.2.7: give up silently after REL_MAX_RC.
		m.ex = nil
		return nil
	}
	m.ex = nil
	return nil
}

// problem records a problem for Snapshot.Problems and returns it as an
// Action for the log.
//
// Problems keeps one entry per kind (see problemKind), moved to the end
// with its count when it happens again, and at most MaxProblems kinds:
// while soliciting, every rejected Advertise would otherwise add its own
// line without bound.
func (m *Machine) problem(_ time.Time, s string) Action {
	k := problemKind(s)
	e := problemEntry{kind: k, text: s, count: 1}
	if i := slices.IndexFunc(m.problems, func(p problemEntry) bool { return p.kind == k }); i >= 0 {
		e.count = m.problems[i].count + 1
		m.problems = slices.Delete(m.problems, i, i+1)
	}
	m.problems = append(m.problems, e)
	if n := m.MaxProblems; n > 0 && len(m.problems) > n {
		m.problems = slices.Clone(m.problems[len(m.problems)-n:])
	}
	return Action{Problem: s}
}

// LinkUp reacts to the WAN link coming back (RFC 8415 §18.2.12): the
// client may be on a new link, so with a valid lease it Rebinds; without
// one it starts discovery afresh instead of waiting out a long backoff.
func (m *Machine) LinkUp(now time.Time) []Action {
	switch m.state {
	case StateStandby, StateReleased:
		return nil
	}
	if m.lease != nil && now.Before(m.lease.lastValid()) {
		return m.startRebind(now)
	}
	return m.startSolicit(now, false)
}

// Renew is the operator's "renew now": Renew with a lease (Rebind past
// T2), a fresh Solicit without one.
func (m *Machine) Renew(now time.Time) []Action {
	if m.state == StateStandby {
		return []Action{m.problem(now, "renew ignored: standby (HA backup)")}
	}
	if m.lease != nil && now.Before(m.lease.lastValid()) {
		return m.startRenew(now)
	}
	if m.lease != nil {
		return m.expire(now)
	}
	return m.startSolicit(now, false)
}

// Release gives the prefixes back (RFC 8415 §18.2.7). The client stops
// using them as the exchange begins, so the lease is withdrawn at once.
// Never sent in standby: the active node owns the binding.
func (m *Machine) Release(now time.Time) []Action {
	if m.state == StateStandby {
		return []Action{m.problem(now, "release ignored: standby (HA backup)")}
	}
	l := m.lease
	m.lease = nil
	m.ex = nil
	m.adverts = nil
	acts := []Action{m.setState(now, StateReleased)}
	if l == nil {
		return acts
	}
	acts[0].LeaseChanged = true
	acts[0].Info = "releasing lease"
	m.ex = &exchange{
		typ:      dhcpv6.MessageTypeRelease,
		xid:      m.newXID(),
		irt:      m.RelTimeout,
		mrc:      m.RelMaxRC,
		to:       AllServers,
		serverID: l.ServerID,
		prefixes: leasePrefixes(l),
		withNA:   m.wantNA() && len(l.Addresses) > 0,
		addrs:    leaseAddrs(l),
	}
	return append(acts, m.transmit(now)...)
}

// SetStandby enters or leaves HA standby. In standby the machine holds the
// lease it is given (synced from the active node) and sends nothing, not
// even a Release. Leaving standby it Renews the lease with its server
// before T2, Rebinds it after, or Solicits when no valid lease is known.
func (m *Machine) SetStandby(now time.Time, standby bool, lease *Lease) []Action {
	if lease != nil {
		m.lease = lease.Clone()
		m.lease.Hint = m.cfg.PrefixLength
	}
	if standby {
		m.ex = nil
		m.adverts = nil
		a := m.setState(now, StateStandby)
		a.LeaseChanged = lease != nil
		return []Action{a}
	}
	if m.state != StateStandby {
		if lease == nil {
			return nil
		}
		return []Action{{LeaseChanged: true}}
	}
	var acts []Action
	if lease != nil {
		acts = append(acts, Action{LeaseChanged: true})
	}
	if m.lease != nil && now.Before(m.lease.lastValid()) {
		return append(acts, m.startRenew(now)...)
	}
	if m.lease != nil {
		m.lease = nil
		acts = append(acts, Action{LeaseChanged: true})
	}
	m.state = StateInit
	acts = append(acts, m.setState(now, StateInit))
	return append(acts, m.startSolicit(now, false)...)
}

// Receive handles a datagram from a server. Anything malformed, unexpected
// or failing validation is dropped whole, with the reason in Problems.
func (m *Machine) Receive(now time.Time, b []byte, from netip.Addr) []Action {
	msg, err := parseMessage(b)
	if err != nil {
		return []Action{m.problem(now, fmt.Sprintf("dropped message from %s: %v", from, err))}
	}
	reject := func(reason string) []Action {
		return []Action{m.problem(now, fmt.Sprintf("rejected %s from %s: %s", typeName(msg.Type), from, reason))}
	}
	if m.state == StateStandby {
		return nil // the active node talks to the server, not us
	}
	if msg.Type == dhcpv6.MessageTypeReconfigure {
		return m.receiveReconfigure(now, msg, b, from, reject)
	}
	ex := m.ex
	if ex == nil || ex.sent == 0 {
		return reject(fmt.Sprintf("unexpected in state %s", m.state))
	}
	switch {
	case msg.Type == dhcpv6.MessageTypeAdvertise && ex.typ == dhcpv6.MessageTypeSolicit:
	case msg.Type == dhcpv6.MessageTypeReply && ex.typ != dhcpv6.MessageTypeSolicit:
	case msg.Type == dhcpv6.MessageTypeReply && m.cfg.RapidCommit:
	default:
		return reject(fmt.Sprintf("unexpected while sending %s", typeName(ex.typ)))
	}
	// RFC 8415 §16.3, §16.10: transaction id, Client ID, Server ID.
	if msg.XID != ex.xid {
		return reject(fmt.Sprintf("transaction id %s does not match %s", msg.XID, ex.xid))
	}
	if msg.ClientID == nil {
		return reject("no Client ID")
	}
	if !bytes.Equal(msg.ClientID, m.cfg.DUID) {
		return reject(fmt.Sprintf("Client ID %s is not ours", FormatDUID(msg.ClientID)))
	}
	if msg.ServerID == nil {
		return reject("no Server ID")
	}
	// §21.24: SOL_MAX_RT is processed even from an Advertise that is
	// otherwise ignored; values outside 60..86400 s are ignored.
	if msg.SolMaxRT >= 60*time.Second && msg.SolMaxRT <= 86400*time.Second {
		m.serverMRT = msg.SolMaxRT
		if ex.typ == dhcpv6.MessageTypeSolicit {
			ex.mrt = msg.SolMaxRT
		}
	}
	if ex.typ == dhcpv6.MessageTypeRelease {
		// §18.2.10.2: any valid Reply ends the Release exchange.
		m.ex = nil
		return []Action{{Info: "release confirmed"}}
	}
	if msg.Type == dhcpv6.MessageTypeReply && ex.typ == dhcpv6.MessageTypeSolicit && !msg.RapidCommit {
		return reject("Reply to Solicit without Rapid Commit")
	}
	v := m.check(msg)
	if v.reason != "" {
		return reject(v.reason)
	}
	if msg.Type == dhcpv6.MessageTypeAdvertise {
		return m.receiveAdvertise(now, msg, v, from, reject)
	}
	return m.receiveReply(now, msg, v, from, reject)
}

func (m *Machine) receiveAdvertise(now time.Time, msg *message, v verdict, from netip.Addr, reject func(string) []Action) []Action {
	// §18.2.9: an Advertise without a usable prefix is ignored (after its
	// SOL_MAX_RT has been taken, above).
	if v.status != nil {
		return reject(fmt.Sprintf("status %s", v.status))
	}
	if len(v.usable) == 0 {
		return reject("no usable prefix offered" + discardedSuffix(v))
	}
	if m.cfg.RequestAddress == AddressRequire && len(v.addrs) == 0 {
		return reject("no usable address offered (request_address = require)" + naSuffix(v) + discardedSuffix(v))
	}
	c := candidate{
		serverID:   msg.ServerID,
		addr:       from,
		preference: msg.Preference,
		withNA:     v.na != nil,
	}
	for _, p := range v.usable {
		c.prefixes = append(c.prefixes, p.Prefix)
	}
	for _, a := range v.addrs {
		c.addrs = append(c.addrs, a.Addr)
	}
	m.adverts = append(m.adverts, c)
	// §18.2.1: preference 255 is taken at once; after the first RT the
	// first Advertise is taken at once.
	if msg.Preference == 255 || !now.Before(m.ex.collectUntil) {
		return m.selectServer(now)
	}
	return nil
}

// naSuffix names the IA_NA's status, if it had one.
func naSuffix(v verdict) string {
	switch {
	case v.naStatus != nil:
		return " (IA_NA status " + v.naStatus.String() + ")"
	case v.na == nil:
		return " (no IA_NA)"
	}
	return ""
}

// discardedSuffix names the IA_PREFIXes check left out, for a rejection.
func discardedSuffix(v verdict) string {
	if len(v.discarded) == 0 {
		return ""
	}
	return " (discarded: " + strings.Join(v.discarded, "; ") + ")"
}

// discardedProblems reports the IA_PREFIXes of an accepted Reply that
// were left out, so an operator sees why a delegated prefix is missing.
func (m *Machine) discardedProblems(now time.Time, msg *message, v verdict, from netip.Addr) []Action {
	var acts []Action
	for _, d := range msg.ignored {
		acts = append(acts, m.problem(now, fmt.Sprintf("%s from %s: %s", typeName(msg.Type), from, d)))
	}
	for _, d := range v.discarded {
		acts = append(acts, m.problem(now, fmt.Sprintf("discarded from %s from %s: %s", typeName(msg.Type), from, d)))
	}
	for _, d := range v.ignored {
		acts = append(acts, m.problem(now, fmt.Sprintf("%s from %s: %s", typeName(msg.Type), from, d)))
	}
	return acts
}

// selectServer picks the Advertise with the highest preference, the
// earliest among equals (RFC 8415 §18.2.9), and Requests from it.
func (m *Machine) selectServer(now time.Time) []Action {
	cs := slices.Clone(m.adverts)
	slices.SortStableFunc(cs, func(a, b candidate) int { return b.preference - a.preference })
	return m.startRequest(now, cs[0], cs[1:])
}

func (m *Machine) receiveReply(now time.Time, msg *message, v verdict, from netip.Addr, reject func(string) []Action) []Action {
	ex := m.ex
	if v.status != nil && ex.typ == dhcpv6.MessageTypeSolicit {
		// A rapid-commit Reply that grants nothing is treated like an
		// Advertise without prefixes: ignored, Solicit carries on.
		return reject(fmt.Sprintf("status %s", v.status))
	}
	if v.status != nil {
		switch v.status.Code {
		case statusUseMulticast:
			// §18.2.10 would have us resend by multicast at once, but we
			// only ever send by multicast: a server saying this anyway is
			// answered at the retransmission pace, not with a burst per
			// Reply.
			return reject(fmt.Sprintf("status %s: we sent by multicast; retrying at the retransmission pace", v.status))
		case statusUnspecFail:
			// §18.2.10: retry, but only at the retransmission pace.
			return reject(fmt.Sprintf("status %s: retrying", v.status))
		case statusNoBinding:
			if ex.typ == dhcpv6.MessageTypeRenew || ex.typ == dhcpv6.MessageTypeRebind {
				// §18.2.10.1: the server lost our binding: Request it from
				// the server that answered, keeping the lease meanwhile.
				acts := reject(fmt.Sprintf("status %s: requesting the binding", v.status))
				c := candidate{serverID: msg.ServerID, addr: from, prefixes: leasePrefixes(m.lease)}
				return append(acts, m.startRequest(now, c, nil)...)
			}
			return reject(fmt.Sprintf("status %s", v.status))
		case statusNoPrefixAvail:
			if ex.typ == dhcpv6.MessageTypeRenew || ex.typ == dhcpv6.MessageTypeRebind {
				// The server will not extend; our prefixes stay valid
				// until their lifetimes end (§18.2.10.1), so keep them and
				// keep asking at the retransmission pace (another server
				// may answer a Rebind).
				return reject(fmt.Sprintf("status %s: keeping the lease until it expires", v.status))
			}
			return m.refused(now, "status "+v.status.String(), reject)
		default: // NotOnLink and anything unknown: the binding is unusable
			if ex.typ == dhcpv6.MessageTypeRequest && m.lease == nil {
				return m.refused(now, "status "+v.status.String(), reject)
			}
			acts := reject(fmt.Sprintf("status %s: soliciting again", v.status))
			if m.lease != nil {
				m.lease = nil
				acts[0].LeaseChanged = true
			}
			return append(acts, m.startSolicit(now, false)...)
		}
	}
	if ex.typ == dhcpv6.MessageTypeRenew || ex.typ == dhcpv6.MessageTypeRebind {
		if v.ia == nil {
			// §18.2.10.1: IA missing: as if no Reply came.
			return reject(fmt.Sprintf("no IA_PD for IAID %d", m.cfg.IAID))
		}
	} else if len(v.usable) == 0 {
		return reject("no usable prefix in Reply" + discardedSuffix(v))
	} else if m.cfg.RequestAddress == AddressRequire && len(v.addrs) == 0 {
		why := "no usable address (request_address = require)" + naSuffix(v)
		if ex.typ == dhcpv6.MessageTypeRequest {
			return m.refused(now, why, reject)
		}
		return reject(why)
	}
	acts := m.discardedProblems(now, msg, v, from)
	if m.wantNA() && len(v.addrs) == 0 && (v.naStatus != nil || ex.withNA) && ex.typ != dhcpv6.MessageTypeRelease {
		acts = append(acts, m.problem(now, fmt.Sprintf("%s from %s: no address in the IA_NA%s; the prefix is used without one", typeName(msg.Type), from, naSuffix(v))))
	}
	return append(acts, m.bind(now, msg, v, from)...)
}

// refused handles a server refusing our Request (NoPrefixAvail, NotOnLink,
// or a status we do not know). RFC 8415 §18.2.10.1 lets the client try
// another server or restart discovery; both happen at once, with the
// normal timing: the next server that Advertised is Requested right away,
// and without one a fresh Solicit starts with the §18.2.1 random delay and
// IRT = SOL_TIMEOUT. Waiting SOL_MAX_RT instead (up to an hour, and then
// retransmitting at that pace) left a router offline for hours after one
// refusal by a server that had a prefix again seconds later.
//
// A server that Advertises and then refuses every Request would otherwise
// be asked every second or two forever, so after refusedFree refusals in a
// row the delay before the Solicit doubles from SOL_TIMEOUT per further
// refusal, up to SOL_MAX_RT. The count restarts when a lease is bound.
func (m *Machine) refused(now time.Time, why string, reject func(string) []Action) []Action {
	ex := m.ex
	m.refusals++
	// A lease we still hold (we Requested a binding the server had lost)
	// stays ours until its lifetimes end (§18.2.10.1) while we look for a
	// server that extends it.
	if len(ex.others) > 0 {
		acts := reject(why + ": requesting from the next server")
		return append(acts, m.startRequest(now, ex.others[0], ex.others[1:])...)
	}
	acts := reject(why + ": soliciting again")
	return append(acts, m.startSolicit(now, m.refusals > refusedFree)...)
}

// refusedFree is how many refused Requests in a row restart discovery
// without any backoff.
const refusedFree = 3

// bind installs the Reply's IA_PD as the lease.
func (m *Machine) bind(now time.Time, msg *message, v verdict, from netip.Addr) []Action {
	old := m.lease
	l := &Lease{
		IAID:       m.cfg.IAID,
		ServerID:   msg.ServerID,
		ServerAddr: from,
		Acquired:   now,
		Hint:       m.cfg.PrefixLength,
	}
	// RFC 8415 §18.2.10: the Reply's options replace what we had; a server
	// that stopped sending them has none for us now.
	l.DNS, l.Domains = msg.DNS, msg.Domains
	mentioned := map[netip.Prefix]bool{}
	for _, p := range v.ia.Prefixes {
		mentioned[p.Prefix.Masked()] = true
	}
	l.Prefixes = append(l.Prefixes, v.usable...)
	l.Addresses = append(l.Addresses, v.addrs...)
	if old != nil && m.ex != nil && m.ex.typ != dhcpv6.MessageTypeSolicit {
		// The same for addresses the Reply does not mention (an IA_NA
		// left out, or refused with NoAddrsAvail, while the IA_PD was
		// extended): they live out their lifetimes.
		gone := now.Sub(old.Acquired)
		said := map[netip.Addr]bool{}
		if v.na != nil {
			for _, a := range v.na.Addrs {
				said[a.Addr] = true
			}
		}
		for _, a := range old.Addresses {
			if said[a.Addr] {
				continue
			}
			a.Preferred, a.Valid = countDown(a.Preferred, a.Valid, gone)
			if a.Valid > 0 && m.wantNA() {
				l.Addresses = append(l.Addresses, a)
			}
		}
	}
	if old != nil && m.ex != nil && m.ex.typ != dhcpv6.MessageTypeSolicit {
		// §18.2.10.1: prefixes the Reply does not mention keep the
		// lifetimes they had; count them down to the new Acquired time.
		gone := now.Sub(old.Acquired)
		for _, p := range old.Prefixes {
			if mentioned[p.Prefix] {
				continue
			}
			p.Preferred, p.Valid = countDown(p.Preferred, p.Valid, gone)
			if p.Valid > 0 {
				p.Carried = true
				l.Prefixes = append(l.Prefixes, p)
			}
		}
		if bytes.Equal(old.ServerID, msg.ServerID) && msg.Auth == nil {
			l.ReconfigureKey = old.ReconfigureKey
		}
	}
	if a := msg.Auth; a != nil && a.Protocol == authProtoReconfigureKey && a.InfoType == authTypeKey {
		l.ReconfigureKey = a.Value
		m.replay, m.haveReplay = a.Replay, true
	}
	m.ex = nil
	if len(l.Prefixes) == 0 {
		// Every prefix was withdrawn (valid lifetime 0): the binding is
		// empty, so start over.
		m.lease = l
		return m.expire(now)
	}
	l.T1, l.T2 = effectiveTimers(v.ia.T1, v.ia.T2, l.Prefixes)
	if v.na != nil && len(v.addrs) > 0 {
		// One Renew serves both IAs (RFC 8415 §18.2.4): at the earlier T1.
		var as []Prefix
		for _, a := range v.addrs {
			as = append(as, Prefix{Preferred: a.Preferred, Valid: a.Valid})
		}
		t1, t2 := effectiveTimers(v.na.T1, v.na.T2, as)
		l.T1, l.T2 = min(l.T1, t1), min(l.T2, t2)
	}
	m.lease = l
	m.refusals = 0
	a := m.setState(now, StateBound)
	a.LeaseChanged = true
	if p, ok := l.Chosen(l.Hint, now); ok {
		verb := "bound"
		if old != nil {
			verb = "renewed"
			if op, ok := old.Chosen(old.Hint, now); ok && op.Prefix != p.Prefix {
				verb = "renumbered from " + op.Prefix.String() + ", now"
			}
		}
		a.Info = fmt.Sprintf("%s %s by %s, T1 %s, T2 %s, valid %s", verb, p.Prefix, from, l.T1, l.T2, p.Valid)
		for _, ad := range l.Addresses {
			a.Info += fmt.Sprintf(", address %s valid %s", ad.Addr, ad.Valid)
		}
	}
	return []Action{a}
}

// effectiveTimers applies RFC 8415 §21.21: T1 or T2 of 0 leaves the choice
// to the client, which uses 0.5 and 0.8 times the shortest preferred
// lifetime (§18.2.4). An infinite lifetime means no renewal at all.
func effectiveTimers(t1, t2 time.Duration, ps []Prefix) (time.Duration, time.Duration) {
	if t1 != 0 && t2 != 0 {
		return t1, t2
	}
	var shortest time.Duration
	for _, p := range ps {
		life := p.Preferred
		if life == 0 {
			life = p.Valid // deprecated: at least renew before it is gone
		}
		if shortest == 0 || life < shortest {
			shortest = life
		}
	}
	if shortest == Infinity {
		return orDefault(t1, Infinity), orDefault(t2, Infinity)
	}
	if t1 == 0 {
		t1 = shortest / 2
		if t2 != 0 && t1 > t2 {
			t1 = t2
		}
	}
	if t2 == 0 {
		t2 = max(shortest*4/5, t1)
	}
	return t1, t2
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// receiveReconfigure handles a server's Reconfigure (RFC 8415 §18.2.11),
// which is accepted only with valid Reconfigure Key authentication
// (§20.4): anyone on the link could otherwise make us renumber.
func (m *Machine) receiveReconfigure(now time.Time, msg *message, b []byte, from netip.Addr, reject func(string) []Action) []Action {
	if m.state != StateBound || m.lease == nil {
		return reject(fmt.Sprintf("unexpected in state %s", m.state))
	}
	if !bytes.Equal(msg.ClientID, m.cfg.DUID) {
		return reject("Client ID missing or not ours")
	}
	if !bytes.Equal(msg.ServerID, m.lease.ServerID) {
		return reject("Server ID is not our server's")
	}
	if err := checkReconfigureAuth(b, msg.Auth, m.lease.ReconfigureKey); err != nil {
		return reject(err.Error())
	}
	if m.haveReplay && msg.Auth.Replay <= m.replay {
		return reject(fmt.Sprintf("replayed: counter %d not above %d", msg.Auth.Replay, m.replay))
	}
	m.replay, m.haveReplay = msg.Auth.Replay, true
	switch msg.ReconfMsg {
	case dhcpv6.MessageTypeRenew:
		return append([]Action{{Info: "reconfigure: renewing"}}, m.startRenew(now)...)
	case dhcpv6.MessageTypeRebind:
		return append([]Action{{Info: "reconfigure: rebinding"}}, m.startRebind(now)...)
	}
	return reject(fmt.Sprintf("Reconfigure Message type %d not supported", msg.ReconfMsg))
}

// typeName is the RFC 8415 §7.3 name of a message type, as operators read
// it in logs and Problems ("Reply", not "REPLY").
func typeName(t dhcpv6.MessageType) string {
	switch t {
	case dhcpv6.MessageTypeSolicit:
		return "Solicit"
	case dhcpv6.MessageTypeAdvertise:
		return "Advertise"
	case dhcpv6.MessageTypeRequest:
		return "Request"
	case dhcpv6.MessageTypeRenew:
		return "Renew"
	case dhcpv6.MessageTypeRebind:
		return "Rebind"
	case dhcpv6.MessageTypeReply:
		return "Reply"
	case dhcpv6.MessageTypeRelease:
		return "Release"
	case dhcpv6.MessageTypeReconfigure:
		return "Reconfigure"
	}
	return fmt.Sprintf("message type %d", t)
}
