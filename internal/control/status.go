package control

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Status is the document `v6edge status -json` prints. Field names are the
// contract in SPEC.md; fields may be added, never renamed.
type Status struct {
	WAN       WAN       `json:"wan"`
	WANs      []WAN     `json:"wans"`
	NAT       NAT       `json:"nat"`
	LAN       []LAN     `json:"lan"`
	HA        HA        `json:"ha"`
	Addresses []Address `json:"addresses"`
	Problems  []string  `json:"problems"`
	// DADFailures counts every failed Duplicate Address Detection seen.
	DADFailures uint64 `json:"dad_failures"`
	Version     string `json:"version,omitempty"`
	Started     string `json:"started,omitempty"`
}

// WAN is one uplink's DHCPv6-PD state.
type WAN struct {
	Interface      string   `json:"interface"`
	State          string   `json:"state"`
	DUID           string   `json:"duid"`
	Prefix         string   `json:"prefix"`
	PreferredUntil string   `json:"preferred_until"`
	ValidUntil     string   `json:"valid_until"`
	ServerDUID     string   `json:"server_duid"`
	OtherPrefixes  []string `json:"other_prefixes,omitempty"`
	DefaultRouter  string   `json:"default_router,omitempty"`
	Healthy        bool     `json:"healthy"`
	Unhealthy      string   `json:"unhealthy_reason,omitempty"`
	// RecentProblems are rejected or dropped server messages while the
	// uplink still holds a usable lease: worth seeing, not failing status.
	RecentProblems []string `json:"recent_problems,omitempty"`
	// LastFailover is when new flows last moved to another uplink, and why
	// (several uplinks only).
	LastFailover    string `json:"last_failover,omitempty"`
	LastFailoverWhy string `json:"last_failover_why,omitempty"`
	Preferred       bool   `json:"preferred"`
	PrefixChanges   uint64 `json:"prefix_changes"`
	// Messages counts DHCPv6 messages by "sent:<type>", "received:<type>"
	// and "rejected:<reason>".
	Messages map[string]uint64 `json:"messages,omitempty"`
	// Addresses are the WAN addresses of the IA_NA; Excluded is the
	// delegation's RFC 6603 excluded prefix; DNS and Domains are the
	// uplink's DHCPv6 options 23 and 24.
	Addresses []string `json:"addresses,omitempty"`
	Excluded  string   `json:"excluded_prefix,omitempty"`
	DNS       []string `json:"dns,omitempty"`
	Domains   []string `json:"domains,omitempty"`
}

// NAT is the state of the NETMAP table.
type NAT struct {
	Internal  string `json:"internal"`
	External  string `json:"external"`
	Installed bool   `json:"installed"`
	Swaps     uint64 `json:"swaps"`
	Restores  uint64 `json:"restores"`
	LastSwap  string `json:"last_swap,omitempty"`
	// LastSwapSeconds is how long the last swap took to be acknowledged.
	LastSwapSeconds float64 `json:"last_swap_seconds,omitempty"`
	Problem         string  `json:"problem,omitempty"`
}

// LAN is what one LAN's Router Advertisements carry.
type LAN struct {
	Interface  string   `json:"interface"`
	Mode       string   `json:"mode"`
	Managed    bool     `json:"managed"`
	Other      bool     `json:"other"`
	Prefixes   []Prefix `json:"prefixes"`
	Deprecated []Prefix `json:"deprecated,omitempty"`
	RAsSent    uint64   `json:"ras_sent"`
	RSReceived uint64   `json:"rs_received"`
	Source     string   `json:"source,omitempty"`
	Routers    []string `json:"other_routers,omitempty"`
	// DHCP is the LAN DHCPv6 server's state; absent when the LAN needs none.
	DHCP *DHCP `json:"dhcp,omitempty"`
}

// DHCP is one LAN DHCPv6 server's state.
type DHCP struct {
	Leases      int      `json:"leases"`
	Delegations []string `json:"delegations,omitempty"` // "prefix via link-local"
	Received    uint64   `json:"received"`
	Replied     uint64   `json:"replied"`
	Dropped     uint64   `json:"dropped"`
	// DroppedBy splits Dropped by reason: "rate_limited", "malformed",
	// "invalid", "not_for_us" and "other" (unsupported types, nothing to
	// answer); the values add up to Dropped.
	DroppedBy map[string]uint64 `json:"dropped_by,omitempty"`
	// WriteErrors are replies the socket refused; SaveErrors failed writes
	// of the lease file.
	WriteErrors uint64 `json:"write_errors"`
	SaveErrors  uint64 `json:"save_errors"`
}

