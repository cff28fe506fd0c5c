package ra

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"
)

// pioSummary lists the PIOs of ra as "prefix preferred/valid".
func pioSummary(ra *ndp.RouterAdvertisement) map[netip.Prefix]lifetimes {
	out := map[netip.Prefix]lifetimes{}
	for _, o := range ra.Options {
		if pi, ok := o.(*ndp.PrefixInformation); ok {
			out[netip.PrefixFrom(pi.Prefix, int(pi.PrefixLength))] = lifetimes{pi.PreferredLifetime, pi.ValidLifetime}
		}
	}
	return out
}

func TestRenumberingSequence(t *testing.T) {
	oldP, newP := pfx("2001:db8:100:1::/64"), pfx("2001:db8:200:1::/64")
	cfgWith := func(p netip.Prefix, validUntil time.Time) Config {
		c := baseConfig()
		c.Prefixes = []Prefix{{Prefix: p, ValidUntil: validUntil, Autonomous: true, OnLink: true}}
		return c
	}
	h := &History{}
	h.Observe(cfgWith(oldP, time.Time{}), t0)

	// The Advertiser observes the prefixes at every RA, so the old prefix
	// was last advertised (valid 5400 s) just before the change.
	change := t0
	cfg := cfgWith(newP, time.Time{})
	if !h.Observe(cfg, change) {
		t.Fatal("Observe did not report the prefix change")
	}
	// Replay what the Advertiser sends: the renumbering burst (0, 3, 6 s),
	// then periodic RAs; the old prefix is dropped once its short valid
	// lifetime (5400 s, the last advertised) has run out.
	var got []map[netip.Prefix]lifetimes
	for _, dt := range []time.Duration{0, 3 * time.Second, 6 * time.Second, 5399 * time.Second, 5400 * time.Second} {
		now := change.Add(dt)
		h.Expire(now)
		ra, err := Build(cfg, now, h.Active(now))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pioSummary(ra))
	}
	fresh := lifetimes{DefaultPreferred, DefaultValid}
	want := []map[netip.Prefix]lifetimes{
		{oldP: {0, 5400 * time.Second}, newP: fresh},
		{oldP: {0, 5397 * time.Second}, newP: fresh},
		{oldP: {0, 5394 * time.Second}, newP: fresh},
		{oldP: {0, time.Second}, newP: fresh},
		{newP: fresh},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PIOs in successive RAs (-want +got):\n%s", diff)
	}
}

