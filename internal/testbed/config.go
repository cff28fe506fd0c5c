package testbed

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Config is a v6edge config for a lab, typed so that tests do not assemble
// TOML by hand; TOML renders it. Only the keys the system tests set are
// here. A zero field is left out, so the daemon's default applies (the
// config file format is SPEC.md's; [control] is RunDaemon's, which puts the
// lab's paths there).
type Config struct {
	WANs []WAN // one renders as [wan], several as [[wan]] tables
	NAT  NAT
	LANs []LAN
	HA   *HA
	DAD  *DAD
}

// WAN is a [wan] table.
type WAN struct {
	Interface     string
	DUID          string // "ll", "llt", ...
	IAID          int
	PrefixLength  int
	RapidCommit   bool
	ReleaseOnStop *bool // rendered when set, also as false
	Priority      int
	Check         netip.Addr
	Hook          string
}

// NAT is the [nat] table.
type NAT struct {
	InternalPrefix netip.Prefix
	Hairpin        bool // rendered only when true (the daemon's default is true too)
}

// LAN is a [[lan]] table.
type LAN struct {
	Interface string
	Subnet    int
	Mode      string // "slaac", "stateless", "stateful"
	Advertise string // "internal", "external", "both"
	Address   netip.Prefix
	DNS       []netip.Addr
	Domains   []string
	PDLength  int // pd = { length = PDLength }
}

// HA is the [ha] table.
type HA struct {
	Mode             string // "vrrp" or "external"
	VRID             int
	Priority         int
	Interface        string
	AdvertInterval   time.Duration
	VirtualLinkLocal netip.Addr
	WANMAC           string
	SyncKey          string
}

// DAD is the [dad] table.
type DAD struct {
	HealLinkLocal *bool // rendered when set, also as false
	RetryMin      time.Duration
	RetryMax      time.Duration
}

// Bool returns a pointer to v, for the optional booleans above.
func Bool(v bool) *bool { return &v }

// TOML renders c as a v6edge config file.
func (c Config) TOML() string {
	var w tomlWriter
	wanHeader := "[wan]"
	if len(c.WANs) > 1 {
		wanHeader = "[[wan]]"
	}
	for _, wan := range c.WANs {
		w.table(wanHeader)
		w.str("interface", wan.Interface)
		w.str("duid", wan.DUID)
		w.int("iaid", wan.IAID)
		w.int("prefix_length", wan.PrefixLength)
		if wan.RapidCommit {
			w.line("rapid_commit = true")
		}
		w.boolPtr("release_on_stop", wan.ReleaseOnStop)
		w.int("priority", wan.Priority)
		w.addr("check", wan.Check)
		w.str("hook", wan.Hook)
	}
	// A zero NAT is routed mode: no [nat] table at all.
	if c.NAT != (NAT{}) {
		w.table("[nat]")
		if c.NAT.InternalPrefix.IsValid() {
			w.str("internal_prefix", c.NAT.InternalPrefix.String())
		}
		if c.NAT.Hairpin {
			w.line("hairpin = true")
		}
	}
	for _, lan := range c.LANs {
		w.table("[[lan]]")
		w.str("interface", lan.Interface)
		w.line(fmt.Sprintf("subnet = %d", lan.Subnet)) // 0 is a subnet, not "unset"
		w.str("mode", lan.Mode)
		w.str("advertise", lan.Advertise)
		if lan.Address.IsValid() {
			w.str("address", lan.Address.String())
		}
		if lan.DNS != nil {
			dns := make([]string, len(lan.DNS))
			for i, a := range lan.DNS {
				dns[i] = a.String()
			}
			w.strs("dns", dns)
		}
		if lan.Domains != nil {
			w.strs("domains", lan.Domains)
		}
		if lan.PDLength > 0 {
			w.line(fmt.Sprintf("pd = { length = %d }", lan.PDLength))
		}
	}
	if ha := c.HA; ha != nil {
		w.table("[ha]")
		w.str("mode", ha.Mode)
		w.int("vrid", ha.VRID)
		w.int("priority", ha.Priority)
		w.str("interface", ha.Interface)
		w.duration("advert_interval", ha.AdvertInterval)
		w.addr("virtual_link_local", ha.VirtualLinkLocal)
		w.str("wan_mac", ha.WANMAC)
		w.str("sync_key", ha.SyncKey)
	}
	if dad := c.DAD; dad != nil {
		w.table("[dad]")
		w.boolPtr("heal_link_local", dad.HealLinkLocal)
		w.duration("retry_min", dad.RetryMin)
		w.duration("retry_max", dad.RetryMax)
	}
	return w.String()
}

// tomlWriter writes TOML tables of key = value lines, one blank line
// between tables.
type tomlWriter struct{ strings.Builder }

func (w *tomlWriter) line(s string) { w.WriteString(s + "\n") }

func (w *tomlWriter) table(header string) {
	if w.Len() > 0 {
		w.line("")
	}
	w.line(header)
}

// quote is s as a TOML basic string. For printable ASCII, Go's quoting
// (which escapes only " and \ there) is TOML's; beyond it the two differ
// (\x escapes), so anything else is refused.
func quote(s string) string {
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			panic(fmt.Sprintf("testbed: config string %q: only printable ASCII", s))
		}
	}
	return strconv.Quote(s)
}

func (w *tomlWriter) str(key, v string) {
	if v != "" {
		w.line(key + " = " + quote(v))
	}
}

func (w *tomlWriter) strs(key string, vs []string) {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = quote(v)
	}
	w.line(key + " = [" + strings.Join(q, ", ") + "]")
}

func (w *tomlWriter) int(key string, v int) {
	if v != 0 {
		w.line(fmt.Sprintf("%s = %d", key, v))
	}
}

func (w *tomlWriter) boolPtr(key string, v *bool) {
	if v != nil {
		w.line(fmt.Sprintf("%s = %v", key, *v))
	}
}

func (w *tomlWriter) addr(key string, a netip.Addr) {
	if a.IsValid() {
		w.str(key, a.String())
	}
}

func (w *tomlWriter) duration(key string, d time.Duration) {
	if d != 0 {
		w.str(key, d.String())
	}
}
