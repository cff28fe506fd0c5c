package testbed

import (
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// netipEqual compares netip values by ==.
var netipEqual = cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})

func TestEUI64LinkLocal(t *testing.T) {
	tests := []struct {
		name string
		mac  string
		want string
	}{
		{"the lab's WAN MAC flips the universal/local bit to 0", "02:00:5e:00:01:33", "fe80::5eff:fe00:133"},
		{"a universal MAC gets the bit set", "00:11:22:33:44:55", "fe80::211:22ff:fe33:4455"},
		{"an all-ones MAC keeps ff:fe in the middle", "ff:ff:ff:ff:ff:ff", "fe80::fdff:ffff:feff:ffff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mac, err := net.ParseMAC(tt.mac)
			if err != nil {
				t.Fatal(err)
			}
			if got := EUI64LinkLocal(mac).String(); got != tt.want {
				t.Errorf("EUI64LinkLocal(%s) = %s, want %s", tt.mac, got, tt.want)
			}
		})
	}
	t.Run("an EUI-64 MAC has no 48-bit derivation", func(t *testing.T) {
		if got := EUI64LinkLocal(net.HardwareAddr{1, 2, 3, 4, 5, 6, 7, 8}); got.IsValid() {
			t.Errorf("got %s, want the zero Addr", got)
		}
	})
}

func TestMapAddr(t *testing.T) {
	pfx := netip.MustParsePrefix
	tests := []struct {
		name     string
		addr     string
		from, to netip.Prefix
		want     string
	}{
		{"a /56 map keeps subnet and interface id", "fd00:aaaa:bbbb:cc01::5", pfx("fd00:aaaa:bbbb:cc00::/56"), pfx("2001:db8:100::/56"), "2001:db8:100:1::5"},
		{"a /60 map keeps the low nibble of the subnet", "fd00:0:0:5::1", pfx("fd00::/60"), pfx("2001:db8:0:20::/60"), "2001:db8:0:25::1"},
		{"an address outside the source prefix does not map", "fd01::1", pfx("fd00::/56"), pfx("2001:db8::/56"), "invalid IP"},
		{"prefixes of different length do not map", "fd00::1", pfx("fd00::/56"), pfx("2001:db8::/48"), "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MapAddr(netip.MustParseAddr(tt.addr), tt.from, tt.to).String(); got != tt.want {
				t.Errorf("MapAddr = %s, want %s", got, tt.want)
			}
		})
	}
}

const keaCSV = `address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,hwaddr_source
2001:db8:100::,00:03:00:01:02:00:5e:00:01:33,4000,1764170000,1,3000,2,1,56,0,0,,,0,,,
2001:db8:100:100::,00:03:00:01:02:00:5e:00:01:44,4000,1764170001,1,3000,2,7,56,0,0,,,0,,,
2001:db8:0:1::10,00:03:00:01:02:00:5e:00:01:44,4000,1764170001,1,3000,0,7,128,0,0,,,0,,,
2001:db8:100::,00:03:00:01:02:00:5e:00:01:33,4000,1764170500,1,3000,2,1,56,0,0,,,0,,,
2001:db8:100:100::,00:03:00:01:02:00:5e:00:01:44,0,1764170100,1,0,2,7,56,0,0,,,0,,,
`