func TestHistory(t *testing.T) {
	a, b := pfx("2001:db8:100:1::/64"), pfx("2001:db8:200:1::/64")
	cfgWith := func(ps ...Prefix) Config { c := baseConfig(); c.Prefixes = ps; return c }

	t.Run("the deprecated valid lifetime is capped at 2 h and at what the lease had left", func(t *testing.T) {
		h := &History{}
		h.Observe(cfgWith(Prefix{Prefix: a, Valid: 24 * time.Hour, Preferred: time.Hour, Autonomous: true}, Prefix{Prefix: b, Valid: 24 * time.Hour, ValidUntil: t0.Add(30 * time.Minute)}), t0)
		h.Observe(cfgWith(), t0.Add(time.Minute))
		got := map[netip.Prefix]time.Duration{}
		for _, d := range h.Active(t0.Add(time.Minute)) {
			got[d.Prefix] = d.Until.Sub(t0.Add(time.Minute))
		}
		want := map[netip.Prefix]time.Duration{a: 2 * time.Hour, b: 29 * time.Minute}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("history is keyed by the masked /64, so a router address does not mark its own prefix stale", func(t *testing.T) {
		h := &History{}
		h.Observe(cfgWith(Prefix{Prefix: pfx("2001:db8:100:1:1234:5678:9abc:def0/64")}), t0)
		if changed := h.Observe(cfgWith(Prefix{Prefix: pfx("2001:db8:100:1::1/64")}), t0.Add(time.Second)); changed {
			t.Error("the same /64 with another interface id counted as a change")
		}
		if d := h.Active(t0.Add(time.Second)); len(d) != 0 {
			t.Errorf("deprecated %v, want none", d)
		}
	})
	t.Run("a prefix that comes back stops being deprecated", func(t *testing.T) {
		h := &History{}
		h.Observe(cfgWith(Prefix{Prefix: a}), t0)
		h.Observe(cfgWith(Prefix{Prefix: b}), t0.Add(time.Second))
		h.Observe(cfgWith(Prefix{Prefix: a}, Prefix{Prefix: b}), t0.Add(2*time.Second))
		if d := h.Active(t0.Add(2 * time.Second)); len(d) != 0 {
			t.Errorf("deprecated %v, want none", d)
		}
	})
	t.Run("a restart in the middle of renumbering still deprecates the old prefix", func(t *testing.T) {
		path := StatePath(t.TempDir(), "lan0")
		h := &History{}
		h.Observe(cfgWith(Prefix{Prefix: a, Autonomous: true, OnLink: true}), t0)
		h.Observe(cfgWith(Prefix{Prefix: b, Autonomous: true, OnLink: true}), t0.Add(time.Minute))
		if err := h.Save(path); err != nil {
			t.Fatal(err)
		}
		// The daemon restarts ten minutes later.
		loaded, err := LoadHistory(path)
		if err != nil {
			t.Fatal(err)
		}
		now := t0.Add(11 * time.Minute)
		loaded.Observe(cfgWith(Prefix{Prefix: b, Autonomous: true, OnLink: true}), now)
		// Hosts last heard a at t0 with the default valid lifetime.
		want := []Deprecated{{Prefix: a, Since: t0.Add(time.Minute), Until: t0.Add(DefaultValid), Autonomous: true, OnLink: true}}
		if diff := cmp.Diff(want, loaded.Active(now), netCmp); diff != "" {
			t.Errorf("deprecated after restart (-want +got):\n%s", diff)
		}
	})
	t.Run("a prefix replaced while the daemon was down is deprecated at start", func(t *testing.T) {
		path := StatePath(t.TempDir(), "lan0")
		h := &History{}
		h.Observe(cfgWith(Prefix{Prefix: a, Autonomous: true, OnLink: true}), t0)
		if err := h.Save(path); err != nil {
			t.Fatal(err)
		}
		loaded, err := LoadHistory(path)
		if err != nil {
			t.Fatal(err)
		}
		now := t0.Add(time.Hour)
		loaded.Observe(cfgWith(Prefix{Prefix: b, Autonomous: true, OnLink: true}), now)
		want := []Deprecated{{Prefix: a, Since: now, Until: t0.Add(DefaultValid), Autonomous: true, OnLink: true}}
		if diff := cmp.Diff(want, loaded.Active(now), netCmp); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("a missing state file is an empty history", func(t *testing.T) {
		h, err := LoadHistory(filepath.Join(t.TempDir(), "nope.json"))
		if err != nil || len(h.advertised)+len(h.Deprecated) != 0 {
			t.Fatalf("LoadHistory = %+v, %v; want empty, nil", h, err)
		}
	})
	t.Run("a corrupt state file is an error that names it", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ra-lan0.json")
		if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadHistory(path); err == nil {
			t.Fatal("want an error")
		}
	})
	t.Run("the state file keeps prefixes as text", func(t *testing.T) {
		path := StatePath(t.TempDir(), "lan0")
		h := &History{}
		h.Observe(cfgWith(Prefix{Prefix: a}), t0)
		if err := h.Save(path); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !contains(string(b), `"prefix": "2001:db8:100:1::/64"`) {
			t.Errorf("state file lacks the prefix as text:\n%s", b)
		}
	})
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

// netCmp lets cmp compare netip values, whose fields are unexported.
var netCmp = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
}
