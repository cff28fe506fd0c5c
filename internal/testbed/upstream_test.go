package testbed

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Unit tests of the ISC dhcpd upstream's helpers (upstream.go); the system
// tests that run dhcpd against v6edge are in integration/upstream_test.go.

func TestAltCovering(t *testing.T) {
	tests := []struct {
		name        string
		first, last string
		delegated   int
		want        string
	}{
		{"the default range is the lab's default pool", "", "", 0, "2001:db8:100::/40"},
		{"a range of one prefix is that prefix", "2001:db8:200::", "2001:db8:200::", 56, "2001:db8:200::/56"},
		{"a range across a bit boundary widens the prefix", "2001:db8:1ff::", "2001:db8:200::", 56, "2001:db8::/38"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o AltDHCPDOptions
			if tt.first != "" {
				o.First, o.Last, o.Delegated = netip.MustParseAddr(tt.first), netip.MustParseAddr(tt.last), tt.delegated
			}
			if got := AltCovering(o); got != netip.MustParsePrefix(tt.want) {
				t.Errorf("AltCovering = %s, want %s", got, tt.want)
			}
		})
	}
}

// altLeaseFile is what dhcpd 4.4.3 wrote in a lab run: the binding, then
// the same binding again after a Renew (the file is a journal).
const altLeaseFile = `# The format of this file is documented in the dhcpd.leases(5) manual page.
# This lease file was written by isc-dhcp-4.4.3-P1

# authoring-byte-order entry is generated, DO NOT DELETE
authoring-byte-order little-endian;

server-duid "\000\001\000\0012\233\027A6\354b\370O\006";

ia-pd "\001\000\000\000\000\003\000\001\002\000^\000\0013" {
  cltt 4 2026/11/26 16:13:55;
  iaprefix 2001:db8:1ff::/56 {
    binding state active;
    preferred-life 20;
    max-life 30;
    ends 4 2026/11/26 16:14:25;
  }
}

ia-pd "\001\000\000\000\000\003\000\001\002\000^\000\0013" {
  cltt 4 2026/11/26 16:14:05;
  iaprefix 2001:db8:1ff::/56 {
    binding state active;
    preferred-life 19;
    max-life 29;
    ends 4 2026/11/26 16:14:35;
  }
}
`

func TestAltParseDHCPDLeases(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    []AltLease
		wantErr bool
	}{
		{
			name: "a renewed binding appears once, in its latest state",
			text: altLeaseFile,
			want: []AltLease{{Prefix: netip.MustParsePrefix("2001:db8:1ff::/56"), State: "active", Preferred: 19 * time.Second, Valid: 29 * time.Second}},
		},
		{
			name: "an expired binding keeps its state and order among others",
			text: "ia-pd \"x\" {\n iaprefix 2001:db8:100::/56 {\n binding state expired;\n max-life 30;\n }\n}\n" +
				"ia-pd \"y\" {\n iaprefix 2001:db8:101::/56 {\n binding state active;\n }\n}\n",
			want: []AltLease{
				{Prefix: netip.MustParsePrefix("2001:db8:100::/56"), State: "expired", Valid: 30 * time.Second},
				{Prefix: netip.MustParsePrefix("2001:db8:101::/56"), State: "active"},
			},
		},
		{name: "an empty file holds no lease", text: "", want: []AltLease{}},
		{name: "a bad prefix is an error", text: "iaprefix 2001:db8::/129 {\n}\n", wantErr: true},
		{name: "a lifetime beyond 32 bits is an error", text: "iaprefix 2001:db8::/56 {\nmax-life 4294967296;\n}\n", wantErr: true},
		{name: "a file cut inside a block is an error", text: "iaprefix 2001:db8::/56 {\nbinding state active;\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AltParseDHCPDLeases(tt.text)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if diff := cmp.Diff(tt.want, got, netipEqual); diff != "" {
				t.Errorf("leases (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzAltParseDHCPDLeases: any text parses or fails cleanly, and every
// lease it returns names a valid prefix once.
func FuzzAltParseDHCPDLeases(f *testing.F) {
	f.Add(altLeaseFile)
	f.Add("iaprefix 2001:db8::/56 {\n}\n}\n")
	f.Add("iaprefix ::/0 {\npreferred-life 1;\nmax-life 2;\n}\niaprefix ::/0 {\n}\n")
	f.Fuzz(func(t *testing.T, text string) {
		leases, err := AltParseDHCPDLeases(text)
		if err != nil {
			return
		}
		seen := map[netip.Prefix]bool{}
		for _, l := range leases {
			if !l.Prefix.IsValid() || seen[l.Prefix] {
				t.Fatalf("lease %+v: invalid or repeated prefix", l)
			}
			seen[l.Prefix] = true
		}
	})
}
