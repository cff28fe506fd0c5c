package ha

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	// The source of the golden advert: keepalived's link-local in the capture
	// of TestMarshalGolden.
	goldenSrc    = netip.MustParseAddr("fe80::a060:e7ff:fef4:afdc")
	goldenAdvert = Advert{
		Version: 3, Type: 1, VRID: 51, Priority: 150, MaxAdvertInt: time.Second,
		Addrs: []netip.Addr{vll, lanRtr},
	}
)

// goldenHex is the VRRP payload keepalived 2.2.7 (vrrp_version 3, vrid 51,
// priority 150, advert_int 1, virtual_ipaddress fe80::1/64 and
// fd00:aaaa:bbbb:cc01::1/64) sent from goldenSrc, copied from tcpdump -xx.
const goldenHex = "31339602 0064d519" +
	"fe800000000000000000000000000001" +
	"fd00aaaabbbbcc010000000000000001"

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMarshalGolden(t *testing.T) {
	t.Run("Marshal produces keepalived's bytes for the same advert", func(t *testing.T) {
		got, err := goldenAdvert.Marshal(goldenSrc, Group)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(mustHex(t, goldenHex), got); diff != "" {
			t.Errorf("bytes (-want +got):\n%s", diff)
		}
	})
	t.Run("ParseAdvert reads the golden bytes back", func(t *testing.T) {
		got, err := ParseAdvert(mustHex(t, goldenHex), goldenSrc, Group)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&goldenAdvert, got, cmpOpts...); diff != "" {
			t.Errorf("advert (-want +got):\n%s", diff)
		}
	})
}

func TestMarshalErrors(t *testing.T) {
	tests := []struct {
		name string
		a    Advert
	}{
		{"an interval over 40.95 s does not fit in 12 bits", Advert{Version: 3, Type: 1, MaxAdvertInt: 41 * time.Second}},
		{"a negative interval is refused", Advert{Version: 3, Type: 1, MaxAdvertInt: -time.Second}},
		{"an IPv4 virtual address is refused", Advert{Version: 3, Type: 1, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}},
		{"more than 255 addresses are refused", Advert{Version: 3, Type: 1, Addrs: make([]netip.Addr, 256)}},
		{"a version over 15 is refused", Advert{Version: 16, Type: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := tt.a.Marshal(goldenSrc, Group); err == nil {
				t.Errorf("Marshal = %x, want an error", b)
			}
		})
	}
}

// capturedAdvert is one VRRP packet read from a pcap file.
type capturedAdvert struct {
	src, dst netip.Addr
	hopLimit int
	payload  []byte
}

// readPcap returns the IPv6 VRRP packets of a classic little-endian
// Ethernet pcap file (what tcpdump -w writes).
func readPcap(t *testing.T, path string) []capturedAdvert {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 || binary.LittleEndian.Uint32(b[20:]) != 1 {
		t.Fatalf("%s: not a little-endian Ethernet pcap file", path)
	}
	var out []capturedAdvert
	for b = b[24:]; len(b) >= 16; {
		n := int(binary.LittleEndian.Uint32(b[8:12]))
		if len(b) < 16+n {
			t.Fatalf("%s: truncated record", path)
		}
		frame := b[16 : 16+n]
		b = b[16+n:]
		if len(frame) < 14+40 || binary.BigEndian.Uint16(frame[12:14]) != 0x86dd {
			continue
		}
		ip := frame[14:]
		if ip[6] != Protocol {
			continue
		}
		plen := int(binary.BigEndian.Uint16(ip[4:6]))
		out = append(out, capturedAdvert{
			src:      netip.AddrFrom16([16]byte(ip[8:24])),
			dst:      netip.AddrFrom16([16]byte(ip[24:40])),
			hopLimit: int(ip[7]),
			payload:  ip[40 : 40+plen],
		})
	}
	return out
}

func TestParseKeepalivedCapture(t *testing.T) {
	pkts := readPcap(t, "testdata/keepalived-2.2.7-vrrp3.pcap")
	// keepalived advertised three times at 1 s, then sent priority 0 when
	// it was stopped (SIGTERM).
	var prios []uint8
	for i, p := range pkts {
		a, err := ParseAdvert(p.payload, p.src, p.dst)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if p.hopLimit != HopLimit || p.dst != Group {
			t.Errorf("packet %d: hop limit %d to %v, want 255 to ff02::12", i, p.hopLimit, p.dst)
		}
		want := goldenAdvert
		want.Priority = a.Priority
		if diff := cmp.Diff(&want, a, cmpOpts...); diff != "" {
			t.Errorf("packet %d (-want +got):\n%s", i, diff)
		}
		// What we would send from the same address is byte for byte the same.
		ours, err := a.Marshal(p.src, p.dst)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p.payload, ours); diff != "" {
			t.Errorf("packet %d re-marshalled (-keepalived +ours):\n%s", i, diff)
		}
		prios = append(prios, a.Priority)
	}
	if diff := cmp.Diff([]uint8{150, 150, 150, 0}, prios); diff != "" {
		t.Errorf("priorities (-want +got):\n%s", diff)
	}
}

