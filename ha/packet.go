package ha

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Wire constants of RFC 5798.
const (
	// Version is the VRRP version this package speaks (RFC 5798 §5.2.1).
	Version = 3
	// TypeAdvertisement is the only VRRP packet type (RFC 5798 §5.2.2).
	TypeAdvertisement = 1
	// Protocol is the IPv6 next header value of VRRP (RFC 5798 §5.1.2.4).
	Protocol = 112
	// HopLimit is the only hop limit a VRRP packet may carry; anything else
	// came from off link and is dropped (RFC 5798 §5.1.2.3, §7.1).
	HopLimit = 255

	// headerLen is the fixed part of the advert before the address list
	// (RFC 5798 §5.1).
	headerLen = 8
	// maxAdvertCentis is the largest Max Advertise Interval: a 12-bit count
	// of centiseconds (RFC 5798 §5.2.7).
	maxAdvertCentis = 1<<12 - 1
)

// Group is the IPv6 multicast group every VRRP advert is sent to
// (RFC 5798 §5.1.2.2).
var Group = netip.MustParseAddr("ff02::12")

// Errors returned by ParseAdvert. They are wrapped with details; test them
// with errors.Is.
var (
	ErrTruncated = errors.New("vrrp: advert truncated")
	ErrVersion   = errors.New("vrrp: unsupported version")
	ErrType      = errors.New("vrrp: unknown packet type")
	ErrAddrCount = errors.New("vrrp: address count does not match length")
	ErrChecksum  = errors.New("vrrp: bad checksum")
)

// Advert is a VRRPv3 advertisement (RFC 5798 §5.1), the only VRRP message.
type Advert struct {
	Version  uint8 // 3
	Type     uint8 // 1 (advertisement)
	VRID     uint8
	Priority uint8 // 0: the master is stopping; 255: the address owner
	// MaxAdvertInt is sent as 12 bits of centiseconds (RFC 5798 §5.2.7);
	// Marshal rounds it down to a whole centisecond.
	MaxAdvertInt time.Duration
	// Addrs are the virtual addresses; the first is the virtual link-local
	// (RFC 5798 §5.2.9).
	Addrs []netip.Addr
}

// Marshal encodes the advert without the IPv6 header. The checksum covers
// the IPv6 pseudo-header (RFC 8200 §8.1) built from src and dst, so src must
// be the address the packet will really leave from and dst is Group.
func (a *Advert) Marshal(src, dst netip.Addr) ([]byte, error) {
	if a.Version > 0xf || a.Type > 0xf {
		return nil, fmt.Errorf("vrrp: version %d or type %d does not fit in 4 bits", a.Version, a.Type)
	}
	if len(a.Addrs) > 255 {
		return nil, fmt.Errorf("vrrp: %d addresses, at most 255 fit in an advert", len(a.Addrs))
	}
	cs := a.MaxAdvertInt / (10 * time.Millisecond)
	if cs < 0 || cs > maxAdvertCentis {
		return nil, fmt.Errorf("vrrp: advert interval %v outside 0..40.95s", a.MaxAdvertInt)
	}
	b := make([]byte, headerLen, headerLen+16*len(a.Addrs))
	b[0] = a.Version<<4 | a.Type
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = uint8(len(a.Addrs))
	binary.BigEndian.PutUint16(b[4:6], uint16(cs)) // the 4 reserved bits stay 0
	for _, addr := range a.Addrs {
		if !addr.Is6() || addr.Is4In6() {
			return nil, fmt.Errorf("vrrp: virtual address %v is not IPv6", addr)
		}
		a16 := addr.As16()
		b = append(b, a16[:]...)
	}
	binary.BigEndian.PutUint16(b[6:8], checksum(src, dst, b))
	return b, nil
}

// ParseAdvert decodes and validates a VRRPv3 advert received from src to
// dst (RFC 5798 §7.1): version 3, type 1, a length that holds exactly the
// announced number of IPv6 addresses, and the pseudo-header checksum. The
// VRID and the address list are left to the caller, which knows its own.
func ParseAdvert(b []byte, src, dst netip.Addr) (*Advert, error) {
	if len(b) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes, the header alone is %d", ErrTruncated, len(b), headerLen)
	}
	a := &Advert{
		Version:  b[0] >> 4,
		Type:     b[0] & 0xf,
		VRID:     b[1],
		Priority: b[2],
		// The top 4 bits are reserved and ignored on receipt (§5.2.6).
		MaxAdvertInt: time.Duration(binary.BigEndian.Uint16(b[4:6])&0x0fff) * 10 * time.Millisecond,
	}
	if a.Version != Version {
		return nil, fmt.Errorf("%w: %d", ErrVersion, a.Version)
	}
	if a.Type != TypeAdvertisement {
		return nil, fmt.Errorf("%w: %d", ErrType, a.Type)
	}
	n := int(b[3])
	want := headerLen + 16*n
	switch {
	case len(b) < want:
		return nil, fmt.Errorf("%w: %d addresses need %d bytes, got %d", ErrTruncated, n, want, len(b))
	case len(b) > want:
		return nil, fmt.Errorf("%w: %d addresses need %d bytes, got %d", ErrAddrCount, n, want, len(b))
	}
	if sum := checksum(src, dst, b); sum != 0 {
		// Summing a packet that carries a correct checksum yields zero.
		return nil, fmt.Errorf("%w: from %v (field %#04x)", ErrChecksum, src, binary.BigEndian.Uint16(b[6:8]))
	}
	a.Addrs = make([]netip.Addr, n)
	for i := range n {
		a.Addrs[i] = netip.AddrFrom16([16]byte(b[headerLen+16*i:]))
	}
	return a, nil
}

// checksum returns the Internet checksum (RFC 1071) of the IPv6
// pseudo-header for a VRRP payload (RFC 8200 §8.1, RFC 5798 §5.2.8) and the
// payload itself. With the checksum field zeroed it is the value to store;
// over a packet that already carries a correct checksum it is 0.
func checksum(src, dst netip.Addr, payload []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(b[0])<<8 | uint32(b[1])
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	var lenNext [8]byte
	binary.BigEndian.PutUint32(lenNext[0:4], uint32(len(payload)))
	lenNext[7] = Protocol
	add(lenNext[:])
	add(payload)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
