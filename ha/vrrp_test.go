package ha

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// cmpOpts compares addresses by value and treats nil and empty slices alike.
var cmpOpts = []cmp.Option{cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()}

var (
	t0     = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	vll    = netip.MustParseAddr("fe80::1")
	lanRtr = netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1")
)

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// transition is a role change seen on the in-memory link, timed from t0.
type transition struct {
	At     time.Duration
	Node   string
	Role   Role
	Reason string
}

type member struct {
	name  string
	m     *Machine
	addr  netip.Addr
	alive bool
}

// link is an in-memory Ethernet segment: every advert one member sends is
// marshalled, parsed and delivered at once to every other live member, the
// way ff02::12 reaches everyone but the sender (multicast loopback is off).
type link struct {
	t           *testing.T
	now         time.Time
	members     []*member
	partitioned bool // drop every advert (a broken link: split brain)
	log         []transition
	sent        map[string]int
}

func newLink(t *testing.T) *link {
	return &link{t: t, now: t0, sent: map[string]int{}}
}

func (l *link) add(name string, cfg Config) *member {
	if cfg.AdvertInterval == 0 {
		cfg.AdvertInterval = time.Second
	}
	if cfg.VRID == 0 {
		cfg.VRID = 51
	}
	cfg.Addrs = []netip.Addr{vll, lanRtr}
	cfg.Primary = netip.MustParseAddr(fmt.Sprintf("fe80::%d", len(l.members)+10))
	mb := &member{name: name, m: NewMachine(cfg, nil), addr: cfg.Primary}
	l.members = append(l.members, mb)
	return mb
}

func (l *link) start(mb *member) {
	mb.alive = true
	l.handle(mb, mb.m.Start(l.now))
}

// startAll starts every member, in the order added, and runs the link for d.
func (l *link) startAll(d time.Duration) {
	for _, mb := range l.members {
		l.start(mb)
	}
	l.runFor(d)
}

func (l *link) kill(mb *member) { mb.alive = false }

func (l *link) shutdown(mb *member) {
	l.handle(mb, mb.m.Shutdown(l.now))
	mb.alive = false
}

func (l *link) handle(from *member, evs []Event) {
	// Log the sender's own transitions before delivering its adverts, so that
	// the log lists causes before their effects on the peers.
	for _, ev := range evs {
		if ev.RoleChanged {
			l.log = append(l.log, transition{l.now.Sub(t0), from.name, ev.Role, ev.Reason})
		}
	}
	for _, ev := range evs {
		if ev.Send == nil {
			continue
		}
		l.sent[from.name]++
		if l.partitioned {
			continue
		}
		b, err := ev.Send.Marshal(from.addr, Group)
		if err != nil {
			l.t.Fatalf("%s: marshal: %v", from.name, err)
		}
		for _, to := range l.members {
			if to == from || !to.alive {
				continue
			}
			a, err := ParseAdvert(b, from.addr, Group)
			if err != nil {
				l.t.Fatalf("%s → %s: parse: %v", from.name, to.name, err)
			}
			l.handle(to, to.m.Receive(l.now, a, from.addr))
		}
	}
}

// runFor advances the clock by d, firing every timer on time.
func (l *link) runFor(d time.Duration) {
	end := l.now.Add(d)
	for i := 0; ; i++ {
		if i > 100000 {
			l.t.Fatal("timers do not converge")
		}
		var next *member
		for _, mb := range l.members {
			dl := mb.m.Deadline()
			if !mb.alive || dl.IsZero() || dl.After(end) {
				continue
			}
			if next == nil || dl.Before(next.m.Deadline()) {
				next = mb
			}
		}
		if next == nil {
			break
		}
		l.now = next.m.Deadline()
		l.handle(next, next.m.Timer(l.now))
	}
	l.now = end
}

func (l *link) masters() []string {
	var ms []string
	for _, mb := range l.members {
		if mb.alive && mb.m.Role() == RoleMaster {
			ms = append(ms, mb.name)
		}
	}
	return ms
}

