package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/nat"
)

// Role is the node's part in an HA pair.
type Role string

const (
	Standalone Role = "standalone"
	Master     Role = "master"
	Backup     Role = "backup"
	Fault      Role = "fault"
)

// Serving reports whether a node in this role answers the LAN: a
// standalone router always does, an HA node only while master.
func (r Role) Serving() bool { return r == Standalone || r == Master || r == "" }

// Uplink is what the daemon knows about one WAN right now.
type Uplink struct {
	Interface string
	// Delegated is the prefix chosen from the lease; invalid when there is
	// no usable lease (soliciting, expired, released).
	Delegated      netip.Prefix
	PreferredUntil time.Time
	ValidUntil     time.Time
	// Healthy is false while the link is down or the health check fails.
	Healthy bool
	// DefaultRouter: the WAN has a default route from the upstream's RAs.
	DefaultRouter bool
	// Exclude is the delegated prefix's excluded part (RFC 6603): never
	// advertised, translated or delegated.
	Exclude netip.Prefix
	// DNS and Domains are the uplink's DHCPv6 options 23 and 24: a LAN
	// without dns/domains of its own tells its hosts these (RFC 7084 L-12).
	DNS     []netip.Addr
	Domains []string
	// Addresses are the WAN addresses the uplink's IA_NA holds (RFC 7084
	// WAA-4), valid now: they go on the WAN as /128s with their lifetimes.
	Addresses []LeaseAddr
}

// LeaseAddr is a leased address and when its lifetimes end.
type LeaseAddr struct {
	Addr                       netip.Addr
	PreferredUntil, ValidUntil time.Time
}

// Input is everything Compute looks at.
type Input struct {
	Config  *configs.Config
	Uplinks []Uplink // in config order
	Role    Role
	Now     time.Time
}

// RAPrefix is one Prefix Information Option.
type RAPrefix struct {
	Prefix         netip.Prefix
	Autonomous     bool
	Preferred      time.Duration
	Valid          time.Duration
	PreferredUntil time.Time // zero: no cap (the ULA lives forever)
	ValidUntil     time.Time
}

// LAN is one LAN's desired state.
type LAN struct {
	Interface string
	Config    configs.LAN
	// Advertise is false on an HA backup: it must stay silent.
	Advertise bool
	Prefixes  []RAPrefix
	// Source is the RA source address; invalid means the interface's own
	// link-local.
	Source netip.Addr
	// Addresses are the router's own addresses on this LAN.
	Addresses []netip.Prefix
	// DHCP is the LAN DHCPv6 server the RA's M/O flags promise; nil when
	// the LAN needs none (slaac without downstream PD) or this node is not
	// serving (HA backup).
	DHCP *DHCP
}

// DHCP is one LAN's DHCPv6 service.
type DHCP struct {
	// Pool is the /64 IA_NA addresses come from (stateful mode); invalid
	// for stateless service.
	Pool netip.Prefix
	// LifetimeCap bounds every lifetime handed out: a lease from the
	// delegated prefix never outlives it. Zero for the ULA.
	LifetimeCap time.Time
	// PDPool is what downstream routers get sub-prefixes of: the internal
	// prefix when NAT maps it (their traffic is then translated like any
	// LAN's), else the delegated prefix. PDExclude are the LANs' own /64s.
	PDPool    netip.Prefix
	PDLength  int
	PDCount   int
	PDExclude []netip.Prefix
}

// Address is one address the daemon wants on an interface.
type Address struct {
	Interface string
	Prefix    netip.Prefix
	NoDAD     bool // floating (HA): DAD would fight the peer's copy
	// PreferredUntil and ValidUntil are a leased address's lifetimes; zero
	// for the router's own addresses, which live forever.
	PreferredUntil, ValidUntil time.Time
}

