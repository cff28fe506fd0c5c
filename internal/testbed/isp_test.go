package testbed

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func renderKea(t *testing.T, o Options) map[string]any {
	t.Helper()
	b, err := keaConfig("/lab", "/lab/leases.csv", DefaultPool, o.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestExcludedOf(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2001:db8:100::/56", "2001:db8:100:ff::/64"},
		{"2001:db8:100:3400::/56", "2001:db8:100:34ff::/64"},
		{"2001:db8:100:10::/60", "2001:db8:100:1f::/64"},
		{"2001:db8:100::/48", "2001:db8:100:ffff::/64"},
		{"2001:db8:100:7::/63", "2001:db8:100:7::/64"},
		{"2001:db8:100:7::/64", "invalid Prefix"},
	}
	for _, tt := range tests {
		if got := ExcludedOf(netip.MustParsePrefix(tt.in)).String(); got != tt.want {
			t.Errorf("ExcludedOf(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestKeaConfigISPOptions(t *testing.T) {
	t.Run("no ISP options: no excluded prefix, pools or option-data", func(t *testing.T) {
		doc := renderKea(t, Options{})
		for _, k := range []string{"pools", "option-data"} {
			if v := Get(doc, "Dhcp6", "subnet6", 0, k); v != nil {
				t.Errorf("%s = %v", k, v)
			}
		}
		if v := Get(doc, "Dhcp6", "subnet6", 0, "pd-pools", 0, "excluded-prefix"); v != nil {
			t.Errorf("excluded-prefix = %v", v)
		}
	})
	t.Run("ExcludedPrefix names the last /64 of the pool's first delegated prefix", func(t *testing.T) {
		for _, tc := range []struct {
			deleg int
			want  string
		}{{56, "2001:db8:100:ff::"}, {60, "2001:db8:100:f::"}, {48, "2001:db8:100:ffff::"}} {
			doc := renderKea(t, Options{ExcludedPrefix: true, Delegated: tc.deleg})
			pool := []any{"Dhcp6", "subnet6", 0, "pd-pools", 0}
			if got := Get(doc, append(pool, "excluded-prefix")...); got != tc.want {
				t.Errorf("/%d: excluded-prefix = %v, want %s", tc.deleg, got, tc.want)
			}
			if got := Get(doc, append(pool, "excluded-prefix-len")...); got != 64.0 {
				t.Errorf("/%d: excluded-prefix-len = %v, want 64", tc.deleg, got)
			}
		}
	})
	t.Run("ExcludedPrefix with a delegated /64 is an error", func(t *testing.T) {
		if _, err := keaConfig("/lab", "/lab/l.csv", DefaultPool, Options{ExcludedPrefix: true, Delegated: 64}.withDefaults()); err == nil {
			t.Error("no error")
		}
	})
	t.Run("AddressPool is the subnet's IA_NA pool", func(t *testing.T) {
		doc := renderKea(t, Options{AddressPool: netip.MustParsePrefix("2001:db8:0:1::1000/116")})
		if got := Get(doc, "Dhcp6", "subnet6", 0, "pools", 0, "pool"); got != "2001:db8:0:1::1000/116" {
			t.Errorf("pool = %v", got)
		}
	})
	t.Run("an AddressPool outside the link or holding the upstream's address is an error", func(t *testing.T) {
		for _, p := range []string{"2001:db8:0:2::/116", "2001:db8:0:1::/120", "2001:db8:0:1::/64", "2001:db8:0:1::1001/116", "2001:db8::/48"} {
			o := Options{AddressPool: netip.MustParsePrefix(p)}.withDefaults()
			if _, err := keaConfig("/lab", "/lab/l.csv", DefaultPool, o); err == nil {
				t.Errorf("%s: no error", p)
			}
		}
	})
	t.Run("DNS and Domains are option-data, after the preference", func(t *testing.T) {
		doc := renderKea(t, Options{
			Preference: 255,
			DNS:        []netip.Addr{netip.MustParseAddr("2001:db8:53::1"), netip.MustParseAddr("2001:db8:53::2")},
			Domains:    []string{"isp.example", "lab.example"},
		})
		want := []map[string]any{
			{"name": "preference", "data": "255", "always-send": true},
			{"name": "dns-servers", "data": "2001:db8:53::1, 2001:db8:53::2"},
			{"name": "domain-search", "data": "isp.example, lab.example"},
		}
		od, _ := Get(doc, "Dhcp6", "subnet6", 0, "option-data").([]any)
		if len(od) != len(want) {
			t.Fatalf("option-data = %v", od)
		}
		for i, w := range want {
			got, _ := od[i].(map[string]any)
			if len(got) != len(w) {
				t.Errorf("option-data[%d] = %v, want %v", i, got, w)
			}
			for k, v := range w {
				if got[k] != v {
					t.Errorf("option-data[%d][%s] = %v, want %v", i, k, got[k], v)
				}
			}
		}
	})
	t.Run("a bad DNS server or domain is an error", func(t *testing.T) {
		for _, o := range []Options{
			{DNS: []netip.Addr{netip.MustParseAddr("192.0.2.1")}},
			{DNS: []netip.Addr{{}}},
			{Domains: []string{""}},
			{Domains: []string{"a.example, b.example"}},
		} {
			if _, err := keaConfig("/lab", "/lab/l.csv", DefaultPool, o.withDefaults()); err == nil {
				t.Errorf("%+v: no error", o)
			}
		}
	})
}

// TestKeaAcceptsISPOptions has the installed kea-dhcp6 check (-t) a
// configuration with every ISP option, and the one RestartKeaExhausted
// writes (a pool of exactly one delegated prefix).
func TestKeaAcceptsISPOptions(t *testing.T) {
	if _, err := exec.LookPath("kea-dhcp6"); err != nil {
		t.Skip("kea-dhcp6 is not installed")
	}
	dir := t.TempDir()
	o := Options{
		ExcludedPrefix: true,
		AddressPool:    netip.MustParsePrefix("2001:db8:0:1::1000/116"),
		DNS:            []netip.Addr{netip.MustParseAddr("2001:db8:53::1")},
		Domains:        []string{"isp.example"},
	}.withDefaults()
	for _, pool := range []netip.Prefix{DefaultPool, netip.MustParsePrefix("2001:db8:100::/56")} {
		b, err := keaConfig(dir, filepath.Join(dir, "leases.csv"), pool, o)
		if err != nil {
			t.Fatal(err)
		}
		// -t checks that the interfaces exist: the lab's up0 is lo here.
		b = []byte(strings.ReplaceAll(string(b), `"`+UpstreamIface+`"`, `"lo"`))
		conf := filepath.Join(dir, "kea.json")
		if err := os.WriteFile(conf, b, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("kea-dhcp6", "-t", conf)
		cmd.Env = append(os.Environ(), "KEA_PIDFILE_DIR="+dir, "KEA_LOCKFILE_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("pool %s: kea-dhcp6 -t: %v\n%s", pool, err, strings.TrimSpace(string(out)))
		}
	}
}
