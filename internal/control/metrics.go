package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	mWANState      = desc("wan_state", "1 for the DHCPv6-PD client's current state.", "interface", "state")
	mPreferred     = desc("lease_preferred_seconds", "Seconds left of the delegated prefix's preferred lifetime.", "interface", "prefix")
	mValid         = desc("lease_valid_seconds", "Seconds left of the delegated prefix's valid lifetime.", "interface", "prefix")
	mUplinkHealthy = desc("uplink_healthy", "1 while the uplink is healthy (link, lease, probe).", "interface")
	mUplinkPref    = desc("uplink_preferred", "1 for the uplink new flows leave by.", "interface")
	mPrefixChanges = desc("prefix_changes_total", "Times the delegated prefix changed (renumbering).", "interface")
	mMessages      = desc("dhcp6_messages_total", "DHCPv6 messages by direction or outcome and type.", "interface", "kind", "type")
	mRAsSent       = desc("ra_sent_total", "Router Advertisements sent.", "interface")
	mRSReceived    = desc("rs_received_total", "Router Solicitations received.", "interface")
	mNATInstalled  = desc("nat_installed", "1 while the NETMAP mapping is installed.")
	mNATSwaps      = desc("nat_swaps_total", "NETMAP mapping swaps.")
	mNATRestores   = desc("nat_restores_total", "Times the NAT table was restored after someone else removed or changed it.")
	mNATSwapSecs   = desc("nat_last_swap_seconds", "How long the last NAT swap took until the kernel acknowledged it.")
	mDADFailures   = desc("dad_failures_total", "Duplicate Address Detection failures of addresses v6edge manages.")
	mAddrState     = desc("address_state", "1 for each managed address's DAD state.", "interface", "address", "state")
	mHARole        = desc("ha_role", "1 for the node's current HA role.", "role")
	mHATransitions = desc("ha_transitions_total", "HA role transitions.")
	mProblems      = desc("problems", "Problems the daemon reports (status exits 1 when > 0).")
)

// Collector exports a Status as Prometheus metrics at scrape time, so the
// numbers are exactly what `v6edge status` shows.
type Collector struct {
	Status func() Status
	Now    func() time.Time
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mUplinkHealthy, mUplinkPref, mWANState, mPreferred, mValid, mPrefixChanges, mMessages, mRAsSent, mRSReceived,
		mNATInstalled, mNATSwaps, mNATRestores, mNATSwapSecs, mDADFailures, mAddrState, mHARole, mHATransitions, mProblems} {
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
	wans := st.WANs
	if len(wans) == 0 {
		wans = []WAN{st.WAN}
	}
	for _, w := range wans {
		for _, s := range wanStates {
			g(mWANState, b2f(w.State == s), w.Interface, s)
		}
		if w.Prefix != "" {
			g(mPreferred, secondsUntil(now, w.PreferredUntil), w.Interface, w.Prefix)
			g(mValid, secondsUntil(now, w.ValidUntil), w.Interface, w.Prefix)
		}
		cnt(mPrefixChanges, w.PrefixChanges, w.Interface)
		g(mUplinkHealthy, b2f(w.Healthy), w.Interface)
		g(mUplinkPref, b2f(w.Preferred), w.Interface)
		for k, v := range w.Messages {
			kind, typ := splitKind(k)
			cnt(mMessages, v, w.Interface, kind, typ)
		}
	}
	for _, l := range st.LAN {
		cnt(mRAsSent, l.RAsSent, l.Interface)
		cnt(mRSReceived, l.RSReceived, l.Interface)
	}
	g(mNATInstalled, b2f(st.NAT.Installed))
	cnt(mNATSwaps, st.NAT.Swaps)
	cnt(mNATRestores, st.NAT.Restores)
	g(mNATSwapSecs, st.NAT.LastSwapSeconds)
	cnt(mDADFailures, st.DADFailures)
	for _, a := range st.Addresses {
		for _, s := range []string{"ok", "tentative", "dadfailed"} {
			g(mAddrState, b2f(a.State == s), a.Interface, a.Address, s)
		}
	}
	for _, r := range haRoles {
		g(mHARole, b2f(st.HA.Role == r), r)
	}
	cnt(mHATransitions, st.HA.Transitions)
	g(mProblems, float64(len(st.Problems)))
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
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return 0
	}
	return max(t.Sub(now).Seconds(), 0)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// ServeMetrics serves /metrics on addr until ctx ends.
func ServeMetrics(ctx context.Context, addr string, status func() Status) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&Collector{Status: status})
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