// Desired is the whole desired state.
type Desired struct {
	// NAT is the NETMAP table: one pair per uplink with a usable lease,
	// none before the first lease or after expiry.
	NAT       nat.Ruleset
	LANs      []LAN
	Addresses []Address
	// Unreachable are the aggregate routes of RFC 7084 WPD-5: traffic for a
	// /64 of ours that no LAN uses is answered with ICMPv6 unreachable
	// instead of bouncing back upstream.
	Unreachable []netip.Prefix
	// Preferred is the interface of the uplink new flows leave by; "" when
	// none is usable.
	Preferred string
	// WANs is each uplink's DHCPv6 client as this node should run it, in
	// config order.
	WANs []WAN
	// HA is what an HA node does beyond its LAN addresses; nil when
	// standalone.
	HA *HA
	// ProbeSource is the source of the uplink health probes: the router's
	// own first LAN address that does not depend on a lease, which NETMAP
	// maps into every uplink's prefix so each upstream's BCP 38 filter
	// accepts it. Invalid when the config has none.
	ProbeSource netip.Addr
	Problems    []string
}

// WAN is one uplink's DHCPv6 client.
type WAN struct {
	Interface string
	// Standby: the client holds the lease it has (or was synced) and sends
	// nothing; an HA node that is not master must not talk to the upstream.
	Standby bool
}

// HA is an HA node's part beyond its addresses.
type HA struct {
	// VirtualAddrs are the VRRP addresses in advert order (RFC 5798
	// §5.2.9): the virtual link-local, then each LAN's router address that
	// does not depend on a lease. A keepalived peer lists the same ones.
	VirtualAddrs []netip.Addr
	// HoldWANMAC: this node wears the pair's shared WAN MAC (master only).
	HoldWANMAC bool
}

// fittedUplink is an uplink with a usable lease. external is the block the
// LANs' subnets number /64s in: the delegated prefix fitted onto the internal
// prefix length (NAT, delegation no longer than the internal prefix), the
// delegated prefix itself (routed, or a delegation longer than the internal
// prefix). internal is the internal block mapped onto it (NAT only).
type fittedUplink struct {
	up       Uplink
	external netip.Prefix
	internal netip.Prefix
	prio     int
}

// fit maps one uplink's delegation for the LANs.
func fit(cfg *configs.Config, up Uplink) (fittedUplink, error) {
	del := up.Delegated.Masked()
	f := fittedUplink{up: up}
	switch internal := cfg.NAT.InternalPrefix; {
	case del.Bits() > 64:
		return f, fmt.Errorf("the delegated %v is longer than /64: there is no /64 in it for a LAN", del)
	case !internal.IsValid():
		f.external = del // routed: the LANs number their /64s in the delegation
	case del.Bits() <= internal.Bits():
		ext, err := nat.Fit(internal, del, cfg.NAT.SubPrefix)
		if err != nil {
			return f, err
		}
		f.external, f.internal = ext, internal.Masked()
	default:
		// A delegation longer than the internal prefix (RFC 7084 WPD-3:
		// smaller than asked for) holds the first block of the internal
		// prefix of its length: subnets 0 … 2^(64-len)-1.
		f.external, f.internal = del, netip.PrefixFrom(internal.Masked().Addr(), del.Bits())
	}
	return f, nil
}

// subnetOf is a LAN's /64 in an uplink's delegation, invalid when the subnet
// does not fit or falls on the excluded prefix.
func (f *fittedUplink) subnetOf(n int) netip.Prefix {
	p := Subnet64(f.external, n)
	if p.IsValid() && f.up.Exclude.IsValid() && (p.Overlaps(f.up.Exclude)) {
		return netip.Prefix{}
	}
	return p
}

// lanFit says why a LAN gets no /64 of an uplink's delegation, "" when it does.
func (f *fittedUplink) lanFit(lc configs.LAN) string {
	if p := Subnet64(f.external, lc.Subnet); !p.IsValid() {
		n := uint64(1) << min(64-f.external.Bits(), 63)
		return fmt.Sprintf("%s: subnet %d does not fit the /%d delegated on %s (it holds subnets 0-%d): the LAN keeps its ULA but gets no global prefix there; use a subnet below %d or ask for a shorter prefix (wan.prefix_length)",
			lc.Interface, lc.Subnet, f.up.Delegated.Bits(), f.up.Interface, n-1, n)
	} else if f.up.Exclude.IsValid() && p.Overlaps(f.up.Exclude) {
		return fmt.Sprintf("%s: subnet %d is %v, which the server on %s excluded from the delegation (RFC 6603, its WAN link): the LAN keeps its ULA but gets no global prefix there; use another subnet",
			lc.Interface, lc.Subnet, p, f.up.Interface)
	}
	return ""
}

