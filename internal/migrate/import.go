package migrate

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// File is one input: the name used in comments and its text.
type File struct {
	Name string
	Data []byte
}

// Inputs are the files to import; a nil Data means the file was not given.
type Inputs struct {
	Dhcpcd, Hook, Radvd, Keepalived *File
	// HookPath is the hook's absolute path, written as wan.hook when the
	// script does more than the NETMAP pair.
	HookPath string
	// KeepKeepalived: keepalived stays; [ha] mode = "external".
	KeepKeepalived bool
	// ReadFile reads a notify script keepalived.conf names (nil: none
	// are read).
	ReadFile func(path string) ([]byte, error)
	// V6edge is the path of the v6edge binary in the notify lines
	// printed with KeepKeepalived (default /usr/sbin/v6edge).
	V6edge string
}

// Result is the imported config.
type Result struct {
	Inputs   []string
	Comments []string
	Sections []*Section
	Notes    []Note
	// NotifyLines are the keepalived lines to add with KeepKeepalived.
	NotifyLines []string
}

// Import parses every input and builds the v6edge config. An error is a
// file that does not parse, or inputs from which no config can be made
// (no WAN interface, no LAN).
func Import(in Inputs) (*Result, error) {
	r := &Result{}
	var (
		dh  *Dhcpcd
		hk  *Hook
		rv  *Radvd
		ka  *Keepalived
		err error
	)
	if in.Dhcpcd != nil {
		r.Inputs = append(r.Inputs, in.Dhcpcd.Name)
		if dh, err = ParseDhcpcd(in.Dhcpcd.Name, in.Dhcpcd.Data); err != nil {
			return nil, err
		}
	}
	if in.Hook != nil {
		r.Inputs = append(r.Inputs, in.Hook.Name)
		if hk, err = ParseHook(in.Hook.Name, in.Hook.Data); err != nil {
			return nil, err
		}
	}
	if in.Radvd != nil {
		r.Inputs = append(r.Inputs, in.Radvd.Name)
		if rv, err = ParseRadvd(in.Radvd.Name, in.Radvd.Data); err != nil {
			return nil, err
		}
	}
	if in.Keepalived != nil {
		r.Inputs = append(r.Inputs, in.Keepalived.Name)
		if ka, err = ParseKeepalived(in.Keepalived.Name, in.Keepalived.Data); err != nil {
			return nil, err
		}
	}
	if len(r.Inputs) == 0 {
		return nil, errors.New("nothing to import: give at least -dhcpcd or -radvd")
	}
	b := &builder{r: r, in: in, dh: dh, hk: hk, rv: rv, ka: ka, lanAddr: map[string]string{}}
	if err := b.build(); err != nil {
		return nil, err
	}
	return r, nil
}

type builder struct {
	r   *Result
	in  Inputs
	dh  *Dhcpcd
	hk  *Hook
	rv  *Radvd
	ka  *Keepalived
	wan *Section
	nat *Section
	ha  *Section
	// lans by interface, in radvd's order, and their /64 (for matching
	// keepalived's addresses).
	lans     []*lanOut
	internal netip.Prefix
	lanAddr  map[string]string // interface → router address from keepalived
}

type lanOut struct {
	iface  string
	sec    *Section
	ra     *Section
	prefix netip.Prefix // the /64 advertised, when literal
}

func (b *builder) note(file string, line int, text, why, section string) {
	b.r.Notes = append(b.r.Notes, Note{file, line, text, why, section})
}

func (b *builder) build() error {
	if b.dh != nil {
		b.r.Notes = append(b.r.Notes, b.dh.Notes...)
	}
	if err := b.buildWAN(); err != nil {
		return err
	}
	b.buildNAT()
	if err := b.buildLANs(); err != nil {
		return err
	}
	if b.ka != nil {
		b.buildHA()
	}
	// Sections in file order; notes next to the nearest one.
	secs := []*Section{b.wan}
	if b.nat != nil {
		secs = append(secs, b.nat)
	}
	for _, l := range b.lans {
		secs = append(secs, l.sec)
		if len(l.ra.Keys) > 0 {
			secs = append(secs, l.ra)
		}
	}
	if b.ha != nil {
		secs = append(secs, b.ha)
	}
	b.r.Sections = secs
	for i := range b.r.Notes {
		n := &b.r.Notes[i]
		target := b.sectionFor(n.Section)
		if target == nil {
			n.Section = ""
			continue
		}
		target.Notes = append(target.Notes, *n)
	}
	return nil
}

