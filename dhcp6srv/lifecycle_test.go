package dhcp6srv

import (
	"errors"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

// pdRecorder keeps every set OnPD was called with.
type pdRecorder struct {
	mu    sync.Mutex
	calls [][]Delegation
}

func (r *pdRecorder) OnPD(d []Delegation) {
	r.mu.Lock()
	r.calls = append(r.calls, d)
	r.mu.Unlock()
}

func (r *pdRecorder) last() []Delegation {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return nil
	}
	return r.calls[len(r.calls)-1]
}

func (r *pdRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// newRecordedHandler is a handler on testConfig at t0 whose OnPD calls rec
// records; cfg is what it was built from, for Update.
func newRecordedHandler() (c *clock, rec *pdRecorder, cfg Config, h *Handler) {
	c = &clock{now: t0}
	rec = &pdRecorder{}
	cfg = testConfig(c)
	cfg.OnPD = rec.OnPD
	return c, rec, cfg, NewHandler(cfg)
}

func TestRenumbering(t *testing.T) {
	c, rec, cfg, h := newRecordedHandler()

	rep := exchange(t, h, c.Now(), msg(t, dhcpv6.MessageTypeRequest, 1, ours(), na(1), pd(2)), hostA)
	oldAddr, oldPrefix := netip.MustParseAddr(leaseOf(t, rep, "NA")), netip.MustParsePrefix(leaseOf(t, rep, "PD"))
	wantPD := []Delegation{{Prefix: oldPrefix, Via: hostA, Interface: "lan0", ValidUntil: t0.Add(valid)}}
	if d := cmp.Diff(wantPD, rec.last(), cmpAddrs); d != "" {
		t.Fatalf("OnPD after the Request (-want +got):\n%s", d)
	}

	// The upstream prefix changes: new LAN /64, new PD pool.
	c.Advance(10 * time.Minute)
	newPool, newPD := netip.MustParsePrefix("fd00:1111:2222:3301::/64"), netip.MustParsePrefix("2001:db8:200::/56")
	cfg.Pool, cfg.PDPool = newPool, newPD
	h.Update(cfg)

	newAddr := netip.AddrFrom16(newPool.Addr().As16())
	{
		b := newAddr.As16()
		o := oldAddr.As16()
		copy(b[8:], o[8:])
		newAddr = netip.AddrFrom16(b)
	}
	ob := oldPrefix.Addr().As16()
	nb := newPD.Addr().As16()
	nb[7] = ob[7] // same /60 slot inside the /56
	movedPrefix := netip.PrefixFrom(netip.AddrFrom16(nb), 60)

	t.Run("delegations move at once and OnPD reports the new prefix", func(t *testing.T) {
		want := []Delegation{{Prefix: movedPrefix, Via: hostA, Interface: "lan0", ValidUntil: t0.Add(valid)}}
		if d := cmp.Diff(want, rec.last(), cmpAddrs); d != "" {
			t.Errorf("OnPD after Update (-want +got):\n%s", d)
		}
	})
	t.Run("a Renew gets the old leases with zero lifetimes and new ones with the same host part", func(t *testing.T) {
		c.Advance(time.Minute)
		got := exchange(t, h, c.Now(), msg(t, dhcpv6.MessageTypeRenew, 1, ours(), na(1, oldAddr.String()), pd(2, oldPrefix.String())), hostA)
		want := summary{Type: "REPLY", IAs: []iaSummary{
			{Kind: "NA", IAID: 1, T1: t1, T2: t2, Leases: []string{newAddr.String() + " 45m0s/1h30m0s", oldAddr.String() + " 0s/0s"}},
			{Kind: "PD", IAID: 2, T1: t1, T2: t2, Leases: []string{movedPrefix.String() + " 45m0s/1h30m0s", oldPrefix.String() + " 0s/0s"}},
		}}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("Reply to Renew (-want +got):\n%s", d)
		}
	})
	t.Run("the next Renew no longer mentions the old leases", func(t *testing.T) {
		c.Advance(t1)
		got := exchange(t, h, c.Now(), msg(t, dhcpv6.MessageTypeRenew, 1, ours(), na(1, newAddr.String()), pd(2, movedPrefix.String())), hostA)
		want := summary{Type: "REPLY", IAs: []iaSummary{
			{Kind: "NA", IAID: 1, T1: t1, T2: t2, Leases: []string{newAddr.String() + " 45m0s/1h30m0s"}},
			{Kind: "PD", IAID: 2, T1: t1, T2: t2, Leases: []string{movedPrefix.String() + " 45m0s/1h30m0s"}},
		}}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("Reply to Renew (-want +got):\n%s", d)
		}
	})
	t.Run("a new client gets its address from the new prefix", func(t *testing.T) {
		got := exchange(t, h, c.Now(), msg(t, dhcpv6.MessageTypeRequest, 2, ours(), na(1)), hostB)
		if a := netip.MustParseAddr(leaseOf(t, got, "NA")); !newPool.Contains(a) {
			t.Errorf("new client got %s, outside %s", a, newPool)
		}
	})
}

