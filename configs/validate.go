package configs

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults and limits. Each cites where it comes from.
const (
	defaultPrefixLength = 56 // a common ISP delegation, and RFC 6177's advice for sites

	// RFC 4861 §6.2.1: MaxRtrAdvInterval 4..1800 s, MinRtrAdvInterval
	// 3 s..0.75 × max, AdvDefaultLifetime 0 or max..9000 s,
	// AdvReachableTime ≤ 3,600,000 ms, AdvCurHopLimit 64 (RFC 8200 §3).
	defaultMaxInterval  = 600 * time.Second // as odhcpd, networkd and corerad
	defaultMinInterval  = 200 * time.Second
	minMaxInterval      = 4 * time.Second
	maxMaxInterval      = 1800 * time.Second
	minMinInterval      = 3 * time.Second
	maxRouterLifetime   = 9000 * time.Second
	maxReachableTime    = 3600000 * time.Millisecond
	defaultHopLimit     = 64
	minLinkMTU          = 1280 // RFC 8200 §5
	maxLinkMTU          = 65535
	defaultPreferred    = 2700 * time.Second // RFC 9096 ND_PREFERRED_LIMIT
	defaultValid        = 5400 * time.Second // RFC 9096 ND_VALID_LIMIT
	maxLifetimeSeconds  = math.MaxUint32 - 1 // 0xffffffff means infinity (RFC 4861 §4.6.2)
	maxRetransTimerMsec = math.MaxUint32

	// RFC 5798 §5.2.7: the advertisement interval is 12 bits of centiseconds.
	vrrpTick              = 10 * time.Millisecond
	minAdvertInterval     = vrrpTick
	maxAdvertInterval     = 4095 * vrrpTick
	defaultAdvertInterval = time.Second // RFC 5798 §5.2.7 default of 100 cs
	defaultHAPriority     = 100         // RFC 5798 §6.1
	maxBackupPriority     = 254         // 255 belongs to the address owner (RFC 5798 §5.2.4)
	maxPreemptDelay       = time.Hour

	// RFC 8415 §11: DUID types, and at most 128 bytes after the 2-byte type.
	duidTypeLLT  = 1
	duidTypeEN   = 2
	duidTypeLL   = 3
	duidTypeUUID = 4
	maxDUIDLen   = 130

	defaultDADRetryMin = 5 * time.Second
	defaultDADRetryMax = 5 * time.Minute
	defaultSocket      = "/run/v6edge/v6edge.sock"
	defaultStateDir    = "/var/lib/v6edge"
	maxUnixSocketPath  = 107 // sizeof(sockaddr_un.sun_path) - 1 for the NUL
	ifNameSize         = 16  // IFNAMSIZ, including the terminating NUL
	maxDomainLen       = 253 // RFC 1035 §2.3.4, in text form without the root dot
)

// ula is fc00::/7, the Unique Local Address block of RFC 4193.
var ula = netip.MustParsePrefix("fc00::/7")

func (r *reporter) validate(raw *rawConfig) *Config {
	c := &Config{}
	ha := raw.HA != nil
	c.WANs = r.wans(raw.WANs, ha)
	c.NAT = r.nat(raw.NAT, raw.LANs, c.WANs)
	c.LANs = r.lans(raw.LANs, c.NAT, c.WANs, ha)
	if ha {
		c.HA = r.ha(raw.HA, c.LANs)
	}
	c.DAD = r.dad(raw.DAD)
	c.Control = r.control(raw.Control)
	return c
}