func (b *builder) sectionFor(name string) *Section {
	switch {
	case name == "wan":
		return b.wan
	case name == "nat":
		if b.nat != nil {
			return b.nat
		}
		return b.wan
	case name == "ha":
		if b.ha != nil {
			return b.ha
		}
		return nil
	case strings.HasPrefix(name, "lan:"):
		for _, l := range b.lans {
			if "lan:"+l.iface == name {
				return l.sec
			}
		}
		if len(b.lans) > 0 {
			return b.lans[0].sec
		}
	}
	return nil
}

func (b *builder) buildWAN() error {
	s := &Section{Header: "wan"}
	b.wan = s
	dh, hk := b.dh, b.hk
	dname := ""
	if b.in.Dhcpcd != nil {
		dname = b.in.Dhcpcd.Name
	}
	iface := ""
	switch {
	case dh != nil && dh.Interface != "":
		iface = dh.Interface
		s.set("interface", tomlString(iface), dname)
	case hk != nil && hk.WANInterface != "":
		iface = hk.WANInterface
		s.set("interface", tomlString(iface), b.in.Hook.Name)
	default:
		return errors.New("no WAN interface: dhcpcd.conf has no interface block with ia_pd (nor allowinterfaces), give -dhcpcd")
	}
	if hk != nil && hk.WANInterface != "" && hk.WANInterface != iface {
		b.note(b.in.Hook.Name, 0, "-i/-o "+hk.WANInterface, "the hook's NAT rules name "+hk.WANInterface+", dhcpcd.conf's WAN is "+iface+"; v6edge maps on wan.interface", "wan")
	}
	if dh == nil {
		s.Comments = append(s.Comments, "No dhcpcd.conf was given: the DHCPv6 client keeps v6edge's defaults.")
		return nil
	}
	if dh.DUID != "" {
		s.set("duid", tomlString(dh.DUID), dname)
	} else {
		s.Comments = append(s.Comments, "dhcpcd.conf has no duid line: dhcpcd used the DUID it stored in /var/lib/dhcpcd/duid (usually a DUID-LLT). To keep the ISP's binding, put that file's hex as wan.duid; v6edge's default is a DUID-LL of the WAN MAC.")
	}
	if dh.HasIAID {
		s.set("iaid", strconv.FormatUint(uint64(dh.IAID), 10), dname)
	}
	plen := dh.PrefixLength
	if plen == 0 && hk != nil && hk.ExpectedLength > 0 {
		plen = hk.ExpectedLength
		s.set("prefix_length", strconv.Itoa(plen), b.in.Hook.Name)
	} else if plen > 0 {
		s.set("prefix_length", strconv.Itoa(plen), dname)
	}
	if hk != nil && hk.ExpectedLength > 0 && plen > 0 && hk.ExpectedLength != plen {
		b.note(b.in.Hook.Name, hk.InternalLine, "expected length /"+strconv.Itoa(hk.ExpectedLength),
			fmt.Sprintf("the hook refuses delegations other than /%d while dhcpcd hints /%d; v6edge maps any length (SPEC.md, delegation sizes)", hk.ExpectedLength, plen), "nat")
	}
	if dh.IANA {
		s.set("request_address", tomlString("try"), dname)
	} else {
		s.setC("request_address", tomlString("never"), dname, "dhcpcd.conf has no ia_na: the IA_PD alone, as dhcpcd asked.")
	}
	if dh.RapidCommit {
		s.set("rapid_commit", "true", dname)
	}
	if dh.Release {
		if b.ka != nil {
			b.note(dname, 0, "release", "never true in an HA pair: the peer takes the lease over", "wan")
		} else {
			s.set("release_on_stop", "true", dname)
		}
	} else if b.ka != nil {
		s.set("release_on_stop", "false", dname)
	}
	for _, im := range dh.Imported {
		s.Comments = append(s.Comments, "imported from "+dname+": "+im)
	}
	if dh.Script != "" && hk == nil {
		b.note(dname, dh.ScriptLine, "script "+dh.Script, "the script was not read (give -hook FILE): v6edge installs the NETMAP pair itself only when it knows the internal prefix", "wan")
	}
	return nil
}

