package ra

import (
	"math/rand/v2"
	"net/netip"
	"time"
)

// RFC 4861 §10 router constants.
const (
	MaxInitialRtrAdvertisements = 3                      // MAX_INITIAL_RTR_ADVERTISEMENTS
	MaxInitialRtrAdvertInterval = 16 * time.Second       // MAX_INITIAL_RTR_ADVERT_INTERVAL
	MaxRADelayTime              = 500 * time.Millisecond // MAX_RA_DELAY_TIME
	MinDelayBetweenRAs          = 3 * time.Second        // MIN_DELAY_BETWEEN_RAS
	// RenumberAdverts is how many multicast RAs go out, MinDelayBetweenRAs
	// apart, after the prefix set changed. RFC 9096 §3.2 wants hosts to
	// learn of a stale prefix quickly and RAs are unreliable multicast, so
	// one RA is not enough; three mirror the initial burst.
	RenumberAdverts = 3
	// maxPendingUnicast bounds the queue of unicast answers, so an RS flood
	// from spoofed sources costs memory only up to this many entries; the
	// rest are answered by one (rate-limited) multicast RA.
	maxPendingUnicast = 64
)

// Schedule decides when Router Advertisements are sent. It is pure: every
// method takes the current time and, where it draws, a *rand.Rand.
//
// Answers to Router Solicitations (§6.2.6) are unicast to the soliciting
// host when its source address is specified, after the mandatory random
// 0..MaxRADelay delay. The RFC allows this ("MAY unicast"), and it lets
// every host that asks get its answer within MaxRADelay even when several
// hosts (or one impatient host) ask within MinDelayBetweenRAs, which a
// multicast answer could not do without breaking the rate limit. An RS from
// the unspecified address is answered by a multicast RA that respects
// MinDelayBetweenRAs.
//
// The exported fields are the RFC constants; tests shrink them.
type Schedule struct {
	MinInterval, MaxInterval time.Duration // MinRtrAdvInterval, MaxRtrAdvInterval
	MaxInitialAdverts        int           // MAX_INITIAL_RTR_ADVERTISEMENTS
	MaxInitialInterval       time.Duration // MAX_INITIAL_RTR_ADVERT_INTERVAL
	MaxRADelay               time.Duration // MAX_RA_DELAY_TIME
	MinDelayBetweenRAs       time.Duration // MIN_DELAY_BETWEEN_RAS
	RenumberAdverts          int           // RAs sent MinDelayBetweenRAs apart after a prefix change

	initialLeft   int       // unsolicited RAs still in the initial burst
	renumberLeft  int       // RAs still in the renumbering burst
	next          time.Time // next multicast RA; zero = none scheduled
	lastMulticast time.Time // zero = never sent
	unicast       map[netip.Addr]time.Time
}

// NewSchedule returns a Schedule with the RFC 4861 constants and the
// given interval bounds (0 = the §6.2.1 defaults).
func NewSchedule(minInterval, maxInterval time.Duration) *Schedule {
	lo, hi := Config{MinInterval: minInterval, MaxInterval: maxInterval}.intervals()
	return &Schedule{
		MinInterval:        lo,
		MaxInterval:        hi,
		MaxInitialAdverts:  MaxInitialRtrAdvertisements,
		MaxInitialInterval: MaxInitialRtrAdvertInterval,
		MaxRADelay:         MaxRADelayTime,
		MinDelayBetweenRAs: MinDelayBetweenRAs,
		RenumberAdverts:    RenumberAdverts,
	}
}

// Start begins advertising (the interface became an advertising interface,
// §6.2.4): the first RA is due at once (or as soon as the rate limit
// allows), followed by the initial burst.
func (s *Schedule) Start(now time.Time) {
	s.initialLeft = s.MaxInitialAdverts
	s.next = s.earliestMulticast(now)
}

// Stop forgets every pending RA (the interface stopped advertising). The
// time of the last multicast RA is kept so a quick restart still honours
// the rate limit.
func (s *Schedule) Stop() {
	s.next = time.Time{}
	s.initialLeft, s.renumberLeft = 0, 0
	clear(s.unicast)
}

