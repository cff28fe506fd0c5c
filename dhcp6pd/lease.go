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
	// Exclude is the prefix inside Prefix the router must not use (RFC
	// 6603 PD Exclude: typically the /64 of the link to the ISP); the
	// zero Prefix when the server named none. When valid it is longer
	// than Prefix, inside it, and at most /128.
	Exclude netip.Prefix
	// Carried: the last Reply did not mention this prefix; it lives out
	// the lifetimes it had (RFC 8415 §18.2.10.1) but is no longer what
	// the server gives, so Chosen prefers the ones it named.
	Carried bool
}

// Address is one IA Address of the lease's IA_NA (RFC 8415 §21.6): the
// router's own WAN address, to be put on the uplink as a /128.
type Address struct {
	Addr      netip.Addr
	Preferred time.Duration // as received, counted from Lease.Acquired
	Valid     time.Duration
}

// AddressMode is whether the client asks for an IA_NA beside its IA_PD
// (RFC 7084 WAA-4, WAA-6, WPD-6), as in odhcp6c's -N modes.
type AddressMode string

// The address modes. The zero value is AddressNever, so a Config that
// does not set it behaves as before IA_NA support; the configuration
// file's default is AddressTry.
const (
	// AddressTry asks for both. A server that answers only the IA_PD, or
	// NoAddrsAvail in the IA_NA, still delegates the prefix. The first
	// two Solicit transmissions carry both IAs, then every other one the
	// IA_PD alone (the 3rd, 5th, ...), for servers that ignore a Solicit
	// holding both; a server's Advertise without IA_NA is Requested,
	// Renewed and Rebound with the IA_PD alone.
	AddressTry AddressMode = "try"
	// AddressRequire binds only when the server gives an address too.
	AddressRequire AddressMode = "require"
	// AddressNever asks for the IA_PD alone.
	AddressNever AddressMode = "never"
)

// Lease is one IA_PD binding as the server confirmed it.
type Lease struct {
	IAID       uint32
	ServerID   []byte     // server DUID
	ServerAddr netip.Addr // where the Reply came from (link-local)
	// Unicast is no longer set or used: the Server Unicast option (RFC
	// 8415 §21.12) is ignored, as RFC 9915 deprecates it, because a
	// server's unicast address is often not reachable from our
	// link-local source. Kept so old lease files load.
	Unicast        netip.Addr
	T1, T2         time.Duration // effective, after the §21.21 rules for 0
	Acquired       time.Time     // when the Reply was received; all lifetimes count from here
	Prefixes       []Prefix      // every prefix of the IA_PD
	ReconfigureKey []byte        // RFC 8415 §20.4 key from the Reply's Auth option, if any
	// Hint is the configured prefix length; PreferredUntil and ValidUntil
	// report the prefix Chosen(Hint, now) picks.
	Hint int
	// DNS and Domains are the ISP's recursive DNS servers and search
	// domains (RFC 3646 options 23 and 24) from the latest Reply: unicast
	// addresses (CheckDNSServer) and names (CheckDomain), at most
	// MaxDNSServers and MaxDomains of them.
	DNS     []netip.Addr
	Domains []string
	// Addresses are the IA_NA's addresses (same IAID), when one was asked
	// for and given: global unicast, preferred ≤ valid. They are renewed,
	// rebound and released together with the prefixes; ValidAddresses
	// leaves out those whose valid lifetime ran out.
	Addresses []Address
}

// ValidAddresses returns the addresses still valid at now.
func (l *Lease) ValidAddresses(now time.Time) []Address {
	if l == nil {
		return nil
	}
	var out []Address
	for _, a := range l.Addresses {
		if a.Valid > 0 && l.left(a.Valid, now) > 0 {
			out = append(out, a)
		}
	}
	return out
}

