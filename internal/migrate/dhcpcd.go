package migrate

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Dhcpcd is what a dhcpcd.conf (dhcpcd 9) says about the DHCPv6-PD client.
type Dhcpcd struct {
	// Interface is the WAN: the interface block holding ia_pd, else the
	// single name of allowinterfaces.
	Interface    string
	IAID         uint32
	HasIAID      bool
	PrefixLength int // the hint of ia_pd IAID/::/LEN; 0 when none
	// Delegations are ia_pd's interface/sla_id/len parts (the seed's
	// nosuch0/0/58 names an interface that does not exist).
	Delegations []Delegation
	IANA        bool   // ia_na: ask for an address too
	DUID        string // v6edge's wan.duid, "" when dhcpcd.conf said nothing
	RapidCommit bool
	Persistent  bool
	Release     bool
	NoIPv6RS    bool
	IPv6Only    bool
	Script      string
	ScriptLine  int
	// Imported lists what was taken over, for comments: "key (line): what".
	Imported []string
	Notes    []Note

	ianaIAID string // ia_na's own IAID, checked against ia_pd's
	ianaLine dhcpcdLine
}

// Delegation is one interface part of an ia_pd line.
type Delegation struct {
	Interface string
	SLA       int
	Length    int
}

type dhcpcdLine struct {
	n      int
	text   string
	fields []string
	iface  string // the interface block, "" for global
}

// ParseDhcpcd parses a dhcpcd.conf. Options it does not know become Notes;
// only a malformed ia_pd or duid is an error.
func ParseDhcpcd(name string, data []byte) (*Dhcpcd, error) {
	if err := checkSize(name, data); err != nil {
		return nil, err
	}
	d := &Dhcpcd{}
	var lines []dhcpcdLine
	iface, blockKind := "", ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxInput+1)
	n := 0
	for sc.Scan() {
		n++
		text := strings.TrimSpace(stripComment(sc.Text()))
		text = strings.TrimSpace(strings.TrimSuffix(text, ";"))
		if text == "" {
			continue
		}
		f := strings.Fields(text)
		switch f[0] {
		case "interface":
			if len(f) != 2 {
				return nil, &ParseError{name, n, "interface takes one name"}
			}
			iface, blockKind = f[1], "interface"
			continue
		case "ssid", "profile":
			iface, blockKind = "", f[0]
			d.Notes = append(d.Notes, Note{name, n, text, "v6edge has no wireless SSIDs or profiles; the block's options are left out too", "wan"})
			continue
		}
		if blockKind == "ssid" || blockKind == "profile" {
			d.Notes = append(d.Notes, Note{name, n, text, "inside a " + blockKind + " block", "wan"})
			continue
		}
		lines = append(lines, dhcpcdLine{n, text, f, iface})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}

	// The WAN: the first interface block with ia_pd, else allowinterfaces.
	for _, l := range lines {
		if l.iface != "" && l.fields[0] == "ia_pd" {
			d.Interface = l.iface
			break
		}
	}
	if d.Interface == "" {
		for _, l := range lines {
			if l.fields[0] == "allowinterfaces" && len(l.fields) == 2 && !strings.ContainsAny(l.fields[1], ",*?") {
				d.Interface = l.fields[1]
			}
		}
	}
	if d.Interface == "" {
		for _, l := range lines {
			if l.iface != "" {
				d.Interface = l.iface
				break
			}
		}
	}

	for _, l := range lines {
		if l.iface != "" && l.iface != d.Interface {
			d.Notes = append(d.Notes, Note{name, l.n, l.text, fmt.Sprintf("for interface %s, not the WAN %s", l.iface, d.Interface), "wan"})
			continue
		}
		if err := d.line(name, l); err != nil {
			return nil, err
		}
	}
	if d.ianaIAID != "" {
		if v, err := parseIAID(d.ianaIAID); err != nil || !d.HasIAID || v != d.IAID {
			d.note(name, d.ianaLine, "v6edge's IA_NA has the IAID of the IA_PD; the IAID "+d.ianaIAID+" is not kept")
		}
	}
	return d, nil
}

func stripComment(s string) string {
	inQ := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQ = !inQ
		case '#':
			if !inQ {
				return s[:i]
			}
		}
	}
	return s
}

func (d *Dhcpcd) note(name string, l dhcpcdLine, why string) {
	d.Notes = append(d.Notes, Note{name, l.n, l.text, why, "wan"})
}

func (d *Dhcpcd) took(l dhcpcdLine, what string) {
	d.Imported = append(d.Imported, fmt.Sprintf("%s (line %d): %s", oneLine(l.text), l.n, what))
}