func (b *builder) buildNAT() {
	hk := b.hk
	if hk == nil {
		return
	}
	name := b.in.Hook.Name
	if len(hk.Extra) > 0 {
		var lines []string
		for _, e := range hk.Extra {
			lines = append(lines, fmt.Sprintf("%d", e.Line))
		}
		path := b.in.HookPath
		if path == "" {
			path = name
		}
		b.wan.setC("hook", tomlString(path), name, fmt.Sprintf(
			"%s does more than the NETMAP pair (lines %s), so v6edge runs it on lease events with dhcpcd's variables (reason=BOUND6, new_dhcp6_ia_pd1_prefix1, ...). v6edge now installs the NETMAP pair itself: delete those rules from the script.",
			name, strings.Join(lines, ", ")))
	}
	if !hk.InternalPrefix.IsValid() {
		if hk.Tool != "" {
			b.note(name, 0, hk.Tool+" NETMAP rules", "no literal internal prefix found in them: set nat.internal_prefix by hand", "wan")
		} else {
			b.wan.Comments = append(b.wan.Comments, name+" installs no NETMAP pair: routed mode (no [nat]).")
		}
		return
	}
	b.internal = hk.InternalPrefix
	s := &Section{Header: "nat"}
	b.nat = s
	s.set("internal_prefix", tomlString(hk.InternalPrefix.String()), from(name, hk.InternalLine))
	if hk.Hairpin {
		s.setC("hairpin", "true", name, "The hook also maps LAN-to-LAN traffic to the external prefix (its MARK rules).")
	} else {
		s.setC("hairpin", "false", name, "The hook mapped only traffic through the WAN; true (v6edge's default) also lets LAN hosts reach each other through the external prefix.")
	}
	s.Comments = append(s.Comments, fmt.Sprintf("From %s: its %s NETMAP pair between %s and the delegated prefix, and the bookkeeping around it (%d lines), which v6edge does itself in table ip6 v6edge.", name, hk.Tool, hk.InternalPrefix, hk.Dropped))
}

// radvd's defaults, for options that only need a comment when left so.
var radvdDefaultOff = map[string]bool{
	"AdvHomeAgentFlag": true, "AdvMobRtrSupportFlag": true, "AdvIntervalOpt": true, "UnicastOnly": true,
	"AdvHomeAgentInfo": true, "IgnoreIfMissing": false,
}

func (b *builder) buildLANs() error {
	if b.rv == nil {
		return errors.New("no LAN: give -radvd (v6edge needs at least one [[lan]])")
	}
	name := b.in.Radvd.Name
	used := map[int]bool{}
	for _, ifc := range b.rv.Interfaces {
		if v, _, ok := ifc.Option("AdvSendAdvert"); !ok || !isOn(v) {
			b.note(name, ifc.Line, "interface "+ifc.Name, "AdvSendAdvert is not on: radvd did not advertise here, so no [[lan]]", "")
			continue
		}
		if err := b.buildLAN(name, ifc, used); err != nil {
			return err
		}
	}
	if len(b.lans) == 0 {
		return errors.New(name + ": no interface block advertises (AdvSendAdvert on)")
	}
	// Routed, dhcpcd's ia_pd numbered /64s onto interfaces itself; v6edge
	// does so only for the [[lan]]s. With NAT they are the fake-interface
	// idiom (nosuch0/0/58) and mean nothing.
	if b.dh != nil && b.nat == nil {
		for _, d := range b.dh.Delegations {
			if b.lan(d.Interface) == nil {
				b.note(b.in.Dhcpcd.Name, 0, fmt.Sprintf("ia_pd ... %s/%d/%d", d.Interface, d.SLA, d.Length),
					"radvd does not advertise on "+d.Interface+"; v6edge numbers /64s onto [[lan]] interfaces only", "wan")
			}
		}
	}
	return nil
}

func isOn(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	return v == "on" || v == "1" || v == "yes" || v == "true"
}

