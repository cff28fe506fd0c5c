package netif

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func TestStateOf(t *testing.T) {
	tests := []struct {
		name  string
		flags int
		want  AddrState
	}{
		{"a permanent address without flags is ok", unix.IFA_F_PERMANENT, StateOK},
		{"a nodad address is ok", unix.IFA_F_PERMANENT | unix.IFA_F_NODAD, StateOK},
		{"a tentative address is tentative", unix.IFA_F_TENTATIVE, StateTentative},
		{"an optimistic address still runs DAD", unix.IFA_F_OPTIMISTIC, StateTentative},
		{"dadfailed wins over tentative (the kernel sets both)", unix.IFA_F_TENTATIVE | unix.IFA_F_DADFAILED, StateDADFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stateOf(tt.flags); got != tt.want {
				t.Errorf("stateOf(%#x) = %q, want %q", tt.flags, got, tt.want)
			}
		})
	}
}

// FuzzPrefixOf feeds arbitrary address and mask bytes, as a netlink message
// could carry them, to the conversion into netip: no panic, and whatever is
// accepted converts back unchanged.
func FuzzPrefixOf(f *testing.F) {
	f.Add([]byte(net.ParseIP("fd00::1").To16()), []byte(net.CIDRMask(64, 128)))
	f.Add([]byte(net.ParseIP("192.0.2.1").To4()), []byte(net.CIDRMask(24, 32)))
	f.Add([]byte{1, 2, 3}, []byte{0xff, 0x00, 0xff})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, ip, mask []byte) {
		p, ok := prefixOf(&net.IPNet{IP: ip, Mask: mask})
		if !ok {
			return
		}
		if !p.IsValid() {
			t.Fatalf("prefixOf(%x/%x) = invalid %v", ip, mask, p)
		}
		back, ok := prefixOf(ipNet(p))
		if !ok || back != p {
			t.Fatalf("round trip of %v gave %v, %v", p, back, ok)
		}
		if p.Addr().Is4In6() {
			t.Fatalf("prefixOf kept a v4-mapped address: %v", p)
		}
	})
}

func TestPrefixOfKeepsTheHostBits(t *testing.T) {
	p, ok := prefixOf(ipNet(netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::1/64")))
	if !ok || p.String() != "fd00:aaaa:bbbb:cc01::1/64" {
		t.Errorf("prefixOf = %v, %v", p, ok)
	}
}
