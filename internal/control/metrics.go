package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// wanStates are every value SPEC.md allows for wan.state, so a state gauge
// exists for each and dashboards can alert on "bound != 1".
var wanStates = []string{"init", "soliciting", "requesting", "bound", "renewing", "rebinding", "expired", "released", "standby"}

var haRoles = []string{"standalone", "initialize", "backup", "master", "fault"}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("v6edge_"+name, help, labels, nil)
}

var (
	// The uplinks (DHCPv6-PD client, health, failover).
	mWANState       = desc("wan_state", "1 for the DHCPv6-PD client's current state.", "interface", "state")
	mPreferred      = desc("lease_preferred_seconds", "Seconds left of the delegated prefix's preferred lifetime.", "interface", "prefix")
	mValid          = desc("lease_valid_seconds", "Seconds left of the delegated prefix's valid lifetime.", "interface", "prefix")
	mPreferredUntil = desc("lease_preferred_until_timestamp_seconds", "When the delegated prefix's preferred lifetime ends (Unix time).", "interface", "prefix")
	mValidUntil     = desc("lease_valid_until_timestamp_seconds", "When the delegated prefix's valid lifetime ends (Unix time).", "interface", "prefix")
	mOtherPrefixes  = desc("wan_other_prefixes", "Further prefixes of the IA_PD besides the one in use.", "interface")
	mWANAddress     = desc("wan_address_info", "1 for each IA_NA address of the uplink.", "interface", "address")
	mWANDNS         = desc("wan_dns_servers", "DNS servers the uplink's server sent (DHCPv6 option 23).", "interface")
	mWANDomains     = desc("wan_dns_search_domains", "Search domains the uplink's server sent (DHCPv6 option 24).", "interface")
	mUplinkHealthy  = desc("uplink_healthy", "1 while the uplink is healthy (link, lease, probe).", "interface")
	mUplinkPref     = desc("uplink_preferred", "1 for the uplink new flows leave by.", "interface")
	mFailoverAt     = desc("uplink_last_failover_timestamp_seconds", "When new flows last moved to another uplink (Unix time).")
	mPrefixChanges  = desc("prefix_changes_total", "Times the delegated prefix changed (renumbering).", "interface")
	mMessages       = desc("dhcp6_messages_total", "DHCPv6 client messages by direction or outcome and type.", "interface", "kind", "type")
	mRecentProblems = desc("wan_recent_problems", "Rejected or dropped server messages while the uplink holds a usable lease.", "interface")

	// The LANs (Router Advertisements, the DHCPv6 server).
	mRAsSent        = desc("ra_sent_total", "Router Advertisements sent.", "interface")
	mRSReceived     = desc("rs_received_total", "Router Solicitations received.", "interface")
	mLANManaged     = desc("lan_managed", "1 while the LAN's RAs carry the M flag.", "interface")
	mLANOther       = desc("lan_other_config", "1 while the LAN's RAs carry the O flag.", "interface")
	mLANRouters     = desc("lan_other_routers", "Other routers advertising on the LAN.", "interface")
	mLANPreferred   = desc("lan_prefix_preferred_seconds", "Preferred lifetime the last RA carried for the prefix.", "interface", "prefix")
	mLANValid       = desc("lan_prefix_valid_seconds", "Valid lifetime the last RA carried for the prefix.", "interface", "prefix")
	mLANDeprecated  = desc("lan_prefix_deprecated", "1 while the prefix is being withdrawn (preferred lifetime 0, RFC 9096).", "interface", "prefix")
	mSrvLeases      = desc("dhcp6_server_leases", "Leases the LAN's DHCPv6 server holds.", "interface")
	mSrvDelegations = desc("dhcp6_server_delegations", "Prefixes the LAN's DHCPv6 server delegates.", "interface")
	mSrvReceived    = desc("dhcp6_server_received_total", "Messages the LAN's DHCPv6 server received.", "interface")
	mSrvReplied     = desc("dhcp6_server_replied_total", "Replies the LAN's DHCPv6 server sent.", "interface")
	mSrvDropped     = desc("dhcp6_server_dropped_total", "Messages the LAN's DHCPv6 server dropped, by reason.", "interface", "reason")
	mSrvWriteErrors = desc("dhcp6_server_write_errors_total", "Replies the LAN's DHCPv6 server could not send.", "interface")
	mSrvSaveErrors  = desc("dhcp6_server_save_errors_total", "Failed writes of the LAN's DHCPv6 lease file.", "interface")

	// NAT, addresses, the pair and the daemon.
	mNATInstalled  = desc("nat_installed", "1 while the NETMAP mapping is installed.")
	mNATSwaps      = desc("nat_swaps_total", "NETMAP mapping swaps.")
	mNATRestores   = desc("nat_restores_total", "Times the NAT table was restored after someone else removed or changed it.")
	mNATSwapDur    = desc("nat_last_swap_duration_seconds", "How long the last NAT swap took until the kernel acknowledged it.")
	mNATSwapAt     = desc("nat_last_swap_timestamp_seconds", "When the last NAT swap happened (Unix time).")
	mDADFailures   = desc("dad_failures_total", "Duplicate Address Detection failures of addresses v6edge manages.")
	mAddrState     = desc("address_state", "1 for each managed address's DAD state.", "interface", "address", "state")
	mHARole        = desc("ha_role", "1 for the node's current HA role.", "role")
	mHATransitions = desc("ha_transitions_total", "HA role transitions.")
	mHALastAt      = desc("ha_last_transition_timestamp_seconds", "When the node last changed HA role (Unix time).")
	mHAPriority    = desc("ha_priority", "The node's VRRP priority.", "vrid")
	mProblems      = desc("problems", "Problems the daemon reports (status exits 1 when > 0).")
	mStarted       = desc("start_time_seconds", "When the daemon started (Unix time).")
	mBuildInfo     = desc("build_info", "1, labelled with the daemon's version and the Go version it was built with.", "version", "goversion")

	allDescs = []*prometheus.Desc{
		mWANState, mPreferred, mValid, mPreferredUntil, mValidUntil, mOtherPrefixes, mWANAddress, mWANDNS, mWANDomains,
		mUplinkHealthy, mUplinkPref, mFailoverAt, mPrefixChanges, mMessages, mRecentProblems,
		mRAsSent, mRSReceived, mLANManaged, mLANOther, mLANRouters, mLANPreferred, mLANValid, mLANDeprecated,
		mSrvLeases, mSrvDelegations, mSrvReceived, mSrvReplied, mSrvDropped, mSrvWriteErrors, mSrvSaveErrors,
		mNATInstalled, mNATSwaps, mNATRestores, mNATSwapDur, mNATSwapAt, mDADFailures, mAddrState,
		mHARole, mHATransitions, mHALastAt, mHAPriority, mProblems, mStarted, mBuildInfo,
	}
)