func TestParseAdvertErrors(t *testing.T) {
	golden := mustHex(t, goldenHex)
	// modify returns the golden packet changed by f, with its checksum fixed
	// up unless keepSum is set.
	modify := func(f func([]byte) []byte, fixSum bool) []byte {
		b := f(append([]byte(nil), golden...))
		if fixSum && len(b) >= headerLen {
			b[6], b[7] = 0, 0
			binary.BigEndian.PutUint16(b[6:8], checksum(goldenSrc, Group, b))
		}
		return b
	}
	tests := []struct {
		name string
		b    []byte
		src  netip.Addr
		want error
	}{
		{"an empty packet is truncated", nil, goldenSrc, ErrTruncated},
		{"a 7-byte packet is truncated", golden[:7], goldenSrc, ErrTruncated},
		{"a packet cut inside its address list is truncated", modify(func(b []byte) []byte { return b[:30] }, true), goldenSrc, ErrTruncated},
		{"a packet announcing 3 addresses but carrying 2 is truncated", modify(func(b []byte) []byte { b[3] = 3; return b }, true), goldenSrc, ErrTruncated},
		{"a packet announcing 1 address but carrying 2 has a count mismatch", modify(func(b []byte) []byte { b[3] = 1; return b }, true), goldenSrc, ErrAddrCount},
		{"trailing bytes are a count mismatch", modify(func(b []byte) []byte { return append(b, 0, 0, 0, 0) }, true), goldenSrc, ErrAddrCount},
		{"VRRP version 2 is refused", modify(func(b []byte) []byte { b[0] = 0x21; return b }, true), goldenSrc, ErrVersion},
		{"type 2 is refused", modify(func(b []byte) []byte { b[0] = 0x32; return b }, true), goldenSrc, ErrType},
		{"a flipped bit fails the checksum", modify(func(b []byte) []byte { b[2] ^= 1; return b }, false), goldenSrc, ErrChecksum},
		{"a packet from another source fails the pseudo-header checksum", golden, netip.MustParseAddr("fe80::2"), ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAdvert(tt.b, tt.src, Group)
			if !errors.Is(err, tt.want) {
				t.Errorf("ParseAdvert = %+v, %v; want %v", a, err, tt.want)
			}
		})
	}
	t.Run("the reserved bits of the interval are ignored", func(t *testing.T) {
		b := modify(func(b []byte) []byte { b[4] |= 0xf0; return b }, true)
		a, err := ParseAdvert(b, goldenSrc, Group)
		if err != nil {
			t.Fatal(err)
		}
		if a.MaxAdvertInt != time.Second {
			t.Errorf("interval %v, want 1s", a.MaxAdvertInt)
		}
	})
}

func FuzzParseAdvert(f *testing.F) {
	f.Add(mustHex(f, goldenHex), goldenSrc.AsSlice())
	f.Add(mustHex(f, "31330000 0064ffff"), goldenSrc.AsSlice())
	f.Add([]byte{0x31, 0x01, 0x64, 0xff}, netip.IPv6Unspecified().AsSlice())
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, b []byte, srcBytes []byte) {
		src, _ := netip.AddrFromSlice(srcBytes)
		a, err := ParseAdvert(b, src, Group)
		if err != nil {
			return
		}
		// Whatever parses must marshal back to the same bytes, apart from
		// the reserved bits of the interval, which are ignored on receipt.
		out, err := a.Marshal(src, Group)
		if err != nil {
			t.Fatalf("Marshal of a parsed advert: %v", err)
		}
		in := append([]byte(nil), b...)
		in[4] &= 0x0f
		binary.BigEndian.PutUint16(in[6:8], 0)
		binary.BigEndian.PutUint16(in[6:8], checksum(src, Group, in))
		if diff := cmp.Diff(in, out); diff != "" {
			t.Errorf("round trip (-in +out):\n%s", diff)
		}
	})
}