// Chosen returns the prefix the router should use at now. Only prefixes
// still valid at now and at most /64 long qualify (a longer one cannot be
// split into LANs). Among them a preferred one beats a deprecated one
// (RFC 8415 §21.22 and RFC 4862 §5.5.4: a deprecated prefix is for
// existing connections only, so after a renumbering, where the Reply
// carries the old prefix at preferred 0 beside the new one, NAT and RA
// move to the new one); then the longest remaining preferred lifetime
// wins (for deprecated ones, the longest remaining valid lifetime); ties
// go to a prefix of length hint, then to the first in the lease's order.
// A prefix the last Reply named beats one carried over from before it
// (ISC dhcpd renumbers a Rebind by leaving the old prefix out): the server
// has moved the router, whatever lifetime the old one has left.
func (l *Lease) Chosen(hint int, now time.Time) (Prefix, bool) {
	if l == nil {
		return Prefix{}, false
	}
	best := -1
	var bestKey choiceKey
	for i, p := range l.Prefixes {
		k, ok := l.choiceKey(p, hint, now)
		if !ok {
			continue
		}
		if best < 0 || k.better(bestKey) {
			best, bestKey = i, k
		}
	}
	if best < 0 {
		return Prefix{}, false
	}
	return l.Prefixes[best], true
}

// choiceKey is what Chosen compares.
type choiceKey struct {
	preferred bool
	current   bool          // named by the last Reply
	left      time.Duration // preferred lifetime left, or valid left when deprecated
	hint      bool
}

func (k choiceKey) better(o choiceKey) bool {
	if k.preferred != o.preferred {
		return k.preferred
	}
	if k.current != o.current {
		return k.current
	}
	if k.left != o.left {
		return k.left > o.left
	}
	return k.hint && !o.hint
}

func (l *Lease) choiceKey(p Prefix, hint int, now time.Time) (choiceKey, bool) {
	if p.Valid <= 0 || p.Prefix.Bits() > 64 || !p.Prefix.IsValid() {
		return choiceKey{}, false
	}
	validLeft := l.left(p.Valid, now)
	if validLeft <= 0 {
		return choiceKey{}, false
	}
	k := choiceKey{hint: p.Prefix.Bits() == hint, current: !p.Carried}
	if prefLeft := l.left(p.Preferred, now); prefLeft > 0 {
		k.preferred, k.left = true, prefLeft
	} else {
		k.left = validLeft
	}
	return k, true
}

// left is how much of lifetime d, counted from Acquired, remains at now;
// Infinity never runs down.
func (l *Lease) left(d time.Duration, now time.Time) time.Duration {
	if d == Infinity {
		return Infinity
	}
	return l.Acquired.Add(d).Sub(now)
}

// NextChoiceChange is the first instant after now at which Chosen(hint, ·)
// may pick another prefix, because some prefix stops being preferred or
// valid; zero when no lifetime will run out. The Client re-publishes its
// Snapshot then, so NAT and RA leave a dying prefix when it dies, not at
// the next Renew.
func (l *Lease) NextChoiceChange(hint int, now time.Time) time.Time {
	if l == nil {
		return time.Time{}
	}
	var next time.Time
	for _, p := range l.Prefixes {
		for _, d := range []time.Duration{p.Preferred, p.Valid} {
			if d == Infinity || d <= 0 {
				continue
			}
			at := l.Acquired.Add(d)
			if at.After(now) && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
	}
	return next
}

// PreferredUntil is when the prefix Chosen(Hint, now) stops being preferred.
func (l *Lease) PreferredUntil(now time.Time) time.Time {
	p, ok := l.Chosen(l.hint(), now)
	if !ok {
		return time.Time{}
	}
	return l.Acquired.Add(p.Preferred)
}

// ValidUntil is when the prefix Chosen(Hint, now) stops being valid.
func (l *Lease) ValidUntil(now time.Time) time.Time {
	p, ok := l.Chosen(l.hint(), now)
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
	c.DNS = slices.Clone(l.DNS)
	c.Addresses = slices.Clone(l.Addresses)
	c.Domains = slices.Clone(l.Domains)
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
