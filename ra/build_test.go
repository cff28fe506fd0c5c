package ra

import (
	"encoding/hex"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"

	"github.com/v6edge/v6edge/internal/golden"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// baseConfig is a minimal SLAAC LAN: no options beyond what each test adds.
func baseConfig() Config {
	return Config{
		Interface:      "lan0",
		HopLimit:       64,
		RouterLifetime: 1800 * time.Second,
		MaxInterval:    600 * time.Second,
		Enabled:        true,
	}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// TestBuildGolden compares the wire bytes of one RA per option with a hex
// golden file, so a change in the encoding is seen byte by byte.
func TestBuildGolden(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
	}{
		{"header_only", func(c *Config) {}},
		{"source_link_layer_address", func(c *Config) {
			c.LinkLayerAddr = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x01, 0x33}
		}},
		{"mtu", func(c *Config) { c.MTU = 1492 }},
		{"prefix_information", func(c *Config) {
			c.Prefixes = []Prefix{{Prefix: pfx("fd00:aaaa:bbbb:cc01::/64"), Autonomous: true, OnLink: true}}
		}},
		{"route_information", func(c *Config) {
			c.Routes = []Route{{Prefix: pfx("fd00:aaaa:bbbb:cc00::/56"), Lifetime: 1800 * time.Second, Preference: ndp.High}}
		}},
		{"rdnss", func(c *Config) {
			c.RDNSS = []netip.Addr{netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1")}
		}},
		{"dnssl", func(c *Config) { c.DNSSL = []string{"lan.example"} }},
		{"flags_and_preference", func(c *Config) {
			c.Managed, c.Other, c.Preference = true, true, ndp.High
			c.ReachableTime, c.RetransTimer = 30*time.Second, time.Second
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			tt.cfg(&cfg)
			ra, err := Build(cfg, t0, nil)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			b, err := ndp.MarshalMessage(ra)
			if err != nil {
				t.Fatalf("MarshalMessage: %v", err)
			}
			got := hex.EncodeToString(b) + "\n"
			want := golden.File(t, filepath.Join("testdata", "ra_"+tt.name+".hex"), got)
			if diff := cmp.Diff(strings.TrimSpace(want), strings.TrimSpace(got)); diff != "" {
				t.Errorf("RA bytes mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestModeFlags(t *testing.T) {
	tests := []struct {
		mode                 Mode
		managed, other, auto bool
	}{
		{SLAAC, false, false, true},
		{Stateless, false, true, true},
		{Stateful, true, true, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode)+" mode sets M, O and A as SPEC.md says", func(t *testing.T) {
			m, o, a, err := tt.mode.Flags()
			if err != nil {
				t.Fatal(err)
			}
			cfg := baseConfig()
			cfg.Managed, cfg.Other = m, o
			cfg.Prefixes = []Prefix{{Prefix: pfx("2001:db8:1::/64"), Autonomous: a, OnLink: true}}
			ra, err := Build(cfg, t0, nil)
			if err != nil {
				t.Fatal(err)
			}
			pi := ra.Options[0].(*ndp.PrefixInformation)
			got := [3]bool{ra.ManagedConfiguration, ra.OtherConfiguration, pi.AutonomousAddressConfiguration}
			want := [3]bool{tt.managed, tt.other, tt.auto}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("[M O A] mismatch (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("an unknown mode is an error", func(t *testing.T) {
		if _, _, _, err := Mode("dhcp").Flags(); err == nil {
			t.Fatal("want an error")
		}
	})
}

// pio returns the PIO for p in ra, or nil.
func pio(ra *ndp.RouterAdvertisement, p string) *ndp.PrefixInformation {
	want := pfx(p)
	for _, o := range ra.Options {
		if pi, ok := o.(*ndp.PrefixInformation); ok && netip.PrefixFrom(pi.Prefix, int(pi.PrefixLength)) == want {
			return pi
		}
	}
	return nil
}

type lifetimes struct{ Preferred, Valid time.Duration }

func TestLifetimesClampedToLease(t *testing.T) {
	lease := Prefix{
		Prefix:         pfx("2001:db8:100:1::/64"),
		Preferred:      2700 * time.Second,
		Valid:          5400 * time.Second,
		PreferredUntil: t0.Add(1000 * time.Second),
		ValidUntil:     t0.Add(2000 * time.Second),
		Autonomous:     true,
		OnLink:         true,
	}
	at := func(p Prefix, now time.Time) lifetimes {
		cfg := baseConfig()
		cfg.Prefixes = []Prefix{p}
		ra, err := Build(cfg, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		pi := pio(ra, "2001:db8:100:1::/64")
		return lifetimes{pi.PreferredLifetime, pi.ValidLifetime}
	}
	t.Run("lifetimes never exceed what is left of the lease and count down", func(t *testing.T) {
		var got []lifetimes
		for _, dt := range []time.Duration{0, 300 * time.Second, 600*time.Second + 500*time.Millisecond, 1500 * time.Second, 2500 * time.Second} {
			got = append(got, at(lease, t0.Add(dt)))
		}
		want := []lifetimes{
			{1000 * time.Second, 2000 * time.Second},
			{700 * time.Second, 1700 * time.Second},
			{399 * time.Second, 1399 * time.Second},
			{0, 500 * time.Second},
			{0, 0},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("lifetimes mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("a renew that moves the caps forward resets the lifetimes across several renews", func(t *testing.T) {
		var got []lifetimes
		p := lease
		for i := range 4 {
			// Each renew happens at half the preferred lifetime, 500 s in.
			now := t0.Add(time.Duration(i) * 500 * time.Second)
			p.PreferredUntil = now.Add(1000 * time.Second)
			p.ValidUntil = now.Add(2000 * time.Second)
			got = append(got, at(p, now.Add(499*time.Second)))
		}
		want := []lifetimes{{501 * time.Second, 1501 * time.Second}, {501 * time.Second, 1501 * time.Second}, {501 * time.Second, 1501 * time.Second}, {501 * time.Second, 1501 * time.Second}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("lifetimes mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("without caps the configured maxima are advertised", func(t *testing.T) {
		p := lease
		p.PreferredUntil, p.ValidUntil = time.Time{}, time.Time{}
		if diff := cmp.Diff(lifetimes{2700 * time.Second, 5400 * time.Second}, at(p, t0)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("zero maxima mean the RFC 9096 defaults", func(t *testing.T) {
		p := Prefix{Prefix: lease.Prefix, Autonomous: true, OnLink: true}
		if diff := cmp.Diff(lifetimes{DefaultPreferred, DefaultValid}, at(p, t0)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("preferred never exceeds valid", func(t *testing.T) {
		p := lease
		p.PreferredUntil = t0.Add(5000 * time.Second)
		if diff := cmp.Diff(lifetimes{2000 * time.Second, 2000 * time.Second}, at(p, t0)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

func TestBuildDeprecatedAndFinal(t *testing.T) {
	cfg := baseConfig()
	cfg.Prefixes = []Prefix{{Prefix: pfx("2001:db8:2::/64"), Autonomous: true, OnLink: true}}
	cfg.RDNSS = []netip.Addr{netip.MustParseAddr("2001:db8:2::1")}
	cfg.Routes = []Route{{Prefix: pfx("2001:db8::/48"), Lifetime: time.Hour}}
	dep := []Deprecated{
		{Prefix: pfx("2001:db8:1::/64"), Since: t0, Until: t0.Add(time.Hour), Autonomous: true, OnLink: true},
		{Prefix: pfx("2001:db8:3::/64"), Since: t0, Until: t0.Add(10 * time.Second), Autonomous: true, OnLink: true},
		{Prefix: pfx("2001:db8:2::/64"), Since: t0, Until: t0.Add(time.Hour)}, // current again: not deprecated
	}
	now := t0.Add(30 * time.Second)

	t.Run("a deprecated prefix has preferred 0 and its remaining valid lifetime", func(t *testing.T) {
		ra, err := Build(cfg, now, dep)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]lifetimes{}
		for _, p := range []string{"2001:db8:1::/64", "2001:db8:2::/64", "2001:db8:3::/64"} {
			if pi := pio(ra, p); pi != nil {
				got[p] = lifetimes{pi.PreferredLifetime, pi.ValidLifetime}
			}
		}
		want := map[string]lifetimes{
			"2001:db8:1::/64": {0, 3570 * time.Second},
			"2001:db8:2::/64": {DefaultPreferred, DefaultValid},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("PIOs mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("the final RA withdraws the router, prefixes, DNS and routes", func(t *testing.T) {
		ra, err := BuildFinal(cfg, now, dep)
		if err != nil {
			t.Fatal(err)
		}
		if ra.RouterLifetime != 0 {
			t.Errorf("router lifetime = %s, want 0", ra.RouterLifetime)
		}
		for _, o := range ra.Options {
			switch o := o.(type) {
			case *ndp.PrefixInformation:
				if o.PreferredLifetime != 0 {
					t.Errorf("prefix %s preferred = %s, want 0", o.Prefix, o.PreferredLifetime)
				}
			case *ndp.RecursiveDNSServer:
				if o.Lifetime != 0 {
					t.Errorf("RDNSS lifetime = %s, want 0", o.Lifetime)
				}
			case *ndp.RouteInformation:
				if o.RouteLifetime != 0 {
					t.Errorf("route lifetime = %s, want 0", o.RouteLifetime)
				}
			}
		}
	})
	t.Run("DNS lifetimes are three max intervals", func(t *testing.T) {
		ra, err := Build(cfg, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range ra.Options {
			if r, ok := o.(*ndp.RecursiveDNSServer); ok && r.Lifetime != 1800*time.Second {
				t.Errorf("RDNSS lifetime = %s, want 1800s", r.Lifetime)
			}
		}
	})
	t.Run("an invalid search domain is reported by Build", func(t *testing.T) {
		c := cfg
		c.DNSSL = []string{"not a name!"}
		if _, err := Build(c, now, nil); err == nil {
			t.Fatal("want an error")
		}
	})
	t.Run("a router that is not a default router advertises medium preference", func(t *testing.T) {
		c := cfg
		c.RouterLifetime, c.Preference = 0, ndp.High
		ra, err := Build(c, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ra.RouterSelectionPreference != ndp.Medium {
			t.Errorf("preference = %v, want medium (RFC 4191 §2.2)", ra.RouterSelectionPreference)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		ok     bool
	}{
		{"the defaults are valid", func(c *Config) {}, true},
		{"a max interval under 4 s is refused", func(c *Config) { c.MaxInterval = time.Second }, false},
		{"a min interval above 0.75 × max is refused", func(c *Config) { c.MinInterval = 500 * time.Second }, false},
		{"a router lifetime below the max interval is refused", func(c *Config) { c.RouterLifetime = time.Minute }, false},
		{"router lifetime 0 (not a default router) is valid", func(c *Config) { c.RouterLifetime = 0 }, true},
		{"an MTU below 1280 is refused", func(c *Config) { c.MTU = 1000 }, false},
		{"SLAAC on a /56 is refused", func(c *Config) {
			c.Prefixes = []Prefix{{Prefix: pfx("2001:db8::/56"), Autonomous: true}}
		}, false},
		{"an IPv4 DNS server is refused", func(c *Config) { c.RDNSS = []netip.Addr{netip.MustParseAddr("192.0.2.1")} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			tt.change(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
