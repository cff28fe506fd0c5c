package dhcp6pd

import (
	"net/netip"
	"slices"
	"time"
)

// State is where the client is in the RFC 8415 §18 exchange sequence. The
// values are the wan.state strings of the status JSON.
type State string

// The client states.
const (
	StateInit       State = "init"       // started, first Solicit not sent yet
	StateSoliciting State = "soliciting" // §18.2.1, collecting Advertises
	StateRequesting State = "requesting" // §18.2.2, Request to the chosen server
	StateBound      State = "bound"      // lease held, waiting for T1
	StateRenewing   State = "renewing"   // §18.2.4, Renew to our server
	StateRebinding  State = "rebinding"  // §18.2.5, Rebind to any server
	StateExpired    State = "expired"    // every prefix's valid lifetime ran out; Solicit follows
	StateReleased   State = "released"   // §18.2.7, released on request; idle until asked again
	StateStandby    State = "standby"    // HA backup: lease held, nothing sent
)

// Infinity is the lifetime 0xffffffff (RFC 8415 §7.7): it never runs out.
const Infinity = time.Duration(0xffffffff) * time.Second

// Prefix is one IA_PREFIX of a lease (RFC 8415 §21.22).
type Prefix struct {
	Prefix    netip.Prefix
	Preferred time.Duration // as received (Infinity for 0xffffffff)
	Valid     time.Duration
}

// Lease is one IA_PD binding as the server confirmed it.
type Lease struct {
	IAID       uint32
	ServerID   []byte     // server DUID
	ServerAddr netip.Addr // where the Reply came from (link-local)
	// Unicast is the server address from the Server Unicast option
	// (RFC 8415 §21.12), if the server allowed unicast; invalid otherwise.
	Unicast        netip.Addr
	T1, T2         time.Duration // effective, after the §21.21 rules for 0
	Acquired       time.Time     // when the Reply was received; all lifetimes count from here
	Prefixes       []Prefix      // every prefix of the IA_PD
	ReconfigureKey []byte        // RFC 8415 §20.4 key from the Reply's Auth option, if any
	// Hint is the configured prefix length; PreferredUntil and ValidUntil
	// report the prefix Chosen(Hint) picks.
	Hint int
}

// Chosen returns the prefix that fits the configuration: one whose length
// equals hint, else the shortest (largest) one. Prefixes with a zero valid
// lifetime are never chosen. Ties go to the first in the Reply's order.
func (l *Lease) Chosen(hint int) (Prefix, bool) {
	if l == nil {
		return Prefix{}, false
	}
	best := -1
	for i, p := range l.Prefixes {
		if p.Valid <= 0 {
			continue
		}
		if p.Prefix.Bits() == hint {
			return p, true
		}
		if best < 0 || p.Prefix.Bits() < l.Prefixes[best].Prefix.Bits() {
			best = i
		}
	}
	if best < 0 {
		return Prefix{}, false
	}
	return l.Prefixes[best], true
}

// PreferredUntil is when the chosen prefix stops being preferred.
func (l *Lease) PreferredUntil() time.Time {
	p, ok := l.Chosen(l.hint())
	if !ok {
		return time.Time{}
	}
	return l.Acquired.Add(p.Preferred)
}

// ValidUntil is when the chosen prefix stops being valid.
func (l *Lease) ValidUntil() time.Time {
	p, ok := l.Chosen(l.hint())
	if !ok {
		return time.Time{}
	}
	return l.Acquired.Add(p.Valid)
}

func (l *Lease) hint() int {
	if l == nil {
		return 0
	}
	return l.Hint
}

// lastValid is when the last prefix of the lease expires: the binding lives
// until then, and Rebind may run until then (RFC 8415 §18.2.5).
func (l *Lease) lastValid() time.Time {
	var t time.Time
	for _, p := range l.Prefixes {
		if until := l.Acquired.Add(p.Valid); until.After(t) {
			t = until
		}
	}
	return t
}

// Clone returns a deep copy, so a Snapshot never aliases the machine's lease.
func (l *Lease) Clone() *Lease {
	if l == nil {
		return nil
	}
	c := *l
	c.ServerID = slices.Clone(l.ServerID)
	c.Prefixes = slices.Clone(l.Prefixes)
	c.ReconfigureKey = slices.Clone(l.ReconfigureKey)
	return &c
}

// Snapshot is what the client publishes on every change.
type Snapshot struct {
	State      State
	Lease      *Lease // nil when none (or expired/released)
	DUID       []byte // ours
	Problems   []string
	LastChange time.Time
}
