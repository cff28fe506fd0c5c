package ha

import (
	"errors"
	"fmt"
	"math/rand"
	"net/netip"
	"slices"
	"time"
)

// Role is the state of a virtual router instance (RFC 5798 §6.4).
type Role string

// The three states of RFC 5798 §6.4.
const (
	RoleInitialize Role = "initialize"
	RoleBackup     Role = "backup"
	RoleMaster     Role = "master"
)

// Reasons carried by role-change Events, stable strings for logs and status.
const (
	ReasonStartup    = "startup"                // Initialize → Backup
	ReasonOwner      = "address owner"          // Initialize → Master with priority 255 (§6.4.1)
	ReasonMasterDown = "master down"            // Master_Down_Timer fired (§6.4.2)
	ReasonMasterLeft = "master sent priority 0" // takeover after Skew_Time (§6.4.2)
	ReasonPreempt    = "preempted lower priority master"
	ReasonHigherPeer = "higher priority peer" // a master stepped down (§6.4.3)
	ReasonTieBreak   = "equal priority, higher address peer"
	ReasonShutdown   = "shutdown"
)

// Config is one virtual router instance.
type Config struct {
	VRID     uint8 // 1..255
	Priority uint8 // 1..254 for a backup-capable router; 255 = address owner
	// AdvertInterval is how often the master advertises (RFC 5798 §5.2.7),
	// in whole centiseconds up to 40.95 s.
	AdvertInterval time.Duration
	// Preempt lets a higher-priority backup take over from a lower-priority
	// master (Preempt_Mode, §6.1).
	Preempt bool
	// PreemptDelay holds back preemption, like keepalived's preempt_delay:
	// a backup keeps following a lower-priority master for this long after it
	// first saw it, then ignores its adverts and takes over when
	// Master_Down_Timer fires. Zero preempts at once (RFC behaviour).
	PreemptDelay time.Duration
	// Addrs are the virtual addresses: first the virtual link-local
	// (§5.2.9), then the LAN router addresses. A keepalived peer must list the
	// same addresses in the same order.
	Addrs []netip.Addr
	// AcceptMode (§6.1) is carried for the driver: whether the master accepts
	// packets addressed to the virtual addresses it does not own.
	AcceptMode bool
	// Primary is this router's own link-local, the source of its adverts. It
	// breaks ties between equal priorities (§6.4.3). Node fills it in from
	// the socket when it is unset.
	Primary netip.Addr
}

// Validate reports the first problem that would make the instance misbehave
// or be rejected by peers.
func (c Config) Validate() error {
	switch {
	case c.VRID == 0:
		return errors.New("vrrp: vrid must be 1..255 (RFC 5798 §5.2.3)")
	case c.Priority == 0:
		return errors.New("vrrp: priority 0 is reserved for a master that stops (RFC 5798 §5.2.4)")
	case c.AdvertInterval < 10*time.Millisecond || c.AdvertInterval > maxAdvertCentis*10*time.Millisecond:
		return fmt.Errorf("vrrp: advert interval %v outside 10ms..40.95s (RFC 5798 §5.2.7)", c.AdvertInterval)
	case c.AdvertInterval%(10*time.Millisecond) != 0:
		return fmt.Errorf("vrrp: advert interval %v is not a whole number of centiseconds", c.AdvertInterval)
	case c.PreemptDelay < 0:
		return fmt.Errorf("vrrp: negative preempt delay %v", c.PreemptDelay)
	case len(c.Addrs) == 0:
		return errors.New("vrrp: no virtual addresses")
	case len(c.Addrs) > 255:
		return fmt.Errorf("vrrp: %d virtual addresses, at most 255 fit in an advert", len(c.Addrs))
	case !c.Addrs[0].Is6() || !c.Addrs[0].IsLinkLocalUnicast():
		return fmt.Errorf("vrrp: the first virtual address %v must be an IPv6 link-local (RFC 5798 §5.2.9)", c.Addrs[0])
	}
	for _, a := range c.Addrs {
		if !a.Is6() || a.Is4In6() || a.Zone() != "" {
			return fmt.Errorf("vrrp: virtual address %v is not a plain IPv6 address", a)
		}
	}
	if c.Primary.IsValid() && !c.Primary.IsLinkLocalUnicast() {
		return fmt.Errorf("vrrp: primary address %v is not a link-local", c.Primary)
	}
	return nil
}

// Event is one output of the Machine, in the order the driver must act on
// it: send the advert first, then apply the role change.
type Event struct {
	// Send, when not nil, is an advert to multicast to Group now.
	Send *Advert
	// RoleChanged reports a transition to Role, for Reason.
	RoleChanged bool
	Role        Role
	Reason      string
}