// Compute returns the desired state for in. It never fails: anything that
// cannot be realised (a delegated prefix too long for the internal one) is
// left out and reported in Problems.
func Compute(in Input) Desired {
	cfg := in.Config
	var d Desired
	internal := cfg.NAT.InternalPrefix

	// Fit every usable delegated prefix for the LANs.
	var usable []fittedUplink
	for i, up := range in.Uplinks {
		if !up.Delegated.IsValid() || (!up.ValidUntil.IsZero() && !in.Now.Before(up.ValidUntil)) {
			continue
		}
		f, err := fit(cfg, up)
		if err != nil {
			d.Problems = append(d.Problems, fmt.Sprintf("%s: %v", up.Interface, err))
			continue
		}
		f.prio = i * 10
		if i < len(cfg.WANs) {
			f.prio = cfg.WANs[i].Priority
		}
		for _, lc := range cfg.LANs {
			if why := f.lanFit(lc); why != "" {
				d.Problems = append(d.Problems, why)
			}
		}
		usable = append(usable, f)
		d.Unreachable = append(d.Unreachable, up.Delegated.Masked())
	}
	sort.SliceStable(usable, func(i, j int) bool { return usable[i].prio < usable[j].prio })
	var preferred *fittedUplink
	for i := range usable {
		if usable[i].up.Healthy {
			preferred = &usable[i]
			break
		}
	}
	if preferred != nil {
		d.Preferred = preferred.up.Interface
	}

	lanNames := make([]string, 0, len(cfg.LANs))
	for _, l := range cfg.LANs {
		lanNames = append(lanNames, l.Interface)
	}
	wanNames := make([]string, 0, len(cfg.WANs))
	for _, w := range cfg.WANs {
		wanNames = append(wanNames, w.Interface)
	}
	d.NAT = nat.Ruleset{Internal: internal, LANs: lanNames, Hairpin: cfg.NAT.Hairpin, WANs: wanNames}
	// A LAN that advertises the delegated /64 has hosts holding those
	// addresses themselves: their traffic is routed, not translated.
	for _, u := range usable {
		for _, lc := range cfg.LANs {
			if lc.Advertise == configs.AdvertiseExternal || lc.Advertise == configs.AdvertiseBoth {
				if p := u.subnetOf(lc.Subnet); p.IsValid() {
					d.NAT.Direct = append(d.NAT.Direct, p)
				}
			}
		}
	}
	for _, u := range usable {
		if !u.internal.IsValid() {
			continue // routed
		}
		// With several uplinks each has its mark whether or not the others
		// have a lease now: the routing rules that match it are permanent.
		nu := nat.Uplink{WAN: u.up.Interface, External: u.external, Mark: UplinkMark(cfg, u.up.Interface)}
		if u.internal != internal.Masked() {
			nu.Internal = u.internal
		}
		if x := u.up.Exclude; x.IsValid() && u.external.Contains(x.Addr()) && x.Bits() >= u.external.Bits() {
			nu.Exclude = []netip.Prefix{x.Masked()}
		}
		d.NAT.Uplinks = append(d.NAT.Uplinks, nu)
	}
	if internal.IsValid() {
		d.Unreachable = append([]netip.Prefix{internal.Masked()}, d.Unreachable...)
	}

	// RFC 7084 G-4: a router with no usable delegation and no default
	// router on its WAN must not advertise itself as a default router, or
	// hosts send traffic that goes nowhere. With several uplinks, any one
	// usable keeps the LAN's default route.
	wayOut := false
	for _, u := range usable {
		wayOut = wayOut || (u.up.Healthy && u.up.DefaultRouter)
	}
	serving := in.Role.Serving()
	for _, w := range cfg.WANs {
		d.WANs = append(d.WANs, WAN{Interface: w.Interface, Standby: cfg.HA != nil && in.Role != Master})
	}
	static := staticAddresses(cfg)
	for _, a := range static {
		if a.Is6() && !a.IsLinkLocalUnicast() {
			d.ProbeSource = a
			break
		}
	}
	var source netip.Addr
	if cfg.HA != nil {
		source = cfg.HA.VirtualLinkLocal
		d.HA = &HA{VirtualAddrs: append([]netip.Addr{cfg.HA.VirtualLinkLocal}, static...),
			HoldWANMAC: cfg.HA.WANMAC != nil && in.Role == Master}
		if serving {
			d.Addresses = append(d.Addresses, Address{Interface: cfg.HA.Interface, Prefix: netip.PrefixFrom(cfg.HA.VirtualLinkLocal, 64), NoDAD: true})
		}
	}

	if serving {
		// The IA_NA address is the node's that talks to the upstream: in an
		// HA pair both share one DUID, so it floats with the master.
		for _, up := range in.Uplinks {
			for _, a := range up.Addresses {
				if !a.ValidUntil.IsZero() && !in.Now.Before(a.ValidUntil) {
					continue
				}
				d.Addresses = append(d.Addresses, Address{Interface: up.Interface, Prefix: netip.PrefixFrom(a.Addr, 128),
					NoDAD: cfg.HA != nil, PreferredUntil: a.PreferredUntil, ValidUntil: a.ValidUntil})
			}
		}
	}

	for _, lc := range cfg.LANs {
		lan := LAN{Interface: lc.Interface, Config: lc, Advertise: serving, Source: source}
		if !wayOut {
			lan.Config.RA.RouterLifetime = 0
		}
		ula := Subnet64(internal, lc.Subnet)
		var gua netip.Prefix
		if preferred != nil {
			gua = preferred.subnetOf(lc.Subnet)
			if lc.DNS == nil {
				lan.Config.DNS = preferred.up.DNS
			}
			if lc.Domains == nil {
				lan.Config.Domains = preferred.up.Domains
			}
		}
		ra := lc.RA
		if lc.Advertise == configs.AdvertiseInternal || lc.Advertise == configs.AdvertiseBoth {
			if ula.IsValid() {
				lan.Prefixes = append(lan.Prefixes, RAPrefix{Prefix: ula, Autonomous: lc.Autonomous, Preferred: ra.Preferred, Valid: ra.Valid})
			}
		}
		if (lc.Advertise == configs.AdvertiseExternal || lc.Advertise == configs.AdvertiseBoth) && gua.IsValid() {
			// A prefix from a lease must never outlive the lease (RFC 9096 §3.3).
			lan.Prefixes = append(lan.Prefixes, RAPrefix{
				Prefix: gua, Autonomous: lc.Autonomous, Preferred: ra.Preferred, Valid: ra.Valid,
				PreferredUntil: preferred.up.PreferredUntil, ValidUntil: preferred.up.ValidUntil,
			})
		}
		if lc.Address.IsValid() {
			lan.Addresses = append(lan.Addresses, lc.Address)
		} else {
			if (lc.Advertise == configs.AdvertiseInternal || lc.Advertise == configs.AdvertiseBoth) && ula.IsValid() {
				lan.Addresses = append(lan.Addresses, netip.PrefixFrom(ula.Addr().Next(), 64))
			}
			if (lc.Advertise == configs.AdvertiseExternal || lc.Advertise == configs.AdvertiseBoth) && gua.IsValid() {
				lan.Addresses = append(lan.Addresses, netip.PrefixFrom(gua.Addr().Next(), 64))
			}
		}
		// An HA node holds the LAN router addresses only while master, and
		// without DAD: the peer may still hold them for a moment.
		floating := cfg.HA != nil
		if serving || !floating {
			for _, a := range lan.Addresses {
				d.Addresses = append(d.Addresses, Address{Interface: lc.Interface, Prefix: a, NoDAD: floating})
			}
		}
		lan.DHCP = lanDHCP(cfg, lan.Config, ula, gua, preferred, serving)
		d.LANs = append(d.LANs, lan)
	}
	return d
}