// v4Only are dhcpcd options that concern DHCPv4, IPv4 or the host's own
// configuration, none of which v6edge does.
var v4Only = map[string]string{
	"hostname":           "v6edge sends no host name (DHCPv4/DDNS)",
	"fqdn":               "v6edge sends no FQDN option",
	"require":            "a DHCPv4 requirement; v6edge speaks DHCPv6 only",
	"clientid":           "the DHCPv4 client identifier; DHCPv6 identifies the client by its DUID (wan.duid)",
	"vendorclassid":      "v6edge sends no vendor class",
	"slaac":              "v6edge does not autoconfigure the WAN from RAs (it takes the default route from them, and the address from IA_NA with wan.request_address)",
	"noauthrequired":     "v6edge does not use DHCPv6 authentication (RFC 8415 §20), so there is nothing to require",
	"controlgroup":       "the control socket's group is control.socket_group",
	"ipv4only":           "v6edge is IPv6 only",
	"noarp":              "DHCPv4 ARP probing; v6edge speaks DHCPv6 only",
	"static":             "v6edge sets no static addresses on the WAN",
	"inform":             "DHCPv4 INFORM",
	"waitip":             "v6edge does not block boot waiting for an address",
	"background":         "v6edge runs in the foreground under systemd",
	"timeout":            "v6edge retries forever (RFC 8415 timing)",
	"reboot":             "v6edge's Confirm/Rebind timing is RFC 8415's",
	"leasetime":          "DHCPv4 lease time",
	"metric":             "v6edge takes the default route metric from the RA",
	"denyinterfaces":     "v6edge acts only on the interfaces of its config",
	"ipv6ra_autoconf":    "RA autoconfiguration on the WAN",
	"ipv6ra_own":         "v6edge does not configure the WAN from RAs",
	"ipv6ra_own_default": "v6edge does not configure the WAN from RAs",
	"ia_ta":              "v6edge asks for no temporary addresses",
}

func (d *Dhcpcd) line(name string, l dhcpcdLine) error {
	f := l.fields
	switch f[0] {
	case "ia_pd":
		return d.iaPD(name, l)
	case "ia_na":
		d.IANA = true
		d.took(l, `wan.request_address = "try"`)
		if len(f) > 1 {
			d.ianaIAID, d.ianaLine = f[1], l
		}
	case "duid":
		switch {
		case len(f) == 1:
			// dhcpcd 9: DUID-UUID if the system has one, else DUID-LLT
			// when there is storage.
			d.DUID = "llt"
			d.took(l, `wan.duid = "llt" (dhcpcd's default with storage; if dhcpcd used a DUID-UUID, copy /var/lib/dhcpcd/duid as raw hex into wan.duid to keep the ISP's binding)`)
		case f[1] == "ll":
			d.DUID = "ll"
			d.took(l, `wan.duid = "ll"`)
		case f[1] == "lt" || f[1] == "llt":
			d.DUID = "llt"
			d.took(l, `wan.duid = "llt"`)
		case f[1] == "uuid":
			d.note(name, l, "v6edge has no DUID-UUID; copy /var/lib/dhcpcd/duid as raw hex into wan.duid to keep the ISP's binding")
		default:
			hex := strings.Trim(f[1], `"`)
			if !isHexColons(hex) {
				return &ParseError{name, l.n, "duid takes ll, lt, uuid or a hex value"}
			}
			d.DUID = strings.ToLower(hex)
			d.took(l, "wan.duid (raw)")
		}
	case "option":
		for _, o := range optionList(f[1:]) {
			switch o {
			case "rapid_commit":
				d.RapidCommit = true
				d.took(l, "wan.rapid_commit = true")
			case "dhcp6_name_servers", "dhcp6_domain_search":
				d.took(l, o+": v6edge always asks for DNS servers and search list (options 23, 24)")
			default:
				d.Notes = append(d.Notes, Note{name, l.n, "option " + o, "v6edge asks the server only for DNS servers and search list (options 23, 24)", "wan"})
			}
		}
	case "nooption":
		for _, o := range optionList(f[1:]) {
			if o == "dhcp6_name_servers" || o == "dhcp6_domain_search" {
				d.Notes = append(d.Notes, Note{name, l.n, "nooption " + o, "v6edge always asks for DNS; set lan.dns / lan.domains to advertise your own", "wan"})
			}
		}
		d.took(l, "v6edge does not ask for these")
	case "persistent":
		d.Persistent = true
		d.took(l, "v6edge keeps the NAT and the addresses on stop (nat.remove_on_stop = false)")
	case "release":
		d.Release = true
		d.took(l, "wan.release_on_stop = true")
	case "noipv6rs":
		d.NoIPv6RS = true
		d.took(l, "v6edge takes the WAN default route from the upstream's RAs itself (accept_ra = 2)")
	case "ipv6only":
		d.IPv6Only = true
		d.took(l, "v6edge is IPv6 only")
	case "script":
		if len(f) < 2 {
			return &ParseError{name, l.n, "script takes a path"}
		}
		d.Script, d.ScriptLine = strings.Trim(f[1], `"`), l.n
	case "nohook":
		d.took(l, "v6edge runs none of dhcpcd's hooks (resolv.conf, ntp, hostname, ...)")
	case "nogateway":
		d.took(l, "v6edge installs no route from DHCP; the WAN default route comes from RAs")
	case "allowinterfaces":
		if len(f) == 2 && f[1] == d.Interface {
			d.took(l, "v6edge acts on wan.interface only")
		} else {
			d.note(name, l, "v6edge acts on wan.interface only")
		}
	case "ipv6", "dhcp6", "ipv6rs", "noipv4", "noipv4ll", "nodhcp", "nodhcp6":
		d.took(l, "implied")
	default:
		why, ok := v4Only[f[0]]
		if !ok {
			why = "no v6edge equivalent"
		}
		d.note(name, l, why)
	}
	return nil
}