// Machine is the VRRPv3 state machine of RFC 5798 §6.4 for one virtual
// router. It is pure: every method takes the current time, returns the
// Events to act on, and Deadline says when Timer must be called next. It is
// not safe for concurrent use.
type Machine struct {
	cfg  Config
	role Role

	// masterAdverInterval is Master_Adver_Interval (§6.1): the interval
	// learned from the current master's adverts, which sets
	// Master_Down_Interval.
	masterAdverInterval time.Duration
	masterDownAt        time.Time // Master_Down_Timer, in Backup
	adverAt             time.Time // Adver_Timer, in Master
	// preemptAt is when a delayed preemption of a lower-priority master may
	// begin (zero: not seen one yet).
	preemptAt time.Time
	// skewDeadline marks a Master_Down_Timer set to Skew_Time by a
	// priority 0 advert, so the takeover can say why.
	skewDeadline time.Time
	// preempting is set while the master's adverts are being discarded
	// because its priority is lower than ours, so the takeover can say why.
	preempting bool
	master     netip.Addr // the master we follow, as last seen
}

// NewMachine returns a machine in the Initialize state. cfg should have
// passed Validate: a zero advert interval, for one, would advertise in a
// tight loop. rnd is accepted so
// every v6edge machine has the same shape; VRRPv3 itself has no randomized
// timers (ties are broken by address, §6.4.3), so it is unused and may be
// nil.
func NewMachine(cfg Config, rnd *rand.Rand) *Machine {
	_ = rnd
	cfg.Addrs = slices.Clone(cfg.Addrs)
	return &Machine{cfg: cfg, role: RoleInitialize, masterAdverInterval: cfg.AdvertInterval}
}

// Role returns the current state.
func (m *Machine) Role() Role { return m.role }

// Priority returns the current priority.
func (m *Machine) Priority() uint8 { return m.cfg.Priority }

// Master returns the primary address of the master this backup follows, or
// this router's own address while it is master.
func (m *Machine) Master() netip.Addr {
	if m.role == RoleMaster {
		return m.cfg.Primary
	}
	return m.master
}

// MasterAdverInterval returns Master_Adver_Interval: the master's advert
// interval as learned from its adverts (§6.4.2).
func (m *Machine) MasterAdverInterval() time.Duration { return m.masterAdverInterval }

// SkewTime is ((256 - Priority) * Master_Adver_Interval) / 256 (§6.1): the
// head start a higher-priority backup gets over a lower one.
func (m *Machine) SkewTime() time.Duration {
	return time.Duration(256-int64(m.cfg.Priority)) * m.masterAdverInterval / 256
}

// MasterDownInterval is 3 * Master_Adver_Interval + Skew_Time (§6.1): how
// long a backup waits without adverts before it takes over.
func (m *Machine) MasterDownInterval() time.Duration {
	return 3*m.masterAdverInterval + m.SkewTime()
}

// Deadline is when Timer must next be called; zero in Initialize.
func (m *Machine) Deadline() time.Time {
	switch m.role {
	case RoleMaster:
		return m.adverAt
	case RoleBackup:
		return m.masterDownAt
	}
	return time.Time{}
}

// Start handles the Startup event (§6.4.1): the address owner (priority
// 255) becomes master at once, everyone else waits as backup for a master.
func (m *Machine) Start(now time.Time) []Event {
	if m.role != RoleInitialize {
		return nil
	}
	if m.cfg.Priority == 255 {
		return m.becomeMaster(now, ReasonOwner)
	}
	m.masterAdverInterval = m.cfg.AdvertInterval
	return m.becomeBackup(now, ReasonStartup)
}

// Timer handles the expiry of Deadline: Adver_Timer in Master (send the
// next advert), Master_Down_Timer in Backup (take over). Calling it early
// does nothing.
func (m *Machine) Timer(now time.Time) []Event {
	switch m.role {
	case RoleMaster:
		if now.Before(m.adverAt) {
			return nil
		}
		// Counting from now rather than from the missed deadline keeps a late
		// wake-up from sending a burst.
		m.adverAt = now.Add(m.cfg.AdvertInterval)
		return []Event{{Send: m.advert(m.cfg.Priority)}}
	case RoleBackup:
		if now.Before(m.masterDownAt) {
			return nil
		}
		reason := ReasonMasterDown
		switch {
		case m.master.IsValid() && m.masterDownAt.Equal(m.skewDeadline):
			reason = ReasonMasterLeft
		case m.preempting:
			reason = ReasonPreempt
		}
		return m.becomeMaster(now, reason)
	}
	return nil
}

// Receive handles an advert that passed ParseAdvert and the hop-limit check,
// sent from src, the sender's own link-local (§6.4.2, §6.4.3). Adverts for
// another VRID are ignored.
func (m *Machine) Receive(now time.Time, a *Advert, src netip.Addr) []Event {
	if a == nil || a.VRID != m.cfg.VRID {
		return nil
	}
	switch m.role {
	case RoleBackup:
		return m.receiveBackup(now, a, src)
	case RoleMaster:
		return m.receiveMaster(now, a, src)
	}
	return nil
}