func (b *builder) buildLAN(name string, ifc RadvdIface, used map[int]bool) error {
	sec := &Section{Header: "[lan]"}
	ra := &Section{Header: "lan.ra"}
	l := &lanOut{iface: ifc.Name, sec: sec, ra: ra}
	b.lans = append(b.lans, l)
	sect := "lan:" + ifc.Name
	at := func(s Stmt) string { return from(name, s.Line) }
	sec.set("interface", tomlString(ifc.Name), from(name, ifc.Line))

	// Prefixes: the first /64 decides subnet and advertise.
	subnet, advertise, subnetFrom := -1, "", ""
	autonomous := true
	internalSeen, externalSeen := false, false
	var prefixStmt Stmt
	for i, p := range ifc.Prefixes {
		pfx, err := netip.ParsePrefix(p.Words[1])
		if err != nil || !pfx.Addr().Is6() {
			return &ParseError{name, p.Line, "bad prefix " + p.Words[1]}
		}
		pfx = pfx.Masked()
		switch {
		case pfx.Bits() != 64:
			b.note(name, p.Line, p.text(), "v6edge advertises /64s only", sect)
			continue
		case b.internal.IsValid() && b.internal.Contains(pfx.Addr()):
			if internalSeen {
				b.note(name, p.Line, p.text(), "v6edge advertises one /64 of the internal prefix per LAN", sect)
				continue
			}
			internalSeen = true
			n := subnetIndex(b.internal, pfx)
			if subnet >= 0 && subnet != n {
				b.note(name, p.Line, p.text(), fmt.Sprintf("its subnet %d is not the %d of the other prefix; v6edge uses one subnet number for both", n, subnet), sect)
			} else {
				subnet, subnetFrom = n, at(p)
				l.prefix = pfx
			}
		default:
			if externalSeen {
				b.note(name, p.Line, p.text(), "v6edge advertises one /64 of the delegated prefix per LAN", sect)
				continue
			}
			externalSeen = true
			if pfx.Addr().IsUnspecified() {
				sec.Comments = append(sec.Comments, "radvd's prefix ::/64 advertised every /64 on "+ifc.Name+": the delegated /64.")
			} else {
				b.note(name, p.Line, p.text(), "a fixed prefix outside the internal one; v6edge advertises the /64 of whatever prefix is delegated", sect)
			}
			if b.dh != nil {
				for _, d := range b.dh.Delegations {
					if d.Interface == ifc.Name && subnet < 0 {
						subnet, subnetFrom = d.SLA, b.in.Dhcpcd.Name
					}
				}
			}
		}
		if i == 0 || prefixStmt.Line == 0 {
			prefixStmt = p
		}
		b.prefixOptions(name, sect, p, l, &autonomous)
	}
	switch {
	case internalSeen && externalSeen:
		advertise = "both"
	case internalSeen:
		advertise = "internal"
	case externalSeen:
		advertise = "external"
	}
	if subnet < 0 {
		for subnet = 0; used[subnet]; subnet++ {
		}
		if len(ifc.Prefixes) == 0 {
			sec.Comments = append(sec.Comments, "radvd advertised no prefix here; v6edge advertises one /64: subnet "+strconv.Itoa(subnet)+" is a guess.")
		} else {
			sec.Comments = append(sec.Comments, "subnet "+strconv.Itoa(subnet)+" is a guess: nothing said which /64 of the delegation radvd advertised.")
		}
		subnetFrom = ""
	}
	if used[subnet] {
		b.note(name, ifc.Line, "interface "+ifc.Name, fmt.Sprintf("subnet %d is another LAN's", subnet), sect)
	}
	used[subnet] = true
	sec.set("subnet", strconv.Itoa(subnet), subnetFrom)

	// Flags → mode.
	m := flag(ifc, "AdvManagedFlag")
	o := flag(ifc, "AdvOtherConfigFlag")
	mode := "slaac"
	switch {
	case !autonomous && m:
		mode = "stateful"
	case autonomous && o && !m:
		mode = "stateless"
	case !autonomous && !m:
		b.note(name, prefixStmt.Line, "AdvAutonomous off", "v6edge sets A=0 only in stateful mode (M=1)", sect)
	}
	sec.set("mode", tomlString(mode), from(name, ifc.Line))
	// The flags each mode sets (configs): stateful M only, stateless O.
	modeM, modeO := mode == "stateful", mode == "stateless"
	if m != modeM {
		sec.set("managed", strconv.FormatBool(m), optFrom(name, ifc, "AdvManagedFlag"))
	}
	if o != modeO {
		sec.set("other", strconv.FormatBool(o), optFrom(name, ifc, "AdvOtherConfigFlag"))
	}
	if m || o {
		sec.Comments = append(sec.Comments, "M/O set: v6edge now answers DHCPv6 on this LAN itself; stop the DHCPv6 server that ran beside radvd.")
	}
	if advertise != "" && !(advertise == "internal" && b.nat != nil) && !(advertise == "external" && b.nat == nil) {
		sec.set("advertise", tomlString(advertise), subnetFrom)
	}
	if advertise == "internal" && b.nat == nil {
		return fmt.Errorf("%s: %s advertises a ULA prefix but no NETMAP hook says how it maps", name, ifc.Name)
	}

	// DNS: what radvd sent, also when nothing.
	var dns, domains []string
	for _, r := range ifc.RDNSS {
		for _, w := range r.Words[1:] {
			if a, err := netip.ParseAddr(w); err == nil {
				dns = append(dns, a.String())
			} else {
				b.note(name, r.Line, w, "not an IPv6 address", sect)
			}
		}
		for _, opt := range r.Block {
			switch opt.key() {
			case "FlushRDNSS":
				if !isOn(opt.arg(1)) {
					b.note(name, opt.Line, opt.text(), "v6edge withdraws its DNS options on a clean stop", sect)
				}
			default:
				b.note(name, opt.Line, opt.text(), "v6edge chooses the RDNSS lifetime itself", sect)
			}
		}
	}
	for _, r := range ifc.DNSSL {
		domains = append(domains, r.Words[1:]...)
		for _, opt := range r.Block {
			if opt.key() == "FlushDNSSL" && isOn(opt.arg(1)) {
				continue
			}
			b.note(name, opt.Line, opt.text(), "v6edge chooses the DNSSL lifetime itself", sect)
		}
	}
	if len(ifc.RDNSS) > 0 {
		sec.set("dns", tomlStrings(dns), at(ifc.RDNSS[0]))
	} else {
		sec.setC("dns", "[]", "", "radvd sent no RDNSS. Delete this line to pass on the ISP's DNS servers (RFC 7084 L-12).")
	}
	if len(ifc.DNSSL) > 0 {
		sec.set("domains", tomlStrings(domains), at(ifc.DNSSL[0]))
	} else {
		sec.setC("domains", "[]", "", "radvd sent no DNSSL. Delete this line to pass on the ISP's search list.")
	}

	// Router options.
	for _, opt := range ifc.Options {
		v := opt.arg(1)
		k := opt.key()
		switch k {
		case "AdvSendAdvert", "AdvManagedFlag", "AdvOtherConfigFlag":
		case "MaxRtrAdvInterval", "MinRtrAdvInterval", "AdvDefaultLifetime":
			d, ok := seconds(v)
			if !ok {
				b.note(name, opt.Line, opt.text(), "not a number of seconds", sect)
				continue
			}
			key := map[string]string{"MaxRtrAdvInterval": "max_interval", "MinRtrAdvInterval": "min_interval", "AdvDefaultLifetime": "router_lifetime"}[k]
			ra.set(key, dur(d), at(opt))
		case "AdvDefaultPreference":
			ra.set("preference", tomlString(strings.ToLower(v)), at(opt))
		case "AdvCurHopLimit", "AdvReachableTime", "AdvRetransTimer", "AdvLinkMTU":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				b.note(name, opt.Line, opt.text(), "not a whole number", sect)
				continue
			}
			key := map[string]string{"AdvCurHopLimit": "hop_limit", "AdvReachableTime": "reachable_time", "AdvRetransTimer": "retrans_timer", "AdvLinkMTU": "mtu"}[k]
			ra.set(key, strconv.FormatUint(n, 10), at(opt))
		case "AdvSourceLLAddress":
			if !isOn(v) {
				b.note(name, opt.Line, opt.text(), "v6edge always sends the source link-layer address option", sect)
			}
		default:
			if off, known := radvdDefaultOff[k]; known && off && !isOn(v) {
				continue
			}
			b.note(name, opt.Line, opt.text(), "no v6edge equivalent", sect)
		}
	}
	var routes []string
	for _, rt := range ifc.Routes {
		p, err := netip.ParsePrefix(rt.Words[1])
		if err != nil {
			return &ParseError{name, rt.Line, "bad route " + rt.Words[1]}
		}
		routes = append(routes, p.Masked().String())
		for _, opt := range rt.Block {
			switch {
			case opt.key() == "AdvRoutePreference" && strings.EqualFold(opt.arg(1), "medium"):
			case opt.key() == "RemoveRoute" && isOn(opt.arg(1)) && b.ka == nil:
				// v6edge's final RA withdraws routes with lifetime 0.
			case opt.key() == "RemoveRoute" && b.ka != nil:
				b.note(name, opt.Line, opt.text(), "in a pair v6edge sends no final RA: the peer keeps the routes", sect)
			case opt.key() == "RemoveRoute":
				b.note(name, opt.Line, opt.text(), "v6edge always withdraws its routes in the final RA of a clean stop", sect)
			default:
				b.note(name, opt.Line, opt.text(), "v6edge advertises routes at medium preference and chooses their lifetime", sect)
			}
		}
	}
	if len(routes) > 0 {
		ra.set("routes", tomlStrings(routes), at(ifc.Routes[0]))
	}
	for _, o := range ifc.Other {
		switch o.key() {
		case "AdvRASrcAddress":
			if b.ka != nil {
				// Checked against ha.virtual_link_local in buildHA.
				continue
			}
			b.note(name, o.Line, o.text()+" { ... }", "standalone, v6edge sends from the LAN's link-local", sect)
		default:
			b.note(name, o.Line, o.text()+" { ... }", "no v6edge equivalent", sect)
		}
	}
	// PIO lifetimes: radvd's defaults unless the prefix said otherwise, so
	// that hosts see the same RA.
	if !ra.has("valid") && len(ifc.Prefixes) > 0 {
		ra.setC("valid", tomlString("86400s"), "", "radvd's default AdvValidLifetime; v6edge's default 5400s (RFC 9096) also works: delete to use it.")
	}
	if !ra.has("preferred") && len(ifc.Prefixes) > 0 {
		ra.setC("preferred", tomlString("14400s"), "", "radvd's default AdvPreferredLifetime; v6edge's default is 2700s (RFC 9096).")
	}
	return nil
}

