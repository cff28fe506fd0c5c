package dhcp6pd

import (
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"fmt"
	"net/netip"

	"github.com/insomniacslk/dhcp/iana"
)

const (
	statusSuccess       = iana.StatusSuccess
	statusUnspecFail    = iana.StatusUnspecFail
	statusNoBinding     = iana.StatusNoBinding
	statusUseMulticast  = iana.StatusUseMulticast
	statusNoPrefixAvail = iana.StatusNoPrefixAvail
)

// verdict is what the semantic checks make of a server message.
type verdict struct {
	reason    string  // non-empty: drop the whole message for this reason
	status    *status // the first non-success status, at whatever level
	ia        *iaPD   // our IA_PD, nil when absent
	usable    []Prefix
	discarded []string // why IA_PREFIXes were left out; the rest stays usable
	ignored   []string // options inside a usable prefix that were left out

	na       *iaNA     // our IA_NA, nil when absent or discarded
	naStatus *status   // its status, or its addresses' when none is usable
	addrs    []Address // its usable addresses
}

// check validates a parsed message against our configuration (RFC 8415
// §16, §21.21, §21.22) and finds the status that governs it. Status codes
// live at three levels (message, IA_PD, IA_PREFIX) and each one counts:
// odhcp6c once missed the nested NoPrefixAvail and stayed dead until T1.
func (m *Machine) check(msg *message) verdict {
	var v verdict
	if s := msg.Status; s != nil && s.Code != statusSuccess {
		v.status = s
	}
	for i := range msg.IAPDs {
		if msg.IAPDs[i].IAID == m.cfg.IAID {
			v.ia = &msg.IAPDs[i]
		}
	}
	m.checkNA(msg, &v)
	if v.ia == nil {
		return v
	}
	ia := v.ia
	if v.status == nil && ia.Status != nil && ia.Status.Code != statusSuccess {
		v.status = ia.Status
	}
	// §21.21: a client discards an IA_PD whose T1 is greater than T2.
	if ia.T1 != 0 && ia.T2 != 0 && ia.T1 > ia.T2 {
		v.reason = fmt.Sprintf("T1 %s > T2 %s", ia.T1, ia.T2)
		return v
	}
	seen := map[netip.Prefix]bool{}
	var prefixStatus *status
	for _, p := range ia.Prefixes {
		if p.Status != nil && p.Status.Code != statusSuccess {
			if prefixStatus == nil {
				prefixStatus = p.Status
			}
			continue
		}
		if reason := m.checkPrefix(p.Prefix); reason != "" {
			// §18.2.10.1: an unusable IA_PREFIX is discarded on its own;
			// the other prefixes of the IA_PD stay good.
			v.discarded = append(v.discarded, reason)
			continue
		}
		p.Prefix = p.Prefix.Masked() // what gets installed
		if seen[p.Prefix] {
			v.reason = fmt.Sprintf("prefix %s appears twice", p.Prefix)
			return v
		}
		seen[p.Prefix] = true
		if p.Preferred > p.Valid {
			// §21.22: such a prefix is discarded; the rest stay usable.
			v.discarded = append(v.discarded, fmt.Sprintf("prefix %s: preferred lifetime %s > valid lifetime %s", p.Prefix, p.Preferred, p.Valid))
			continue
		}
		if p.Valid == 0 {
			continue // withdrawn (§18.2.10.1); bind drops it from the lease
		}
		got := Prefix{Prefix: p.Prefix, Preferred: p.Preferred, Valid: p.Valid}
		switch len(p.Exclude) {
		case 0:
		case 1:
			x, err := decodeExclude(p.Prefix, p.Exclude[0])
			if err != nil {
				// The prefix is still ours; only the exclusion is lost.
				v.ignored = append(v.ignored, fmt.Sprintf("ignored PD Exclude in %s: %v", p.Prefix, err))
			} else {
				got.Exclude = x
			}
		default:
			v.ignored = append(v.ignored, fmt.Sprintf("ignored PD Exclude in %s: %d of them, RFC 6603 allows one", p.Prefix, len(p.Exclude)))
		}
		v.usable = append(v.usable, got)
	}
	if v.status == nil && len(v.usable) == 0 && prefixStatus != nil {
		v.status = prefixStatus
	}
	if v.status == nil && len(v.usable) == 0 && len(ia.Prefixes) > 0 && len(seen) > 0 && allDiscarded(ia) {
		v.reason = "every prefix has preferred lifetime > valid lifetime"
	}
	return v
}

