package dhcp6srv

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"net"
	"net/netip"
)

// The pools do their arithmetic on the two 64-bit halves of an address:
// addresses come from a /64 or longer prefix, so only the low half varies,
// and delegated prefixes are /64 or shorter, so only the high half does.

func halves(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

func fromHalves(hi, lo uint64) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}

// addrRange is the range of addresses handed out for IA_NA.
type addrRange struct {
	link  netip.Prefix // the on-link prefix (Config.Pool)
	first netip.Addr
	size  uint64 // number of addresses, at least 1
}

func newAddrRange(c Config) (addrRange, error) {
	p := c.Pool
	if p.Bits() < 64 || !p.Addr().Is6() || p.Addr().Is4In6() {
		return addrRange{}, fmt.Errorf("address pool %s: must be an IPv6 /64 or longer", p)
	}
	hi, base := halves(p.Addr())
	last := base | (math.MaxUint64 >> uint(p.Bits()-64))
	start, end := base+defaultRangeStart, base+defaultRangeEnd
	if last-base < defaultRangeEnd {
		start, end = base+1, last
	}
	if c.PoolStart.IsValid() {
		if !p.Contains(c.PoolStart) {
			return addrRange{}, fmt.Errorf("pool start %s: outside %s", c.PoolStart, p)
		}
		_, start = halves(c.PoolStart)
	}
	if c.PoolEnd.IsValid() {
		if !p.Contains(c.PoolEnd) {
			return addrRange{}, fmt.Errorf("pool end %s: outside %s", c.PoolEnd, p)
		}
		_, end = halves(c.PoolEnd)
	}
	if end < start {
		return addrRange{}, fmt.Errorf("address pool %s: range start after its end", p)
	}
	size := end - start + 1
	if size == 0 { // the whole /64: one short of 2^64 is plenty
		size = math.MaxUint64
	}
	return addrRange{link: p, first: fromHalves(hi, start), size: size}, nil
}

func (r addrRange) at(i uint64) netip.Addr {
	hi, lo := halves(r.first)
	return fromHalves(hi, lo+i)
}

// index is the position of a in the range.
func (r addrRange) index(a netip.Addr) (uint64, bool) {
	if !r.first.IsValid() || !r.link.Contains(a) {
		return 0, false
	}
	_, lo := halves(a)
	_, first := halves(r.first)
	i := lo - first
	return i, lo >= first && i < r.size
}

// hostPart is a's offset inside its link prefix: the part kept when a
// client is renumbered into a new prefix.
func hostPart(a netip.Addr) uint64 {
	_, lo := halves(a)
	return lo
}

// prefixRange is the set of sub-prefixes delegated with IA_PD.
type prefixRange struct {
	pool   netip.Prefix
	length int
	slots  uint64
}

func newPrefixRange(c Config) (prefixRange, error) {
	p := c.PDPool
	if !p.Addr().Is6() || p.Addr().Is4In6() {
		return prefixRange{}, fmt.Errorf("delegation pool %s: not IPv6", p)
	}
	if c.PDLength < p.Bits() || c.PDLength > 64 {
		return prefixRange{}, fmt.Errorf("delegated length /%d: must be between /%d and /64", c.PDLength, p.Bits())
	}
	slots := uint64(maxPDSlots)
	if d := c.PDLength - p.Bits(); d < 16 {
		slots = 1 << uint(d)
	}
	return prefixRange{pool: p, length: c.PDLength, slots: slots}, nil
}

func (r prefixRange) at(i uint64) netip.Prefix {
	hi, _ := halves(r.pool.Addr())
	return netip.PrefixFrom(fromHalves(hi+i<<uint(64-r.length), 0), r.length)
}

func (r prefixRange) index(p netip.Prefix) (uint64, bool) {
	if !r.pool.IsValid() || p.Bits() != r.length || !r.pool.Contains(p.Addr()) || p.Masked() != p {
		return 0, false
	}
	hi, _ := halves(p.Addr())
	base, _ := halves(r.pool.Addr())
	i := (hi - base) >> uint(64-r.length)
	return i, i < r.slots
}

// slotOf is p's sub-prefix number relative to its own pool of the same
// shape, kept when delegations move to a new pool.
func slotOf(p netip.Prefix, poolBits int) uint64 {
	hi, _ := halves(p.Addr())
	if p.Bits() <= poolBits || p.Bits() > 64 {
		return 0
	}
	mask := uint64(math.MaxUint64) >> uint(poolBits)
	if poolBits >= 64 {
		mask = 0
	}
	return (hi & mask) >> uint(64-p.Bits())
}

// firstChoice is where a client's search starts: a hash of its DUID, IAID
// and IA type, so the same client gets the same address or prefix back
// even after its lease has expired and been forgotten.
func firstChoice(k bindingKey, n uint64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(k.duid))
	var b [5]byte
	binary.BigEndian.PutUint32(b[:4], k.iaid)
	b[4] = byte(k.kind)
	h.Write(b[:])
	return h.Sum64() % n
}

// pool is what the handler allocates from, for either IA type: resources
// are prefixes, an address being a /128.
type pool interface {
	size() uint64
	at(i uint64) netip.Prefix
	// index is p's slot when p belongs to the pool.
	index(p netip.Prefix) (uint64, bool)
	// onLink tells whether p is still appropriate for the link (RFC 8415
	// §18.3.4): an address inside the link prefix, a prefix from the pool.
	onLink(p netip.Prefix) bool
	// moved is the slot that keeps old's interface identifier or
	// sub-prefix number when the link is renumbered.
	moved(old netip.Prefix) (uint64, bool)
}

type naPool struct{ addrRange }

func (p naPool) size() uint64             { return p.addrRange.size }
func (p naPool) at(i uint64) netip.Prefix { return netip.PrefixFrom(p.addrRange.at(i), 128) }
func (p naPool) index(q netip.Prefix) (uint64, bool) {
	if q.Bits() != 128 {
		return 0, false
	}
	return p.addrRange.index(q.Addr())
}
func (p naPool) onLink(q netip.Prefix) bool { return q.Bits() == 128 && p.link.Contains(q.Addr()) }
func (p naPool) moved(old netip.Prefix) (uint64, bool) {
	hi, _ := halves(p.first)
	lo := hostPart(old.Addr())
	if p.link.Bits() > 64 {
		_, base := halves(p.link.Addr())
		lo = base | lo&(math.MaxUint64>>uint(p.link.Bits()-64))
	}
	return p.index(netip.PrefixFrom(fromHalves(hi, lo), 128))
}

type pdPool struct {
	prefixRange
	exclude []netip.Prefix
}

func (p pdPool) size() uint64                        { return p.slots }
func (p pdPool) at(i uint64) netip.Prefix            { return p.prefixRange.at(i) }
func (p pdPool) index(q netip.Prefix) (uint64, bool) { return p.prefixRange.index(q) }
func (p pdPool) onLink(q netip.Prefix) bool {
	_, ok := p.prefixRange.index(q)
	return ok && !p.excluded(q)
}
func (p pdPool) moved(old netip.Prefix) (uint64, bool) {
	i := slotOf(old, old.Bits()-(p.length-p.pool.Bits()))
	if old.Bits() != p.length || i >= p.slots {
		return 0, false
	}
	return i, true
}

func (p pdPool) excluded(q netip.Prefix) bool {
	for _, x := range p.exclude {
		if x.Overlaps(q) {
			return true
		}
	}
	return false
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}
}