func (b *builder) prefixOptions(name, sect string, p Stmt, l *lanOut, autonomous *bool) {
	for _, opt := range p.Block {
		v := opt.arg(1)
		at := from(name, opt.Line)
		switch opt.key() {
		case "AdvOnLink":
			if !isOn(v) {
				b.note(name, opt.Line, opt.text(), "v6edge always sets the on-link flag", sect)
			}
		case "AdvAutonomous":
			*autonomous = isOn(v)
		case "AdvRouterAddr":
			if isOn(v) {
				b.note(name, opt.Line, opt.text(), "v6edge does not set the R flag", sect)
			}
		case "AdvValidLifetime", "AdvPreferredLifetime":
			key := map[string]string{"AdvValidLifetime": "valid", "AdvPreferredLifetime": "preferred"}[opt.key()]
			if l.ra.has(key) {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n == 0 || n >= math.MaxUint32 {
				b.note(name, opt.Line, opt.text(), "v6edge's lifetimes are finite, whole seconds and never beyond the lease", sect)
				continue
			}
			l.ra.set(key, tomlString(fmt.Sprintf("%ds", n)), at)
		case "DeprecatePrefix":
			if isOn(v) && b.ka != nil {
				b.note(name, opt.Line, opt.text(), "in a pair v6edge sends no final RA: the peer keeps the prefix", sect)
			}
			// Standalone, v6edge's final RA deprecates every prefix.
		case "DecrementLifetimes":
			// v6edge never advertises beyond the lease.
		default:
			b.note(name, opt.Line, opt.text(), "no v6edge equivalent", sect)
		}
	}
}

func flag(ifc RadvdIface, key string) bool {
	v, _, ok := ifc.Option(key)
	return ok && isOn(v)
}

func optFrom(name string, ifc RadvdIface, key string) string {
	if _, s, ok := ifc.Option(key); ok {
		return from(name, s.Line)
	}
	return name
}

// dur writes d as TOML duration: whole seconds as "200s", else "50ms".
func dur(d time.Duration) string {
	if d%time.Second == 0 {
		return tomlString(fmt.Sprintf("%ds", d/time.Second))
	}
	return tomlString(fmt.Sprintf("%dms", d/time.Millisecond))
}

// seconds reads radvd's (possibly fractional) seconds.
func seconds(v string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1e6 || math.IsNaN(f) {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)).Round(time.Millisecond), true
}

