package netif

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func TestEUI64LinkLocal(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:5e:10:00:01")
	if got, want := EUI64LinkLocal(mac), netip.MustParseAddr("fe80::5eff:fe10:1"); got != want {
		t.Errorf("EUI64LinkLocal(%s) = %v, want %v", mac, got, want)
	}
	if got := EUI64LinkLocal(net.HardwareAddr{1, 2}); got.IsValid() {
		t.Errorf("a MAC that is not 48 bits gave %v", got)
	}
}

func TestSharedMAC(t *testing.T) {
	f := NewFakeHandle("wan0")
	own, _ := net.ParseMAC("52:54:00:00:00:01")
	shared, _ := net.ParseMAC("02:76:65:00:00:01")
	link, _ := f.LinkByName("wan0")
	if err := f.LinkSetHardwareAddr(link, own); err != nil {
		t.Fatal(err)
	}
	s := NewSharedMAC(f, "wan0", shared, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ll := s.LinkLocal()
	// A SLAAC address the upstream's RA made from the shared MAC while held.
	slaac := netip.PrefixFrom(netip.MustParseAddr("2001:db8::76:65ff:fe00:1"), 64)

	for i := range 2 {
		took, err := s.Hold()
		if err != nil {
			t.Fatal(err)
		}
		if took != (i == 0) {
			t.Errorf("Hold #%d reported took=%v", i+1, took)
		}
	}
	link, _ = f.LinkByName("wan0")
	if got := link.Attrs().HardwareAddr.String(); got != shared.String() {
		t.Errorf("held: MAC %s, want the shared %s", got, shared)
	}
	if st, ok := f.Addrs("wan0")[netip.PrefixFrom(ll, 64)]; !ok || st != StateOK {
		t.Errorf("held: link-local %v state %v (present %v), want it without DAD", ll, st, ok)
	}
	if !s.Holding() {
		t.Error("Holding() = false after Hold")
	}
	f.PutAddr("wan0", slaac, unix.IFA_F_PERMANENT)
	f.PutAddr("wan0", netip.MustParsePrefix("2001:db8::1/64"), unix.IFA_F_PERMANENT)

	for range 2 {
		if err := s.Give(); err != nil {
			t.Fatal(err)
		}
	}
	link, _ = f.LinkByName("wan0")
	if got := link.Attrs().HardwareAddr.String(); got != own.String() {
		t.Errorf("given back: MAC %s, want the own %s", got, own)
	}
	addrs := f.Addrs("wan0")
	if _, ok := addrs[netip.PrefixFrom(ll, 64)]; ok {
		t.Errorf("given back: the shared link-local %v stayed", ll)
	}
	if _, ok := addrs[slaac]; ok {
		t.Errorf("given back: the SLAAC address %v of the shared MAC stayed", slaac)
	}
	if _, ok := addrs[netip.MustParsePrefix("2001:db8::1/64")]; !ok {
		t.Error("given back: an address not derived from the shared MAC was removed")
	}
	if s.Holding() {
		t.Error("Holding() = true after Give")
	}
}
