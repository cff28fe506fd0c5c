package configs

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// The raw layer mirrors the TOML file one to one. Every scalar is a pointer
// so that "not written" (nil) differs from "written as the zero value";
// validate.go turns it into the typed Config, applying defaults and ranges.
// Each table remembers its path ("wan", "wan[1]", "lan[0].ra") so that every
// error can name the exact key.

type rawConfig struct {
	WANs    []rawWAN
	NAT     *rawNAT // nil when [nat] is absent
	LANs    []rawLAN
	HA      *rawHA // nil when [ha] is absent
	DAD     rawDAD
	Control rawControl
}

type rawWAN struct {
	path          string
	Interface     *string
	DUID          *string
	DUIDMAC       *string
	IAID          *int64
	PrefixLength  *int64
	RapidCommit   *bool
	RequestAddr   *string
	ReleaseOnStop *bool
	Priority      *int64
	Check         *string
	Hook          *string
}

type rawNAT struct {
	path           string
	InternalPrefix *string
	Hairpin        *bool
	RemoveOnStop   *bool
	SubPrefix      *int64
}

type rawLAN struct {
	path      string
	Interface *string
	Subnet    *int64
	Mode      *string
	Managed   *bool
	Other     *bool
	Advertise *string
	Address   *string
	DNS       []string // nil when absent
	Domains   []string
	PD        *rawLANPD
	RA        rawRA
}

type rawLANPD struct {
	path   string
	Length *int64
	Count  *int64
}

type rawRA struct {
	path           string
	MinInterval    *time.Duration
	MaxInterval    *time.Duration
	RouterLifetime *time.Duration
	Preference     *string
	HopLimit       *int64
	ReachableTime  *time.Duration
	RetransTimer   *time.Duration
	MTU            *int64
	Preferred      *time.Duration
	Valid          *time.Duration
	FinalRA        *bool
	Routes         []string
}

type rawHA struct {
	path             string
	Mode             *string
	VRID             *int64
	Priority         *int64
	Interface        *string
	AdvertInterval   *time.Duration
	Preempt          *bool
	PreemptDelay     *time.Duration
	VirtualLinkLocal *string
	WANMAC           *string
	SyncKey          *string
}

type rawDAD struct {
	path          string
	HealLinkLocal *bool
	RetryMin      *time.Duration
	RetryMax      *time.Duration
}

type rawControl struct {
	path        string
	Socket      *string
	StateDir    *string
	Metrics     *string
	SocketGroup *string
}

// readRaw walks the generic tree BurntSushi/toml decoded. Walking it by hand,
// rather than letting the library fill structs, is what lets every wrong type
// and every unknown key be reported, each with its own key and line, instead
// of stopping at the first mismatch.
func (r *reporter) readRaw(doc map[string]any) *rawConfig {
	var c rawConfig
	root := &table{r: r, m: doc}

	for _, t := range root.tables("wan") {
		c.WANs = append(c.WANs, readWAN(t))
	}
	if t := root.sub("nat"); t != nil {
		c.NAT = readNAT(t)
	}
	for _, t := range root.tables("lan") {
		c.LANs = append(c.LANs, readLAN(t))
	}
	if t := root.sub("ha"); t != nil {
		c.HA = readHA(t)
	}
	c.DAD = readDAD(root.sub("dad").orEmpty(r, "dad"))
	c.Control = readControl(root.sub("control").orEmpty(r, "control"))
	root.done()
	return &c
}

func readWAN(t *table) rawWAN {
	w := rawWAN{
		path:          t.path,
		Interface:     t.str("interface"),
		DUID:          t.str("duid"),
		DUIDMAC:       t.str("duid_mac"),
		IAID:          t.integer("iaid"),
		PrefixLength:  t.integer("prefix_length"),
		RapidCommit:   t.boolean("rapid_commit"),
		RequestAddr:   t.str("request_address"),
		ReleaseOnStop: t.boolean("release_on_stop"),
		Priority:      t.integer("priority"),
		Check:         t.str("check"),
		Hook:          t.str("hook"),
	}
	t.done()
	return w
}

func readNAT(t *table) *rawNAT {
	n := &rawNAT{
		path:           t.path,
		InternalPrefix: t.str("internal_prefix"),
		Hairpin:        t.boolean("hairpin"),
		RemoveOnStop:   t.boolean("remove_on_stop"),
		SubPrefix:      t.integer("sub_prefix"),
	}
	t.done()
	return n
}

func readLAN(t *table) rawLAN {
	l := rawLAN{
		path:      t.path,
		Interface: t.str("interface"),
		Subnet:    t.integer("subnet"),
		Mode:      t.str("mode"),
		Managed:   t.boolean("managed"),
		Other:     t.boolean("other"),
		Advertise: t.str("advertise"),
		Address:   t.str("address"),
		DNS:       t.strs("dns"),
		Domains:   t.strs("domains"),
	}
	if pd := t.sub("pd"); pd != nil {
		l.PD = &rawLANPD{path: pd.path, Length: pd.integer("length"), Count: pd.integer("count")}
		pd.done()
	}
	l.RA = readRA(t.sub("ra").orEmpty(t.r, joinPath(t.path, "ra")))
	t.done()
	return l
}

func readRA(t *table) rawRA {
	ra := rawRA{
		path:           t.path,
		MinInterval:    t.duration("min_interval"),
		MaxInterval:    t.duration("max_interval"),
		RouterLifetime: t.duration("router_lifetime"),
		Preference:     t.str("preference"),
		HopLimit:       t.integer("hop_limit"),
		ReachableTime:  t.duration("reachable_time"),
		RetransTimer:   t.duration("retrans_timer"),
		MTU:            t.integer("mtu"),
		Preferred:      t.duration("preferred"),
		Valid:          t.duration("valid"),
		FinalRA:        t.boolean("final_ra"),
		Routes:         t.strs("routes"),
	}
	t.done()
	return ra
}