// subnetIndex is the number of the /64 p inside internal.
func subnetIndex(internal, p netip.Prefix) int {
	a := p.Addr().As16()
	v := new(big.Int).SetBytes(a[:8])
	bits := 64 - internal.Bits()
	if bits <= 0 {
		return 0
	}
	mask := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(bits)), big.NewInt(1))
	v.And(v, mask)
	if !v.IsInt64() || v.Int64() > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(v.Int64())
}

func (b *builder) buildHA() {
	name := b.in.Keepalived.Name
	ka := b.ka
	for _, g := range ka.Global {
		switch g.key() {
		case "vrrp_version":
			if g.arg(1) != "3" {
				b.note(name, g.Line, g.text(), "v6edge speaks VRRPv3 (RFC 5798) only", "ha")
			}
		case "router_id", "script_user", "enable_script_security", "notification_email", "notification_email_from", "smtp_server", "smtp_connect_timeout", "max_auto_priority":
			// keepalived's own housekeeping: nothing to carry over.
		default:
			b.note(name, g.Line, g.text(), "a keepalived global setting with no v6edge equivalent", "ha")
		}
	}
	for _, o := range ka.Other {
		b.note(name, o.Line, o.text(), "v6edge runs no load balancer, sync group or static routes", "ha")
	}
	for _, sc := range ka.Scripts {
		b.note(name, sc.Line, sc.text()+" { ... }", "v6edge runs no tracking scripts", "ha")
	}
	// The instance: the one on a LAN, else the first.
	var inst Stmt
	found := false
	for _, in := range ka.Instances {
		if v, _, ok := option(in.Block, "interface"); ok && b.lan(v) != nil && !found {
			inst, found = in, true
		}
	}
	if !found && len(ka.Instances) > 0 {
		inst, found = ka.Instances[0], true
	}
	for _, in := range ka.Instances {
		if in.Line != inst.Line {
			b.note(name, in.Line, in.text()+" { ... }", "v6edge runs one VRRP instance, on the LAN", "ha")
		}
	}
	if !found {
		b.note(name, 1, "keepalived.conf", "no vrrp_instance", "")
		return
	}
	s := &Section{Header: "ha"}
	b.ha = s
	at := func(st Stmt) string { return from(name, st.Line) }
	if b.in.KeepKeepalived {
		s.setC("mode", tomlString("external"), at(inst), "keepalived stays and tells v6edge its role from notify scripts (printed by v6edge import).")
	} else {
		s.set("mode", tomlString("vrrp"), at(inst))
	}
	var vll string
	var notifyScripts []Stmt
	for _, o := range inst.Block {
		v := o.arg(1)
		switch o.key() {
		case "interface":
			if b.in.KeepKeepalived {
				continue
			}
			s.set("interface", tomlString(v), at(o))
			if b.lan(v) == nil {
				b.note(name, o.Line, o.text(), "not a LAN radvd advertised on; v6edge sends adverts on a [[lan]] interface", "ha")
			}
		case "virtual_router_id":
			if !b.in.KeepKeepalived {
				s.set("vrid", v, at(o))
			}
		case "priority":
			if b.in.KeepKeepalived {
				continue
			}
			if n, err := strconv.Atoi(v); err == nil && n == 255 {
				s.set("priority", "254", at(o))
				b.note(name, o.Line, o.text(), "255 is the address owner's; v6edge takes 1..254", "ha")
			} else {
				s.set("priority", v, at(o))
			}
		case "advert_int":
			if b.in.KeepKeepalived {
				continue
			}
			if d, ok := seconds(v); ok {
				s.set("advert_interval", dur(d), at(o))
			} else {
				b.note(name, o.Line, o.text(), "not a number of seconds", "ha")
			}
		case "nopreempt":
			if !b.in.KeepKeepalived {
				s.set("preempt", "false", at(o))
			}
		case "preempt_delay":
			if b.in.KeepKeepalived {
				continue
			}
			if d, ok := seconds(v); ok {
				s.set("preempt_delay", dur(d), at(o))
			}
		case "state":
			if b.in.KeepKeepalived {
				continue
			}
			s.Comments = append(s.Comments, fmt.Sprintf("keepalived's state %s (%s): v6edge starts as backup and the priorities elect the master.", v, at(o)))
		case "virtual_ipaddress", "virtual_ipaddress_excluded":
			for _, a := range o.Block {
				if ll := b.vip(name, a, s); ll != "" && vll == "" {
					vll = ll
					s.set("virtual_link_local", tomlString(ll), at(a))
				} else if ll != "" {
					b.note(name, a.Line, a.text(), "v6edge has one virtual link-local ("+vll+")", "ha")
				}
			}
		case "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify":
			notifyScripts = append(notifyScripts, o)
		case "use_vmac":
			b.note(name, o.Line, o.text(), "v6edge keeps each node's own LAN MAC and moves the virtual link-local (unsolicited NA); only the WAN MAC moves (ha.wan_mac)", "ha")
		case "track_interface", "track_script", "track_file", "track_process", "track_bfd":
			b.note(name, o.Line, o.text()+" { ... }", "v6edge lowers no priority on tracked objects", "ha")
		case "native_ipv6", "dont_track_primary", "vmac_xmit_base":
		default:
			b.note(name, o.Line, o.text(), "no v6edge equivalent", "ha")
		}
	}
	if vll == "" {
		b.note(name, inst.Line, inst.text(), "no link-local in virtual_ipaddress: set ha.virtual_link_local (required)", "ha")
	}
	// The LAN router addresses keepalived floated.
	for _, l := range b.lans {
		if a, ok := b.lanAddr[l.iface]; ok {
			l.sec.Keys = append(l.sec.Keys, KV{Key: "address", Value: tomlString(a), From: name, Comment: "keepalived's virtual address: floating, on the master only."})
		}
	}
	// radvd's AdvRASrcAddress in a pair: v6edge sends from the virtual
	// link-local, which is what listing it achieved.
	for _, ifc := range b.rv.Interfaces {
		for _, o := range ifc.Other {
			if o.key() != "AdvRASrcAddress" {
				continue
			}
			ok := false
			for _, a := range o.Block {
				if p, err := netip.ParseAddr(a.key()); err == nil && vll != "" && p == netip.MustParseAddr(vll) {
					ok = true
				}
			}
			if !ok {
				b.note(b.in.Radvd.Name, o.Line, "AdvRASrcAddress { ... }", "in a pair v6edge sends RAs from ha.virtual_link_local", "lan:"+ifc.Name)
			}
		}
	}
	b.notify(name, notifyScripts, s)
}

