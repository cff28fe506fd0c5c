package hook

import (
	"net/netip"
	"time"
)

// Lease is what an Announcer is told about one uplink after every change:
// the client's state and the prefix it chose (invalid when none), with the
// time the server last confirmed it.
type Lease struct {
	State    string
	Prefix   Prefix
	Acquired time.Time
}

// Announcer keeps what one WAN's script was last told and turns each new
// observation into at most one dhcpcd-compatible event: a new or moved prefix
// (BOUND6), the saved lease confirmed after a restart (REBOOT6), a renewal
// (RENEW6/REBIND6), or loss (EXPIRE6/RELEASE6). It is pure and not safe for
// concurrent use: the daemon's loop owns it.
type Announcer struct {
	Interface string
	IAID      uint32

	told     bool // an event went out since start
	prefix   netip.Prefix
	acquired time.Time
}

// Restored tells a new Announcer what the script heard before a restart
// (the saved lease), so that confirming it is REBOOT6, not BOUND6.
func (a *Announcer) Restored(p netip.Prefix, acquired time.Time) {
	a.prefix, a.acquired = p, acquired
}

// boundState is the client state in which a lease is news.
const boundState = "bound"

// Observe returns the event for l, if any, and records it as told.
func (a *Announcer) Observe(l Lease) (Event, bool) {
	cur := l.Prefix
	if cur.Prefix.IsValid() && l.State != boundState {
		// A lease restored from disk (or held in standby) is not news until
		// the server confirms it.
		return Event{}, false
	}
	if !a.told && !cur.Prefix.IsValid() {
		return Event{}, false
	}
	reason := Classify(l.State, a.prefix, cur.Prefix, !a.told)
	if cur.Prefix.IsValid() && cur.Prefix == a.prefix && l.Acquired.Equal(a.acquired) {
		reason = "" // nothing new since the last observation
	}
	if reason == "" {
		return Event{}, false
	}
	ev := Event{Reason: reason, Interface: a.Interface, IAID: a.IAID}
	if cur.Prefix.IsValid() {
		ev.New = []Prefix{cur}
	}
	if a.prefix.IsValid() && a.prefix != cur.Prefix {
		ev.Old = []Prefix{{Prefix: a.prefix}}
	}
	a.told, a.prefix, a.acquired = true, cur.Prefix, l.Acquired
	return ev, true
}