// addressStates are every value SPEC.md allows for addresses[].state.
var addressStates = []string{"ok", "tentative", "dadfailed"}

// Collector exports a Status as Prometheus metrics at scrape time, so the
// numbers are exactly what `v6edge status` shows.
type Collector struct {
	Status func() Status
	Now    func() time.Time
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.Status()
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	g := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	cnt := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	// ts exports an RFC 3339 time as a Unix timestamp; absent when unset.
	ts := func(d *prometheus.Desc, s string, l ...string) {
		if t, ok := parseTime(s); ok {
			g(d, float64(t.UnixNano())/1e9, l...)
		}
	}
	wans := st.WANs
	if len(wans) == 0 {
		wans = []WAN{st.WAN}
	}
	failover := ""
	for _, w := range wans {
		for _, s := range wanStates {
			g(mWANState, b2f(w.State == s), w.Interface, s)
		}
		if w.Prefix != "" {
			g(mPreferred, secondsUntil(now, w.PreferredUntil), w.Interface, w.Prefix)
			g(mValid, secondsUntil(now, w.ValidUntil), w.Interface, w.Prefix)
			ts(mPreferredUntil, w.PreferredUntil, w.Interface, w.Prefix)
			ts(mValidUntil, w.ValidUntil, w.Interface, w.Prefix)
		}
		g(mOtherPrefixes, float64(len(w.OtherPrefixes)), w.Interface)
		for _, a := range uniq(w.Addresses) {
			g(mWANAddress, 1, w.Interface, a)
		}
		g(mWANDNS, float64(len(w.DNS)), w.Interface)
		g(mWANDomains, float64(len(w.Domains)), w.Interface)
		cnt(mPrefixChanges, w.PrefixChanges, w.Interface)
		g(mUplinkHealthy, b2f(w.Healthy), w.Interface)
		g(mUplinkPref, b2f(w.Preferred), w.Interface)
		g(mRecentProblems, float64(len(w.RecentProblems)), w.Interface)
		for k, v := range w.Messages {
			kind, typ := splitKind(k)
			cnt(mMessages, v, w.Interface, kind, typ)
		}
		if w.LastFailover != "" {
			failover = w.LastFailover // the daemon's one failover time, repeated per uplink
		}
	}
	ts(mFailoverAt, failover)
	for _, l := range st.LAN {
		cnt(mRAsSent, l.RAsSent, l.Interface)
		cnt(mRSReceived, l.RSReceived, l.Interface)
		g(mLANManaged, b2f(l.Managed), l.Interface)
		g(mLANOther, b2f(l.Other), l.Interface)
		g(mLANRouters, float64(len(l.Routers)), l.Interface)
		seen := map[string]bool{}
		for _, set := range []struct {
			prefixes   []Prefix
			deprecated bool
		}{{l.Prefixes, false}, {l.Deprecated, true}} {
			for _, p := range set.prefixes {
				if seen[p.Prefix] { // one series per prefix, whatever the document repeats
					continue
				}
				seen[p.Prefix] = true
				g(mLANPreferred, float64(p.PreferredS), l.Interface, p.Prefix)
				g(mLANValid, float64(p.ValidS), l.Interface, p.Prefix)
				g(mLANDeprecated, b2f(set.deprecated), l.Interface, p.Prefix)
			}
		}
		if d := l.DHCP; d != nil {
			g(mSrvLeases, float64(d.Leases), l.Interface)
			g(mSrvDelegations, float64(len(d.Delegations)), l.Interface)
			cnt(mSrvReceived, d.Received, l.Interface)
			cnt(mSrvReplied, d.Replied, l.Interface)
			for _, r := range DropReasons {
				cnt(mSrvDropped, d.DroppedBy[r], l.Interface, r)
			}
			cnt(mSrvWriteErrors, d.WriteErrors, l.Interface)
			cnt(mSrvSaveErrors, d.SaveErrors, l.Interface)
		}
	}
	g(mNATInstalled, b2f(st.NAT.Installed))
	cnt(mNATSwaps, st.NAT.Swaps)
	cnt(mNATRestores, st.NAT.Restores)
	g(mNATSwapDur, st.NAT.LastSwapSeconds)
	ts(mNATSwapAt, st.NAT.LastSwap)
	cnt(mDADFailures, st.DADFailures)
	seen := map[[2]string]bool{}
	for _, a := range st.Addresses {
		if k := [2]string{a.Interface, a.Address}; !seen[k] {
			seen[k] = true
			for _, s := range addressStates {
				g(mAddrState, b2f(a.State == s), a.Interface, a.Address, s)
			}
		}
	}
	for _, r := range haRoles {
		g(mHARole, b2f(st.HA.Role == r), r)
	}
	cnt(mHATransitions, st.HA.Transitions)
	ts(mHALastAt, st.HA.LastTransition)
	if st.HA.VRID != 0 {
		g(mHAPriority, float64(st.HA.Priority), strconv.Itoa(st.HA.VRID))
	}
	g(mProblems, float64(len(st.Problems)))
	ts(mStarted, st.Started)
	g(mBuildInfo, 1, st.Version, runtime.Version())
}

func uniq(s []string) []string {
	out := make([]string, 0, len(s))
	seen := map[string]bool{}
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func splitKind(k string) (string, string) {
	for i := 0; i < len(k); i++ {
		if k[i] == ':' {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}

func secondsUntil(now time.Time, rfc3339 string) float64 {
	t, ok := parseTime(rfc3339)
	if !ok {
		return 0
	}
	return max(t.Sub(now).Seconds(), 0)
}

// parseTime reads the status document's times (RFC 3339, with or without
// fractional seconds); the zero time counts as unset.
func parseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.IsZero() || t.Unix() <= 0 {
		return time.Time{}, false
	}
	return t, true
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NewRegistry returns the registry /metrics serves: the status collector,
// and the Go runtime's and the process's own metrics.
func NewRegistry(status func() Status) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&Collector{Status: status},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// ServeMetrics serves /metrics on addr until ctx ends.
func ServeMetrics(ctx context.Context, addr string, status func() Status) error {
	reg := NewRegistry(status)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics server: %w", err)
	}
	return nil
}