func TestSkewAndMasterDownInterval(t *testing.T) {
	tests := []struct {
		name       string
		priority   uint8
		interval   time.Duration
		skew, down time.Duration
	}{
		{"priority 100 at 1 s skews 609.375 ms", 100, time.Second, ms(609.375), ms(3609.375)},
		{"priority 200 at 1 s skews 218.75 ms", 200, time.Second, ms(218.75), ms(3218.75)},
		{"priority 254 at 1 s skews 7.8125 ms", 254, time.Second, ms(7.8125), ms(3007.8125)},
		{"priority 1 at 1 s skews almost a whole interval", 1, time.Second, ms(996.09375), ms(3996.09375)},
		{"priority 200 at 100 ms skews 21.875 ms", 200, 100 * time.Millisecond, ms(21.875), ms(321.875)},
		{"priority 100 at 100 ms waits 360.9375 ms", 100, 100 * time.Millisecond, ms(60.9375), ms(360.9375)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMachine(Config{VRID: 1, Priority: tt.priority, AdvertInterval: tt.interval}, nil)
			if diff := cmp.Diff([]time.Duration{tt.skew, tt.down}, []time.Duration{m.SkewTime(), m.MasterDownInterval()}, cmpOpts...); diff != "" {
				t.Errorf("skew, master down interval (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStart(t *testing.T) {
	tests := []struct {
		name     string
		priority uint8
		want     []Event
		deadline time.Duration
	}{
		{
			name: "a backup-capable router waits as backup for Master_Down_Interval", priority: 100,
			want:     []Event{{RoleChanged: true, Role: RoleBackup, Reason: ReasonStartup}},
			deadline: ms(3609.375),
		},
		{
			name: "the address owner becomes master at once and advertises", priority: 255,
			want: []Event{
				{Send: &Advert{Version: 3, Type: 1, VRID: 7, Priority: 255, MaxAdvertInt: time.Second, Addrs: []netip.Addr{vll}}},
				{RoleChanged: true, Role: RoleMaster, Reason: ReasonOwner},
			},
			deadline: time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMachine(Config{VRID: 7, Priority: tt.priority, AdvertInterval: time.Second, Addrs: []netip.Addr{vll}}, nil)
			if diff := cmp.Diff(tt.want, m.Start(t0), cmpOpts...); diff != "" {
				t.Errorf("Start events (-want +got):\n%s", diff)
			}
			if got := m.Deadline().Sub(t0); got != tt.deadline {
				t.Errorf("deadline = %v after start, want %v", got, tt.deadline)
			}
			if evs := m.Start(t0); evs != nil {
				t.Errorf("a second Start returned %v, want nothing", evs)
			}
		})
	}
}

func TestElection(t *testing.T) {
	t.Run("two routers started together elect exactly the higher priority one", func(t *testing.T) {
		l := newLink(t)
		a := l.add("a", Config{Priority: 200, Preempt: true})
		b := l.add("b", Config{Priority: 100, Preempt: true})
		l.startAll(30 * time.Second)
		want := []transition{
			{0, "a", RoleBackup, ReasonStartup},
			{0, "b", RoleBackup, ReasonStartup},
			{ms(3218.75), "a", RoleMaster, ReasonMasterDown},
		}
		if diff := cmp.Diff(want, l.log, cmpOpts...); diff != "" {
			t.Errorf("transitions (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"a"}, l.masters(), cmpOpts...); diff != "" {
			t.Errorf("masters (-want +got):\n%s", diff)
		}
		if got := b.m.Master(); got != a.addr {
			t.Errorf("b follows %v, want %v", got, a.addr)
		}
		// 3.21875 s → 30 s at 1 s: adverts at 3.21875, 4.21875, ... 29.21875.
		if got := l.sent["a"]; got != 27 {
			t.Errorf("a sent %d adverts, want 27", got)
		}
		if got := l.sent["b"]; got != 0 {
			t.Errorf("the backup sent %d adverts, want none", got)
		}
	})
}

func TestPreemption(t *testing.T) {
	tests := []struct {
		name         string
		preempt      bool
		preemptDelay time.Duration
		want         []transition
	}{
		{
			name:    "with preemption a higher priority router takes over one Master_Down_Interval after it starts",
			preempt: true,
			want: []transition{
				{ms(13218.75), "high", RoleMaster, ReasonPreempt},
				{ms(13218.75), "low", RoleBackup, ReasonHigherPeer},
			},
		},
		{
			name:    "without preemption a higher priority router stays backup",
			preempt: false,
			want:    nil,
		},
		{
			// low advertises at 3.609375 + n s; high first hears it at
			// 10.609375 s, follows it until 15.609375 s, ignores it from then on
			// and takes over Master_Down_Interval after the last advert it
			// followed (14.609375 s + 3.21875 s).
			name:         "with a preempt delay a higher priority router follows the lower master until the delay has passed",
			preempt:      true,
			preemptDelay: 5 * time.Second,
			want: []transition{
				{ms(17828.125), "high", RoleMaster, ReasonPreempt},
				{ms(17828.125), "low", RoleBackup, ReasonHigherPeer},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLink(t)
			low := l.add("low", Config{Priority: 100, Preempt: true})
			high := l.add("high", Config{Priority: 200, Preempt: tt.preempt, PreemptDelay: tt.preemptDelay})
			l.start(low)
			l.runFor(10 * time.Second)
			want := []transition{
				{0, "low", RoleBackup, ReasonStartup},
				{ms(3609.375), "low", RoleMaster, ReasonMasterDown},
				{10 * time.Second, "high", RoleBackup, ReasonStartup},
			}
			l.start(high)
			l.runFor(30 * time.Second)
			if diff := cmp.Diff(append(want, tt.want...), l.log, cmpOpts...); diff != "" {
				t.Errorf("transitions (-want +got):\n%s", diff)
			}
			if n := len(l.masters()); n != 1 {
				t.Errorf("%d masters (%v), want exactly one", n, l.masters())
			}
		})
	}
}

func TestTakeover(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration // of the master; the backup is configured with 1 s
		stop     func(l *link, mb *member)
		// after is how long after the master's last advert the backup takes
		// over.
		after  time.Duration
		reason string
	}{
		{
			name:     "a backup takes over Skew_Time after a priority 0 advert, not after three intervals",
			interval: time.Second,
			stop:     (*link).shutdown,
			after:    ms(609.375),
			reason:   ReasonMasterLeft,
		},
		{
			name:     "a backup takes over Master_Down_Interval after a silent master's last advert",
			interval: time.Second,
			stop:     (*link).kill,
			after:    ms(3609.375),
			reason:   ReasonMasterDown,
		},
		{
			name:     "a backup learns the master's 100 ms interval and takes over after 360.9375 ms",
			interval: 100 * time.Millisecond,
			stop:     (*link).kill,
			after:    ms(360.9375),
			reason:   ReasonMasterDown,
		},
		{
			name:     "a backup that learned a 100 ms interval takes over 60.9375 ms after a priority 0 advert",
			interval: 100 * time.Millisecond,
			stop:     (*link).shutdown,
			after:    ms(60.9375),
			reason:   ReasonMasterLeft,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLink(t)
			master := l.add("master", Config{Priority: 255, AdvertInterval: tt.interval})
			backup := l.add("backup", Config{Priority: 100, AdvertInterval: time.Second})
			l.startAll(10 * time.Second)
			if got := backup.m.MasterAdverInterval(); got != tt.interval {
				t.Fatalf("backup learned Master_Adver_Interval %v, want %v", got, tt.interval)
			}
			// The owner advertised at 0, then every interval: the last one went
			// out at 10 s exactly; stop it half an interval later.
			l.runFor(tt.interval / 2)
			stoppedAt := l.now
			tt.stop(l, master)
			lastAdvert := t0.Add(10 * time.Second)
			if tt.reason == ReasonMasterLeft {
				lastAdvert = stoppedAt // the priority 0 advert
			}
			l.runFor(10 * time.Second)
			want := transition{lastAdvert.Add(tt.after).Sub(t0), "backup", RoleMaster, tt.reason}
			if diff := cmp.Diff(want, l.log[len(l.log)-1], cmpOpts...); diff != "" {
				t.Errorf("takeover (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSplitBrain(t *testing.T) {
	tests := []struct {
		name       string
		pa, pb     uint8
		stepsDown  string
		reason     string
		healWindow time.Duration
	}{
		{"the lower priority master steps down at the first advert of the higher", 100, 200, "a", ReasonHigherPeer, 0},
		{"with equal priorities the master with the lower address steps down", 100, 100, "a", ReasonTieBreak, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLink(t)
			l.add("a", Config{Priority: tt.pa}) // fe80::a (lower)
			l.add("b", Config{Priority: tt.pb}) // fe80::b
			l.partitioned = true
			l.startAll(10 * time.Second)
			if diff := cmp.Diff([]string{"a", "b"}, l.masters(), cmpOpts...); diff != "" {
				t.Fatalf("masters while partitioned (-want +got):\n%s", diff)
			}
			l.partitioned = false
			healed := l.now
			l.runFor(10 * time.Second)
			if diff := cmp.Diff([]string{"b"}, l.masters(), cmpOpts...); diff != "" {
				t.Errorf("masters after healing (-want +got):\n%s", diff)
			}
			last := l.log[len(l.log)-1]
			if last.Node != tt.stepsDown || last.Role != RoleBackup || last.Reason != tt.reason {
				t.Errorf("last transition %+v, want %s → backup (%s)", last, tt.stepsDown, tt.reason)
			}
			// b advertises once per second: the split is over within one interval.
			if d := last.At - healed.Sub(t0); d > time.Second {
				t.Errorf("split brain lasted %v after the link healed, want ≤ 1 s", d)
			}
		})
	}
}

func TestMasterReceive(t *testing.T) {
	self := netip.MustParseAddr("fe80::5")
	tests := []struct {
		name   string
		advert Advert
		src    string
		want   []Event
	}{
		{
			name:   "a higher priority advert makes the master step down",
			advert: Advert{VRID: 9, Priority: 101, MaxAdvertInt: 200 * time.Millisecond},
			src:    "fe80::1",
			want:   []Event{{RoleChanged: true, Role: RoleBackup, Reason: ReasonHigherPeer}},
		},
		{
			name:   "an equal priority advert from a higher address makes the master step down",
			advert: Advert{VRID: 9, Priority: 100, MaxAdvertInt: time.Second},
			src:    "fe80::6",
			want:   []Event{{RoleChanged: true, Role: RoleBackup, Reason: ReasonTieBreak}},
		},
		{
			name:   "an equal priority advert from a lower address is ignored",
			advert: Advert{VRID: 9, Priority: 100, MaxAdvertInt: time.Second},
			src:    "fe80::4",
		},
		{
			name:   "a lower priority advert is ignored",
			advert: Advert{VRID: 9, Priority: 99, MaxAdvertInt: time.Second},
			src:    "fe80::ffff",
		},
		{
			name:   "an advert for another VRID is ignored",
			advert: Advert{VRID: 10, Priority: 254, MaxAdvertInt: time.Second},
			src:    "fe80::ffff",
		},
		{
			name:   "a priority 0 advert from another master is answered at once",
			advert: Advert{VRID: 9, Priority: 0, MaxAdvertInt: time.Second},
			src:    "fe80::ffff",
			want:   []Event{{Send: &Advert{Version: 3, Type: 1, VRID: 9, Priority: 100, MaxAdvertInt: time.Second, Addrs: []netip.Addr{vll}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMachine(Config{VRID: 9, Priority: 100, AdvertInterval: time.Second, Addrs: []netip.Addr{vll}, Primary: self}, nil)
			m.Start(t0)
			m.Timer(m.Deadline())
			if m.Role() != RoleMaster {
				t.Fatalf("role %v, want master", m.Role())
			}
			now := m.Deadline().Add(-time.Millisecond)
			if diff := cmp.Diff(tt.want, m.Receive(now, &tt.advert, netip.MustParseAddr(tt.src)), cmpOpts...); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if m.Role() == RoleBackup {
				want := now.Add(3*tt.advert.MaxAdvertInt + 156*tt.advert.MaxAdvertInt/256)
				if got := m.Deadline(); !got.Equal(want) {
					t.Errorf("Master_Down_Timer at %v, want %v (from the new master's interval)", got.Sub(t0), want.Sub(t0))
				}
			}
		})
	}
}

func TestBackupReceive(t *testing.T) {
	tests := []struct {
		name     string
		preempt  bool
		advert   Advert
		deadline time.Duration // after the advert arrives at 1 s
	}{
		{"a higher priority advert resets Master_Down_Timer", true, Advert{VRID: 9, Priority: 150, MaxAdvertInt: time.Second}, ms(3609.375)},
		{"an equal priority advert resets Master_Down_Timer", true, Advert{VRID: 9, Priority: 100, MaxAdvertInt: time.Second}, ms(3609.375)},
		{"a lower priority advert is discarded when preempting", true, Advert{VRID: 9, Priority: 50, MaxAdvertInt: time.Second}, ms(2609.375)},
		{"a lower priority advert resets Master_Down_Timer when not preempting", false, Advert{VRID: 9, Priority: 50, MaxAdvertInt: time.Second}, ms(3609.375)},
		{"an advert with a 2 s interval stretches Master_Down_Interval", true, Advert{VRID: 9, Priority: 150, MaxAdvertInt: 2 * time.Second}, ms(7218.75)},
		{"an advert with a 0 interval keeps the last known interval", true, Advert{VRID: 9, Priority: 150}, ms(3609.375)},
		{"a priority 0 advert sets Master_Down_Timer to Skew_Time", true, Advert{VRID: 9, Priority: 0, MaxAdvertInt: time.Second}, ms(609.375)},
		{"an advert for another VRID is ignored", true, Advert{VRID: 8, Priority: 150, MaxAdvertInt: time.Second}, ms(2609.375)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMachine(Config{VRID: 9, Priority: 100, AdvertInterval: time.Second, Preempt: tt.preempt}, nil)
			m.Start(t0)
			at := t0.Add(time.Second)
			if evs := m.Receive(at, &tt.advert, netip.MustParseAddr("fe80::9")); evs != nil {
				t.Errorf("a backup returned %v on receipt, want nothing", evs)
			}
			if got := m.Deadline().Sub(at); got != tt.deadline {
				t.Errorf("Master_Down_Timer fires %v after the advert, want %v", got, tt.deadline)
			}
		})
	}
}

func TestSetPriority(t *testing.T) {
	t.Run("a master advertises a changed priority at once", func(t *testing.T) {
		m := NewMachine(Config{VRID: 9, Priority: 255, AdvertInterval: time.Second}, nil)
		m.Start(t0)
		at := t0.Add(300 * time.Millisecond)
		want := []Event{{Send: &Advert{Version: 3, Type: 1, VRID: 9, Priority: 90, MaxAdvertInt: time.Second, Addrs: []netip.Addr{}}}}
		if diff := cmp.Diff(want, m.SetPriority(at, 90), cmpOpts...); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if got := m.Deadline().Sub(at); got != time.Second {
			t.Errorf("next advert in %v, want 1s", got)
		}
	})
	t.Run("priority 0 is reserved for shutdown and ignored", func(t *testing.T) {
		m := NewMachine(Config{VRID: 9, Priority: 255, AdvertInterval: time.Second}, nil)
		m.Start(t0)
		if evs := m.SetPriority(t0, 0); evs != nil || m.Priority() != 255 {
			t.Errorf("SetPriority(0) = %v, priority now %d; want nothing and 255", evs, m.Priority())
		}
	})
	t.Run("a backup with a raised priority preempts the lower master", func(t *testing.T) {
		l := newLink(t)
		a := l.add("a", Config{Priority: 150, Preempt: true})
		b := l.add("b", Config{Priority: 100, Preempt: true})
		l.startAll(5 * time.Second)
		l.handle(b, b.m.SetPriority(l.now, 200))
		l.handle(a, a.m.SetPriority(l.now, 50))
		l.runFor(10 * time.Second)
		if diff := cmp.Diff([]string{"b"}, l.masters(), cmpOpts...); diff != "" {
			t.Errorf("masters (-want +got):\n%s", diff)
		}
	})
}

func TestShutdown(t *testing.T) {
	tests := []struct {
		name  string
		owner bool
		want  []Event
	}{
		{
			name: "a master sends priority 0 and stops", owner: true,
			want: []Event{
				{Send: &Advert{Version: 3, Type: 1, VRID: 9, Priority: 0, MaxAdvertInt: time.Second, Addrs: []netip.Addr{}}},
				{RoleChanged: true, Role: RoleInitialize, Reason: ReasonShutdown},
			},
		},
		{
			name: "a backup stops silently", owner: false,
			want: []Event{{RoleChanged: true, Role: RoleInitialize, Reason: ReasonShutdown}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := uint8(100)
			if tt.owner {
				p = 255
			}
			m := NewMachine(Config{VRID: 9, Priority: p, AdvertInterval: time.Second}, nil)
			m.Start(t0)
			if diff := cmp.Diff(tt.want, m.Shutdown(t0.Add(time.Second)), cmpOpts...); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if !m.Deadline().IsZero() {
				t.Errorf("deadline %v after shutdown, want none", m.Deadline())
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{VRID: 51, Priority: 100, AdvertInterval: 100 * time.Millisecond, Addrs: []netip.Addr{vll, lanRtr}}
	tests := []struct {
		name   string
		modify func(*Config)
		ok     bool
	}{
		{"a usual config is valid", func(*Config) {}, true},
		{"the address owner at 40.95 s is valid", func(c *Config) { c.Priority = 255; c.AdvertInterval = 40950 * time.Millisecond }, true},
		{"vrid 0 is refused", func(c *Config) { c.VRID = 0 }, false},
		{"priority 0 is refused", func(c *Config) { c.Priority = 0 }, false},
		{"a zero interval is refused", func(c *Config) { c.AdvertInterval = 0 }, false},
		{"an interval over 40.95 s is refused", func(c *Config) { c.AdvertInterval = 41 * time.Second }, false},
		{"an interval of 105 ms is refused", func(c *Config) { c.AdvertInterval = 105 * time.Millisecond }, false},
		{"a negative preempt delay is refused", func(c *Config) { c.PreemptDelay = -time.Second }, false},
		{"no virtual address is refused", func(c *Config) { c.Addrs = nil }, false},
		{"a global first address is refused", func(c *Config) { c.Addrs = []netip.Addr{lanRtr, vll} }, false},
		{"an IPv4 address is refused", func(c *Config) { c.Addrs = append(c.Addrs, netip.MustParseAddr("192.0.2.1")) }, false},
		{"a zoned address is refused", func(c *Config) { c.Addrs = []netip.Addr{vll.WithZone("lan0")} }, false},
		{"a global primary address is refused", func(c *Config) { c.Primary = lanRtr }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			c.Addrs = append([]netip.Addr(nil), good.Addrs...)
			tt.modify(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
