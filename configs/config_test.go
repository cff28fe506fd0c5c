package configs

import (
	"errors"
	"math/rand"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// base is a valid config whose last table is the first [[lan]] (lines 5-7),
// so keys appended to it land in lan[0] from line 8 on.
const base = `[wan]
interface = "wan0"
[nat]
internal_prefix = "fd00:aaaa:bbbb:cc00::/56"
[[lan]]
interface = "lan0"
subnet = 1
`

var equateNetip = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

func TestParseExamples(t *testing.T) {
	examples := Examples()
	for _, name := range []string{"minimal.toml", "reference.toml", "demo.toml", "ha.toml", "multihome.toml", "routed.toml"} {
		t.Run(name+" parses without errors", func(t *testing.T) {
			text, ok := examples[name]
			if !ok {
				t.Fatalf("%s is not embedded", name)
			}
			if _, err := Parse(name, []byte(text)); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
	if len(examples) != 6 {
		t.Errorf("Examples() has %d files, want 6", len(examples))
	}
}

// TestReferenceHasEveryKey guards the promise that reference.toml shows
// every key: each key the reader asks for must appear in it.
func TestReferenceHasEveryKey(t *testing.T) {
	ref := Examples()["reference.toml"]
	ix := indexLines([]byte(ref))
	for _, key := range []string{
		"wan.interface", "wan.duid", "wan.duid_mac", "wan.iaid", "wan.prefix_length", "wan.rapid_commit",
		"wan.release_on_stop", "wan.priority", "wan.check", "wan.hook", "wan.request_address",
		"nat.internal_prefix", "nat.hairpin", "nat.remove_on_stop", "nat.sub_prefix",
		"lan[0].interface", "lan[0].subnet", "lan[0].mode", "lan[0].managed", "lan[0].other", "lan[0].advertise",
		"lan[0].address", "lan[0].dns", "lan[0].domains", "lan[0].pd.length", "lan[0].pd.count",
		"lan[0].ra.min_interval", "lan[0].ra.max_interval", "lan[0].ra.router_lifetime", "lan[0].ra.preference",
		"lan[0].ra.hop_limit", "lan[0].ra.reachable_time", "lan[0].ra.retrans_timer", "lan[0].ra.mtu",
		"lan[0].ra.preferred", "lan[0].ra.valid", "lan[0].ra.final_ra", "lan[0].ra.routes",
		"ha.mode", "ha.vrid", "ha.priority", "ha.interface", "ha.advert_interval", "ha.preempt", "ha.preempt_delay",
		"ha.virtual_link_local", "ha.wan_mac", "ha.sync_key",
		"dad.heal_link_local", "dad.retry_min", "dad.retry_max",
		"control.socket", "control.state_dir", "control.metrics", "control.socket_group",
	} {
		if _, ok := ix[key]; !ok {
			t.Errorf("reference.toml lacks %s", key)
		}
	}
}

func TestDefault(t *testing.T) {
	c, err := Parse("demo.toml", []byte(Default()))
	if err != nil {
		t.Fatalf("Parse(Default()): %v", err)
	}
	if got, want := c.WAN().Interface, "wan0"; got != want {
		t.Errorf("WAN().Interface = %q, want %q", got, want)
	}
	if got, want := c.NAT.InternalPrefix, netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/56"); got != want {
		t.Errorf("NAT.InternalPrefix = %v, want %v", got, want)
	}
	if !strings.HasPrefix(c.Control.Socket, "/run/v6edge-demo/") || !strings.HasPrefix(c.Control.StateDir, "/run/v6edge-demo/") {
		t.Errorf("control paths %q, %q are not under /run/v6edge-demo", c.Control.Socket, c.Control.StateDir)
	}
}

func TestDefaultsOfMinimal(t *testing.T) {
	c, err := Parse("minimal.toml", []byte(Examples()["minimal.toml"]))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		WANs: []WAN{{Interface: "wan0", DUIDKind: DUIDLL, IAID: 1, PrefixLength: 56, RequestAddress: AddressTry, Priority: 0}},
		NAT:  NAT{InternalPrefix: netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/56"), Hairpin: true},
		LANs: []LAN{{
			Interface: "lan0", Subnet: 1, Mode: ModeSLAAC, Autonomous: true, Advertise: AdvertiseInternal,
			RA: RA{
				MinInterval: 200 * time.Second, MaxInterval: 600 * time.Second, RouterLifetime: 1800 * time.Second,
				Preference: "medium", HopLimit: 64, Preferred: 2700 * time.Second, Valid: 5400 * time.Second, FinalRA: true,
			},
		}},
		DAD:     DAD{RetryMin: 5 * time.Second, RetryMax: 5 * time.Minute},
		Control: Control{Socket: "/run/v6edge/v6edge.sock", StateDir: "/var/lib/v6edge"},
	}
	if diff := cmp.Diff(want, c, equateNetip); diff != "" {
		t.Errorf("minimal config (-want +got):\n%s", diff)
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		got   func(*Config) any
		want  any
	}{
		{"min_interval is a third of a given max_interval", "ra = { max_interval = \"30s\" }", func(c *Config) any { return c.LANs[0].RA.MinInterval }, 10 * time.Second},
		{"min_interval is three quarters of a max_interval under 9s", "ra = { max_interval = 4 }", func(c *Config) any { return c.LANs[0].RA.MinInterval }, 3 * time.Second},
		{"router_lifetime is three times max_interval", "ra = { max_interval = \"100s\" }", func(c *Config) any { return c.LANs[0].RA.RouterLifetime }, 300 * time.Second},
		{"router_lifetime follows the largest max_interval", "ra = { max_interval = \"1800s\" }", func(c *Config) any { return c.LANs[0].RA.RouterLifetime }, 5400 * time.Second},
		{"integers are seconds", "ra = { valid = 6000, preferred = 600 }", func(c *Config) any { return c.LANs[0].RA.Preferred }, 600 * time.Second},
		{"pd count defaults to 1", "pd = { length = 60 }", func(c *Config) any { return *c.LANs[0].PD }, LANPD{Length: 60, Count: 1}},
		{"domains lose their trailing dot", "domains = [\"lan.example.\"]", func(c *Config) any { return c.LANs[0].Domains }, []string{"lan.example"}},
		{"standalone sends a final RA", "", func(c *Config) any { return c.LANs[0].RA.FinalRA }, true},
		{"standalone has no HA", "", func(c *Config) any { return c.HA == nil }, true},
		{"duid en builds the whole DUID", "", func(c *Config) any { return c.WANs[0].DUIDRaw }, []byte(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(base+tt.extra))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, tt.got(c)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestHADefaults(t *testing.T) {
	c, err := Parse("t.toml", []byte(base+"[ha]\nvrid = 7\ninterface = \"lan0\"\nvirtual_link_local = \"fe80::1\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &HA{Mode: "vrrp", VRID: 7, Priority: 100, Interface: "lan0", AdvertInterval: time.Second, Preempt: true,
		VirtualLinkLocal: netip.MustParseAddr("fe80::1")}
	if diff := cmp.Diff(want, c.HA, equateNetip); diff != "" {
		t.Errorf("HA (-want +got):\n%s", diff)
	}
	if c.LANs[0].RA.FinalRA {
		t.Error("FinalRA is true with [ha]; want it forced false")
	}
}

func TestModeFlags(t *testing.T) {
	tests := []struct {
		name                      string
		extra                     string
		managed, other, autonomus bool
	}{
		{"slaac sets only A", `mode = "slaac"`, false, false, true},
		{"stateless sets A and O", `mode = "stateless"`, false, true, true},
		{"stateful sets M, not O or A (SPEC.md, OpenStack dhcpv6-stateful)", `mode = "stateful"`, true, false, false},
		{"managed overrides the mode", "mode = \"slaac\"\nmanaged = true", true, false, true},
		{"other overrides the mode", "mode = \"stateful\"\nother = true", true, true, false},
		{"no mode means slaac", "", false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(base+tt.extra+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			l := c.LANs[0]
			got := [3]bool{l.Managed, l.Other, l.Autonomous}
			want := [3]bool{tt.managed, tt.other, tt.autonomus}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("[M O A] (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDUID(t *testing.T) {
	tests := []struct {
		name string
		duid string
		kind DUIDKind
		raw  []byte
	}{
		{"ll is the default kind", `"ll"`, DUIDLL, nil},
		{"llt is kept for run time", `"llt"`, DUIDLLT, nil},
		{"en builds type 2, enterprise and id", `"en:32473:0a0b0c"`, DUIDEN, []byte{0, 2, 0, 0, 0x7e, 0xd9, 0x0a, 0x0b, 0x0c}},
		{"en accepts a colon-separated id", `"en:1:0a:0b"`, DUIDEN, []byte{0, 2, 0, 0, 0, 1, 0x0a, 0x0b}},
		{"raw hex is taken byte for byte", `"00:03:00:01:02:00:5e:00:01:33"`, DUIDRaw, []byte{0, 3, 0, 1, 2, 0, 0x5e, 0, 1, 0x33}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte("[wan]\ninterface = \"wan0\"\nduid = "+tt.duid+"\n"+strings.TrimPrefix(base, "[wan]\ninterface = \"wan0\"\n")))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.kind, c.WANs[0].DUIDKind); diff != "" {
				t.Errorf("kind (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.raw, c.WANs[0].DUIDRaw); diff != "" {
				t.Errorf("bytes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMultihome(t *testing.T) {
	c, err := Parse("multihome.toml", []byte(Examples()["multihome.toml"]))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.WANs); got != 2 {
		t.Fatalf("len(WANs) = %d, want 2", got)
	}
	if got := c.WAN().Interface; got != "wan0" {
		t.Errorf("preferred uplink = %q, want wan0", got)
	}
	if diff := cmp.Diff(net.HardwareAddr{2, 0, 0x5e, 0, 2, 1}, c.WANs[1].DUIDMAC); diff != "" {
		t.Errorf("wan[1] DUIDMAC (-want +got):\n%s", diff)
	}

	t.Run("the lowest priority wins wherever it is in the file", func(t *testing.T) {
		c, err := Parse("t.toml", []byte(`[[wan]]
interface = "wan0"
priority = 30
[[wan]]
interface = "wan1"
[[wan]]
interface = "wan2"
priority = 5
`+strings.TrimPrefix(base, "[wan]\ninterface = \"wan0\"\n")))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.WAN().Interface; got != "wan2" {
			t.Errorf("WAN() = %q, want wan2", got)
		}
		var got []uint32
		for _, w := range c.WANs {
			got = append(got, w.IAID)
		}
		if diff := cmp.Diff([]uint32{1, 2, 3}, got); diff != "" {
			t.Errorf("default IAIDs (-want +got):\n%s", diff)
		}
		if p := c.WANs[1].Priority; p != 10 {
			t.Errorf("default priority of the second uplink = %d, want 10", p)
		}
	})
}

// TestBadConfigs asserts the key and the line of each problem, and a
// fragment of its message.
func TestBadConfigs(t *testing.T) {
	tests := []struct {
		name string
		text string
		line int
		key  string
		msg  string
	}{
		{"an unknown key in [wan] is reported with a suggestion",
			"[wan]\ninterface = \"wan0\"\nprefix_lenght = 56\n" + base[len("[wan]\ninterface = \"wan0\"\n"):],
			3, "wan.prefix_lenght", `did you mean "prefix_length"`},
		{"an unknown key in the second [[lan]] names that lan",
			base + "[[lan]]\ninterface = \"lan1\"\nsubnet = 2\nbogus = true\n",
			11, "lan[1].bogus", "unknown key"},
		{"an unknown top-level table is reported",
			base + "[foo]\nbar = 1\n", 8, "foo", "unknown key"},
		{"an unknown key in [lan.ra] of the second lan names that lan",
			base + "[[lan]]\ninterface = \"lan1\"\nsubnet = 2\n[lan.ra]\nmax_interval = 60\nfoo = 1\n",
			13, "lan[1].ra.foo", "unknown key"},
		{"a string where an integer belongs is a type error",
			base + "[[lan]]\ninterface = \"lan1\"\nsubnet = \"2\"\n", 10, "lan[1].subnet", `must be an integer (got string "2")`},
		{"a string where a boolean belongs is a type error",
			"[wan]\ninterface = \"wan0\"\nrapid_commit = \"yes\"\n" + base[len("[wan]\ninterface = \"wan0\"\n"):],
			3, "wan.rapid_commit", "must be true or false"},
		{"an unknown request_address is reported with the values",
			"[wan]\ninterface = \"wan0\"\nrequest_address = \"maybe\"\n" + base[len("[wan]\ninterface = \"wan0\"\n"):],
			3, "wan.request_address", `must be "try", "require" or "never" (got "maybe")`},
		{"a boolean request_address is a type error",
			"[wan]\ninterface = \"wan0\"\nrequest_address = true\n" + base[len("[wan]\ninterface = \"wan0\"\n"):],
			3, "wan.request_address", "must be a string"},
		{"a table where a string belongs is a type error",
			base + "[lan.mode]\nx = 1\n", 8, "lan[0].mode", "must be a string (got a table)"},
		{"an unparsable prefix is reported",
			"[wan]\ninterface = \"wan0\"\n[nat]\ninternal_prefix = \"fd00::/200\"\n[[lan]]\ninterface = \"lan0\"\nsubnet = 1\n",
			4, "nat.internal_prefix", "is not an IPv6 prefix"},
		{"a global internal prefix is not a ULA",
			"[wan]\ninterface = \"wan0\"\n[nat]\ninternal_prefix = \"2001:db8::/56\"\n[[lan]]\ninterface = \"lan0\"\nsubnet = 1\n",
			4, "nat.internal_prefix", "must be a unique local prefix"},
		{"host bits in the internal prefix are named",
			"[wan]\ninterface = \"wan0\"\n[nat]\ninternal_prefix = \"fd00:aaaa:bbbb:cc01::/56\"\n[[lan]]\ninterface = \"lan0\"\nsubnet = 1\n",
			4, "nat.internal_prefix", "did you mean fd00:aaaa:bbbb:cc00::/56?"},
		{"a subnet beyond the internal prefix is out of range",
			"[wan]\ninterface = \"wan0\"\nprefix_length = 48\n[nat]\ninternal_prefix = \"fd00::/48\"\n[[lan]]\ninterface = \"lan0\"\nsubnet = 70000\n",
			8, "lan[0].subnet", "must be between 0 and 65535 (got 70000)"},
		{"a subnet beyond the delegated prefix hint is out of range",
			"[wan]\ninterface = \"wan0\"\nprefix_length = 60\n[[lan]]\ninterface = \"lan0\"\nadvertise = \"external\"\nsubnet = 16\n",
			7, "lan[0].subnet", "must be between 0 and 15 (got 16): a /60 delegated prefix (wan.prefix_length)"},
		{"an internal prefix shorter than the hint names both keys",
			"[wan]\ninterface = \"wan0\"\n[nat]\ninternal_prefix = \"fd00::/48\"\n[[lan]]\ninterface = \"lan0\"\nsubnet = 1\n",
			4, "nat.internal_prefix", "/48 is shorter than wan.prefix_length /56"},
		{"a sub_prefix beyond the delegated prefix is out of range",
			"[wan]\ninterface = \"wan0\"\nprefix_length = 48\n[nat]\ninternal_prefix = \"fd00::/56\"\nsub_prefix = 256\n[[lan]]\ninterface = \"lan0\"\nsubnet = 1\n",
			6, "nat.sub_prefix", "must be between 0 and 255 (got 256)"},
		{"a LAN interface used twice is reported at the second",
			base + "[[lan]]\ninterface = \"lan0\"\nsubnet = 2\n", 9, "lan[1].interface", "already the interface of lan[0]"},
		{"two LANs on one subnet are reported at the second",
			base + "[[lan]]\ninterface = \"lan1\"\nsubnet = 1\n", 10, "lan[1].subnet", "already the subnet of lan[0]"},
		{"the uplink cannot also be a LAN",
			base + "[[lan]]\ninterface = \"wan0\"\nsubnet = 2\n", 9, "lan[1].interface", "is the uplink of wan"},
		{"an unknown mode is reported",
			base + "mode = \"dhcp\"\n", 8, "lan[0].mode", `must be "slaac", "stateless" or "stateful" (got "dhcp")`},
		{"an unknown advertise value is reported",
			base + "advertise = \"global\"\n", 8, "lan[0].advertise", `(got "global")`},
		{"a multicast DNS server is reported at its element",
			base + "dns = [\n  \"fd00:aaaa:bbbb:cc01::1\",\n  \"ff02::1\",\n]\n", 10, "lan[0].dns[1]", "must be a unicast address"},
		{"an IPv4 DNS server is reported",
			base + "dns = [\"192.0.2.53\"]\n", 8, "lan[0].dns[0]", "must be an IPv6 address"},
		{"a DNS entry of the wrong type is reported at its element",
			base + "dns = [\"fd00::1\",\n 53]\n", 9, "lan[0].dns[1]", "must be a string (got integer 53)"},
		{"an invalid domain is reported",
			base + "domains = [\"lan.example\", \"bad_name.example\"]\n", 8, "lan[0].domains[1]", "not a valid domain name"},
		{"an unparsable duration names the key",
			base + "[lan.ra]\nmax_interval = \"10 minutes\"\n", 9, "lan[0].ra.max_interval", `must be a duration such as "10s"`},
		{"min_interval above three quarters of max is out of range",
			base + "ra = { min_interval = \"500s\", max_interval = \"600s\" }\n", 8, "lan[0].ra.min_interval", "0.75 × max_interval = 7m30s"},
		{"an MTU under 1280 in an inline ra table is reported",
			base + "ra = { mtu = 1000 }\n", 8, "lan[0].ra.mtu", "between 1280 and 65535"},
		{"preferred above valid is reported",
			base + "[lan.ra]\npreferred = \"2h\"\nvalid = \"1h\"\n", 9, "lan[0].ra.preferred", "must not exceed valid 1h0m0s"},
		{"a fractional router lifetime is reported",
			base + "[lan.ra]\nrouter_lifetime = \"1800.5s\"\n", 9, "lan[0].ra.router_lifetime", "whole number of seconds"},
		{"a pd length not longer than the hint is reported in the inline table",
			base + "pd = { length = 56 }\n", 8, "lan[0].pd.length", "must be longer than the delegated prefix"},
		{"a router address outside the LAN's /64 is reported",
			base + "address = \"fd00:aaaa:bbbb:cc02::1/64\"\n", 8, "lan[0].address", "outside this LAN's internal /64 fd00:aaaa:bbbb:cc01::/64"},
		{"an interface name of 16 bytes is too long",
			base + "[[lan]]\ninterface = \"averyveryverylong\"\nsubnet = 2\n", 9, "lan[1].interface", "at most 15"},
		{"an interface name with a slash is invalid",
			"[wan]\ninterface = \"wan/0\"\n" + base[len("[wan]\ninterface = \"wan0\"\n"):], 2, "wan.interface", "no '/'"},
		{"a missing LAN interface is reported at its block",
			base + "[[lan]]\nsubnet = 2\n", 8, "lan[1].interface", "required"},
		{"a config without LANs is reported",
			"[wan]\ninterface = \"wan0\"\n[nat]\ninternal_prefix = \"fd00::/56\"\n", 0, "lan", "at least one LAN"},
		{"NAT is required when a LAN advertises the internal prefix",
			"[wan]\ninterface = \"wan0\"\n[[lan]]\ninterface = \"lan0\"\nsubnet = 1\nadvertise = \"internal\"\n", 0, "nat.internal_prefix", "required"},
		{"the HA interface must be a LAN",
			base + "[ha]\nvrid = 1\ninterface = \"lan9\"\nvirtual_link_local = \"fe80::1\"\n", 10, "ha.interface", "not the interface of any [[lan]]"},
		{"release_on_stop is refused in an HA pair",
			"[wan]\ninterface = \"wan0\"\nrelease_on_stop = true\n" + base[len("[wan]\ninterface = \"wan0\"\n"):] +
				"[ha]\nvrid = 1\ninterface = \"lan0\"\nvirtual_link_local = \"fe80::1\"\n", 3, "wan.release_on_stop", "must not be true with [ha]"},
		{"final_ra is refused in an HA pair",
			base + "ra = { final_ra = true }\n[ha]\nvrid = 1\ninterface = \"lan0\"\nvirtual_link_local = \"fe80::1\"\n", 8, "lan[0].ra.final_ra", "must not be true with [ha]"},
		{"a virtual address outside fe80::/10 is reported",
			base + "[ha]\nvrid = 1\ninterface = \"lan0\"\nvirtual_link_local = \"fd00::1\"\n", 11, "ha.virtual_link_local", "must be a link-local address"},
		{"an advert interval that is not whole centiseconds is reported",
			base + "[ha]\nvrid = 1\ninterface = \"lan0\"\nvirtual_link_local = \"fe80::1\"\nadvert_interval = \"15ms\"\n", 12, "ha.advert_interval", "multiple of 10ms"},
		{"HA priority 255 is reserved",
			base + "[ha]\nvrid = 1\npriority = 255\ninterface = \"lan0\"\nvirtual_link_local = \"fe80::1\"\n", 10, "ha.priority", "reserved for the address owner"},
		{"a multicast wan_mac is reported",
			base + "[ha]\nvrid = 1\ninterface = \"lan0\"\nvirtual_link_local = \"fe80::1\"\nwan_mac = \"01:00:5e:00:00:01\"\n", 12, "ha.wan_mac", "group bit"},
		{"a duplicate IAID among uplinks is reported at the second",
			"[[wan]]\ninterface = \"wan0\"\n[[wan]]\ninterface = \"wan1\"\niaid = 1\n" + base[len("[wan]\ninterface = \"wan0\"\n"):],
			5, "wan[1].iaid", "already the IAID of wan[0]"},
		{"a duplicate priority among uplinks is reported at the second",
			"[[wan]]\ninterface = \"wan0\"\npriority = 5\n[[wan]]\ninterface = \"wan1\"\npriority = 5\n" + base[len("[wan]\ninterface = \"wan0\"\n"):],
			6, "wan[1].priority", "already the priority of wan[0]"},
		{"[wan] and [[wan]] together are refused",
			base + "[[wan]]\ninterface = \"wan1\"\n", 8, "wan", "cannot both be used"},
		{"a link-local check address is not global unicast",
			"[wan]\ninterface = \"wan0\"\ncheck = \"fe80::1\"\n" + base[len("[wan]\ninterface = \"wan0\"\n"):],
			3, "wan.check", "must be a global unicast address"},
		{"a multicast check address is not global unicast",
			"[wan]\ninterface = \"wan0\"\ncheck = \"ff02::2\"\n" + base[len("[wan]\ninterface = \"wan0\"\n"):],
			3, "wan.check", "must be a global unicast address"},
		{"a raw DUID of an unknown type is reported",
			"[wan]\ninterface = \"wan0\"\nduid = \"00:07:00:01:02\"\n" + base[len("[wan]\ninterface = \"wan0\"\n"):],
			3, "wan.duid", "DUID type 7 is not one of"},
		{"a DUID that is neither a kind nor hex is reported",
			"[wan]\ninterface = \"wan0\"\nduid = \"uuid\"\n" + base[len("[wan]\ninterface = \"wan0\"\n"):],
			3, "wan.duid", `must be "ll", "llt"`},
		{"a DUID longer than 130 bytes is reported",
			"[wan]\ninterface = \"wan0\"\nduid = \"00:02" + strings.Repeat(":aa", 129) + "\"\n" + base[len("[wan]\ninterface = \"wan0\"\n"):],
			3, "wan.duid", "at most 130 bytes"},
		{"an uplink interface used twice is reported at the second",
			"[[wan]]\ninterface = \"wan0\"\n[[wan]]\ninterface = \"wan0\"\n" + base[len("[wan]\ninterface = \"wan0\"\n"):],
			4, "wan[1].interface", "already the interface of wan[0]"},
		{"a relative hook path is reported",
			"[wan]\ninterface = \"wan0\"\nhook = \"hook.sh\"\n" + base[len("[wan]\ninterface = \"wan0\"\n"):],
			3, "wan.hook", "absolute path"},
		{"a prefix_length over 64 is reported",
			"[wan]\ninterface = \"wan0\"\nprefix_length = 65\n" + base[len("[wan]\ninterface = \"wan0\"\n"):],
			3, "wan.prefix_length", "between 1 and 64"},
		{"a route with host bits is reported at its element",
			base + "ra = { routes = [\"fd00::/48\", \"fd01::1/48\"] }\n", 8, "lan[0].ra.routes[1]", "did you mean fd01::/48?"},
		{"a pd count beyond the sub-prefixes available is reported",
			base + "pd = { length = 58, count = 5 }\n", 8, "lan[0].pd.count", "between 1 and 4"},
		{"a hop limit over 255 is reported",
			base + "[lan.ra]\nhop_limit = 256\n", 9, "lan[0].ra.hop_limit", "between 0 (unspecified) and 255"},
		{"a reachable time over an hour is reported",
			base + "[lan.ra]\nreachable_time = \"2h\"\n", 9, "lan[0].ra.reachable_time", "between 0 (unspecified) and 1h0m0s"},
		{"a router lifetime below max_interval is reported",
			base + "[lan.ra]\nrouter_lifetime = 60\n", 9, "lan[0].ra.router_lifetime", "must be 0 (not a default router) or between"},
		{"an unknown preference is reported",
			base + "[lan.ra]\npreference = \"urgent\"\n", 9, "lan[0].ra.preference", `(got "urgent")`},
		{"vrid 0 is reported",
			base + "[ha]\nvrid = 0\ninterface = \"lan0\"\nvirtual_link_local = \"fe80::1\"\n", 9, "ha.vrid", "between 1 and 255"},
		{"a missing vrid is reported at [ha]",
			base + "[ha]\ninterface = \"lan0\"\nvirtual_link_local = \"fe80::1\"\n", 8, "ha.vrid", "required with mode \"vrrp\""},
		{"an unknown HA mode is reported",
			base + "[ha]\nmode = \"carp\"\nvirtual_link_local = \"fe80::1\"\n", 9, "ha.mode", `must be "vrrp" or "external"`},
		{"a negative preempt delay is reported",
			base + "[ha]\nvrid = 1\ninterface = \"lan0\"\nvirtual_link_local = \"fe80::1\"\npreempt_delay = \"-1s\"\n", 12, "ha.preempt_delay", "between 0s and 1h0m0s"},
		{"retry_max below retry_min is reported",
			base + "[dad]\nretry_min = \"10s\"\nretry_max = \"5s\"\n", 10, "dad.retry_max", "must not be less than retry_min 10s"},
		{"a relative socket path is reported",
			base + "[control]\nsocket = \"v6edge.sock\"\n", 9, "control.socket", "absolute path"},
		{"a socket path too long for sun_path is reported",
			base + "[control]\nsocket = \"/" + strings.Repeat("s", 120) + "\"\n", 9, "control.socket", "at most 107"},
		{"a date where a duration belongs is a type error",
			base + "[dad]\nretry_min = 1979-05-27\n", 9, "dad.retry_min", "got a date/time"},
		{"a metrics address without a port is reported",
			base + "[control]\nmetrics = \"::1\"\n", 9, "control.metrics", "must be host:port"},
		{"a duplicate key is a syntax error with its line",
			base + "subnet = 2\n", 8, "lan[0].subnet", "already been defined"},
		{"a duplicate key in the second lan names that lan",
			base + "[[lan]]\ninterface = \"lan1\"\nsubnet = 2\nsubnet = 3\n", 11, "lan[1].subnet", "already been defined"},
		{"a table given twice is not mistaken for both forms",
			base + "[wan]\n", 8, "wan", "already been defined"},
		{"[[lan]] and [lan] together are refused",
			base + "[lan]\ninterface = \"lan1\"\n", 8, "lan", "cannot both be used"},
		{"a syntax error has its line",
			base + "mode = \n", 8, "lan[0].mode", "expected value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("v6edge.toml", []byte(tt.text))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v is not an Errors", err)
			}
			for _, e := range errs {
				if e.Key == tt.key && e.Line == tt.line && strings.Contains(e.Msg, tt.msg) {
					if e.File != "v6edge.toml" {
						t.Errorf("File = %q, want v6edge.toml", e.File)
					}
					return
				}
			}
			t.Errorf("no error at line %d key %q containing %q; got:\n%v", tt.line, tt.key, tt.msg, err)
		})
	}
}

func TestEveryErrorIsCollected(t *testing.T) {
	text := `[wan]
interface = "wan0"
iaid = "one"
[nat]
internal_prefix = "fd00::1/56"
[[lan]]
interface = "lan0"
subnet = 1
mode = "dhcp"
[[lan]]
interface = "lan1"
subnet = 1
surprise = 1
`
	_, err := Parse("v6edge.toml", []byte(text))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse error %v is not an Errors", err)
	}
	type place struct {
		Line int
		Key  string
	}
	var got []place
	for _, e := range errs {
		got = append(got, place{e.Line, e.Key})
	}
	want := []place{{3, "wan.iaid"}, {5, "nat.internal_prefix"}, {9, "lan[0].mode"}, {12, "lan[1].subnet"}, {13, "lan[1].surprise"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s\nfull:\n%v", diff, err)
	}
	var one *Error
	if !errors.As(err, &one) || one.Key != "wan.iaid" {
		t.Errorf("errors.As(*Error) = %v, want the first problem", one)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"a located error reads file:line: key: msg", &Error{File: "v6edge.toml", Line: 12, Key: "lan[0].subnet", Msg: "must be between 0 and 65535 (got 70000)"},
			"v6edge.toml:12: lan[0].subnet: must be between 0 and 65535 (got 70000)"},
		{"line 0 is left out", &Error{File: "v6edge.toml", Key: "lan", Msg: "at least one LAN is required"},
			"v6edge.toml: lan: at least one LAN is required"},
		{"an empty key is left out", &Error{File: "v6edge.toml", Line: 3, Msg: "bare keys cannot contain '!'"},
			"v6edge.toml:3: bare keys cannot contain '!'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.err.Error()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v6edge.toml")
	if err := os.WriteFile(path, []byte(base+"mode = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + ":8: lan[0].mode: "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load error = %v, want it to start with %q", err, want)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file = %v, want os.ErrNotExist", err)
	}
}

func TestIndexLines(t *testing.T) {
	src := `# comment [not.a.table]
title = "x # not a comment" # comment
[wan] # uplink
interface = 'wan0'
text = """
multi
line = "not a key"
"""
[[lan]]
interface = "lan0"
pd = { length = 60,
       count = 4 }
"quoted key" = 1
[lan.ra]
routes = [
  "fd00::/56", # first
  "fd01::/56",
]
[[lan]]
  dotted.key = 2
ra = { mtu = 1280, sub = { x = 1 } }
inline = [{a = 1}, {b = 2}]
`
	want := lineIndex{
		"title": 2, "wan": 3, "wan.interface": 4, "wan.text": 5,
		"lan": 9, "lan[0]": 9, "lan[0].interface": 10, "lan[0].pd": 11, "lan[0].pd.length": 11, "lan[0].pd.count": 12,
		"lan[0].quoted key": 13, "lan[0].ra": 14, "lan[0].ra.routes": 15, "lan[0].ra.routes[0]": 16, "lan[0].ra.routes[1]": 17,
		"lan[1]": 19, "lan[1].dotted": 20, "lan[1].dotted.key": 20, "lan[1].ra": 21, "lan[1].ra.mtu": 21, "lan[1].ra.sub": 21, "lan[1].ra.sub.x": 21,
		"lan[1].inline": 22, "lan[1].inline[0]": 22, "lan[1].inline[0].a": 22, "lan[1].inline[1]": 22, "lan[1].inline[1].b": 22,
	}
	if diff := cmp.Diff(want, indexLines([]byte(src))); diff != "" {
		t.Errorf("index (-want +got):\n%s", diff)
	}
	tests := []struct {
		path string
		want int
	}{
		{"lan[0].pd.count", 12},
		{"lan[1].subnet", 19},
		{"lan[0].ra.min_interval", 14},
		{"nat.internal_prefix", 0},
	}
	ix := indexLines([]byte(src))
	for _, tt := range tests {
		t.Run(tt.path+" falls back to its nearest ancestor", func(t *testing.T) {
			if got := ix.line(tt.path); got != tt.want {
				t.Errorf("line(%q) = %d, want %d", tt.path, got, tt.want)
			}
		})
	}
}

func TestSystemdUnitDirectives(t *testing.T) {
	unit, err := os.ReadFile("v6edge.service")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, line := range strings.Split(string(unit), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			got[k] = append(got[k], v)
		}
	}
	for _, tt := range []struct {
		key  string
		want []string
	}{
		{"Type", []string{"notify"}},
		{"ExecStart", []string{"/usr/sbin/v6edge run -config /etc/v6edge/v6edge.toml"}},
		// A bad edit is refused before the daemon is signalled.
		{"ExecReload", []string{"/usr/sbin/v6edge check -config /etc/v6edge/v6edge.toml", "/bin/kill -HUP $MAINPID"}},
		{"WatchdogSec", []string{"30s"}},
		{"Restart", []string{"on-failure"}},
		{"CapabilityBoundingSet", []string{"CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE CAP_CHOWN"}},
		{"AmbientCapabilities", []string{"CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE CAP_CHOWN"}},
		// socket_group's chown, and nothing else of @privileged.
		{"SystemCallFilter", []string{"@system-service", "~@privileged", "fchownat"}},
		{"ProtectSystem", []string{"strict"}},
		{"ProtectHome", []string{"yes"}},
		{"PrivateTmp", []string{"yes"}},
		{"StateDirectory", []string{"v6edge"}},
		{"RuntimeDirectory", []string{"v6edge"}},
		{"NoNewPrivileges", []string{"yes"}},
		{"RestrictAddressFamilies", []string{"AF_UNIX AF_INET6 AF_INET AF_NETLINK AF_PACKET"}},
	} {
		t.Run(tt.key+" is "+strings.Join(tt.want, ", "), func(t *testing.T) {
			if diff := cmp.Diff(tt.want, got[tt.key]); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.key, diff)
			}
		})
	}
}

// TestSystemdUnit checks v6edge.service with systemd-analyze when present.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	// verify wants the ExecStart binary to exist; point a copy of the unit
	// at one that does, leaving everything else as shipped.
	unit, err := os.ReadFile("v6edge.service")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no 'true' binary to stand in for /usr/sbin/v6edge")
	}
	dir := t.TempDir()
	text := strings.ReplaceAll(string(unit), "/usr/sbin/v6edge", bin)
	path := filepath.Join(dir, "v6edge.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", "--man=no", path)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=warning")
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The exposure score of the shipped unit, offline (no PID 1 needed):
	// the restrictions must keep it "OK" (below 4.0 of 10) or better.
	sec := exec.Command(analyze, "security", "--offline=yes", "--threshold=39", "--no-pager", path)
	sec.Env = cmd.Env
	if out, err := sec.CombinedOutput(); err != nil {
		if strings.Contains(string(out), "unrecognized option") {
			t.Logf("systemd-analyze security --offline is not supported here:\n%s", out)
		} else {
			t.Errorf("systemd-analyze security: %v\n%s", err, out)
		}
	} else {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Logf("systemd-analyze security: %s", lines[len(lines)-1])
	}
}

func FuzzParse(f *testing.F) {
	for _, text := range Examples() {
		f.Add([]byte(text))
	}
	f.Add([]byte(base + "[[lan]]\ninterface = \"lan1\"\nsubnet = 2\n[lan.ra]\nroutes = [\"fd00::/8\"]\n"))
	f.Add([]byte(`wan = [{interface = "w"}]` + "\n" + `lan = [{interface = "l", subnet = 0, pd = {length = 64}}]` + "\n"))
	f.Add([]byte("a = '''\nx\n'''\n[b]\n\"c.d\" = \"\"\"\"\"\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v; want exactly one", c != nil, err)
		}
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %v is not a non-empty Errors", err)
			}
			for _, e := range errs {
				if e.Line < 0 || e.Line > strings.Count(string(data), "\n")+1 {
					t.Fatalf("error line %d outside the input: %v", e.Line, e)
				}
			}
			return
		}
		if len(c.WANs) == 0 || len(c.LANs) == 0 {
			t.Fatalf("valid config without WAN or LAN: %+v", c)
		}
		if msg := invariantBroken(c); msg != "" {
			t.Fatalf("accepted config breaks an invariant: %s\n%s", msg, data)
		}
	})
}

// FuzzIndexLines feeds the line scanner text the TOML parser never
// accepted: it must neither panic nor hang.
func FuzzIndexLines(f *testing.F) {
	for _, text := range Examples() {
		f.Add([]byte(text))
	}
	f.Add([]byte("[[a.b]]\n[a.\"b\".c]\nx = [{y = \"\\\"\"}, '''\n''']\n"))
	f.Add([]byte("d = [1979-05-27 07:32:00, 2]\n\"k\\u0041\" = { 'x.y' = [[1], [2, 3]] }\n"))
	r := rand.New(rand.NewSource(1))
	junk := make([]byte, 64)
	r.Read(junk)
	f.Add(junk)
	f.Fuzz(func(t *testing.T, data []byte) {
		ix := indexLines(data)
		lines := strings.Count(string(data), "\n") + 1
		for k, l := range ix {
			if l < 1 || l > lines {
				t.Fatalf("%q at line %d outside 1..%d", k, l, lines)
			}
		}
		// Where the TOML parser accepts the text, every key and element
		// it decoded must have a line: that is what errors rely on.
		var doc map[string]any
		if _, err := toml.Decode(string(data), &doc); err != nil {
			return
		}
		for _, path := range treePaths("", doc) {
			// A top-level key named "" has the root's empty path; no
			// v6edge key can be empty, so it never needs a line.
			if _, ok := ix[path]; !ok && path != "" {
				t.Fatalf("decoded key %q has no line in the index %v", path, ix)
			}
		}
	})
}

// treePaths lists the path of every key and array element in a decoded
// TOML document, spelled as lineIndex spells them.
func treePaths(prefix string, v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := joinPath(prefix, k)
			out = append(out, p)
			out = append(out, treePaths(p, e)...)
		}
	case []map[string]any:
		for i, e := range v {
			p := indexPath(prefix, i)
			out = append(out, p)
			out = append(out, treePaths(p, e)...)
		}
	case []any:
		for i, e := range v {
			p := indexPath(prefix, i)
			out = append(out, p)
			out = append(out, treePaths(p, e)...)
		}
	}
	return out
}