// checkNA finds our IA_NA and its usable addresses (RFC 8415 §21.4,
// §21.6). Nothing in it ever drops the message: the IA_PD is what a
// router cannot do without, so a bad IA_NA or address is discarded alone.
func (m *Machine) checkNA(msg *message, v *verdict) {
	if m.cfg.RequestAddress == AddressNever || m.cfg.RequestAddress == "" {
		return
	}
	for i := range msg.IANAs {
		if msg.IANAs[i].IAID == m.cfg.IAID {
			v.na = &msg.IANAs[i]
		}
	}
	na := v.na
	if na == nil {
		return
	}
	if na.T1 != 0 && na.T2 != 0 && na.T1 > na.T2 {
		// §21.4: the client discards such an IA_NA.
		v.discarded = append(v.discarded, fmt.Sprintf("IA_NA with T1 %s > T2 %s", na.T1, na.T2))
		v.na = nil
		return
	}
	if na.Status != nil && na.Status.Code != statusSuccess {
		v.naStatus = na.Status
		return
	}
	var addrStatus *status
	seen := map[netip.Addr]bool{}
	for _, a := range na.Addrs {
		if a.Status != nil && a.Status.Code != statusSuccess {
			if addrStatus == nil {
				addrStatus = a.Status
			}
			continue
		}
		if err := CheckAddress(a.Addr); err != nil {
			v.discarded = append(v.discarded, err.Error())
			continue
		}
		if a.Preferred > a.Valid {
			v.discarded = append(v.discarded, fmt.Sprintf("address %s: preferred lifetime %s > valid lifetime %s", a.Addr, a.Preferred, a.Valid))
			continue
		}
		if a.Valid == 0 || seen[a.Addr] {
			continue // withdrawn, or said twice
		}
		seen[a.Addr] = true
		v.addrs = append(v.addrs, Address{Addr: a.Addr, Preferred: a.Preferred, Valid: a.Valid})
	}
	if len(v.addrs) == 0 && addrStatus != nil {
		v.naStatus = addrStatus
	}
}

// CheckAddress accepts a WAN address from an IA_NA: global unicast only
// (not ULA, link-local, multicast, loopback, unspecified or IPv4-mapped).
func CheckAddress(a netip.Addr) error {
	switch {
	case !a.Is6() || a.Is4In6():
		return fmt.Errorf("address %s: not IPv6", a)
	case a.Zone() != "":
		return fmt.Errorf("address %s: has a zone", a)
	case !a.IsGlobalUnicast() || a.IsPrivate():
		return fmt.Errorf("address %s: not global unicast", a)
	}
	return nil
}

// decodeExclude decodes OPTION_PD_EXCLUDE (RFC 6603 §4.2) inside the
// delegated prefix d: one byte of excluded prefix length, then the bits
// of the excluded prefix that follow d's length, padded with zeros to a
// whole byte. Strict: the length must exceed d's and be at most 128, the
// option exactly as long as those bits need, and the padding zero.
func decodeExclude(d netip.Prefix, b []byte) (netip.Prefix, error) {
	if len(b) < 2 {
		return netip.Prefix{}, fmt.Errorf("option of length %d, want at least 2", len(b))
	}
	l, dl := int(b[0]), d.Bits()
	if l <= dl || l > 128 {
		return netip.Prefix{}, fmt.Errorf("excluded length /%d is not longer than /%d and at most /128", l, dl)
	}
	bits := l - dl
	if want := 1 + (bits+7)/8; len(b) != want {
		return netip.Prefix{}, fmt.Errorf("option of length %d, want %d for a /%d inside a /%d", len(b), want, l, dl)
	}
	id := b[1:]
	a := d.Masked().Addr().As16()
	for i := range len(id) * 8 {
		bit := id[i/8] >> (7 - i%8) & 1
		if i >= bits {
			if bit != 0 {
				return netip.Prefix{}, errors.New("padding bits after the subnet ID are not zero")
			}
			continue
		}
		pos := dl + i
		a[pos/8] |= bit << (7 - pos%8)
	}
	return netip.PrefixFrom(netip.AddrFrom16(a), l), nil
}

