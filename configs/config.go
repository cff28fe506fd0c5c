package configs

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is a validated v6edge configuration. Every default is filled in,
// so consumers never test for "unset".
type Config struct {
	// WANs are the uplinks, from a single [wan] table or from [[wan]]
	// blocks; there is at least one. See WAN for the preferred one.
	WANs    []WAN
	NAT     NAT
	LANs    []LAN
	HA      *HA // nil when [ha] is absent: a standalone router
	DAD     DAD
	Control Control
}

// WAN returns the preferred uplink: the one with the lowest Priority.
func (c *Config) WAN() WAN {
	if len(c.WANs) == 0 {
		return WAN{}
	}
	best := c.WANs[0]
	for _, w := range c.WANs[1:] {
		if w.Priority < best.Priority {
			best = w
		}
	}
	return best
}

// DUIDKind says how an uplink's DHCPv6 client identifier is formed.
type DUIDKind string

// The DUID kinds of RFC 8415 §11.
const (
	DUIDLL  DUIDKind = "ll"  // DUID-LL (type 3) from a MAC: stable, the default
	DUIDLLT DUIDKind = "llt" // DUID-LLT (type 1): MAC plus a time the client persists
	DUIDEN  DUIDKind = "en"  // DUID-EN (type 2), fully given in DUIDRaw
	DUIDRaw DUIDKind = "raw" // any DUID, given byte for byte in DUIDRaw
)

// WAN is one uplink with its own DHCPv6-PD client.
type WAN struct {
	Interface string
	DUIDKind  DUIDKind
	// DUIDMAC is the MAC a DUID-LL/LLT is built from. nil means: the MAC of
	// Interface at run time, or ha.wan_mac when [ha] sets one (an HA pair
	// must present one DUID so that either node can renew the lease).
	DUIDMAC net.HardwareAddr
	// DUIDRaw holds the whole DUID, type code first, for kinds "en" and "raw".
	DUIDRaw []byte
	// IAID identifies the IA_PD; default 1 for the first uplink, n+1 for the
	// n-th (counting from 0). Unique among uplinks.
	IAID uint32
	// PrefixLength is the prefix length hint sent in IA_PD (default 56).
	PrefixLength int
	RapidCommit  bool
	// RequestAddress is whether the client asks for a WAN address (IA_NA)
	// beside the prefix (default AddressTry).
	RequestAddress AddressMode
	ReleaseOnStop  bool // never true with [ha]: the peer keeps using the lease
	// Priority orders uplinks, lowest preferred; default 10 × position in
	// the file. Unique among uplinks.
	Priority int
	Check    netip.Addr // probed over this uplink when valid
	Hook     string     // dhcpcd-compatible hook script run on lease changes
}

// AddressMode is [wan] request_address: whether the DHCPv6 client asks
// for an IA_NA beside its IA_PD (RFC 7084 WAA-4, WAA-6, WPD-6), as in
// odhcp6c's modes. The values are those of dhcp6pd.AddressMode.
type AddressMode string

// The request_address values.
const (
	AddressTry     AddressMode = "try"     // ask; bind the prefix with or without an address (default)
	AddressRequire AddressMode = "require" // no lease without an address
	AddressNever   AddressMode = "never"   // IA_PD alone
)

// NAT is the 1:1 prefix mapping (nftables NETMAP) between the internal ULA
// prefix and each uplink's delegated prefix.
type NAT struct {
	// InternalPrefix is the ULA prefix LAN hosts use. The zero value means
	// NAT is off (only possible when every LAN advertises "external").
	InternalPrefix netip.Prefix
	Hairpin        bool // default true
	RemoveOnStop   bool
	// SubPrefix picks which block of InternalPrefix's length, inside a
	// delegated prefix shorter than it, the internal prefix is mapped onto.
	SubPrefix int
}

// Enabled reports whether NAT is configured.
func (n NAT) Enabled() bool { return n.InternalPrefix.IsValid() }

// Mode selects how LAN hosts get addresses (the M, O and A flags of RFC 4861
// §4.2 and §4.6.2).
type Mode string

// The LAN address modes.
const (
	ModeSLAAC     Mode = "slaac"     // A=1 M=0 O=0
	ModeStateless Mode = "stateless" // A=1 M=0 O=1: SLAAC plus DHCPv6 for DNS
	ModeStateful  Mode = "stateful"  // A=0 M=1 O=1: addresses from DHCPv6
)

// Advertise selects which /64 the RA on a LAN carries.
type Advertise string

// The prefixes a LAN can advertise.
const (
	AdvertiseInternal Advertise = "internal" // the ULA /64 behind NAT
	AdvertiseExternal Advertise = "external" // the delegated (global) /64
	AdvertiseBoth     Advertise = "both"
)

// LAN is one downstream link served with RAs.
type LAN struct {
	Interface string
	// Subnet is the index of this LAN's /64 inside the internal prefix and
	// inside each delegated prefix.
	Subnet     int
	Mode       Mode
	Managed    bool // RA M flag
	Other      bool // RA O flag
	Autonomous bool // PIO A flag
	Advertise  Advertise
	// Address is the router's address on the LAN; the zero value means ::1
	// of the advertised /64, resolved at run time.
	Address netip.Prefix
	// DNS and Domains are the RDNSS and DNSSL (RFC 8106) and the LAN
	// DHCPv6 options 23/24. nil (the key left out): the preferred uplink's
	// DHCPv6 options; empty (dns = []): none.
	DNS     []netip.Addr
	Domains []string // without trailing dots
	PD      *LANPD   // downstream prefix delegation; nil = none
	RA      RA
}

// LANPD configures delegating sub-prefixes to routers on a LAN.
type LANPD struct {
	Length int // prefix length handed out
	Count  int // how many such prefixes may be delegated at once (default 1)
}