func (r *reporter) wans(raws []rawWAN, ha bool) []WAN {
	if len(raws) == 0 {
		r.errorf("wan", "at least one uplink is required: add a [wan] table with an interface")
		return nil
	}
	wans := make([]WAN, 0, len(raws))
	seenIf := map[string]string{}
	seenIAID := map[uint32]string{}
	seenPrio := map[int]string{}
	for i, rw := range raws {
		key := rw.key
		w := WAN{
			Interface:      r.ifname(key("interface"), rw.Interface),
			IAID:           uint32(i + 1),
			PrefixLength:   defaultPrefixLength,
			RapidCommit:    deref(rw.RapidCommit, false),
			RequestAddress: AddressTry,
			ReleaseOnStop:  deref(rw.ReleaseOnStop, false),
			Priority:       i * 10,
		}
		if w.Interface != "" {
			unique(r, seenIf, w.Interface, rw.path, key("interface"), "%q is already the interface of %s")
		}

		w.DUIDKind, w.DUIDRaw = r.duid(key("duid"), rw.DUID)
		if rw.DUIDMAC != nil {
			w.DUIDMAC = r.mac(key("duid_mac"), *rw.DUIDMAC, false)
		}

		w.IAID = uint32(r.between(key("iaid"), rw.IAID, 0, math.MaxUint32, "", int64(w.IAID)))
		unique(r, seenIAID, w.IAID, rw.path, key("iaid"), "%d is already the IAID of %s; every uplink needs its own")

		w.PrefixLength = int(r.between(key("prefix_length"), rw.PrefixLength, 1, 64, ": LANs need whole /64s", int64(w.PrefixLength)))
		if rw.RequestAddr != nil {
			switch m := AddressMode(*rw.RequestAddr); m {
			case AddressTry, AddressRequire, AddressNever:
				w.RequestAddress = m
			default:
				r.errorf(key("request_address"), "must be \"try\", \"require\" or \"never\" (got %q)", *rw.RequestAddr)
			}
		}
		if w.ReleaseOnStop && ha {
			r.errorf(key("release_on_stop"), "must not be true with [ha]: the peer takes over the same lease, and a Release would renumber every host")
		}

		w.Priority = int(r.between(key("priority"), rw.Priority, 0, math.MaxInt32, "", int64(w.Priority)))
		unique(r, seenPrio, w.Priority, rw.path, key("priority"), "%d is already the priority of %s; uplinks need distinct priorities")

		if rw.Check != nil {
			a, err := parseAddr(*rw.Check)
			switch {
			case err != nil:
				r.errorf(key("check"), "%v", err)
			case !a.IsGlobalUnicast():
				r.errorf(key("check"), "must be a global unicast address to probe through the uplink (got %s)", a)
			default:
				w.Check = a
			}
		}
		if rw.Hook != nil {
			if !filepath.IsAbs(*rw.Hook) {
				r.errorf(key("hook"), "must be an absolute path (got %q)", *rw.Hook)
			} else {
				w.Hook = *rw.Hook
			}
		}
		wans = append(wans, w)
		r.wanPaths = append(r.wanPaths, rw.path)
	}
	return wans
}

// between returns *p when it lies between lo and hi, and def when p is nil
// or, reported under key (the message ending in why), out of range.
func (r *reporter) between(key string, p *int64, lo, hi int64, why string, def int64) int64 {
	if p == nil {
		return def
	}
	if *p < lo || *p > hi {
		r.errorf(key, "must be between %d and %d (got %d)%s", lo, hi, *p, why)
		return def
	}
	return *p
}

// unique reports, under key, a value v that an earlier table (seen[v])
// already has, with format taking v and that table's path, and records v as
// path's.
func unique[K comparable](r *reporter, seen map[K]string, v K, path, key, format string) {
	if prev, dup := seen[v]; dup {
		r.errorf(key, format, v, prev)
	}
	seen[v] = path
}

// duid parses the duid key: "ll" (default), "llt", "en:<enterprise>:<hex>"
// or a raw DUID as colon-separated hex bytes.
func (r *reporter) duid(key string, s *string) (DUIDKind, []byte) {
	if s == nil {
		return DUIDLL, nil
	}
	switch v := *s; {
	case v == string(DUIDLL) || v == string(DUIDLLT):
		return DUIDKind(v), nil
	case strings.HasPrefix(v, "en:"):
		ent, id, ok := strings.Cut(strings.TrimPrefix(v, "en:"), ":")
		n, err := strconv.ParseUint(ent, 10, 32)
		if !ok || err != nil {
			r.errorf(key, "DUID-EN must be written \"en:<enterprise-number>:<hex id>\" (got %q)", v)
			return "", nil
		}
		idBytes, err := parseHex(id)
		if err != nil || len(idBytes) == 0 {
			r.errorf(key, "DUID-EN identifier must be hex bytes (got %q)", id)
			return "", nil
		}
		b := binary.BigEndian.AppendUint16(nil, duidTypeEN)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
		b = append(b, idBytes...)
		if len(b) > maxDUIDLen {
			r.errorf(key, "a DUID is at most %d bytes (RFC 8415 §11.1); this one is %d", maxDUIDLen, len(b))
			return "", nil
		}
		return DUIDEN, b
	default:
		b, err := parseHex(v)
		if err != nil || !strings.Contains(v, ":") {
			r.errorf(key, "must be \"ll\", \"llt\", \"en:<enterprise-number>:<hex id>\" or colon-separated hex bytes such as \"00:03:00:01:02:00:5e:00:01:33\" (got %q)", v)
			return "", nil
		}
		if msg := checkDUID(b); msg != "" {
			r.errorf(key, "%s", msg)
			return "", nil
		}
		return DUIDRaw, b
	}
}

