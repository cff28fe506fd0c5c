package dhcp6pd

import (
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDUIDs(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x01, 0x33}
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"DUID-LL is type 3, hardware type 1, then the MAC", DUIDLL(mac), "00:03:00:01:02:00:5e:00:01:33"},
		{"DUID-LLT counts seconds from 2000-01-01 UTC", DUIDLLT(mac, time.Date(2000, 1, 1, 0, 1, 0, 0, time.UTC)), "00:01:00:01:00:00:00:3c:02:00:5e:00:01:33"},
		{"DUID-EN is type 2, the enterprise number, then the id", DUIDEN(32473, []byte{0xab, 0xcd}), "00:02:00:00:7e:d9:ab:cd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatDUID(tt.got); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			back, err := ParseDUID(tt.want)
			if err != nil || !cmp.Equal(back, tt.got) {
				t.Errorf("ParseDUID(%s) = %x, %v", tt.want, back, err)
			}
		})
	}
}

func TestLoadOrCreateDUIDLLT(t *testing.T) {
	dir := t.TempDir()
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	first, err := LoadOrCreateDUIDLLT(dir, mac, t0)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateDUIDLLT(dir, net.HardwareAddr{0x02, 0, 0, 0, 0, 2}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("the DUID changed between starts (-first +again):\n%s", diff)
	}
}

func TestLeaseStore(t *testing.T) {
	dir := t.TempDir()
	l := &Lease{
		IAID: 7, ServerID: serverA, ServerAddr: addrA, Unicast: netip.MustParseAddr("2001:db8::53"),
		T1: 1000 * time.Second, T2: 1600 * time.Second, Acquired: t0, Hint: 56,
		Prefixes: []Prefix{
			{Prefix: netip.MustParsePrefix("2001:db8:100::/56"), Preferred: 2000 * time.Second, Valid: 3000 * time.Second},
			{Prefix: netip.MustParsePrefix("2001:db8:200::/60"), Preferred: Infinity, Valid: Infinity},
		},
		ReconfigureKey: reconfKey,
	}
	if err := SaveLease(dir, "wan0", l); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "lease-wan0-7.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"prefix": "2001:db8:100::/56"`) {
		t.Errorf("prefixes are not stored as text:\n%s", data)
	}
	got, err := LoadLease(dir, "wan0", 7)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(l, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if err := RemoveLease(dir, "wan0", 7); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadLease(dir, "wan0", 7); got != nil || err != nil {
		t.Errorf("after remove: %v, %v; want nil, nil", got, err)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(matches) != 0 {
		t.Errorf("temporary files left behind: %v", matches)
	}
}

func TestLeaseChosen(t *testing.T) {
	p := func(s string, valid time.Duration) Prefix {
		return Prefix{Prefix: netip.MustParsePrefix(s), Preferred: valid, Valid: valid}
	}
	tests := []struct {
		name     string
		prefixes []Prefix
		hint     int
		want     string
	}{
		{"the prefix of the hinted length wins", []Prefix{p("2001:db8:1::/48", time.Hour), p("2001:db8:2::/56", time.Hour)}, 56, "2001:db8:2::/56"},
		{"without a match the first prefix wins", []Prefix{p("2001:db8:2::/60", time.Hour), p("2001:db8:1::/52", time.Hour)}, 56, "2001:db8:2::/60"},
		{"a withdrawn prefix is never chosen", []Prefix{p("2001:db8:2::/56", 0), p("2001:db8:1::/60", time.Hour)}, 56, "2001:db8:1::/60"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Lease{Prefixes: tt.prefixes, Acquired: t0, Hint: tt.hint}
			got, ok := l.Chosen(tt.hint, t0)
			if !ok || got.Prefix.String() != tt.want {
				t.Errorf("chose %v (%v), want %s", got.Prefix, ok, tt.want)
			}
			if l.ValidUntil(t0) != t0.Add(got.Valid) {
				t.Errorf("ValidUntil %s", l.ValidUntil(t0))
			}
		})
	}
}

func TestLeaseJSON(t *testing.T) {
	l := &Lease{
		IAID: 1, ServerID: serverA, ServerAddr: addrA, T1: time.Minute, T2: 2 * time.Minute, Acquired: t0, Hint: 56,
		Prefixes: []Prefix{{Prefix: netip.MustParsePrefix("2001:db8:100::/56"), Preferred: time.Hour, Valid: 2 * time.Hour}},
	}
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"prefix":"2001:db8:100::/56"`) {
		t.Errorf("JSON does not carry the prefix as text: %s", b)
	}
	var got Lease
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(l, &got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestDUIDFromSpec(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x01, 0x33}
	tests := []struct {
		name, spec, want, err string
	}{
		{"ll is DUID-LL from the MAC", "ll", "00:03:00:01:02:00:5e:00:01:33", ""},
		{"an empty setting means ll", "", "00:03:00:01:02:00:5e:00:01:33", ""},
		{"en takes an enterprise number and a hex id", "en:32473:ab:cd", "00:02:00:00:7e:d9:ab:cd", ""},
		{"raw hex is taken as is", "00:04:01:02:03", "00:04:01:02:03", ""},
		{"a bad enterprise number is an error", "en:x:ab", "", "enterprise number"},
		{"an en without id is an error", "en:1", "", "want en:"},
		{"garbage is an error", "zz", "", "parsing DUID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DUIDFromSpec(tt.spec, mac, t.TempDir(), t0)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil || FormatDUID(got) != tt.want {
				t.Fatalf("got %s, %v; want %s", FormatDUID(got), err, tt.want)
			}
		})
	}
	t.Run("llt is created once and then read back", func(t *testing.T) {
		dir := t.TempDir()
		a, err := DUIDFromSpec("llt", mac, dir, t0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := DUIDFromSpec("llt", mac, dir, t0.Add(time.Hour))
		if err != nil || FormatDUID(a) != FormatDUID(b) {
			t.Fatalf("%s then %s (%v)", FormatDUID(a), FormatDUID(b), err)
		}
	})
}