// RA holds the Router Advertisement parameters of RFC 4861 §6.2.1 for one
// LAN, with the lifetime limits of RFC 9096.
type RA struct {
	MinInterval    time.Duration
	MaxInterval    time.Duration
	RouterLifetime time.Duration // 0: not a default router
	Preference     string        // "low", "medium" or "high" (RFC 4191 §2.2)
	HopLimit       int           // 0: unspecified
	ReachableTime  time.Duration // 0: unspecified
	RetransTimer   time.Duration // 0: unspecified
	MTU            int           // 0: no MTU option
	Preferred      time.Duration // PIO preferred lifetime ceiling
	Valid          time.Duration // PIO valid lifetime ceiling
	// FinalRA sends RAs with router lifetime 0 on a clean stop (RFC 4861
	// §6.2.5). Always false with [ha]: a node that stops hands over to its
	// peer, and hosts must keep using the (virtual) router.
	FinalRA bool
	Routes  []netip.Prefix // Route Information Options (RFC 4191)
}

// HA configures a two-node pair sharing one virtual router.
type HA struct {
	Mode             string // "vrrp" or "external"
	VRID             uint8
	Priority         uint8
	Interface        string // the LAN where VRRPv3 adverts go
	AdvertInterval   time.Duration
	Preempt          bool
	PreemptDelay     time.Duration
	VirtualLinkLocal netip.Addr
	WANMAC           net.HardwareAddr // WAN MAC while master; nil = leave it
	SyncKey          string           // shared secret for lease sync; "" = unauthenticated
}

// HA modes.
const (
	HAModeVRRP     = "vrrp"
	HAModeExternal = "external"
)

// DAD configures duplicate address detection hygiene.
type DAD struct {
	// HealLinkLocal replaces a link-local that failed DAD (a cloned VM)
	// with a fresh stable one.
	HealLinkLocal bool
	// RetryMin and RetryMax bound the backoff between attempts to add an
	// address again after it failed DAD.
	RetryMin, RetryMax time.Duration
}

// Control configures the control socket, state and metrics.
type Control struct {
	Socket      string
	StateDir    string
	Metrics     string // host:port for Prometheus metrics; "" = off
	SocketGroup string // group allowed to use the socket; "" = root only
}

// Error is one problem in a config file, located by key and line.
type Error struct {
	File string
	Line int    // 1-based; 0 when the problem has no place in the file (a missing table)
	Key  string // "lan[0].subnet"; "" for a syntax error with no key
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one config, in file order. Parse returns
// it, so a caller can list each problem on its own line.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Load reads and parses the config file at path. Errors name path as given.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a config. name is used in error messages. On
// failure the error is an Errors holding every problem found.
func Parse(name string, data []byte) (*Config, error) {
	r := &reporter{file: name}
	var doc map[string]any
	if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return nil, Errors{syntaxError(name, data, err)}
	}
	r.lines = indexLines(data)
	raw := r.readRaw(doc)
	cfg := r.validate(raw)
	if len(r.errs) > 0 {
		return nil, r.sorted()
	}
	return cfg, nil
}

// quotedKey finds the key BurntSushi/toml names in messages such as
// "Key 'wan' was already created and cannot be used as an array.".
var quotedKey = regexp.MustCompile(`[Kk]ey '([^']*)'`)

// syntaxError turns a TOML parse error into an Error with the same line,
// naming the key the way other errors do ("lan[1].subnet", not "lan.subnet").
func syntaxError(name string, data []byte, err error) *Error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return &Error{File: name, Msg: err.Error()}
	}
	e := &Error{File: name, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
	if m := quotedKey.FindStringSubmatch(pe.Message); m != nil {
		e.Key = m[1]
	}
	// [wan] and [[wan]] together is the one syntax error an operator is
	// likely to make on purpose (adding a second uplink): say what to do.
	for _, k := range []string{"wan", "lan"} {
		if e.Key == k && bothForms(data, k) {
			e.Msg = fmt.Sprintf("[%s] and [[%s]] cannot both be used; write every one as [[%s]]", k, k, k)
			return e
		}
	}
	e.Key = indexLines(data).locate(e.Key, e.Line)
	return e
}

// bothForms reports whether src has both a [key] and a [[key]] header.
func bothForms(src []byte, key string) bool {
	q := regexp.QuoteMeta(key)
	table := regexp.MustCompile(`(?m)^[ \t]*\[[ \t]*` + q + `[ \t]*\]`)
	array := regexp.MustCompile(`(?m)^[ \t]*\[\[[ \t]*` + q + `[ \t]*\]\]`)
	return table.Match(src) && array.Match(src)
}

// reporter collects errors, locating each by its key.
type reporter struct {
	file  string
	lines lineIndex
	errs  []*Error
	// wanPaths[i] is the key path of the i-th uplink ("wan" or "wan[i]"),
	// for messages that relate a LAN or NAT key to an uplink's key.
	wanPaths []string
}

func (r *reporter) errorf(key, format string, args ...any) {
	r.errs = append(r.errs, &Error{File: r.file, Line: r.lines.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// missing reports a required key that is absent, unless the key is present
// with an error already reported (a wrong type reads as absent).
func (r *reporter) missing(key, format string, args ...any) {
	for _, e := range r.errs {
		if e.Key == key {
			return
		}
	}
	r.errorf(key, format, args...)
}

func (r *reporter) wrongType(key, want string, got any) {
	r.errorf(key, "must be %s (got %s)", want, describe(got))
}

// sorted returns the errors in file order; problems without a line (a
// missing table) come first.
func (r *reporter) sorted() Errors {
	es := Errors(r.errs)
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
	return es
}