// checkDUID checks a raw DUID's length against its type (RFC 8415 §11).
func checkDUID(b []byte) string {
	if len(b) < 3 {
		return fmt.Sprintf("a DUID is a 2-byte type and at least 1 byte of identifier (got %d bytes)", len(b))
	}
	if len(b) > maxDUIDLen {
		return fmt.Sprintf("a DUID is at most %d bytes (RFC 8415 §11.1); this one is %d", maxDUIDLen, len(b))
	}
	switch t := binary.BigEndian.Uint16(b); t {
	case duidTypeLLT:
		if len(b) < 9 {
			return "a DUID-LLT (type 1) needs a hardware type, a time and a link-layer address (at least 9 bytes)"
		}
	case duidTypeEN:
		if len(b) < 7 {
			return "a DUID-EN (type 2) needs a 4-byte enterprise number and an identifier (at least 7 bytes)"
		}
	case duidTypeLL:
		if len(b) < 5 {
			return "a DUID-LL (type 3) needs a hardware type and a link-layer address (at least 5 bytes)"
		}
	case duidTypeUUID:
		if len(b) != 18 {
			return fmt.Sprintf("a DUID-UUID (type 4) is exactly 18 bytes (got %d)", len(b))
		}
	default:
		return fmt.Sprintf("DUID type %d is not one of 1 (LLT), 2 (EN), 3 (LL), 4 (UUID)", t)
	}
	return ""
}

// parseHex reads "00:03:0a" or "00030a".
func parseHex(s string) ([]byte, error) {
	if strings.Contains(s, ":") {
		parts := strings.Split(s, ":")
		b := make([]byte, len(parts))
		for i, p := range parts {
			if len(p) != 2 {
				return nil, fmt.Errorf("byte %d: %q is not two hex digits", i, p)
			}
			v, err := strconv.ParseUint(p, 16, 8)
			if err != nil {
				return nil, fmt.Errorf("byte %d: %w", i, err)
			}
			b[i] = byte(v)
		}
		return b, nil
	}
	return hex.DecodeString(s)
}

func (r *reporter) nat(n *rawNAT, lans []rawLAN, wans []WAN) NAT {
	out := NAT{Hairpin: true}
	if n == nil {
		// NAT may be left out only when no LAN uses the internal prefix:
		// routed mode, where LANs advertise their delegated /64 by default.
		for _, l := range lans {
			if adv := deref(l.Advertise, string(AdvertiseExternal)); adv != string(AdvertiseExternal) {
				r.missing("nat.internal_prefix", "required: %s advertises %q, which needs a [nat] table with internal_prefix", l.path, adv)
				break
			}
		}
		return out
	}
	out.Hairpin = deref(n.Hairpin, true)
	out.RemoveOnStop = deref(n.RemoveOnStop, false)
	key := n.key
	if n.InternalPrefix == nil {
		r.missing(key("internal_prefix"), "required: the ULA prefix LAN hosts use, such as \"fd00:aaaa:bbbb:cc00::/56\"")
		return out
	}
	p, err := parsePrefix(*n.InternalPrefix)
	switch {
	case err != nil:
		r.errorf(key("internal_prefix"), "%v", err)
		return out
	case !ula.Contains(p.Addr()) || p.Bits() < ula.Bits():
		r.errorf(key("internal_prefix"), "must be a unique local prefix inside fc00::/7 (RFC 4193), such as fd00:aaaa:bbbb:cc00::/56 (got %s)", p)
		return out
	case p.Bits() > 64:
		r.errorf(key("internal_prefix"), "must be /64 or shorter to hold LAN /64s (got /%d)", p.Bits())
		return out
	case p != p.Masked():
		r.errorf(key("internal_prefix"), "has host bits set: %s has bits beyond /%d (did you mean %s?)", p, p.Bits(), p.Masked())
		return out
	}
	out.InternalPrefix = p

	if n.SubPrefix != nil {
		if *n.SubPrefix < 0 {
			r.errorf(key("sub_prefix"), "must not be negative (got %d)", *n.SubPrefix)
		} else {
			out.SubPrefix = int(*n.SubPrefix)
		}
	}
	for i, w := range wans {
		hint := joinPath(r.wanPaths[i], "prefix_length")
		if p.Bits() < w.PrefixLength {
			r.errorf(key("internal_prefix"), "/%d is shorter than %s /%d: only part of the internal prefix could be mapped; use a /%d or longer internal prefix", p.Bits(), hint, w.PrefixLength, w.PrefixLength)
			continue
		}
		if blocks := uint64(1) << min(p.Bits()-w.PrefixLength, 63); uint64(out.SubPrefix) >= blocks {
			r.errorf(key("sub_prefix"), "must be between 0 and %d (got %d): a /%d (%s) holds %d blocks of nat.internal_prefix's /%d", blocks-1, out.SubPrefix, w.PrefixLength, hint, blocks, p.Bits())
		}
	}
	return out
}

