package ra

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// fuzzSeeds are valid and nearly valid messages for the corpus.
func fuzzSeeds(f *testing.F) [][]byte {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	seeds := [][]byte{
		mustMarshal(f, &ndp.RouterSolicitation{}),
		mustMarshal(f, &ndp.RouterSolicitation{Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}}}),
		{133, 1, 0, 0, 0, 0, 0, 0},
		{133, 0, 0, 0, 0, 0, 0, 0, 1, 0},
	}
	cfg := baseConfig()
	cfg.MTU = 1500
	cfg.LinkLayerAddr = mac
	cfg.Prefixes = []Prefix{{Prefix: pfx("2001:db8:1::/64"), Autonomous: true, OnLink: true}}
	cfg.RDNSS = []netip.Addr{netip.MustParseAddr("2001:db8:1::1")}
	cfg.DNSSL = []string{"lan.example"}
	cfg.Routes = []Route{{Prefix: pfx("2001:db8::/48"), Lifetime: time.Hour}}
	ra, err := Build(cfg, t0, nil)
	if err != nil {
		f.Fatal(err)
	}
	return append(seeds, mustMarshal(f, ra))
}

// FuzzParseRS feeds arbitrary bytes to the receive-side parser: it must
// never panic, and whatever it accepts must be a valid RS or RA.
func FuzzParseRS(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, uint8(255), false)
		f.Add(s, uint8(255), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, hop uint8, unspecified bool) {
		src := netip.MustParseAddr("fe80::1")
		if unspecified {
			src = netip.IPv6Unspecified()
		}
		m, err := ParseMessage(b, &ipv6.ControlMessage{HopLimit: int(hop)}, src)
		if err != nil {
			return
		}
		if hop != 255 || b[1] != 0 {
			t.Fatalf("accepted a message with hop limit %d and code %d", hop, b[1])
		}
		switch m.(type) {
		case *ndp.RouterSolicitation, *ndp.RouterAdvertisement:
		default:
			t.Fatalf("accepted a %T", m)
		}
	})
}

// FuzzHandleMessage feeds arbitrary bytes through the Advertiser's whole
// receive path (parse, validate, schedule an answer, consistency check).
func FuzzHandleMessage(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, uint8(255), []byte{0xfe, 0x80, 15: 1})
	}
	cfg := baseConfig()
	cfg.Prefixes = []Prefix{{Prefix: pfx("2001:db8:1::/64"), ValidUntil: t0.Add(time.Hour), Autonomous: true, OnLink: true}}
	f.Fuzz(func(t *testing.T, b []byte, hop uint8, src []byte) {
		a := NewAdvertiser(cfg, nil)
		sched := NewSchedule(time.Second, 2*time.Second)
		sched.Start(t0)
		addr, _ := netip.AddrFromSlice(src)
		a.handle(sched, packet{b: b, cm: &ipv6.ControlMessage{HopLimit: int(hop)}, src: addr, at: t0})
		if next := sched.Next(); next.Before(t0) || next.After(t0.Add(time.Second)) {
			t.Fatalf("next RA at %s after one message, want within the answer delay", next.Sub(t0))
		}
		_ = a.Status()
	})
}
