package uplink_test

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/v6edge/v6edge/internal/uplink"
)

// Example shows how the daemon wires the package: one Health and (with a check target) one
// Prober per uplink; on every event it builds the Policy, lets Router apply it and flushes
// the flows of uplinks that failed; it wakes up again at the earliest Deadline, when a
// hold-down ends.
func Example() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := uplink.HealthConfig{HoldDown: 10 * time.Second}
	wans := []string{"wan0", "wan1"} // in order of priority
	health := []*uplink.Health{uplink.NewHealth(cfg, now), uplink.NewHealth(cfg, now)}

	// In the daemon, each Prober runs as a task and its results come back as events.
	_ = uplink.NewProber("wan0", netip.MustParseAddr("2001:db8:eeee::1"),
		func() netip.Addr { return netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1") }, // the router's LAN address
		0x76650001, time.Second, log, func(ok bool) { /* send an event: health[0].ProbeResult(now, ok) */ })

	policy := func(now time.Time) uplink.Policy {
		p := uplink.Policy{LANs: []string{"lan0"}, Internal: netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/56")}
		for i, wan := range wans {
			p.Uplinks = append(p.Uplinks, uplink.Uplink{
				Interface: wan, Table: 1000 + i, Mark: 0x76650000 + uint32(i) + 1,
				Gateway: netip.MustParseAddr("fe80::1"), // netif.DefaultRouter(h, wan)
				Healthy: health[i].Healthy(now), Preferred: i == 0,
			})
		}
		return p
	}

	for i := range wans {
		health[i].Link(now, true)
		health[i].Lease(now, true)
	}
	before := policy(now)
	fmt.Println("new flows by", before.Uplinks[before.Active()].Interface)

	now = now.Add(time.Minute)
	health[0].Link(now, false) // a netlink link event
	after := policy(now)
	// router.Set(after); then for each mark: uplink.FlushUplink(mark)
	fmt.Printf("new flows by %s; flush marks %#x (%s)\n", after.Uplinks[after.Active()].Interface,
		uplink.Failed(before, after), health[0].Reason())

	now = now.Add(5 * time.Second)
	health[0].Link(now, true)
	fmt.Printf("%s; wake up at +%v\n", health[0].Reason(), health[0].Deadline().Sub(now))
	now = health[0].Deadline()
	p := policy(now)
	fmt.Println("new flows by", p.Uplinks[p.Active()].Interface)
	// Output:
	// new flows by wan0
	// new flows by wan1; flush marks [0x76650001] (link down)
	// holding down after recovery (10s left); wake up at +10s
	// new flows by wan0
}