func (r *reporter) lans(raws []rawLAN, nat NAT, wans []WAN, ha bool) []LAN {
	if len(raws) == 0 {
		r.errorf("lan", "at least one LAN is required: add a [[lan]] block with an interface and a subnet")
		return nil
	}
	wanIfs := map[string]string{}
	for i, w := range wans {
		wanIfs[w.Interface] = r.wanPaths[i]
	}
	seenIf := map[string]string{}
	seenSubnet := map[int]string{}
	out := make([]LAN, 0, len(raws))
	for _, rl := range raws {
		key := rl.key
		l := LAN{Interface: r.ifname(key("interface"), rl.Interface)}
		if l.Interface != "" {
			if prev, dup := seenIf[l.Interface]; dup {
				r.errorf(key("interface"), "%q is already the interface of %s", l.Interface, prev)
			} else if wan, isWAN := wanIfs[l.Interface]; isWAN {
				r.errorf(key("interface"), "%q is the uplink of %s; a link cannot be both WAN and LAN", l.Interface, wan)
			}
			seenIf[l.Interface] = rl.path
		}

		if rl.Subnet == nil {
			r.missing(key("subnet"), "required: which /64 of the internal and delegated prefixes this LAN uses (0, 1, ...)")
		} else if r.subnet(key("subnet"), *rl.Subnet, nat, wans) {
			l.Subnet = int(*rl.Subnet)
			if prev, dup := seenSubnet[l.Subnet]; dup {
				r.errorf(key("subnet"), "%d is already the subnet of %s; two LANs cannot share a /64", l.Subnet, prev)
			}
			seenSubnet[l.Subnet] = rl.path
		}

		l.Mode = Mode(deref(rl.Mode, string(ModeSLAAC)))
		switch l.Mode {
		case ModeSLAAC:
			l.Autonomous = true
		case ModeStateless:
			l.Autonomous, l.Other = true, true
		case ModeStateful:
			// OpenStack's dhcpv6-stateful and SPEC.md: M=1 A=0. A host
			// doing stateful DHCPv6 gets DNS in the same exchange;
			// other = true is there for whoever wants O as well.
			l.Managed = true
		default:
			r.errorf(key("mode"), "must be \"slaac\", \"stateless\" or \"stateful\" (got %q)", l.Mode)
		}
		l.Managed = deref(rl.Managed, l.Managed)
		l.Other = deref(rl.Other, l.Other)

		// With NAT the LAN lives on its stable ULA; routed (no [nat]), on the
		// delegated /64 itself.
		defaultAdvertise := AdvertiseInternal
		if !nat.Enabled() {
			defaultAdvertise = AdvertiseExternal
		}
		l.Advertise = Advertise(deref(rl.Advertise, string(defaultAdvertise)))
		switch l.Advertise {
		case AdvertiseInternal, AdvertiseExternal, AdvertiseBoth:
		default:
			r.errorf(key("advertise"), "must be \"internal\", \"external\" or \"both\" (got %q)", l.Advertise)
		}

		if rl.Address != nil {
			l.Address = r.lanAddress(key("address"), *rl.Address, l, nat)
		}
		// Written as [] (not left out), the list says "none": the LAN does
		// not get the uplink's DNS options either.
		if rl.DNS != nil {
			l.DNS = []netip.Addr{}
		}
		if rl.Domains != nil {
			l.Domains = []string{}
		}
		for i, s := range rl.DNS {
			a, err := parseAddr(s)
			switch {
			case err != nil:
				r.errorf(indexPath(key("dns"), i), "%v", err)
			case a.IsMulticast() || a.IsUnspecified() || a.IsLoopback():
				r.errorf(indexPath(key("dns"), i), "must be a unicast address a LAN host can reach (got %s)", a)
			default:
				l.DNS = append(l.DNS, a)
			}
		}
		for i, d := range rl.Domains {
			if msg := checkDomain(d); msg != "" {
				r.errorf(indexPath(key("domains"), i), "%q is not a valid domain name: %s", d, msg)
				continue
			}
			l.Domains = append(l.Domains, strings.TrimSuffix(d, "."))
		}
		if rl.PD != nil {
			l.PD = r.lanPD(rl.PD, wans)
		}
		l.RA = r.ra(rl.RA, ha)
		out = append(out, l)
	}
	return out
}

// subnet checks that a LAN's /64 index fits in the internal prefix and in a
// delegated prefix of each uplink's hint length.
func (r *reporter) subnet(key string, n int64, nat NAT, wans []WAN) bool {
	if nat.Enabled() {
		if max := maxSubnet(nat.InternalPrefix.Bits()); n < 0 || n > max {
			r.errorf(key, "must be between 0 and %d (got %d): nat.internal_prefix %s holds %d /64s", max, n, nat.InternalPrefix, max+1)
			return false
		}
	}
	for i, w := range wans {
		if max := maxSubnet(w.PrefixLength); n < 0 || n > max {
			r.errorf(key, "must be between 0 and %d (got %d): a /%d delegated prefix (%s) holds %d /64s", max, n, w.PrefixLength, joinPath(r.wanPaths[i], "prefix_length"), max+1)
			return false
		}
	}
	return n >= 0
}

