package dhcp6pd

import (
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// TestChosenByLifetime: which prefix the router uses, by the lifetimes
// of RFC 8415 §21.22 (and RFC 4862 §5.5.4: a deprecated prefix serves
// existing connections only).
func TestChosenByLifetime(t *testing.T) {
	pfx := func(s string, preferred, valid time.Duration) Prefix {
		return Prefix{Prefix: netip.MustParsePrefix(s), Preferred: preferred, Valid: valid}
	}
	h := time.Hour
	tests := []struct {
		name     string
		prefixes []Prefix
		at       time.Duration // after Acquired
		want     string        // "" for none
	}{
		{"a deprecated old prefix ahead of the new one loses",
			[]Prefix{pfx("2001:db8:1::/56", 0, h), pfx("2001:db8:2::/56", h, 2*h)}, 0, "2001:db8:2::/56"},
		{"the longest remaining preferred lifetime wins",
			[]Prefix{pfx("2001:db8:1::/56", h, 3*h), pfx("2001:db8:2::/56", 2*h, 3*h)}, 0, "2001:db8:2::/56"},
		{"equal lifetimes: the hinted length wins",
			[]Prefix{pfx("2001:db8:1::/48", h, 2*h), pfx("2001:db8:2::/56", h, 2*h)}, 0, "2001:db8:2::/56"},
		{"equal lifetimes and no hint match: the first wins",
			[]Prefix{pfx("2001:db8:1::/60", h, 2*h), pfx("2001:db8:2::/52", h, 2*h)}, 0, "2001:db8:1::/60"},
		{"a prefix whose preferred lifetime ran out is deprecated at now",
			[]Prefix{pfx("2001:db8:1::/56", h, 3*h), pfx("2001:db8:2::/56", 10*time.Minute, 3*h)}, 30 * time.Minute, "2001:db8:1::/56"},
		{"once the preferred one is deprecated, a still preferred one takes over",
			[]Prefix{pfx("2001:db8:1::/56", h, 2*h), pfx("2001:db8:2::/56", 0, 3*h)}, 90 * time.Minute, "2001:db8:2::/56"},
		{"all deprecated: the longest remaining valid lifetime wins",
			[]Prefix{pfx("2001:db8:1::/56", 0, h), pfx("2001:db8:2::/56", 0, 2*h)}, 0, "2001:db8:2::/56"},
		{"an expired prefix is never chosen, even first and hinted",
			[]Prefix{pfx("2001:db8:1::/56", h, 2*h), pfx("2001:db8:2::/60", 0, 4*h)}, 3 * h, "2001:db8:2::/60"},
		{"a prefix longer than /64 is never chosen",
			[]Prefix{pfx("2001:db8:1::/72", h, 2*h)}, 0, ""},
		{"nothing valid left: none", []Prefix{pfx("2001:db8:1::/56", h, 2*h)}, 2 * h, ""},
		{"a prefix the last Reply left out loses to one it named, with more preferred lifetime left (ISC dhcpd renumbering a Rebind)",
			[]Prefix{pfx("2001:db8:2::/56", h, 2*h), {Prefix: netip.MustParsePrefix("2001:db8:1::/56"), Preferred: 3 * h, Valid: 4 * h, Carried: true}}, 0, "2001:db8:2::/56"},
		{"a carried prefix still beats a deprecated named one",
			[]Prefix{pfx("2001:db8:2::/56", 0, 2*h), {Prefix: netip.MustParsePrefix("2001:db8:1::/56"), Preferred: h, Valid: 2 * h, Carried: true}}, 0, "2001:db8:1::/56"},
		{"an infinite lifetime outlasts any finite one",
			[]Prefix{pfx("2001:db8:1::/56", 100*h, 100*h), pfx("2001:db8:2::/60", Infinity, Infinity)}, 0, "2001:db8:2::/60"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Lease{Prefixes: tt.prefixes, Acquired: t0, Hint: 56}
			got, ok := l.Chosen(56, t0.Add(tt.at))
			if tt.want == "" {
				if ok {
					t.Fatalf("chose %s, want none", got.Prefix)
				}
				return
			}
			if !ok || got.Prefix.String() != tt.want {
				t.Fatalf("chose %s (%v), want %s", got.Prefix, ok, tt.want)
			}
			if l.ValidUntil(t0.Add(tt.at)) != t0.Add(got.Valid) {
				t.Errorf("ValidUntil %s", l.ValidUntil(t0.Add(tt.at)))
			}
		})
	}
	var nilLease *Lease
	if _, ok := nilLease.Chosen(56, t0); ok {
		t.Error("a nil lease chose a prefix")
	}
}