func readHA(t *table) *rawHA {
	h := &rawHA{
		path:             t.path,
		Mode:             t.str("mode"),
		VRID:             t.integer("vrid"),
		Priority:         t.integer("priority"),
		Interface:        t.str("interface"),
		AdvertInterval:   t.duration("advert_interval"),
		Preempt:          t.boolean("preempt"),
		PreemptDelay:     t.duration("preempt_delay"),
		VirtualLinkLocal: t.str("virtual_link_local"),
		WANMAC:           t.str("wan_mac"),
		SyncKey:          t.str("sync_key"),
	}
	t.done()
	return h
}

func readDAD(t *table) rawDAD {
	d := rawDAD{
		path:          t.path,
		HealLinkLocal: t.boolean("heal_link_local"),
		RetryMin:      t.duration("retry_min"),
		RetryMax:      t.duration("retry_max"),
	}
	t.done()
	return d
}

func readControl(t *table) rawControl {
	c := rawControl{
		path:        t.path,
		Socket:      t.str("socket"),
		StateDir:    t.str("state_dir"),
		Metrics:     t.str("metrics"),
		SocketGroup: t.str("socket_group"),
	}
	t.done()
	return c
}

// table is one TOML table being read. Every accessor marks its key as known;
// done reports whatever the file holds beyond that.
type table struct {
	r     *reporter
	path  string
	m     map[string]any
	known []string
}

func (t *table) key(k string) string { return joinPath(t.path, k) }

// get returns the value of k, if present, and remembers k as a known key.
func (t *table) get(k string) (any, bool) {
	t.known = append(t.known, k)
	v, ok := t.m[k]
	return v, ok
}

// scalar returns the value of k as a T, reporting a value of another type
// as what the key wants.
func scalar[T any](t *table, k, want string) *T {
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	x, ok := v.(T)
	if !ok {
		t.r.wrongType(t.key(k), want, v)
		return nil
	}
	return &x
}

func (t *table) str(k string) *string    { return scalar[string](t, k, "a string") }
func (t *table) integer(k string) *int64 { return scalar[int64](t, k, "an integer") }
func (t *table) boolean(k string) *bool  { return scalar[bool](t, k, "true or false") }

// duration accepts a Go duration string ("100ms", "10m") or an integer
// number of seconds, as operators of radvd and keepalived write them.
func (t *table) duration(k string) *time.Duration {
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	var d time.Duration
	switch v := v.(type) {
	case int64:
		if v > math.MaxInt64/int64(time.Second) || v < math.MinInt64/int64(time.Second) {
			t.r.errorf(t.key(k), "%d seconds is out of range", v)
			return nil
		}
		d = time.Duration(v) * time.Second
	case string:
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.r.errorf(t.key(k), "must be a duration such as \"10s\" or \"100ms\", or a number of seconds (got %q)", v)
			return nil
		}
	default:
		t.r.wrongType(t.key(k), "a duration such as \"10s\" or a number of seconds", v)
		return nil
	}
	return &d
}

// strs reads an array of strings; nil means absent.
func (t *table) strs(k string) []string {
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		t.r.wrongType(t.key(k), "an array of strings", v)
		return nil
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			t.r.wrongType(indexPath(t.key(k), i), "a string", e)
			continue
		}
		out = append(out, s)
	}
	return out
}

// sub returns the sub-table k ([k] or k = { ... }), or nil when absent.
func (t *table) sub(k string) *table {
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.r.wrongType(t.key(k), "a table", v)
		return nil
	}
	return &table{r: t.r, path: t.key(k), m: m}
}

// orEmpty stands in an empty table for an absent one, so that defaults are
// applied by the same code.
func (t *table) orEmpty(r *reporter, path string) *table {
	if t != nil {
		return t
	}
	return &table{r: r, path: path, m: map[string]any{}}
}

// tables reads k written either as one table ([wan], path "wan") or as an
// array of tables ([[wan]] or wan = [{...}], paths "wan[0]", "wan[1]", ...).
func (t *table) tables(k string) []*table {
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	var out []*table
	switch v := v.(type) {
	case map[string]any:
		out = append(out, &table{r: t.r, path: t.key(k), m: v})
	case []map[string]any:
		for i, m := range v {
			out = append(out, &table{r: t.r, path: indexPath(t.key(k), i), m: m})
		}
	case []any:
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				t.r.wrongType(indexPath(t.key(k), i), "a table", e)
				continue
			}
			out = append(out, &table{r: t.r, path: indexPath(t.key(k), i), m: m})
		}
	default:
		t.r.wrongType(t.key(k), "a table", v)
	}
	return out
}

// done reports every key of the table that no accessor asked for.
func (t *table) done() {
	var unknown []string
	for k := range t.m {
		if !contains(t.known, k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		if near := closest(k, t.known); near != "" {
			t.r.errorf(t.key(k), "unknown key (did you mean %q?)", near)
		} else {
			t.r.errorf(t.key(k), "unknown key (known here: %s)", strings.Join(t.known, ", "))
		}
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// closest returns the known key within two edits of k, if any: a typo such
// as "prefix_lenght" deserves a suggestion, not a list.
func closest(k string, known []string) string {
	best, bestDist := "", 3
	for _, c := range known {
		if d := editDistance(k, c); d < bestDist && 2*d < len(k) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between two short keys.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// describe names a decoded TOML value's type, with the value when short.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 40 {
			return "a string"
		}
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case time.Time:
		return "a date/time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}
