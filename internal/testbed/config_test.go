package testbed

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/v6edge/v6edge/configs"
)

// TestConfigTOMLParses renders configs with every field the builder has,
// and with few, and checks that configs.Parse takes each and reads back
// what was set.
func TestConfigTOMLParses(t *testing.T) {
	ula := netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/56")
	lan := LAN{Interface: LANIface, Subnet: 1, Mode: "slaac"}
	tests := []struct {
		name  string
		c     Config
		check func(t *testing.T, c *configs.Config)
	}{
		{
			name: "the fewest keys: the daemon's defaults fill in",
			c:    Config{WANs: []WAN{{Interface: WANIface}}, NAT: NAT{InternalPrefix: ula}, LANs: []LAN{lan}},
			check: func(t *testing.T, c *configs.Config) {
				if got := c.WAN().IAID; got != 1 {
					t.Errorf("default IAID = %d, want 1", got)
				}
				if !c.NAT.Hairpin {
					t.Error("hairpin is off, want the default on")
				}
				if c.HA != nil {
					t.Errorf("HA = %+v, want none", c.HA)
				}
			},
		},
		{
			name: "every key of one uplink, a LAN with PD and a VRRP pair",
			c: Config{
				WANs: []WAN{{Interface: WANIface, DUID: "ll", IAID: 7, PrefixLength: 56, RapidCommit: true,
					ReleaseOnStop: Bool(false), Hook: "/bin/true"}},
				NAT: NAT{InternalPrefix: ula, Hairpin: true},
				LANs: []LAN{{Interface: LANIface, Subnet: 2, Mode: "stateful", Advertise: "both",
					Address: netip.MustParsePrefix("fd00:aaaa:bbbb:cc02::1/64"),
					DNS:     []netip.Addr{netip.MustParseAddr("fd00:aaaa:bbbb:cc02::1"), netip.MustParseAddr("2001:db8::53")},
					Domains: []string{"lan.example", "b.example"}, PDLength: 60}},
				HA: &HA{Mode: "vrrp", VRID: 51, Priority: 150, Interface: LANIface, AdvertInterval: 500 * time.Millisecond,
					VirtualLinkLocal: netip.MustParseAddr("fe80::1"), WANMAC: "02:00:5e:00:01:33", SyncKey: "lab-test-secret-lab-test-secret"},
				DAD: &DAD{HealLinkLocal: Bool(false), RetryMin: time.Second, RetryMax: 4 * time.Second},
			},
			check: func(t *testing.T, c *configs.Config) {
				w := c.WAN()
				if w.IAID != 7 || w.PrefixLength != 56 || !w.RapidCommit || w.ReleaseOnStop || w.Hook != "/bin/true" {
					t.Errorf("WAN = %+v", w)
				}
				l := c.LANs[0]
				if l.Subnet != 2 || l.Mode != configs.ModeStateful || len(l.DNS) != 2 || len(l.Domains) != 2 {
					t.Errorf("LAN = %+v", l)
				}
				if c.HA == nil || c.HA.VRID != 51 || c.HA.Priority != 150 || c.HA.AdvertInterval != 500*time.Millisecond {
					t.Errorf("HA = %+v", c.HA)
				}
				if c.DAD.HealLinkLocal || c.DAD.RetryMin != time.Second || c.DAD.RetryMax != 4*time.Second {
					t.Errorf("DAD = %+v", c.DAD)
				}
			},
		},
		{
			name: "two uplinks are [[wan]] tables, probed",
			c: Config{
				WANs: []WAN{
					{Interface: "wan0", Priority: 10, IAID: 1, PrefixLength: 56, Check: InternetAddr},
					{Interface: "wan1", Priority: 20, IAID: 2, PrefixLength: 56, Check: InternetAddr},
				},
				NAT:  NAT{InternalPrefix: ula},
				LANs: []LAN{{Interface: LANIface, Subnet: 1, Mode: "slaac", Advertise: "internal"}},
			},
			check: func(t *testing.T, c *configs.Config) {
				if len(c.WANs) != 2 || c.WANs[1].Interface != "wan1" || c.WANs[1].Priority != 20 || c.WANs[1].Check != InternetAddr {
					t.Errorf("WANs = %+v", c.WANs)
				}
			},
		},
		{
			name: "an externally driven HA node, DAD healing on",
			c: Config{
				WANs: []WAN{{Interface: WANIface, PrefixLength: 56, ReleaseOnStop: Bool(false)}},
				NAT:  NAT{InternalPrefix: ula},
				LANs: []LAN{lan},
				HA:   &HA{Mode: "external", Interface: LANIface, VirtualLinkLocal: netip.MustParseAddr("fe80::1"), WANMAC: "02:00:5e:00:01:33", SyncKey: "lab-test-secret-lab-test-secret"},
				DAD:  &DAD{HealLinkLocal: Bool(true)},
			},
			check: func(t *testing.T, c *configs.Config) {
				if c.HA == nil || c.HA.Mode != "external" {
					t.Errorf("HA = %+v", c.HA)
				}
				if !c.DAD.HealLinkLocal {
					t.Errorf("DAD = %+v, want heal_link_local", c.DAD)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.c.TOML()
			c, err := configs.Parse("test.toml", []byte(text))
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, text)
			}
			tt.check(t, c)
			// What RunDaemon writes parses too.
			if _, err := configs.Parse("test.toml", []byte(WithControl(text, "/run/x.sock", "/run/x"))); err != nil {
				t.Errorf("Parse(WithControl): %v", err)
			}
		})
	}
}

func TestConfigTOMLText(t *testing.T) {
	c := Config{
		WANs: []WAN{{Interface: "wan0", DUID: "ll", IAID: 1, PrefixLength: 56}},
		NAT:  NAT{InternalPrefix: netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/56"), Hairpin: true},
		LANs: []LAN{{Interface: "lan0", Subnet: 1, Mode: "slaac", Advertise: "internal",
			DNS: []netip.Addr{netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1")}, Domains: []string{"lan.example"}}},
	}
	want := `[wan]
interface = "wan0"
duid = "ll"
iaid = 1
prefix_length = 56

[nat]
internal_prefix = "fd00:aaaa:bbbb:cc00::/56"
hairpin = true

[[lan]]
interface = "lan0"
subnet = 1
mode = "slaac"
advertise = "internal"
dns = ["fd00:aaaa:bbbb:cc01::1"]
domains = ["lan.example"]
`
	if diff := cmp.Diff(want, c.TOML()); diff != "" {
		t.Errorf("TOML (-want +got):\n%s", diff)
	}
}

func TestConfigTOMLRefusesWhatItCannotQuote(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "printable ASCII") {
			t.Errorf("recover() = %v, want a panic about printable ASCII", r)
		}
	}()
	_ = Config{WANs: []WAN{{Interface: "wan0", Hook: "/tmp/\x01"}}}.TOML()
}
