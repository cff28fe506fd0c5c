package nat

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFit(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name      string
		internal  netip.Prefix
		delegated netip.Prefix
		sub       int
		want      netip.Prefix
		wantErr   error // nil: success; ErrLength; errAny: any error
	}{
		{"a /48 yields its first /56 for sub 0", p("fd00::/56"), p("2001:db8:1::/48"), 0, p("2001:db8:1::/56"), nil},
		{"a /48 yields its fifth /56 for sub 5", p("fd00::/56"), p("2001:db8:1::/48"), 5, p("2001:db8:1:500::/56"), nil},
		{"a /48 yields its last /56 for sub 255", p("fd00::/56"), p("2001:db8:1::/48"), 255, p("2001:db8:1:ff00::/56"), nil},
		{"an equal length yields the delegated prefix itself", p("fd00:aaaa:bbbb:cc00::/56"), p("2001:db8:100::/56"), 0, p("2001:db8:100::/56"), nil},
		{"host bits in the delegated prefix are cleared", p("fd00::/56"), p("2001:db8:100::1/56"), 0, p("2001:db8:100::/56"), nil},
		{"a /60 inside a /56 at sub 3", p("fd00::/60"), p("2001:db8:100::/56"), 3, p("2001:db8:100:30::/60"), nil},
		{"a /64 sub-prefix crossing into the low 64 bits' neighbour", p("fd00::/64"), p("2001:db8::/32"), 0x1_0001, p("2001:db8:1:1::/64"), nil},
		{"a /96 sub-prefix lands in the low 64 bits", p("fd00::/96"), p("2001:db8::/64"), 7, p("2001:db8::7:0:0/96"), nil},
		{"a /128 from a /64 uses the whole low half", p("fd00::1/128"), p("2001:db8::/64"), 0x1234, p("2001:db8::1234/128"), nil},
		{"a longer delegated prefix is a length error", p("fd00::/56"), p("2001:db8:100::/60"), 0, netip.Prefix{}, ErrLength},
		{"a sub index past the end is refused", p("fd00::/56"), p("2001:db8:1::/48"), 256, netip.Prefix{}, errAny},
		{"a negative sub index is refused", p("fd00::/56"), p("2001:db8:1::/48"), -1, netip.Prefix{}, errAny},
		{"an equal length accepts no sub index but 0", p("fd00::/56"), p("2001:db8:100::/56"), 1, netip.Prefix{}, errAny},
		{"an IPv4 delegated prefix is refused", p("fd00::/56"), p("192.0.2.0/24"), 0, netip.Prefix{}, errAny},
		{"an invalid internal prefix is refused", netip.Prefix{}, p("2001:db8:1::/48"), 0, netip.Prefix{}, errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Fit(tc.internal, tc.delegated, tc.sub)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("Fit: unexpected error: %v", err)
			case tc.wantErr != nil && err == nil:
				t.Fatalf("Fit = %v, want an error", got)
			case tc.wantErr == ErrLength && !errors.Is(err, ErrLength):
				t.Fatalf("Fit error %v does not wrap ErrLength", err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("Fit mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

var errAny = errors.New("any error")

func FuzzFit(f *testing.F) {
	f.Add("fd00::/56", "2001:db8:1::/48", 5)
	f.Add("fd00::/64", "2001:db8::/32", 70000)
	f.Add("fd00::1/128", "::/0", 1<<62)
	f.Fuzz(func(t *testing.T, in, del string, sub int) {
		internal, err1 := netip.ParsePrefix(in)
		delegated, err2 := netip.ParsePrefix(del)
		if err1 != nil || err2 != nil {
			return
		}
		got, err := Fit(internal, delegated, sub)
		if err != nil {
			return
		}
		if got.Bits() != internal.Bits() {
			t.Fatalf("Fit(%v, %v, %d) = %v: length differs from internal", internal, delegated, sub, got)
		}
		if !delegated.Masked().Contains(got.Addr()) {
			t.Fatalf("Fit(%v, %v, %d) = %v: outside the delegated prefix", internal, delegated, sub, got)
		}
		if got.Masked() != got {
			t.Fatalf("Fit(%v, %v, %d) = %v: host bits set", internal, delegated, sub, got)
		}
	})
}
