package integration

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/internal/testbed"
)

// The configs the system tests run, built with testbed.Config rather than
// assembled TOML; TestTheTestsConfigsParse checks that each parses.

var (
	internal = netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/56")
	subnet1  = netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::/64")
	// lanRouter is the router's address in subnet1: the LAN's RDNSS in
	// every config, and the HA pair's shared LAN address.
	lanRouter = netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1")
)

// singleConfig is the demo's setup (configs/examples/demo.toml: one
// uplink, hairpin on, one LAN with an RDNSS and a search domain) with
// iaid 1 and the LAN's mode and advertise ("internal", "external" or
// "both") chosen.
func singleConfig(mode, advertise string) testbed.Config {
	return testbed.Config{
		WANs: []testbed.WAN{{Interface: testbed.WANIface, DUID: "ll", IAID: 1, PrefixLength: 56}},
		NAT:  testbed.NAT{InternalPrefix: internal, Hairpin: true},
		LANs: []testbed.LAN{{
			Interface: testbed.LANIface, Subnet: 1, Mode: mode, Advertise: advertise,
			DNS: []netip.Addr{lanRouter}, Domains: []string{"lan.example"},
		}},
	}
}

// daemonConfig is the demo config with the LAN's mode set.
func daemonConfig(mode string) string { return singleConfig(mode, "internal").TOML() }

// pairNode is one node of an HA pair (configs/examples/ha.toml): the
// lease is kept on stop (the peer takes it over), the LAN has the shared
// router address, and ha has the shared link-local, WAN MAC and sync key.
func pairNode(ha testbed.HA) testbed.Config {
	ha.Interface = testbed.LANIface
	ha.VirtualLinkLocal = pairVirtualLL
	ha.WANMAC = pairSharedMAC
	ha.SyncKey = "lab-test-secret-lab-test-secret"
	return testbed.Config{
		WANs: []testbed.WAN{{Interface: testbed.WANIface, PrefixLength: 56, ReleaseOnStop: testbed.Bool(false)}},
		NAT:  testbed.NAT{InternalPrefix: internal},
		LANs: []testbed.LAN{{
			Interface: testbed.LANIface, Subnet: 1, Mode: "slaac", Address: pairRouterULA,
			DNS: []netip.Addr{lanRouter}, Domains: []string{"lan.example"},
		}},
		HA: &ha,
	}
}

// pairConfig is one v6edge node of a VRRPv3 pair with a chosen priority
// and advert interval.
func pairConfig(priority int, advert time.Duration) string {
	return pairNode(testbed.HA{Mode: "vrrp", VRID: pairVRID, Priority: priority, AdvertInterval: advert}).TOML()
}

// haConfig is pairConfig with a 500 ms advert interval: with 100 ms, a
// test machine under load (the whole suite in parallel) stalls a backup
// past its master-down interval and the pair flaps between two masters.
func haConfig(priority int) string { return pairConfig(priority, 500*time.Millisecond) }

// pairExternalConfig is a node whose role comes from `v6edge ha
// master|backup` (keepalived's notify scripts in production): no VRID, no
// election of its own, and no search domain.
func pairExternalConfig() string {
	c := pairNode(testbed.HA{Mode: "external"})
	c.LANs[0].Domains = nil
	return c.TOML()
}

// multiConfig is the daemon's config for the multihoming lab: wan0
// preferred, both uplinks probed through the "internet" address.
func multiConfig() string {
	return testbed.Config{
		WANs: []testbed.WAN{
			{Interface: "wan0", Priority: 10, IAID: 1, PrefixLength: 56, Check: testbed.InternetAddr},
			{Interface: "wan1", Priority: 20, IAID: 2, PrefixLength: 56, Check: testbed.InternetAddr},
		},
		NAT:  testbed.NAT{InternalPrefix: internal},
		LANs: []testbed.LAN{{Interface: testbed.LANIface, Subnet: 1, Mode: "slaac", Advertise: "internal"}},
	}.TOML()
}

// altConfig is the demo config with the LAN advertising advertise
// ("internal", "external" or "both").
func altConfig(advertise string) string { return singleConfig("slaac", advertise).TOML() }

// rapidCommitConfig is altConfig("internal") with wan.rapid_commit on.
func rapidCommitConfig() string {
	c := singleConfig("slaac", "internal")
	c.WANs[0].RapidCommit = true
	return c.TOML()
}

// opsOptions shape opsConfig's daemon configuration.
type opsOptions struct {
	mode      string     // LAN mode; default slaac
	advertise string     // LAN advertise; default internal
	dns       netip.Addr // the LAN's RDNSS; default the router's LAN address
	pdLength  int        // downstream PD length on the LAN; 0: none
	hook      string     // wan.hook
	dad       *testbed.DAD
}

func opsConfig(o opsOptions) string {
	if o.mode == "" {
		o.mode = "slaac"
	}
	if o.advertise == "" {
		o.advertise = "internal"
	}
	c := singleConfig(o.mode, o.advertise)
	if o.dns.IsValid() {
		c.LANs[0].DNS = []netip.Addr{o.dns}
	}
	c.WANs[0].Hook = o.hook
	c.LANs[0].PDLength = o.pdLength
	c.DAD = o.dad
	return c.TOML()
}

// TestTheTestsConfigsParse: every config the system tests run is one the
// daemon takes. It needs no lab, so it runs everywhere.
func TestTheTestsConfigsParse(t *testing.T) {
	rendered := map[string]string{
		"pairExternalConfig":        pairExternalConfig(),
		"multiConfig":               multiConfig(),
		"singleConfig(slaac, both)": singleConfig("slaac", "both").TOML(),
		"the rapid-commit config":   rapidCommitConfig(),
		"the demo config":           demo.Config,
	}
	for _, mode := range []string{"slaac", "stateless", "stateful"} {
		rendered["daemonConfig("+mode+")"] = daemonConfig(mode)
	}
	for _, adv := range []string{"internal", "external", "both"} {
		rendered["altConfig("+adv+")"] = altConfig(adv)
	}
	for _, prio := range []int{pairBackupPriority, 200} {
		rendered[fmt.Sprintf("haConfig(%d)", prio)] = haConfig(prio)
		for _, advert := range pairIntervals {
			rendered[fmt.Sprintf("pairConfig(%d, %s)", prio, advert)] = pairConfig(prio, advert)
		}
	}
	for name, o := range map[string]opsOptions{
		"default":         {},
		"dad retry":       {dad: &testbed.DAD{RetryMin: time.Second, RetryMax: 4 * time.Second}},
		"no healing":      {dad: &testbed.DAD{HealLinkLocal: testbed.Bool(false)}},
		"healing":         {dad: &testbed.DAD{HealLinkLocal: testbed.Bool(true)}},
		"stateless":       {mode: "stateless"},
		"stateful, PD 60": {mode: "stateful", pdLength: 60},
		"hook":            {hook: "/tmp/v6edge-hook.sh"},
		"new RDNSS":       {dns: netip.MustParseAddr("fd00:aaaa:bbbb:cc01::53")},
		"advertise both":  {advertise: "both"},
	} {
		rendered["opsConfig "+name] = opsConfig(o)
	}
	for name, text := range rendered {
		if _, err := configs.Parse(name, []byte(text)); err != nil {
			t.Errorf("%s: %v\n%s", name, err, text)
		}
	}
}