// Renumber schedules RenumberAdverts RAs: the first as soon as the rate
// limit allows, the others MinDelayBetweenRAs apart. Called when the prefix
// set changed, because a deprecation that waits for the next periodic RA
// leaves hosts using a dead prefix for minutes.
func (s *Schedule) Renumber(now time.Time) {
	if s.next.IsZero() {
		return // not advertising
	}
	s.renumberLeft = s.RenumberAdverts
	if t := s.earliestMulticast(now); t.Before(s.next) {
		s.next = t
	}
}

// Solicited records a valid Router Solicitation from src received at now.
func (s *Schedule) Solicited(now time.Time, src netip.Addr, r *rand.Rand) {
	if s.next.IsZero() {
		return // not advertising
	}
	// §6.2.6: "MUST be delayed by a random time between 0 and
	// MAX_RA_DELAY_TIME seconds", to avoid synchronised answers from
	// several routers.
	delay := randDuration(r, 0, s.MaxRADelay)
	if src.IsValid() && !src.IsUnspecified() && (len(s.unicast) < maxPendingUnicast || !s.unicast[src].IsZero()) {
		if s.unicast == nil {
			s.unicast = make(map[netip.Addr]time.Time)
		}
		if _, pending := s.unicast[src]; !pending {
			s.unicast[src] = now.Add(delay)
		}
		return
	}
	// §6.2.6: a multicast answer within MIN_DELAY_BETWEEN_RAS of the last
	// one goes out MIN_DELAY_BETWEEN_RAS plus the random delay after it;
	// and it never postpones an RA already scheduled earlier.
	t := now.Add(delay)
	if !s.lastMulticast.IsZero() && now.Sub(s.lastMulticast) < s.MinDelayBetweenRAs {
		t = s.lastMulticast.Add(s.MinDelayBetweenRAs + delay)
	}
	if t.Before(s.next) {
		s.next = t
	}
}

// Next returns when Fire should next be called; zero when nothing is
// scheduled.
func (s *Schedule) Next() time.Time {
	next := s.next
	for _, t := range s.unicast {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next
}

// Fire returns what is due at now: whether a multicast RA should go out and
// which hosts get a unicast one. The caller sends them; the multicast RA is
// counted as sent and the next one scheduled.
func (s *Schedule) Fire(now time.Time, r *rand.Rand) (multicast bool, unicast []netip.Addr) {
	for dst, t := range s.unicast {
		if !t.After(now) {
			unicast = append(unicast, dst)
			delete(s.unicast, dst)
		}
	}
	if s.next.IsZero() || s.next.After(now) {
		return false, unicast
	}
	// Hosts still waiting for a unicast answer hear this multicast RA.
	clear(s.unicast)
	s.lastMulticast = now
	interval := randDuration(r, s.MinInterval, s.MaxInterval)
	switch {
	case s.renumberLeft > 0:
		s.renumberLeft--
		if s.renumberLeft > 0 {
			interval = s.MinDelayBetweenRAs
		}
		// The burst also counts against the initial burst so a prefix
		// change right after start does not add three more.
		s.initialLeft = max(s.initialLeft-1, 0)
	case s.initialLeft > 0:
		// §6.2.4: the first few unsolicited RAs are at most
		// MAX_INITIAL_RTR_ADVERT_INTERVAL apart so hosts that missed the
		// first one learn fast.
		s.initialLeft--
		if s.initialLeft > 0 {
			interval = min(interval, s.MaxInitialInterval)
		}
	}
	s.next = now.Add(interval)
	return true, unicast
}

// earliestMulticast is the first instant at or after now at which a
// multicast RA may go out without breaking MIN_DELAY_BETWEEN_RAS.
func (s *Schedule) earliestMulticast(now time.Time) time.Time {
	if !s.lastMulticast.IsZero() {
		if t := s.lastMulticast.Add(s.MinDelayBetweenRAs); t.After(now) {
			return t
		}
	}
	return now
}

// randDuration draws uniformly from [lo, hi].
func randDuration(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
}