func TestLifetimeCapUpdate(t *testing.T) {
	c, rec, cfg, h := newRecordedHandler()
	rep := exchange(t, h, t0, msg(t, dhcpv6.MessageTypeRequest, 1, ours(), pd(1)), hostA)
	p := netip.MustParsePrefix(leaseOf(t, rep, "PD"))

	capAt := t0.Add(20 * time.Minute)
	cfg.LifetimeCap = capAt
	h.Update(cfg)
	want := []Delegation{{Prefix: p, Via: hostA, Interface: "lan0", ValidUntil: capAt}}
	if d := cmp.Diff(want, rec.last(), cmpAddrs); d != "" {
		t.Errorf("OnPD after the cap came down (-want +got):\n%s", d)
	}
	c.Advance(5 * time.Minute)
	got := exchange(t, h, c.Now(), msg(t, dhcpv6.MessageTypeRenew, 1, ours(), pd(1, p.String())), hostA)
	wantRep := summary{Type: "REPLY", IAs: []iaSummary{{Kind: "PD", IAID: 1, T1: 450 * time.Second, T2: 720 * time.Second,
		Leases: []string{p.String() + " 15m0s/15m0s"}}}}
	if d := cmp.Diff(wantRep, got); d != "" {
		t.Errorf("Renew under the cap (-want +got):\n%s", d)
	}
}

func TestExpiry(t *testing.T) {
	_, rec, _, h := newRecordedHandler()
	exchange(t, h, t0, msg(t, dhcpv6.MessageTypeRequest, 1, ours(), na(1), pd(2)), hostA)

	if next := h.Expire(t0.Add(time.Minute)); !next.Equal(t0.Add(valid)) {
		t.Errorf("Expire says the next end is %v, want %v", next, t0.Add(valid))
	}
	calls := rec.count()
	if next := h.Expire(t0.Add(valid)); !next.IsZero() {
		t.Errorf("after everything ended Expire says %v, want zero", next)
	}
	if n := len(h.Leases()); n != 0 {
		t.Errorf("%d leases left after they expired", n)
	}
	if rec.count() != calls+1 || len(rec.last()) != 0 {
		t.Errorf("OnPD calls %d → %d, last %v; want one more call with no delegations", calls, rec.count(), rec.last())
	}
}

func TestRateLimit(t *testing.T) {
	for _, tc := range []struct {
		name        string
		sameClient  bool
		wantReplies int
	}{
		{"one client flooding is cut off after its burst", true, 20},
		{"many clients from one source address are cut off after its burst", false, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{now: t0}
			cfg := testConfig(c)
			cfg.RateLimit = 0 // default: 10/s, burst 20
			h := NewHandler(cfg)
			replies, limited := 0, 0
			for i := range 25 {
				client := byte(1)
				if !tc.sameClient {
					client = byte(i + 1)
				}
				r, err := h.Handle(t0, msg(t, dhcpv6.MessageTypeInformationRequest, client), hostA)
				switch {
				case r != nil:
					replies++
				case errors.Is(err, ErrRateLimited):
					limited++
				default:
					t.Fatalf("unexpected drop: %v", err)
				}
			}
			if replies != tc.wantReplies || limited != 25-tc.wantReplies {
				t.Errorf("%d replies, %d rate-limited; want %d and %d", replies, limited, tc.wantReplies, 25-tc.wantReplies)
			}
			// A second later the bucket holds ten more.
			replies = 0
			for range 12 {
				if r, _ := h.Handle(t0.Add(time.Second), msg(t, dhcpv6.MessageTypeInformationRequest, 1), hostA); r != nil {
					replies++
				}
			}
			if replies != 10 {
				t.Errorf("a second later %d replies, want 10", replies)
			}
			// Another client from another address is not affected.
			if r, err := h.Handle(t0, msg(t, dhcpv6.MessageTypeInformationRequest, 99), hostB); r == nil {
				t.Errorf("an unrelated client was dropped: %v", err)
			}
		})
	}
}

