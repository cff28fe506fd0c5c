package ha

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var syncNow = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func sampleLease() SyncedLease {
	return SyncedLease{
		WAN: "wan0", IAID: 1, ServerID: []byte{0, 1, 0, 1, 2, 3, 4, 5}, ServerAddr: netip.MustParseAddr("fe80::1"),
		T1: 1800 * time.Second, T2: 2880 * time.Second, Acquired: syncNow.Add(-90 * time.Second), Hint: 56,
		Prefixes: []SyncedPrefix{{Prefix: netip.MustParsePrefix("2001:db8:100::/56"), Preferred: 3600 * time.Second, Valid: 7200 * time.Second,
			Exclude: netip.MustParsePrefix("2001:db8:100:ff::/64")}},
		Addresses: []SyncedAddress{{Addr: netip.MustParseAddr("2001:db8:0:1::1:5"), Preferred: 3600 * time.Second, Valid: 7200 * time.Second}},
		DNS:       []netip.Addr{netip.MustParseAddr("2001:db8::53")},
		Domains:   []string{"isp.example"},
	}
}

func TestLeaseRoundTrip(t *testing.T) {
	want := sampleLease()
	b, err := EncodeLease(want, syncNow)
	if err != nil {
		t.Fatal(err)
	}
	// The backup's clock is 5 minutes ahead: the age, not the time, travels.
	later := syncNow.Add(5 * time.Minute)
	got, err := DecodeLease(b, later)
	if err != nil {
		t.Fatal(err)
	}
	want.Acquired = want.Acquired.Add(5 * time.Minute)
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestDecodeLeaseRefuses(t *testing.T) {
	good, _ := EncodeLease(sampleLease(), syncNow)
	for _, tc := range []struct{ name, from, to string }{
		{"a lease from the future", `"age_ms":90000`, `"age_ms":-1`},
		{"a server id that is not hex", `"server_id":"0001000102030405"`, `"server_id":"zz"`},
		{"an empty server id", `"server_id":"0001000102030405"`, `"server_id":""`},
		{"no prefix", `"prefixes":[`, `"prefixes":[],"x":[`},
		{"a prefix longer than /64", `2001:db8:100::/56`, `2001:db8:100::/80`},
		{"an IPv4 prefix", `2001:db8:100::/56`, `10.0.0.0/8`},
		{"valid below preferred", `"valid_s":7200`, `"valid_s":60`},
		{"a negative T1", `"t1_s":1800`, `"t1_s":-5`},
		{"no WAN", `"wan":"wan0"`, `"wan":""`},
		{"not JSON", `{`, `[`},
		{"an excluded prefix outside the delegation", `2001:db8:100:ff::/64`, `2001:db8:999:ff::/64`},
		{"an excluded prefix as long as the delegation", `2001:db8:100:ff::/64`, `2001:db8:100::/56`},
		{"a link-local WAN address", `2001:db8:0:1::1:5`, `fe80::5`},
		{"a multicast DNS server", `2001:db8::53`, `ff02::1`},
		{"an empty domain", `"isp.example"`, `""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := strings.Replace(string(good), tc.from, tc.to, 1)
			if b == string(good) {
				t.Fatalf("the test's edit %q did not apply to %s", tc.from, good)
			}
			if _, err := DecodeLease([]byte(b), syncNow); !errors.Is(err, ErrSyncLease) {
				t.Errorf("DecodeLease(%s) = %v, want ErrSyncLease", b, err)
			}
		})
	}
}

// FuzzDecodeLease: bytes from the LAN never crash the backup, and whatever
// is accepted is a lease the plan can use and survives a second trip.
func FuzzDecodeLease(f *testing.F) {
	good, _ := EncodeLease(sampleLease(), syncNow)
	f.Add(good)
	f.Add([]byte(`{"wan":"w","server_id":"0001","prefixes":[{"prefix":"::/0","preferred_s":0,"valid_s":0}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeLease(b, syncNow)
		if err != nil {
			return
		}
		for _, p := range l.Prefixes {
			if !p.Prefix.IsValid() || p.Prefix.Bits() > 64 || p.Valid < p.Preferred || p.Preferred < 0 {
				t.Fatalf("accepted a prefix the plan cannot use: %+v", p)
			}
		}
		if l.Acquired.After(syncNow) {
			t.Fatalf("accepted a lease acquired in the future: %v", l.Acquired)
		}
		again, err := EncodeLease(l, syncNow)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeLease(again, syncNow); err != nil {
			t.Fatalf("an accepted lease does not survive a second trip: %v (%s)", err, again)
		}
	})
}