// staticAddresses are the router's LAN addresses that do not depend on a
// lease (a configured address, or the ULA router address), in LAN order
// without repeats.
func staticAddresses(cfg *configs.Config) []netip.Addr {
	var out []netip.Addr
	for _, lc := range cfg.LANs {
		var a netip.Addr
		switch {
		case lc.Address.IsValid():
			a = lc.Address.Addr()
		case lc.Advertise == configs.AdvertiseInternal || lc.Advertise == configs.AdvertiseBoth:
			if ula := Subnet64(cfg.NAT.InternalPrefix, lc.Subnet); ula.IsValid() {
				a = ula.Addr().Next()
			}
		}
		if a.IsValid() && !slices.Contains(out, a) && (cfg.HA == nil || a != cfg.HA.VirtualLinkLocal) {
			out = append(out, a)
		}
	}
	return out
}

// lanDHCP plans the DHCPv6 service of one LAN.
func lanDHCP(cfg *configs.Config, lc configs.LAN, ula, gua netip.Prefix, preferred *fittedUplink, serving bool) *DHCP {
	if !serving || (!lc.Managed && !lc.Other && lc.PD == nil) {
		return nil
	}
	dh := &DHCP{}
	if lc.Managed {
		// Addresses from the advertised /64: the ULA unless only the
		// delegated prefix is advertised.
		if lc.Advertise == configs.AdvertiseExternal {
			if gua.IsValid() {
				dh.Pool, dh.LifetimeCap = gua, preferred.up.ValidUntil
			}
		} else {
			dh.Pool = ula
		}
	}
	if lc.PD != nil {
		dh.PDLength, dh.PDCount = lc.PD.Length, lc.PD.Count
		if cfg.NAT.InternalPrefix.IsValid() {
			dh.PDPool = cfg.NAT.InternalPrefix.Masked()
			for _, other := range cfg.LANs {
				if p := Subnet64(cfg.NAT.InternalPrefix, other.Subnet); p.IsValid() {
					dh.PDExclude = append(dh.PDExclude, p)
				}
			}
		} else if preferred != nil {
			dh.PDPool, dh.LifetimeCap = preferred.external, preferred.up.ValidUntil
			for _, other := range cfg.LANs {
				if p := Subnet64(preferred.external, other.Subnet); p.IsValid() {
					dh.PDExclude = append(dh.PDExclude, p)
				}
			}
			if x := preferred.up.Exclude; x.IsValid() {
				dh.PDExclude = append(dh.PDExclude, x.Masked())
			}
		}
	}
	return dh
}

