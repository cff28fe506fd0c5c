package nat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// ErrLength reports a delegated prefix that cannot carry the internal prefix one to one:
// NETMAP keeps the host part and replaces the prefix bits, so both sides must have the same
// length. Mapping a /56 onto a /60 would fold sixteen internal /64s onto one, so v6edge
// installs no mapping at all rather than half of one.
var ErrLength = errors.New("prefix length mismatch")

// Fit maps a delegated prefix onto the internal prefix length. A shorter delegated prefix
// (a /48 for a /56 internal) yields its sub-th sub-prefix of the internal length; an equal
// one yields itself (sub must be 0); a longer one is an error wrapping ErrLength.
func Fit(internal, delegated netip.Prefix, sub int) (netip.Prefix, error) {
	if !internal.IsValid() || !internal.Addr().Is6() || internal.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("fit: internal prefix %v is not an IPv6 prefix", internal)
	}
	if !delegated.IsValid() || !delegated.Addr().Is6() || delegated.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("fit: delegated prefix %v is not an IPv6 prefix", delegated)
	}
	delegated = delegated.Masked()
	ib, db := internal.Bits(), delegated.Bits()
	if db > ib {
		return netip.Prefix{}, fmt.Errorf("fit: delegated %v is longer than internal %v (/%d): it cannot hold a 1:1 mapping: %w",
			delegated, internal, ib, ErrLength)
	}
	free := ib - db // bits available to number the sub-prefixes
	if sub < 0 || (free < 63 && sub >= 1<<free) {
		return netip.Prefix{}, fmt.Errorf("fit: sub-prefix index %d out of range: %v holds %s /%d prefixes",
			sub, delegated, subCount(free), ib)
	}
	a := delegated.Addr().As16()
	hi, lo := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	s := uint64(sub)
	shift := uint(128 - ib)
	if shift >= 64 {
		hi |= s << (shift - 64)
	} else {
		lo |= s << shift
		if shift > 0 {
			hi |= s >> (64 - shift)
		}
	}
	binary.BigEndian.PutUint64(a[:8], hi)
	binary.BigEndian.PutUint64(a[8:], lo)
	return netip.PrefixFrom(netip.AddrFrom16(a), ib), nil
}

// subCount renders 2^free for error messages without overflowing.
func subCount(free int) string {
	if free >= 63 {
		return fmt.Sprintf("2^%d", free)
	}
	return fmt.Sprint(uint64(1) << free)
}