// CheckExclude accepts x as the excluded prefix of p: longer than p,
// inside it, at most /128, in its masked form.
func CheckExclude(p, x netip.Prefix) error {
	switch {
	case !x.IsValid() || x.Bits() <= p.Bits() || !p.Contains(x.Addr()) || x.Masked() != x:
		return fmt.Errorf("excluded prefix %s is not a longer prefix inside %s", x, p)
	}
	return nil
}

func allDiscarded(ia *iaPD) bool {
	for _, p := range ia.Prefixes {
		if p.Preferred <= p.Valid {
			return false
		}
	}
	return true
}

// checkPrefix refuses prefixes a router cannot delegate on: longer than
// /64 (no room for even one LAN), or an address range that is not global
// unicast. Any length from /1 to /64 is accepted: how the delegation is
// split into LANs, and which LANs do not fit, is the daemon's business.
func (m *Machine) checkPrefix(p netip.Prefix) string {
	if !p.IsValid() {
		return "IA_PREFIX with an invalid prefix length"
	}
	// Both the address as sent and the masked prefix are checked: the
	// IPv4-mapped ::ffff:0:0/56 masks to ::/56, and 7fff::/1 masks to ::/1.
	for _, a := range []netip.Addr{p.Addr(), p.Masked().Addr()} {
		if reason := m.checkRange(p, a); reason != "" {
			return reason
		}
	}
	return ""
}

func (m *Machine) checkRange(p netip.Prefix, a netip.Addr) string {
	switch {
	case p.Bits() < 1 || p.Bits() > 64:
		return fmt.Sprintf("prefix %s: length outside 1..64", p)
	case a.Is4In6():
		return fmt.Sprintf("prefix %s: IPv4-mapped", p)
	case a.IsUnspecified():
		return fmt.Sprintf("prefix %s: unspecified", p)
	case a.IsLoopback():
		return fmt.Sprintf("prefix %s: loopback", p)
	case a.IsMulticast():
		return fmt.Sprintf("prefix %s: multicast", p)
	case a.IsLinkLocalUnicast():
		return fmt.Sprintf("prefix %s: link-local", p)
	case a.IsPrivate():
		return fmt.Sprintf("prefix %s: ULA", p)
	}
	return ""
}

// checkReconfigureAuth verifies the Reconfigure Key authentication of RFC
// 8415 §20.4.2: HMAC-MD5 over the whole message with the digest zeroed,
// keyed with the key the server gave in its Reply.
func checkReconfigureAuth(b []byte, a *auth, key []byte) error {
	switch {
	case len(key) == 0:
		return errors.New("no reconfigure key known for this server")
	case a == nil:
		return errors.New("no Auth option")
	case a.Protocol != authProtoReconfigureKey || a.Algorithm != authAlgHMACMD5 || a.RDM != authRDMCounter:
		return fmt.Errorf("auth protocol %d algorithm %d rdm %d, want %d/%d/%d",
			a.Protocol, a.Algorithm, a.RDM, authProtoReconfigureKey, authAlgHMACMD5, authRDMCounter)
	case a.InfoType != authTypeHMAC:
		return fmt.Errorf("auth info type %d, want HMAC-MD5 digest", a.InfoType)
	}
	if !hmac.Equal(a.Value, reconfigureDigest(b, a.valueOffset, key)) {
		return errors.New("HMAC-MD5 digest does not match the reconfigure key")
	}
	return nil
}

// reconfigureDigest computes the digest of message b whose 16-byte digest
// field starts at off.
func reconfigureDigest(b []byte, off int, key []byte) []byte {
	zeroed := append([]byte(nil), b...)
	clear(zeroed[off : off+authKeyLen])
	h := hmac.New(md5.New, key)
	h.Write(zeroed)
	return h.Sum(nil)
}