// UplinkMark is the connection mark of an uplink when there are several
// (0 with one): the replies of a flow that came in on it must leave by it
// (BCP 38), and its flows are dropped from conntrack when it fails.
func UplinkMark(cfg *configs.Config, iface string) uint32 {
	if len(cfg.WANs) < 2 {
		return 0
	}
	for i, w := range cfg.WANs {
		if w.Interface == iface {
			return 0x76650000 + uint32(i) + 1
		}
	}
	return 0
}

// Subnet64 returns the n-th /64 inside p, or an invalid prefix when p is
// invalid, longer than /64, or too small to have an n-th /64.
func Subnet64(p netip.Prefix, n int) netip.Prefix {
	if !p.IsValid() || p.Bits() > 64 || n < 0 {
		return netip.Prefix{}
	}
	if bits := 64 - p.Bits(); bits < 31 && n >= 1<<bits {
		return netip.Prefix{}
	}
	return nthSubnet(p.Masked(), 64, n)
}

// nthSubnet returns the n-th prefix of length bits inside p (bits <= 64).
func nthSubnet(p netip.Prefix, bits, n int) netip.Prefix {
	a := p.Addr().As16()
	hi := uint64(0)
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(a[i])
	}
	hi |= uint64(n) << (64 - bits)
	for i := 7; i >= 0; i-- {
		a[i] = byte(hi)
		hi >>= 8
	}
	return netip.PrefixFrom(netip.AddrFrom16(a), bits)
}