func TestStableAssignment(t *testing.T) {
	c := &clock{now: t0}
	h := NewHandler(testConfig(c))
	first := exchange(t, h, t0, msg(t, dhcpv6.MessageTypeRequest, 1, ours(), na(1), pd(2)), hostA)
	// Other clients arrive meanwhile; then the first one leaves and comes back.
	for n := byte(2); n < 12; n++ {
		exchange(t, h, t0, msg(t, dhcpv6.MessageTypeRequest, n, ours(), na(1), pd(2)), hostB)
	}
	exchange(t, h, t0, msg(t, dhcpv6.MessageTypeRelease, 1, ours(), na(1), pd(2)), hostA)
	again := exchange(t, h, t0, msg(t, dhcpv6.MessageTypeRequest, 1, ours(), na(1), pd(2)), hostA)
	fresh := exchange(t, NewHandler(testConfig(c)), t0, msg(t, dhcpv6.MessageTypeSolicit, 1, na(1), pd(2)), hostA)
	for _, kind := range []string{"NA", "PD"} {
		a, b, f := leaseOf(t, first, kind), leaseOf(t, again, kind), leaseOf(t, fresh, kind)
		if a != b || a != f {
			t.Errorf("%s: first %s, after release %s, from a fresh server %s; want the same", kind, a, b, f)
		}
	}
}

func TestPersistence(t *testing.T) {
	c := &clock{now: t0}
	h := NewHandler(testConfig(c))
	exchange(t, h, t0, msg(t, dhcpv6.MessageTypeRequest, 1, ours(), na(1), pd(2)), hostA)
	c.Advance(time.Hour)
	exchange(t, h, c.Now(), msg(t, dhcpv6.MessageTypeRequest, 2, ours(), na(1)), hostB)
	path := LeasePath(t.TempDir(), "lan0")
	want := h.Leases()
	if err := SaveLeases(path, "lan0", want); err != nil {
		t.Fatal(err)
	}
	got, err := LoadLeases(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the file round-trips every lease", func(t *testing.T) {
		if d := cmp.Diff(want, got, cmpAddrs); d != "" {
			t.Errorf("loaded leases (-want +got):\n%s", d)
		}
	})
	t.Run("a restored server drops expired leases and keeps the rest", func(t *testing.T) {
		h2 := NewHandler(testConfig(c))
		h2.Restore(t0.Add(valid), got) // client 1's leases ended, client 2's did not
		if d := cmp.Diff(want[1:2], h2.Leases(), cmpAddrs); d != "" {
			t.Errorf("restored (-want +got):\n%s", d)
		}
	})
	t.Run("a missing file is a first start", func(t *testing.T) {
		l, err := LoadLeases(filepath.Join(t.TempDir(), "none.json"))
		if l != nil || err != nil {
			t.Errorf("LoadLeases = %v, %v; want nothing", l, err)
		}
	})
}

// A restart in the middle of renumbering (FIELD-NOTES: odhcpd): leases
// saved under the old prefix are restored into a server that already has
// the new one; delegations move at once and the old leases are still taken
// back with zero lifetimes.
func TestRestoreDuringRenumbering(t *testing.T) {
	c := &clock{now: t0}
	old := NewHandler(testConfig(c))
	rep := exchange(t, old, t0, msg(t, dhcpv6.MessageTypeRequest, 1, ours(), na(1), pd(2)), hostA)
	oldAddr, oldPrefix := leaseOf(t, rep, "NA"), leaseOf(t, rep, "PD")
	saved := old.Leases()

	c.Advance(time.Minute)
	rec := &pdRecorder{}
	cfg := testConfig(c)
	cfg.Pool = netip.MustParsePrefix("fd00:1111:2222:3301::/64")
	cfg.PDPool = netip.MustParsePrefix("2001:db8:200::/56")
	cfg.OnPD = rec.OnPD
	h := NewHandler(cfg)
	h.Restore(c.Now(), saved)

	moved := rec.last()
	if len(moved) != 1 || !cfg.PDPool.Contains(moved[0].Prefix.Addr()) || moved[0].Via != hostA {
		t.Fatalf("OnPD after Restore = %+v, want the delegation moved into %s via %s", moved, cfg.PDPool, hostA)
	}
	got := exchange(t, h, c.Now(), msg(t, dhcpv6.MessageTypeRenew, 1, ours(), na(1, oldAddr), pd(2, oldPrefix)), hostA)
	for i, ia := range got.IAs {
		if len(ia.Leases) != 2 || ia.Leases[1] != []string{oldAddr, oldPrefix}[i]+" 0s/0s" {
			t.Errorf("%s after restart: %v; want a new lease and the old one with zero lifetimes", ia.Kind, ia.Leases)
		}
	}
	if p := leaseOf(t, got, "PD"); p != moved[0].Prefix.String() {
		t.Errorf("Renew handed out %s, but the route was installed for %s", p, moved[0].Prefix)
	}
}