// invariantBroken checks what validation promises about an accepted config.
func invariantBroken(c *Config) string {
	ifaces := map[string]bool{}
	iaids := map[uint32]bool{}
	prios := map[int]bool{}
	for _, w := range c.WANs {
		if ifaces[w.Interface] || iaids[w.IAID] || prios[w.Priority] {
			return "two uplinks share an interface, IAID or priority"
		}
		ifaces[w.Interface], iaids[w.IAID], prios[w.Priority] = true, true, true
		if w.PrefixLength < 1 || w.PrefixLength > 64 {
			return "prefix_length out of range"
		}
		if c.NAT.Enabled() && c.NAT.InternalPrefix.Bits() < w.PrefixLength {
			return "internal prefix shorter than the hint"
		}
	}
	subnets := map[int]bool{}
	for _, l := range c.LANs {
		if ifaces[l.Interface] || subnets[l.Subnet] {
			return "two links share an interface or a LAN subnet"
		}
		ifaces[l.Interface], subnets[l.Subnet] = true, true
		if c.NAT.Enabled() && l.Subnet > int(maxSubnet(c.NAT.InternalPrefix.Bits())) {
			return "subnet outside the internal prefix"
		}
		ra := l.RA
		if ra.MinInterval < 3*time.Second || ra.MinInterval*4 > ra.MaxInterval*3 || ra.Preferred > ra.Valid {
			return "RA intervals or lifetimes out of order"
		}
		if c.HA != nil && ra.FinalRA {
			return "final RA in an HA pair"
		}
	}
	if c.NAT.Enabled() && (!ula.Contains(c.NAT.InternalPrefix.Addr()) || c.NAT.InternalPrefix != c.NAT.InternalPrefix.Masked()) {
		return "internal prefix not a masked ULA"
	}
	if c.HA != nil && c.HA.Interface != "" && !isLAN(c.LANs, c.HA.Interface) {
		return "HA interface is not a LAN"
	}
	return ""
}

