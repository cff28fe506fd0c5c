package nat

import (
	"net/netip"
	"testing"

	"github.com/ti-mo/conntrack"
)

func TestUsesPrefix(t *testing.T) {
	a := netip.MustParseAddr
	flow := func(origSrc, origDst, replySrc, replyDst string) conntrack.Flow {
		var f conntrack.Flow
		f.TupleOrig.IP = conntrack.IPTuple{SourceAddress: a(origSrc), DestinationAddress: a(origDst)}
		f.TupleReply.IP = conntrack.IPTuple{SourceAddress: a(replySrc), DestinationAddress: a(replyDst)}
		return f
	}
	old := netip.MustParsePrefix("2001:db8:100::/56")
	tests := []struct {
		name string
		f    conntrack.Flow
		want bool
	}{
		{"an outbound flow whose source was mapped into the old prefix uses it",
			flow("fd00:aaaa:bbbb:cc01::10", "2001:db8:ffff::2", "2001:db8:ffff::2", "2001:db8:100:1::10"), true},
		{"an inbound flow opened to an address in the old prefix uses it",
			flow("2001:db8:ffff::2", "2001:db8:100:1::10", "fd00:aaaa:bbbb:cc01::10", "2001:db8:ffff::2"), true},
		{"a flow mapped into the new prefix does not",
			flow("fd00:aaaa:bbbb:cc01::10", "2001:db8:ffff::2", "2001:db8:ffff::2", "2001:db8:200:1::10"), false},
		{"an untranslated LAN flow does not",
			flow("fd00:aaaa:bbbb:cc01::10", "fd00:aaaa:bbbb:cc02::20", "fd00:aaaa:bbbb:cc02::20", "fd00:aaaa:bbbb:cc01::10"), false},
		{"an IPv4 flow does not",
			flow("192.0.2.1", "198.51.100.1", "198.51.100.1", "192.0.2.1"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := UsesPrefix(tc.f, old); got != tc.want {
				t.Errorf("UsesPrefix = %v, want %v", got, tc.want)
			}
		})
	}
}