func optionList(f []string) []string {
	var out []string
	for _, s := range strings.Split(strings.Join(f, " "), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func isHexColons(s string) bool {
	if s == "" || len(s) > 400 {
		return false
	}
	for _, p := range strings.Split(s, ":") {
		if len(p) != 2 {
			return false
		}
		if _, err := strconv.ParseUint(p, 16, 8); err != nil {
			return false
		}
	}
	return true
}

// iaPD parses "ia_pd [iaid[/prefix/prefix_len]] [interface[/sla_id[/prefix_len[/suffix]]]] ...".
func (d *Dhcpcd) iaPD(name string, l dhcpcdLine) error {
	f := l.fields
	if d.HasIAID {
		d.note(name, l, "a second IA_PD; v6edge asks for one per uplink")
		return nil
	}
	d.HasIAID, d.IAID = true, 1
	if len(f) > 1 {
		parts := strings.Split(f[1], "/")
		iaid, err := parseIAID(parts[0])
		if err != nil {
			return &ParseError{name, l.n, "ia_pd: " + err.Error()}
		}
		d.IAID = iaid
		if len(parts) == 3 {
			if _, err := netip.ParseAddr(parts[1]); err != nil {
				return &ParseError{name, l.n, "ia_pd: bad prefix " + parts[1]}
			}
			n, err := strconv.Atoi(parts[2])
			if err != nil || n < 1 || n > 128 {
				return &ParseError{name, l.n, "ia_pd: bad prefix length " + parts[2]}
			}
			d.PrefixLength = n
			if parts[1] != "::" {
				d.note(name, l, "v6edge hints only the length, not the prefix "+parts[1])
			}
		} else if len(parts) != 1 {
			return &ParseError{name, l.n, "ia_pd: IAID/prefix/length expected in " + f[1]}
		}
	}
	for _, s := range f[min(2, len(f)):] {
		parts := strings.Split(s, "/")
		del := Delegation{Interface: parts[0], Length: 64}
		if len(parts) > 1 {
			n, err := strconv.Atoi(parts[1])
			if err != nil || n < 0 {
				return &ParseError{name, l.n, "ia_pd: bad sla_id in " + s}
			}
			del.SLA = n
		}
		if len(parts) > 2 {
			n, err := strconv.Atoi(parts[2])
			if err != nil || n < 1 || n > 128 {
				return &ParseError{name, l.n, "ia_pd: bad prefix length in " + s}
			}
			del.Length = n
		}
		d.Delegations = append(d.Delegations, del)
	}
	return nil
}

// parseIAID reads dhcpcd's IAID: a number or four hex octets a:b:c:d.
func parseIAID(s string) (uint32, error) {
	if strings.Contains(s, ":") {
		if !isHexColons(s) || len(s) != 11 {
			return 0, fmt.Errorf("IAID %q is neither a number nor four hex octets", s)
		}
		v, _ := strconv.ParseUint(strings.ReplaceAll(s, ":", ""), 16, 32)
		return uint32(v), nil
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("IAID %q is neither a number nor four hex octets", s)
	}
	return uint32(v), nil
}