func (m *Machine) receiveBackup(now time.Time, a *Advert, src netip.Addr) []Event {
	if a.Priority == 0 {
		// The master is leaving: take over after Skew_Time instead of the full
		// Master_Down_Interval, so the highest-priority backup goes first.
		m.master = src
		m.masterDownAt = now.Add(m.SkewTime())
		m.skewDeadline = m.masterDownAt
		m.preempting = false
		return nil
	}
	if m.cfg.Preempt && a.Priority < m.cfg.Priority {
		if m.preemptAt.IsZero() {
			m.preemptAt = now.Add(m.cfg.PreemptDelay)
		}
		if !now.Before(m.preemptAt) {
			// Discard: Master_Down_Timer will fire and we take over.
			m.preempting = true
			return nil
		}
		// Within the preempt delay: follow this master as if it were higher.
	} else {
		m.preemptAt = time.Time{}
	}
	m.preempting = false
	m.master = src
	if a.MaxAdvertInt > 0 {
		m.masterAdverInterval = a.MaxAdvertInt
	}
	m.masterDownAt = now.Add(m.MasterDownInterval())
	m.skewDeadline = time.Time{}
	return nil
}

func (m *Machine) receiveMaster(now time.Time, a *Advert, src netip.Addr) []Event {
	if a.Priority == 0 {
		// Another master is leaving: advertise at once so the backups keep
		// following us instead of electing a new master (§6.4.3).
		m.adverAt = now.Add(m.cfg.AdvertInterval)
		return []Event{{Send: m.advert(m.cfg.Priority)}}
	}
	reason := ""
	switch {
	case a.Priority > m.cfg.Priority:
		reason = ReasonHigherPeer
	case a.Priority == m.cfg.Priority && src.Compare(m.cfg.Primary) > 0:
		// Two masters at once (a split brain, or both started together): the
		// higher primary address wins (§6.4.3).
		reason = ReasonTieBreak
	default:
		return nil
	}
	m.master = src
	if a.MaxAdvertInt > 0 {
		m.masterAdverInterval = a.MaxAdvertInt
	}
	return m.becomeBackup(now, reason)
}

// Shutdown handles the Shutdown event (§6.4.2, §6.4.3): a master sends one
// advert with priority 0 so a backup takes over after Skew_Time; every role
// goes to Initialize.
func (m *Machine) Shutdown(now time.Time) []Event {
	var evs []Event
	switch m.role {
	case RoleInitialize:
		return nil
	case RoleMaster:
		evs = append(evs, Event{Send: m.advert(0)})
	}
	m.role = RoleInitialize
	m.adverAt, m.masterDownAt, m.preemptAt = time.Time{}, time.Time{}, time.Time{}
	return append(evs, Event{RoleChanged: true, Role: RoleInitialize, Reason: ReasonShutdown})
}

// SetPriority changes the priority, for tracking (keepalived track_*). A
// master advertises the new priority at once so that a preempting backup
// need not wait for the next interval; a backup recomputes Skew_Time, which
// takes effect at the next advert it receives. Priority 0 is reserved for
// Shutdown (§5.2.4) and ignored.
func (m *Machine) SetPriority(now time.Time, p uint8) []Event {
	if p == m.cfg.Priority || p == 0 {
		return nil
	}
	m.cfg.Priority = p
	if m.role != RoleMaster {
		return nil
	}
	m.adverAt = now.Add(m.cfg.AdvertInterval)
	return []Event{{Send: m.advert(p)}}
}

func (m *Machine) becomeMaster(now time.Time, reason string) []Event {
	m.role = RoleMaster
	m.masterDownAt, m.preemptAt, m.skewDeadline = time.Time{}, time.Time{}, time.Time{}
	m.preempting = false
	m.master = netip.Addr{}
	m.adverAt = now.Add(m.cfg.AdvertInterval)
	return []Event{
		{Send: m.advert(m.cfg.Priority)},
		{RoleChanged: true, Role: RoleMaster, Reason: reason},
	}
}

func (m *Machine) becomeBackup(now time.Time, reason string) []Event {
	m.role = RoleBackup
	m.adverAt, m.preemptAt, m.skewDeadline = time.Time{}, time.Time{}, time.Time{}
	m.preempting = false
	m.masterDownAt = now.Add(m.MasterDownInterval())
	return []Event{{RoleChanged: true, Role: RoleBackup, Reason: reason}}
}

func (m *Machine) advert(priority uint8) *Advert {
	return &Advert{
		Version:      Version,
		Type:         TypeAdvertisement,
		VRID:         m.cfg.VRID,
		Priority:     priority,
		MaxAdvertInt: m.cfg.AdvertInterval,
		Addrs:        slices.Clone(m.cfg.Addrs),
	}
}