// DropReasons are the keys of DHCP.DroppedBy, in order.
var DropReasons = []string{"rate_limited", "malformed", "invalid", "not_for_us", "other"}

// Prefix is an advertised prefix and the lifetimes the last RA carried.
type Prefix struct {
	Prefix     string `json:"prefix"`
	PreferredS int64  `json:"preferred_s"`
	ValidS     int64  `json:"valid_s"`
}

// HA is the pair role.
type HA struct {
	Role           string `json:"role"`
	VRID           int    `json:"vrid,omitempty"`
	Priority       int    `json:"priority,omitempty"`
	Peer           string `json:"peer,omitempty"`
	LastTransition string `json:"last_transition,omitempty"`
	Reason         string `json:"reason,omitempty"`
	Transitions    uint64 `json:"transitions,omitempty"`
}

// Address is one address v6edge manages and its DAD outcome.
type Address struct {
	Interface string `json:"interface"`
	Address   string `json:"address"`
	State     string `json:"state"`
	Detail    string `json:"detail,omitempty"`
}

// Healthy reports whether the daemon has nothing to complain about.
func (s *Status) Healthy() bool { return len(s.Problems) == 0 }

// WriteTable writes the human view: problems first, then one section per
// subsystem, aligned for a terminal.
func (s *Status) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(s.Problems) > 0 {
		fmt.Fprintf(tw, "PROBLEMS (%d)\n", len(s.Problems))
		for _, p := range s.Problems {
			fmt.Fprintf(tw, "  ! %s\n", p)
		}
		fmt.Fprintln(tw)
	} else {
		fmt.Fprintln(tw, "healthy: no problems")
		fmt.Fprintln(tw)
	}
	wans := s.WANs
	if len(wans) == 0 {
		wans = []WAN{s.WAN}
	}
	fmt.Fprintln(tw, "UPLINK\tSTATE\tPREFIX\tVALID UNTIL\tDEFAULT ROUTER\tDUID")
	for _, x := range wans {
		name := x.Interface
		if x.Preferred && len(wans) > 1 {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, x.State, dash(x.Prefix), dash(shortTime(x.ValidUntil)), dash(x.DefaultRouter), x.DUID)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "NAT\t%s <-> %s\tinstalled=%t\tswaps=%d\n", dash(s.NAT.Internal), dash(s.NAT.External), s.NAT.Installed, s.NAT.Swaps)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "LAN\tMODE\tM/O\tPREFIX\tPREFERRED\tVALID")
	for _, l := range s.LAN {
		mo := fmt.Sprintf("%d/%d", b2i(l.Managed), b2i(l.Other))
		if len(l.Prefixes) == 0 && len(l.Deprecated) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t\t\n", l.Interface, l.Mode, mo)
		}
		for i, p := range l.Prefixes {
			name, mode, flags := l.Interface, l.Mode, mo
			if i > 0 {
				name, mode, flags = "", "", ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%ds\t%ds\n", name, mode, flags, p.Prefix, p.PreferredS, p.ValidS)
		}
		for _, p := range l.Deprecated {
			fmt.Fprintf(tw, "\t\t\t%s (deprecated)\t%ds\t%ds\n", p.Prefix, p.PreferredS, p.ValidS)
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "HA\t%s", s.HA.Role)
	if s.HA.VRID != 0 {
		fmt.Fprintf(tw, "\tvrid=%d priority=%d", s.HA.VRID, s.HA.Priority)
	}
	if s.HA.Reason != "" {
		fmt.Fprintf(tw, "\t(%s)", s.HA.Reason)
	}
	fmt.Fprintln(tw)
	if len(s.Addresses) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "INTERFACE\tADDRESS\tSTATE")
		addrs := append([]Address(nil), s.Addresses...)
		// Problems first here too: anything not ok sorts to the top.
		sort.SliceStable(addrs, func(i, j int) bool { return (addrs[i].State != "ok") && (addrs[j].State == "ok") })
		for _, a := range addrs {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Interface, a.Address, a.State)
		}
	}
	return tw.Flush()
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func shortTime(s string) string {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	// The daemon sends UTC; an operator reads the local time, with its zone
	// named so that the reading is never ambiguous.
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
