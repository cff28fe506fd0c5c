package testbed

import (
	"bufio"
	"net/netip"
	"strings"
)

// RA is one Router Advertisement as rdisc6 prints it.
type RA struct {
	From     netip.Addr
	Managed  bool // M flag: "Stateful address conf."
	Other    bool // O flag: "Stateful other conf."
	Lifetime string
	Prefixes []RAPrefix
	RDNSS    []netip.Addr
	DNSSL    []string // without the trailing dot
}

// RAPrefix is a Prefix Information option.
type RAPrefix struct {
	Prefix     netip.Prefix
	OnLink     bool
	Autonomous bool
	Valid      string // as printed, e.g. "86400 (0x00015180) seconds"
	Preferred  string
}

// ParseRdisc6 parses the output of `rdisc6 IFACE`: one RA per "from"
// trailer. Lines it does not know are skipped.
func ParseRdisc6(out string) []RA {
	var (
		ras []RA
		cur RA
		pi  *RAPrefix
	)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		key, val, ok := strings.Cut(line, ":")
		trimmed := strings.TrimSpace(line)
		if !ok || strings.HasPrefix(trimmed, "from ") {
			if from, found := strings.CutPrefix(trimmed, "from "); found {
				if a, err := netip.ParseAddr(strings.Fields(from + " ")[0]); err == nil {
					cur.From = a
				}
				ras = append(ras, cur)
				cur, pi = RA{}, nil
			}
			continue
		}
		// Keys never contain ':', values (addresses) may: the first ':'
		// ends the key.
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		yes := val == "Yes"
		switch key {
		case "Stateful address conf.":
			cur.Managed = yes
		case "Stateful other conf.":
			cur.Other = yes
		case "Router lifetime":
			cur.Lifetime = val
		case "Prefix":
			if p, err := netip.ParsePrefix(val); err == nil {
				cur.Prefixes = append(cur.Prefixes, RAPrefix{Prefix: p})
				pi = &cur.Prefixes[len(cur.Prefixes)-1]
			} else {
				pi = nil
			}
		case "On-link":
			if pi != nil {
				pi.OnLink = yes
			}
		case "Autonomous address conf.":
			if pi != nil {
				pi.Autonomous = yes
			}
		case "Valid time":
			if pi != nil {
				pi.Valid = val
			}
		case "Pref. time":
			if pi != nil {
				pi.Preferred = val
			}
		case "Recursive DNS server":
			if a, err := netip.ParseAddr(val); err == nil {
				cur.RDNSS = append(cur.RDNSS, a)
			}
		case "DNS search list":
			for _, d := range strings.Fields(val) {
				cur.DNSSL = append(cur.DNSSL, strings.TrimSuffix(d, "."))
			}
		}
	}
	return ras
}
