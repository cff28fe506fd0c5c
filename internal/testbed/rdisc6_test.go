package testbed

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// rdisc6Out is real rdisc6 output from the lab (v6edge in stateful mode).
const rdisc6Out = `Soliciting ff02::2 (ff02::2) on eth0...

Hop limit                 :           64 (      0x40)
Stateful address conf.    :          Yes
Stateful other conf.      :          Yes
Mobile home agent         :           No
Router preference         :       medium
Neighbor discovery proxy  :           No
Router lifetime           :         1800 (0x00000708) seconds
Reachable time            :  unspecified (0x00000000)
Retransmit time           :  unspecified (0x00000000)
 Source link-layer address: EA:00:F3:B6:C5:E1
 Prefix                   : fd00:aaaa:bbbb:cc01::/64
  On-link                 :          Yes
  Autonomous address conf.:           No
  Valid time              :         5400 (0x00001518) seconds
  Pref. time              :         2700 (0x00000a8c) seconds
 Recursive DNS server     : fd00:aaaa:bbbb:cc01::1
  DNS server lifetime     :         1800 (0x00000708) seconds
 DNS search list          : lan.example 
  DNS search list lifetime:         1800 (0x00000708) seconds
 from fe80::e800:f3ff:feb6:c5e1
`

func TestParseRdisc6(t *testing.T) {
	t.Run("flags, prefix, RDNSS and DNSSL of one RA are read", func(t *testing.T) {
		want := []RA{{
			From:     netip.MustParseAddr("fe80::e800:f3ff:feb6:c5e1"),
			Managed:  true,
			Other:    true,
			Lifetime: "1800 (0x00000708) seconds",
			Prefixes: []RAPrefix{{
				Prefix: netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::/64"), OnLink: true, Autonomous: false,
				Valid: "5400 (0x00001518) seconds", Preferred: "2700 (0x00000a8c) seconds",
			}},
			RDNSS: []netip.Addr{netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1")},
			DNSSL: []string{"lan.example"},
		}}
		if diff := cmp.Diff(want, ParseRdisc6(rdisc6Out), netipEqual); diff != "" {
			t.Errorf("ParseRdisc6 (-want +got):\n%s", diff)
		}
	})
	t.Run("output without a from line holds no RA", func(t *testing.T) {
		if got := ParseRdisc6("Soliciting ff02::2 (ff02::2) on eth0...\nTimed out.\n"); len(got) != 0 {
			t.Errorf("got %+v", got)
		}
	})
}

func FuzzParseRdisc6(f *testing.F) {
	f.Add(rdisc6Out)
	f.Add(" Prefix : ::/0\n  On-link : Yes\n from ::1\n")
	f.Fuzz(func(t *testing.T, out string) {
		for _, ra := range ParseRdisc6(out) {
			for _, p := range ra.Prefixes {
				if !p.Prefix.IsValid() {
					t.Fatalf("invalid prefix from %q", out)
				}
			}
		}
	})
}