// vip reads one virtual_ipaddress entry: a link-local is returned, a LAN
// /64 address is kept as that LAN's address, anything else is a note.
func (b *builder) vip(name string, a Stmt, s *Section) string {
	w := a.key()
	var addr netip.Addr
	if p, err := netip.ParsePrefix(w); err == nil {
		addr = p.Addr()
	} else if x, err := netip.ParseAddr(w); err == nil {
		addr = x
	} else {
		b.note(name, a.Line, a.text(), "not an address", "ha")
		return ""
	}
	if !addr.Is6() || addr.Is4In6() {
		b.note(name, a.Line, a.text(), "v6edge floats no IPv4 addresses", "ha")
		return ""
	}
	if addr.IsLinkLocalUnicast() {
		return addr.String()
	}
	dev := ""
	for i := 1; i+1 < len(a.Words); i++ {
		if a.Words[i] == "dev" {
			dev = a.Words[i+1]
		}
	}
	for _, l := range b.lans {
		if (dev == "" || dev == l.iface) && l.prefix.IsValid() && l.prefix.Contains(addr) {
			if _, dup := b.lanAddr[l.iface]; dup {
				b.note(name, a.Line, a.text(), "v6edge has one router address per LAN", "lan:"+l.iface)
				return ""
			}
			b.lanAddr[l.iface] = netip.PrefixFrom(addr, 64).String()
			return ""
		}
	}
	b.note(name, a.Line, a.text(), "not in the /64 of a LAN", "ha")
	return ""
}

