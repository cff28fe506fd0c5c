package configs

import (
	"fmt"
	"math"
	"reflect"
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
	rawTable
	Interface     *string `key:"interface"`
	DUID          *string `key:"duid"`
	DUIDMAC       *string `key:"duid_mac"`
	IAID          *int64  `key:"iaid"`
	PrefixLength  *int64  `key:"prefix_length"`
	RapidCommit   *bool   `key:"rapid_commit"`
	RequestAddr   *string `key:"request_address"`
	ReleaseOnStop *bool   `key:"release_on_stop"`
	Priority      *int64  `key:"priority"`
	Check         *string `key:"check"`
	Hook          *string `key:"hook"`
}

type rawNAT struct {
	rawTable
	InternalPrefix *string `key:"internal_prefix"`
	Hairpin        *bool   `key:"hairpin"`
	RemoveOnStop   *bool   `key:"remove_on_stop"`
	SubPrefix      *int64  `key:"sub_prefix"`
}

type rawLAN struct {
	rawTable
	Interface *string  `key:"interface"`
	Subnet    *int64   `key:"subnet"`
	Mode      *string  `key:"mode"`
	Managed   *bool    `key:"managed"`
	Other     *bool    `key:"other"`
	Advertise *string  `key:"advertise"`
	Address   *string  `key:"address"`
	DNS       []string `key:"dns"` // nil when absent
	Domains   []string `key:"domains"`
	PD        *rawLANPD
	RA        rawRA
}

type rawLANPD struct {
	rawTable
	Length *int64 `key:"length"`
	Count  *int64 `key:"count"`
}

type rawRA struct {
	rawTable
	MinInterval    *time.Duration `key:"min_interval"`
	MaxInterval    *time.Duration `key:"max_interval"`
	RouterLifetime *time.Duration `key:"router_lifetime"`
	Preference     *string        `key:"preference"`
	HopLimit       *int64         `key:"hop_limit"`
	ReachableTime  *time.Duration `key:"reachable_time"`
	RetransTimer   *time.Duration `key:"retrans_timer"`
	MTU            *int64         `key:"mtu"`
	Preferred      *time.Duration `key:"preferred"`
	Valid          *time.Duration `key:"valid"`
	FinalRA        *bool          `key:"final_ra"`
	Routes         []string       `key:"routes"`
}

type rawHA struct {
	rawTable
	Mode             *string        `key:"mode"`
	VRID             *int64         `key:"vrid"`
	Priority         *int64         `key:"priority"`
	Interface        *string        `key:"interface"`
	AdvertInterval   *time.Duration `key:"advert_interval"`
	Preempt          *bool          `key:"preempt"`
	PreemptDelay     *time.Duration `key:"preempt_delay"`
	VirtualLinkLocal *string        `key:"virtual_link_local"`
	WANMAC           *string        `key:"wan_mac"`
	SyncKey          *string        `key:"sync_key"`
}

type rawDAD struct {
	rawTable
	HealLinkLocal *bool          `key:"heal_link_local"`
	RetryMin      *time.Duration `key:"retry_min"`
	RetryMax      *time.Duration `key:"retry_max"`
}

type rawControl struct {
	rawTable
	Socket      *string `key:"socket"`
	StateDir    *string `key:"state_dir"`
	Metrics     *string `key:"metrics"`
	SocketGroup *string `key:"socket_group"`
}

// readRaw walks the generic tree BurntSushi/toml decoded. Walking it by hand,
// rather than letting the library fill structs, is what lets every wrong type
// and every unknown key be reported, each with its own key and line, instead
// of stopping at the first mismatch.
func (r *reporter) readRaw(doc map[string]any) *rawConfig {
	var c rawConfig
	root := &table{r: r, m: doc}

	for _, t := range root.tables("wan") {
		c.WANs = append(c.WANs, *read[rawWAN](t))
	}
	if t := root.sub("nat"); t != nil {
		c.NAT = read[rawNAT](t)
	}
	for _, t := range root.tables("lan") {
		c.LANs = append(c.LANs, readLAN(t))
	}
	if t := root.sub("ha"); t != nil {
		c.HA = read[rawHA](t)
	}
	c.DAD = *read[rawDAD](root.sub("dad").orEmpty(r, "dad"))
	c.Control = *read[rawControl](root.sub("control").orEmpty(r, "control"))
	root.done()
	return &c
}

func readLAN(t *table) rawLAN {
	var l rawLAN
	t.fill(&l)
	if pd := t.sub("pd"); pd != nil {
		l.PD = read[rawLANPD](pd)
	}
	l.RA = *read[rawRA](t.sub("ra").orEmpty(t.r, joinPath(t.path, "ra")))
	t.done()
	return l
}

// rawTable is what every raw table has: its path, for the errors.
type rawTable struct{ path string }

func (rt *rawTable) setPath(path string) { rt.path = path }

// key is the path of key k of the table, as errors name it.
func (rt rawTable) key(k string) string { return joinPath(rt.path, k) }

// read reads a table without sub-tables into a T and reports the keys it
// does not know.
func read[T any, P interface {
	*T
	setPath(string)
}](t *table) P {
	v := P(new(T))
	t.fill(v)
	t.done()
	return v
}

// fill gives the raw table v points to t's path and sets each field with a
// key tag through the accessor of the field's type, in field order, so the
// tag is the one place that names the key.
func (t *table) fill(v interface{ setPath(string) }) {
	v.setPath(t.path)
	rv := reflect.ValueOf(v).Elem()
	for i := range rv.NumField() {
		key := rv.Type().Field(i).Tag.Get("key")
		if key == "" {
			continue
		}
		var x any
		switch f := rv.Field(i); f.Interface().(type) {
		case *string:
			x = t.str(key)
		case *int64:
			x = t.integer(key)
		case *bool:
			x = t.boolean(key)
		case *time.Duration:
			x = t.duration(key)
		case []string:
			x = t.strs(key)
		default:
			panic(fmt.Sprintf("configs: no accessor for key %q of type %s", key, f.Type()))
		}
		rv.Field(i).Set(reflect.ValueOf(x))
	}
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