func TestParseKeaLeases(t *testing.T) {
	t.Run("the journal's latest line wins and released leases drop out", func(t *testing.T) {
		got, err := ParseKeaLeases([]byte(keaCSV))
		if err != nil {
			t.Fatal(err)
		}
		want := []KeaLease{
			{Type: "IA_PD", Prefix: netip.MustParsePrefix("2001:db8:100::/56"), DUID: "00:03:00:01:02:00:5e:00:01:33", IAID: 1,
				Valid: 4000 * time.Second, Preferred: 3000 * time.Second, Expire: time.Unix(1764170500, 0)},
			{Type: "IA_NA", Prefix: netip.MustParsePrefix("2001:db8:0:1::10/128"), DUID: "00:03:00:01:02:00:5e:00:01:44", IAID: 7,
				Valid: 4000 * time.Second, Preferred: 3000 * time.Second, Expire: time.Unix(1764170001, 0)},
		}
		if diff := cmp.Diff(want, got, netipEqual); diff != "" {
			t.Errorf("ParseKeaLeases (-want +got):\n%s", diff)
		}
	})
	t.Run("an empty file has no leases", func(t *testing.T) {
		got, err := ParseKeaLeases(nil)
		if err != nil || got != nil {
			t.Errorf("got %v, %v", got, err)
		}
	})
	bad := map[string]string{
		"a file without the address column is rejected": "duid,valid_lifetime\n",
		"a prefix length over 128 is rejected":          strings.Replace(keaCSV, ",2,1,56,", ",2,1,129,", 1),
		"host bits in a delegated prefix are rejected":  strings.Replace(keaCSV, "2001:db8:100::,", "2001:db8:100::1,", 1),
		"an unknown lease type is rejected":             strings.Replace(keaCSV, ",2,1,56,", ",9,1,56,", 1),
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseKeaLeases([]byte(data)); err == nil {
				t.Error("no error")
			}
		})
	}
}

func FuzzParseKeaLeases(f *testing.F) {
	f.Add([]byte(keaCSV))
	f.Add([]byte("address,duid,valid_lifetime,expire,lease_type,iaid,prefix_len\n::,x,1,1,2,1,200\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		leases, err := ParseKeaLeases(data)
		if err != nil {
			return
		}
		for _, l := range leases {
			if !l.Prefix.IsValid() || l.Valid <= 0 || l.Prefix.Masked() != l.Prefix {
				t.Fatalf("accepted an invalid lease %+v", l)
			}
		}
	})
}

const ipAddrJSON = `[{"ifindex":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"addr_info":[
{"family":"inet6","local":"fd00:aaaa:bbbb:cc01:8c1:2ff:fe3a:4b5c","prefixlen":64,"scope":"global","dynamic":true,"mngtmpaddr":true,"valid_life_time":86391,"preferred_life_time":14391},
{"family":"inet6","local":"2001:db8:0:1::99","prefixlen":64,"scope":"global","tentative":true,"deprecated":true,"valid_life_time":100,"preferred_life_time":0},
{"family":"inet6","local":"fe80::8c1:2ff:fe3a:4b5c","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]}]`

func TestParseIPAddrJSON(t *testing.T) {
	got, err := ParseIPAddrJSON([]byte(ipAddrJSON))
	if err != nil {
		t.Fatal(err)
	}
	want := []HostAddr{
		{Prefix: netip.MustParsePrefix("fd00:aaaa:bbbb:cc01:8c1:2ff:fe3a:4b5c/64"), Preferred: 14391 * time.Second, Valid: 86391 * time.Second, Dynamic: true},
		{Prefix: netip.MustParsePrefix("2001:db8:0:1::99/64"), Preferred: 0, Valid: 100 * time.Second, Tentative: true, Deprecated: true},
		{Prefix: netip.MustParsePrefix("fe80::8c1:2ff:fe3a:4b5c/64"), Preferred: Forever, Valid: Forever},
	}
	if diff := cmp.Diff(want, got, netipEqual); diff != "" {
		t.Errorf("ParseIPAddrJSON (-want +got):\n%s", diff)
	}
}