// notify reads the notify scripts: the MAC the master takes on the WAN
// becomes ha.wan_mac; with KeepKeepalived the lines to use instead are
// printed.
func (b *builder) notify(name string, scripts []Stmt, s *Section) {
	mac := ""
	seen := map[string][]string{} // script path → the notify keys that run it
	var order []string
	for _, n := range scripts {
		words := strings.Fields(n.arg(1))
		if len(words) == 0 {
			continue
		}
		path := words[0]
		if _, ok := seen[path]; !ok {
			order = append(order, path)
		}
		seen[path] = append(seen[path], fmt.Sprintf("%s (%s:%d)", n.key(), name, n.Line))
		if len(seen[path]) > 1 {
			continue
		}
		var text []byte
		var err error
		if b.in.ReadFile != nil {
			text, err = b.in.ReadFile(path)
		} else {
			err = errors.New("not read")
		}
		if err != nil {
			b.note(name, n.Line, n.text(), "could not read the script ("+err.Error()+"): v6edge does on master what such scripts do (WAN MAC, PD client, RAs); check it by hand", "ha")
			delete(seen, path)
			order = order[:len(order)-1]
			continue
		}
		if m := NotifyMAC(text); m != "" && mac == "" {
			mac = m
			s.set("wan_mac", tomlString(m), filepath.Base(path))
		}
	}
	for _, path := range order {
		s.Comments = append(s.Comments, fmt.Sprintf("%s, run by %s: v6edge does on a role change what it did (the WAN MAC, the PD client, the NETMAP pair and the RAs move with the master).", path, strings.Join(seen[path], ", ")))
	}
	if b.in.KeepKeepalived {
		v := b.in.V6edge
		if v == "" {
			v = "/usr/sbin/v6edge"
		}
		for _, role := range []string{"master", "backup", "fault"} {
			b.r.NotifyLines = append(b.r.NotifyLines, fmt.Sprintf("notify_%s \"%s ha %s\"", role, v, role))
		}
		s.Comments = append(s.Comments, "Replace keepalived's notify scripts with: "+strings.Join(b.r.NotifyLines, "; ")+". v6edge adds virtual_link_local on master itself.")
	}
}

func (b *builder) lan(iface string) *lanOut {
	for _, l := range b.lans {
		if l.iface == iface {
			return l
		}
	}
	return nil
}
