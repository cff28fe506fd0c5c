package uplink

import (
	"fmt"
	"time"
)

// HealthConfig tunes a Health machine. Zero fields take the defaults of DefaultHealthConfig.
type HealthConfig struct {
	// Interval is how often the check target is probed (SPEC.md: every second).
	Interval time.Duration
	// Misses is how many consecutive unanswered probes make the uplink unhealthy
	// (SPEC.md: 3).
	Misses int
	// HoldDown is how long an uplink that recovered from a fault must stay healthy
	// without interruption before it counts as healthy again, so that a flapping link
	// does not move new flows back and forth.
	HoldDown time.Duration
}

// DefaultHealthConfig returns the values SPEC.md promises: a probe a second, three misses,
// and a 10 s hold-down.
func DefaultHealthConfig() HealthConfig {
	return HealthConfig{Interval: time.Second, Misses: 3, HoldDown: 10 * time.Second}
}

func (c HealthConfig) withDefaults() HealthConfig {
	d := DefaultHealthConfig()
	if c.Interval <= 0 {
		c.Interval = d.Interval
	}
	if c.Misses <= 0 {
		c.Misses = d.Misses
	}
	if c.HoldDown < 0 {
		c.HoldDown = 0
	} else if c.HoldDown == 0 {
		c.HoldDown = d.HoldDown
	}
	return c
}

// Health is the health of one uplink: a pure machine fed with link, lease and probe events
// and asked with the current time. It never reads a clock.
//
// An uplink is faulty while its link is down, its lease is unusable, or Misses probes in a
// row went unanswered. A fault takes effect at once; the way back does not: once the fault
// clears, the uplink must stay fault free for HoldDown before Healthy says true again, and
// any fault inside that window starts the wait over. The very first time an uplink becomes
// usable (at start) there is nothing to hold down, so it is healthy at once.
type Health struct {
	cfg HealthConfig

	linkUp  bool
	leaseOK bool
	misses  int // consecutive unanswered probes

	// everHealthy is set once the uplink was healthy: from then on every recovery is
	// held down.
	everHealthy bool
	// okSince is when the current fault-free stretch began (zero while faulty).
	okSince time.Time
	// holding is true while the current fault-free stretch follows a fault.
	holding bool

	now time.Time // the latest time the machine was told about, for Reason
}

// NewHealth returns the machine of an uplink whose link and lease are not known yet
// (unhealthy, "link down") at now.
func NewHealth(cfg HealthConfig, now time.Time) *Health {
	return &Health{cfg: cfg.withDefaults(), now: now}
}

// Config returns the configuration in effect (defaults filled in).
func (h *Health) Config() HealthConfig { return h.cfg }

// Link records the state of the uplink's link (carrier and administratively up).
func (h *Health) Link(now time.Time, up bool) {
	h.update(now, func() { h.linkUp = up })
}

// Lease records whether the uplink's lease is usable: bound, renewing or rebinding, and not
// expired.
func (h *Health) Lease(now time.Time, ok bool) {
	h.update(now, func() { h.leaseOK = ok })
}

// ProbeResult records one probe of the check target: answered (ok) or missed. Only uplinks
// with a check target get probes; without any, probes never count against the uplink.
func (h *Health) ProbeResult(now time.Time, ok bool) {
	h.update(now, func() {
		if ok {
			h.misses = 0
		} else {
			h.misses++
		}
	})
}

// update applies a change and keeps track of when the current fault-free stretch began.
func (h *Health) update(now time.Time, change func()) {
	h.advance(now)
	wasFaulty := h.faulty()
	change()
	switch faulty := h.faulty(); {
	case faulty && !wasFaulty:
		h.okSince = time.Time{}
		h.holding = false
	case !faulty && wasFaulty:
		h.okSince = now
		h.holding = h.everHealthy && h.cfg.HoldDown > 0
		h.advance(now)
	}
}

// advance moves the clock of the machine: a hold-down that has run out ends.
func (h *Health) advance(now time.Time) {
	if now.After(h.now) {
		h.now = now
	}
	if h.faulty() {
		return
	}
	if h.holding && !now.Before(h.okSince.Add(h.cfg.HoldDown)) {
		h.holding = false
	}
	if !h.holding {
		h.everHealthy = true
	}
}

func (h *Health) faulty() bool {
	return !h.linkUp || !h.leaseOK || h.misses >= h.cfg.Misses
}

// Healthy reports whether new flows may use the uplink at now.
func (h *Health) Healthy(now time.Time) bool {
	h.advance(now)
	return !h.faulty() && !h.holding
}

// Reason says in words why the uplink is not healthy, as of the latest time the machine was
// given; "" when it is healthy.
func (h *Health) Reason() string {
	switch {
	case !h.linkUp:
		return "link down"
	case !h.leaseOK:
		return "lease expired"
	case h.misses >= h.cfg.Misses:
		return fmt.Sprintf("%d probes missed", h.misses)
	case h.holding:
		left := h.okSince.Add(h.cfg.HoldDown).Sub(h.now)
		return fmt.Sprintf("holding down after recovery (%v left)", left.Round(time.Second))
	}
	return ""
}

// Deadline is the next time Healthy may change without another event: the end of a running
// hold-down. It is zero when only an event can change the answer.
func (h *Health) Deadline() time.Time {
	if h.faulty() || !h.holding {
		return time.Time{}
	}
	return h.okSince.Add(h.cfg.HoldDown)
}