// maxSubnet is the highest /64 index inside a prefix of the given length.
func maxSubnet(bits int) int64 {
	if bits < 1 {
		bits = 1
	}
	return int64(uint64(1)<<min(64-bits, 62)) - 1
}

// lanAddress checks the router's own LAN address: a /64 address inside the
// LAN's internal /64 when it lies in the internal prefix at all.
func (r *reporter) lanAddress(key, s string, l LAN, nat NAT) netip.Prefix {
	p, err := parsePrefix(s)
	switch {
	case err != nil:
		r.errorf(key, "%v (write it with its length, such as \"fd00:aaaa:bbbb:cc01::1/64\")", err)
		return netip.Prefix{}
	case p.Bits() != 64:
		r.errorf(key, "must be a /64 address, the length of the advertised prefix (got /%d)", p.Bits())
		return netip.Prefix{}
	case !p.Addr().IsGlobalUnicast():
		r.errorf(key, "must be a unicast, non-link-local address (got %s)", p.Addr())
		return netip.Prefix{}
	case p.Addr() == p.Masked().Addr():
		// RFC 4291 §2.6.1: interface id 0 is the Subnet-Router anycast address.
		r.errorf(key, "%s is the subnet-router anycast address; pick a host address such as %s", p.Addr(), p.Addr().Next())
		return netip.Prefix{}
	}
	if nat.Enabled() && nat.InternalPrefix.Contains(p.Addr()) {
		if lan := lanPrefix(nat.InternalPrefix, l.Subnet); !lan.Contains(p.Addr()) {
			r.errorf(key, "%s is outside this LAN's internal /64 %s (nat.internal_prefix, subnet %d)", p.Addr(), lan, l.Subnet)
			return netip.Prefix{}
		}
	} else if l.Advertise != AdvertiseExternal {
		r.errorf(key, "%s is outside nat.internal_prefix; with advertise %q it must be in this LAN's internal /64", p.Addr(), l.Advertise)
		return netip.Prefix{}
	}
	return p
}