func TestNextChoiceChange(t *testing.T) {
	l := &Lease{Acquired: t0, Prefixes: []Prefix{
		{Prefix: netip.MustParsePrefix("2001:db8:1::/56"), Preferred: 0, Valid: 600 * time.Second},
		{Prefix: netip.MustParsePrefix("2001:db8:2::/56"), Preferred: 300 * time.Second, Valid: 900 * time.Second},
		{Prefix: netip.MustParsePrefix("2001:db8:3::/56"), Preferred: Infinity, Valid: Infinity},
	}}
	for _, tt := range []struct{ at, want time.Duration }{
		{0, 300 * time.Second}, {300 * time.Second, 600 * time.Second}, {700 * time.Second, 900 * time.Second}, {900 * time.Second, -1},
	} {
		got := l.NextChoiceChange(56, t0.Add(tt.at))
		if tt.want < 0 {
			if !got.IsZero() {
				t.Errorf("at %s: %s, want zero", tt.at, got)
			}
			continue
		}
		if !got.Equal(t0.Add(tt.want)) {
			t.Errorf("at %s: %s, want t0+%s", tt.at, got.Sub(t0), tt.want)
		}
	}
}

// TestRenumberingRenewKeepsTheNewPrefix: a Renew Reply carrying the old
// prefix at preferred 0 ahead of a new one (RFC 8415 §18.2.10.1, a
// renumbering) moves the router to the new prefix, and the lease stays
// bound after the old one expires.
func TestRenumberingRenewKeepsTheNewPrefix(t *testing.T) {
	m, renew, now := renewAtT1(t)
	pd := iapd(testIAID, 1000*time.Second, 1600*time.Second,
		iaprefix("2001:db8:100::/56", 0, 300*time.Second),
		iaprefix("2001:db8:300::/56", 2000*time.Second, 3000*time.Second))
	m.Receive(now, answer(renew, dhcpv6.MessageTypeReply, serverA, pd), addrA)
	if p, _ := m.Lease().Chosen(56, now); p.Prefix.String() != "2001:db8:300::/56" {
		t.Fatalf("chose %s, want the new prefix", p.Prefix)
	}
	later := now.Add(400 * time.Second) // the old prefix expired
	m.Timer(later)
	if m.State() != StateBound {
		t.Fatalf("state %s after the old prefix expired, want bound", m.State())
	}
	if p, ok := m.Lease().Chosen(56, later); !ok || p.Prefix.String() != "2001:db8:300::/56" {
		t.Errorf("chose %s (%v) after the old prefix expired", p.Prefix, ok)
	}
}

// TestClientRepublishesWhenTheChoiceChanges: the chosen prefix stops being
// preferred long before T1; the Client re-publishes its Snapshot then, so
// NAT and RA move to the other prefix at once.
func TestClientRepublishesWhenTheChoiceChanges(t *testing.T) {
	srv := &fakeServer{duid: serverA, prefix: netip.MustParsePrefix("2001:db8:100::/56"),
		t1: 100 * time.Second, t2: 160 * time.Second, pref: 1 * time.Second, valid: 200 * time.Second,
		extra: []Prefix{{Prefix: netip.MustParsePrefix("2001:db8:200::/56"), Preferred: 0, Valid: 300 * time.Second}}}
	rc := startClient(t, srv, Config{})
	rc.waitBound(t)
	if p, _ := rc.c.Snapshot().Lease.Chosen(56, time.Now()); p.Prefix != srv.prefix {
		t.Fatalf("chose %s first, want %s", p.Prefix, srv.prefix)
	}
	rc.mu.Lock()
	n := len(rc.notes)
	rc.mu.Unlock()
	waitFor(t, "a Snapshot after the first prefix stopped being preferred", 3*time.Second, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return len(rc.notes) > n
	})
	rc.mu.Lock()
	last := rc.notes[len(rc.notes)-1]
	rc.mu.Unlock()
	if p, _ := last.Lease.Chosen(56, time.Now()); p.Prefix.String() != "2001:db8:200::/56" {
		t.Errorf("republished snapshot chooses %s, want 2001:db8:200::/56", p.Prefix)
	}
	if srv.count(dhcpv6.MessageTypeRenew) != 0 {
		t.Error("renewed: the Snapshot should come from the lifetime timer, not T1")
	}
}