func TestRoutedModeDefaults(t *testing.T) {
	// No [nat]: the LANs are numbered from the delegated prefix and
	// advertise it, unless a LAN says otherwise.
	c, err := Parse("routed.toml", []byte("[wan]\ninterface = \"wan0\"\n[[lan]]\ninterface = \"lan0\"\nsubnet = 1\n[[lan]]\ninterface = \"lan1\"\nsubnet = 2\nmode = \"stateful\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.NAT.Enabled() {
		t.Error("NAT enabled without a [nat] table")
	}
	for _, l := range c.LANs {
		if l.Advertise != AdvertiseExternal {
			t.Errorf("%s advertises %q without NAT, want %q", l.Interface, l.Advertise, AdvertiseExternal)
		}
	}
	// With NAT the default stays the stable internal prefix.
	c, err = Parse("nat.toml", []byte("[wan]\ninterface = \"wan0\"\n[nat]\ninternal_prefix = \"fd00:1::/56\"\n[[lan]]\ninterface = \"lan0\"\nsubnet = 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.LANs[0].Advertise != AdvertiseInternal {
		t.Errorf("with NAT the LAN advertises %q, want %q", c.LANs[0].Advertise, AdvertiseInternal)
	}
}

func TestDNSLeftOutOrEmpty(t *testing.T) {
	c, err := Parse("dns.toml", []byte("[wan]\ninterface = \"wan0\"\n[[lan]]\ninterface = \"lan0\"\nsubnet = 1\n[[lan]]\ninterface = \"lan1\"\nsubnet = 2\ndns = []\ndomains = []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.LANs[0].DNS != nil || c.LANs[0].Domains != nil {
		t.Errorf("left out: %#v %#v, want nil (the uplink's options)", c.LANs[0].DNS, c.LANs[0].Domains)
	}
	if c.LANs[1].DNS == nil || len(c.LANs[1].DNS) != 0 || c.LANs[1].Domains == nil || len(c.LANs[1].Domains) != 0 {
		t.Errorf("written as []: %#v %#v, want empty, not nil", c.LANs[1].DNS, c.LANs[1].Domains)
	}
}