func FuzzParseIPAddrJSON(f *testing.F) {
	f.Add([]byte(ipAddrJSON))
	f.Add([]byte(`[{"addr_info":[{"family":"inet6","local":"::1","prefixlen":300}]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		addrs, err := ParseIPAddrJSON(data)
		if err != nil {
			return
		}
		for _, a := range addrs {
			if !a.Prefix.IsValid() {
				t.Fatalf("accepted an invalid prefix: %+v", a)
			}
			if _, err := json.Marshal(a); err != nil {
				t.Fatal(err)
			}
		}
	})
}

const tcpdumpOut = `reading from file /tmp/x.pcap, link-type EN10MB (Ethernet), snapshot length 262144
1764170000.123456 IP6 2001:db8:100:1:8c1:2ff:fe3a:4b5c > 2001:db8:ffff::1: ICMP6, echo request, id 7, seq 1, length 64
1764170000.223456 IP6 fe80::5eff:fe00:133.546 > ff02::1:2.547: dhcp6 solicit
1764170000.3 ARP, Request who-has 10.0.0.1
`

func TestParseTcpdump(t *testing.T) {
	got := ParseTcpdump(tcpdumpOut)
	type pkt struct {
		Time     time.Time
		Src, Dst string
	}
	var gotP []pkt
	for _, p := range got {
		gotP = append(gotP, pkt{p.Time, p.Src.String(), p.Dst.String()})
	}
	want := []pkt{
		{time.Unix(1764170000, 123456000), "2001:db8:100:1:8c1:2ff:fe3a:4b5c", "2001:db8:ffff::1"},
		{time.Unix(1764170000, 223456000), "fe80::5eff:fe00:133", "ff02::1:2"},
	}
	if diff := cmp.Diff(want, gotP); diff != "" {
		t.Errorf("ParseTcpdump (-want +got):\n%s", diff)
	}
}

func FuzzParseTcpdump(f *testing.F) {
	f.Add(tcpdumpOut)
	f.Add("1.1 IP6 ::.1 > ::1.: x")
	f.Fuzz(func(t *testing.T, out string) {
		for _, p := range ParseTcpdump(out) {
			if !p.Src.IsValid() || !p.Dst.IsValid() {
				t.Fatalf("invalid addresses from %q", p.Line)
			}
		}
	})
}

func TestWithControl(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{
			"a config without [control] gets one appended",
			"[wan]\ninterface = \"wan0\"\n",
			"[wan]\ninterface = \"wan0\"\n\n[control]\nsocket = \"/d/s.sock\"\nstate_dir = \"/d/state\"\n",
		},
		{
			"an existing [control] table is replaced and the tables after it stay",
			"[control] # paths\nsocket = \"/run/x\"\nstate_dir = \"/var/x\"\n\n[[lan]]\ninterface = \"lan0\"\n",
			"[[lan]]\ninterface = \"lan0\"\n\n[control]\nsocket = \"/d/s.sock\"\nstate_dir = \"/d/state\"\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, WithControl(tt.in, "/d/s.sock", "/d/state")); diff != "" {
				t.Errorf("WithControl (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKeaConfigIsValidJSONWithEveryPathInTheLabDir(t *testing.T) {
	b, err := keaConfig("/lab", "/lab/leases.csv", DefaultPool, Options{RapidCommit: true}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	checks := []struct{ got, want any }{
		{Get(doc, "Dhcp6", "lease-database", "name"), "/lab/leases.csv"},
		{Get(doc, "Dhcp6", "data-directory"), "/lab"},
		{Get(doc, "Dhcp6", "subnet6", 0, "rapid-commit"), true},
		{Get(doc, "Dhcp6", "renew-timer"), 1000.0},
		{Get(doc, "Dhcp6", "subnet6", 0, "pd-pools", 0, "delegated-len"), 56.0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("got %v, want %v", c.got, c.want)
		}
	}
}

func TestWithRapidCommit(t *testing.T) {
	tests := []struct {
		name, in, want string
		on             bool
	}{
		{"an existing line is rewritten", "[wan]\nrapid_commit = false\niaid = 1\n", "[wan]\nrapid_commit = true\niaid = 1\n", true},
		{"a missing line goes under [wan]", "[wan]\niaid = 1\n", "[wan]\nrapid_commit = true\niaid = 1\n", true},
		{"a [[wan]] table counts as [wan]", "[[wan]]\niaid = 1\n", "[[wan]]\nrapid_commit = false\niaid = 1\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, WithRapidCommit(tt.in, tt.on)); diff != "" {
				t.Errorf("WithRapidCommit (-want +got):\n%s", diff)
			}
		})
	}
}