// lanPrefix is the n-th /64 inside p.
func lanPrefix(p netip.Prefix, n int) netip.Prefix {
	a := p.Addr().As16()
	hi := binary.BigEndian.Uint64(a[:8]) | uint64(n)
	binary.BigEndian.PutUint64(a[:8], hi)
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

func (r *reporter) lanPD(pd *rawLANPD, wans []WAN) *LANPD {
	key := pd.key
	out := &LANPD{Count: 1}
	if pd.Length == nil {
		r.missing(key("length"), "required: the length of the prefixes delegated to routers on this LAN, such as 60")
		return nil
	}
	out.Length = int(*pd.Length)
	longestHint := 0
	for _, w := range wans {
		longestHint = max(longestHint, w.PrefixLength)
	}
	if *pd.Length <= int64(longestHint) || *pd.Length > 64 {
		r.errorf(key("length"), "must be longer than the delegated prefix (prefix_length %d) and at most 64 (got %d)", longestHint, *pd.Length)
		return nil
	}
	if pd.Count != nil {
		avail := int64(1) << min(out.Length-longestHint, 62)
		if *pd.Count < 1 || *pd.Count > avail {
			r.errorf(key("count"), "must be between 1 and %d, the /%ds in a /%d (got %d)", avail, out.Length, longestHint, *pd.Count)
			return nil
		}
		out.Count = int(*pd.Count)
	}
	return out
}

func (r *reporter) ra(raw rawRA, ha bool) RA {
	key := raw.key
	ra := RA{
		MaxInterval:   deref(raw.MaxInterval, defaultMaxInterval),
		Preference:    deref(raw.Preference, "medium"),
		HopLimit:      defaultHopLimit,
		ReachableTime: deref(raw.ReachableTime, 0),
		RetransTimer:  deref(raw.RetransTimer, 0),
		Preferred:     deref(raw.Preferred, defaultPreferred),
		Valid:         deref(raw.Valid, defaultValid),
		FinalRA:       deref(raw.FinalRA, !ha),
	}
	if ra.MaxInterval < minMaxInterval || ra.MaxInterval > maxMaxInterval {
		r.errorf(key("max_interval"), "must be between %v and %v (RFC 4861 §6.2.1) (got %v)", minMaxInterval, maxMaxInterval, ra.MaxInterval)
		ra.MaxInterval = defaultMaxInterval
	}
	// RFC 4861 §6.2.1: MinRtrAdvInterval defaults to 0.33 × max, or to
	// 0.75 × max when max is under 9 s; 200 s pairs with the default 600 s.
	switch {
	case raw.MinInterval != nil:
		ra.MinInterval = *raw.MinInterval
	case raw.MaxInterval == nil:
		ra.MinInterval = defaultMinInterval
	case ra.MaxInterval >= 9*time.Second:
		ra.MinInterval = ra.MaxInterval / 3
	default:
		ra.MinInterval = ra.MaxInterval * 3 / 4
	}
	if ra.MinInterval < minMinInterval || ra.MinInterval > ra.MaxInterval*3/4 {
		r.errorf(key("min_interval"), "must be between %v and 0.75 × max_interval = %v (RFC 4861 §6.2.1) (got %v)", minMinInterval, ra.MaxInterval*3/4, ra.MinInterval)
	}

	ra.RouterLifetime = deref(raw.RouterLifetime, 3*ra.MaxInterval)
	if raw.RouterLifetime == nil {
		ra.RouterLifetime = min(ra.RouterLifetime, maxRouterLifetime)
	}
	if rl := ra.RouterLifetime; rl != 0 && (rl < ra.MaxInterval || rl > maxRouterLifetime) {
		r.errorf(key("router_lifetime"), "must be 0 (not a default router) or between max_interval %v and %v (RFC 4861 §6.2.1) (got %v)", ra.MaxInterval, maxRouterLifetime, rl)
	} else {
		r.wholeUnits(key("router_lifetime"), rl, time.Second)
	}

	switch ra.Preference {
	case "low", "medium", "high":
	default:
		r.errorf(key("preference"), "must be \"low\", \"medium\" or \"high\" (RFC 4191 §2.2) (got %q)", ra.Preference)
	}
	if raw.HopLimit != nil {
		if *raw.HopLimit < 0 || *raw.HopLimit > 255 {
			r.errorf(key("hop_limit"), "must be between 0 (unspecified) and 255 (got %d)", *raw.HopLimit)
		} else {
			ra.HopLimit = int(*raw.HopLimit)
		}
	}
	if ra.ReachableTime < 0 || ra.ReachableTime > maxReachableTime {
		r.errorf(key("reachable_time"), "must be between 0 (unspecified) and %v (RFC 4861 §6.2.1) (got %v)", maxReachableTime, ra.ReachableTime)
	} else {
		r.wholeUnits(key("reachable_time"), ra.ReachableTime, time.Millisecond)
	}
	if ra.RetransTimer < 0 || ra.RetransTimer > maxRetransTimerMsec*time.Millisecond {
		r.errorf(key("retrans_timer"), "must be between 0 (unspecified) and %v (got %v)", maxRetransTimerMsec*time.Millisecond, ra.RetransTimer)
	} else {
		r.wholeUnits(key("retrans_timer"), ra.RetransTimer, time.Millisecond)
	}
	if raw.MTU != nil {
		if m := *raw.MTU; m != 0 && (m < minLinkMTU || m > maxLinkMTU) {
			r.errorf(key("mtu"), "must be 0 (no MTU option) or between %d and %d (got %d)", minLinkMTU, maxLinkMTU, m)
		} else {
			ra.MTU = int(m)
		}
	}
	validOK := true
	if ra.Valid < time.Second || ra.Valid > maxLifetimeSeconds*time.Second {
		r.errorf(key("valid"), "must be between 1s and %v (got %v)", maxLifetimeSeconds*time.Second, ra.Valid)
		validOK = false
	} else {
		validOK = r.wholeUnits(key("valid"), ra.Valid, time.Second)
	}
	if ra.Preferred < 0 {
		r.errorf(key("preferred"), "must not be negative (got %v)", ra.Preferred)
	} else if validOK && ra.Preferred > ra.Valid {
		r.errorf(key("preferred"), "must not exceed valid %v (RFC 4861 §4.6.2) (got %v)", ra.Valid, ra.Preferred)
	} else {
		r.wholeUnits(key("preferred"), ra.Preferred, time.Second)
	}
	if ha && ra.FinalRA {
		r.errorf(key("final_ra"), "must not be true with [ha]: a node that stops hands over to its peer, so hosts must keep the virtual router")
		ra.FinalRA = false
	}
	for i, s := range raw.Routes {
		p, err := parsePrefix(s)
		switch {
		case err != nil:
			r.errorf(indexPath(key("routes"), i), "%v", err)
		case p != p.Masked():
			r.errorf(indexPath(key("routes"), i), "has host bits set: %s has bits beyond /%d (did you mean %s?)", p, p.Bits(), p.Masked())
		case p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast():
			r.errorf(indexPath(key("routes"), i), "must be a routable prefix, not link-local or multicast (got %s)", p)
		default:
			ra.Routes = append(ra.Routes, p)
		}
	}
	return ra
}

// wholeUnits reports a duration that the wire field (seconds or
// milliseconds) cannot carry exactly.
func (r *reporter) wholeUnits(key string, d, unit time.Duration) bool {
	if d%unit != 0 {
		r.errorf(key, "must be a whole number of %s: the RA field carries no fraction (got %v)", unitName(unit), d)
		return false
	}
	return true
}

func unitName(unit time.Duration) string {
	if unit == time.Millisecond {
		return "milliseconds"
	}
	return "seconds"
}

func (r *reporter) ha(raw *rawHA, lans []LAN) *HA {
	key := raw.key
	h := &HA{
		Mode:           deref(raw.Mode, HAModeVRRP),
		Priority:       defaultHAPriority,
		AdvertInterval: deref(raw.AdvertInterval, defaultAdvertInterval),
		Preempt:        deref(raw.Preempt, true),
		PreemptDelay:   deref(raw.PreemptDelay, 0),
		SyncKey:        deref(raw.SyncKey, ""),
	}
	vrrp := h.Mode == HAModeVRRP
	if !vrrp && h.Mode != HAModeExternal {
		r.errorf(key("mode"), "must be \"vrrp\" or \"external\" (got %q)", h.Mode)
	}
	switch {
	case raw.VRID != nil && (*raw.VRID < 1 || *raw.VRID > 255):
		r.errorf(key("vrid"), "must be between 1 and 255 (got %d)", *raw.VRID)
	case raw.VRID != nil:
		h.VRID = uint8(*raw.VRID)
	case vrrp:
		r.missing(key("vrid"), "required with mode \"vrrp\": the virtual router id (1..255) both nodes share")
	}
	if raw.Priority != nil {
		if p := *raw.Priority; p < 1 || p > maxBackupPriority {
			r.errorf(key("priority"), "must be between 1 and %d; 255 is reserved for the address owner (RFC 5798 §5.2.4) (got %d)", maxBackupPriority, p)
		} else {
			h.Priority = uint8(p)
		}
	}
	if raw.Interface != nil {
		h.Interface = r.ifname(key("interface"), raw.Interface)
		if h.Interface != "" && !isLAN(lans, h.Interface) {
			r.errorf(key("interface"), "%q is not the interface of any [[lan]]; VRRP adverts go out on a LAN", h.Interface)
		}
	} else if vrrp {
		r.missing(key("interface"), "required with mode \"vrrp\": the LAN interface where VRRPv3 adverts go")
	}
	if ai := h.AdvertInterval; ai < minAdvertInterval || ai > maxAdvertInterval || ai%vrrpTick != 0 {
		r.errorf(key("advert_interval"), "must be a multiple of 10ms between %v and %v: VRRPv3 counts centiseconds in 12 bits (RFC 5798 §5.2.7) (got %v)", minAdvertInterval, maxAdvertInterval, ai)
	}
	if h.PreemptDelay < 0 || h.PreemptDelay > maxPreemptDelay {
		r.errorf(key("preempt_delay"), "must be between 0s and %v (got %v)", maxPreemptDelay, h.PreemptDelay)
	}
	if raw.VirtualLinkLocal == nil {
		r.missing(key("virtual_link_local"), "required: the link-local router address hosts use, such as \"fe80::1\"")
	} else if a, err := parseAddr(*raw.VirtualLinkLocal); err != nil {
		r.errorf(key("virtual_link_local"), "%v", err)
	} else if !a.IsLinkLocalUnicast() || a == netip.MustParseAddr("fe80::") {
		r.errorf(key("virtual_link_local"), "must be a link-local address in fe80::/10 with a non-zero interface id, such as fe80::1 (got %s)", a)
	} else {
		h.VirtualLinkLocal = a
	}
	if raw.WANMAC != nil {
		h.WANMAC = r.mac(key("wan_mac"), *raw.WANMAC, true)
	}
	if raw.SyncKey != nil && *raw.SyncKey == "" {
		r.errorf(key("sync_key"), "must not be empty; leave the key out for unauthenticated lease sync")
	}
	return h
}

func isLAN(lans []LAN, name string) bool {
	for _, l := range lans {
		if l.Interface == name {
			return true
		}
	}
	return false
}

func (r *reporter) dad(raw rawDAD) DAD {
	key := raw.key
	d := DAD{
		HealLinkLocal: deref(raw.HealLinkLocal, false),
		RetryMin:      deref(raw.RetryMin, defaultDADRetryMin),
		RetryMax:      deref(raw.RetryMax, defaultDADRetryMax),
	}
	if d.RetryMin <= 0 {
		r.errorf(key("retry_min"), "must be positive (got %v)", d.RetryMin)
	} else if d.RetryMax < d.RetryMin {
		r.errorf(key("retry_max"), "must not be less than retry_min %v (got %v)", d.RetryMin, d.RetryMax)
	}
	return d
}

func (r *reporter) control(raw rawControl) Control {
	key := raw.key
	c := Control{
		Socket:      deref(raw.Socket, defaultSocket),
		StateDir:    deref(raw.StateDir, defaultStateDir),
		Metrics:     deref(raw.Metrics, ""),
		SocketGroup: deref(raw.SocketGroup, ""),
	}
	if !filepath.IsAbs(c.Socket) {
		r.errorf(key("socket"), "must be an absolute path (got %q)", c.Socket)
	} else if len(c.Socket) > maxUnixSocketPath {
		r.errorf(key("socket"), "is %d bytes; a unix socket path holds at most %d", len(c.Socket), maxUnixSocketPath)
	}
	if !filepath.IsAbs(c.StateDir) {
		r.errorf(key("state_dir"), "must be an absolute path (got %q)", c.StateDir)
	}
	if c.Metrics != "" {
		host, port, err := net.SplitHostPort(c.Metrics)
		n, perr := strconv.ParseUint(port, 10, 16)
		switch {
		case err != nil:
			r.errorf(key("metrics"), "must be host:port, such as \"[::1]:9430\" (got %q)", c.Metrics)
		case perr != nil || n == 0:
			r.errorf(key("metrics"), "port must be a number between 1 and 65535 (got %q)", port)
		case strings.ContainsAny(host, " /"):
			r.errorf(key("metrics"), "host %q is not a host name or address", host)
		}
	}
	if raw.SocketGroup != nil && strings.ContainsAny(c.SocketGroup, ": \t\n") {
		r.errorf(key("socket_group"), "%q is not a group name or id", c.SocketGroup)
	}
	return c
}

// ifname checks a Linux interface name the way the kernel's dev_valid_name
// does; a missing name is reported as required.
func (r *reporter) ifname(key string, s *string) string {
	if s == nil {
		r.missing(key, "required: the name of a network interface")
		return ""
	}
	name := *s
	switch {
	case name == "":
		r.errorf(key, "must not be empty")
	case len(name) >= ifNameSize:
		r.errorf(key, "%q is %d bytes; Linux interface names are at most %d", name, len(name), ifNameSize-1)
	case name == "." || name == "..":
		r.errorf(key, "%q is not a valid interface name", name)
	case strings.ContainsAny(name, "/: \t\n\r\v\f"):
		r.errorf(key, "%q is not a valid interface name: no '/', ':' or spaces", name)
	default:
		return name
	}
	return ""
}

// mac parses an EUI-48; unicast additionally rejects group addresses,
// which no interface may use as its own.
func (r *reporter) mac(key, s string, unicast bool) net.HardwareAddr {
	hw, err := net.ParseMAC(s)
	switch {
	case err != nil || len(hw) != 6:
		r.errorf(key, "must be a 48-bit MAC address such as \"02:00:5e:00:01:33\" (got %q)", s)
	case unicast && hw[0]&1 == 1:
		r.errorf(key, "must be a unicast MAC; %s has the group bit set", hw)
	case hw.String() == "00:00:00:00:00:00":
		r.errorf(key, "must not be all zeros")
	default:
		return hw
	}
	return nil
}

// parseAddr parses an IPv6 address without a zone.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("%q is not an IPv6 address", s)
	case !a.Is6() || a.Is4In6():
		return netip.Addr{}, fmt.Errorf("must be an IPv6 address (got %s)", s)
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("must not carry a zone (got %s)", s)
	}
	return a, nil
}

// parsePrefix parses an IPv6 prefix, keeping host bits so callers can say
// which were set.
func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv6 prefix such as \"fd00::/56\"", s)
	case !p.Addr().Is6() || p.Addr().Is4In6():
		return netip.Prefix{}, fmt.Errorf("must be an IPv6 prefix (got %s)", s)
	}
	return p, nil
}

// checkDomain validates a DNS search domain (RFC 1035 §2.3.1 labels, with
// digits allowed first as RFC 1123 §2.1 permits). It returns why not, or "".
func checkDomain(d string) string {
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return "empty"
	}
	if len(d) > maxDomainLen {
		return fmt.Sprintf("longer than %d bytes", maxDomainLen)
	}
	for _, label := range strings.Split(d, ".") {
		switch {
		case label == "":
			return "empty label"
		case len(label) > 63:
			return fmt.Sprintf("label %q is longer than 63 bytes", label)
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Sprintf("label %q starts or ends with '-'", label)
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Sprintf("label %q holds %q; only letters, digits and '-' are allowed", label, c)
			}
		}
	}
	return ""
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
