package migrate

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/v6edge/v6edge/configs"
)

func readTestdata(t *testing.T, name string) *File {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return &File{Name: name, Data: data}
}

func hasNote(notes []Note, text string) bool {
	for _, n := range notes {
		if strings.Contains(n.Text, text) {
			return true
		}
	}
	return false
}

// The seed (a wiki page: dhcpcd.conf with the nosuch0 idiom and an
// ip6tables NETMAP hook with hairpin marks).
func TestSeedDhcpcd(t *testing.T) {
	f := readTestdata(t, "seed-dhcpcd.conf")
	d, err := ParseDhcpcd(f.Name, f.Data)
	if err != nil {
		t.Fatal(err)
	}
	if d.Interface != "eth0" || !d.HasIAID || d.IAID != 1 || d.PrefixLength != 58 {
		t.Errorf("interface %q iaid %d (%v) length %d, want eth0, 1, 58", d.Interface, d.IAID, d.HasIAID, d.PrefixLength)
	}
	if len(d.Delegations) != 1 || d.Delegations[0] != (Delegation{"nosuch0", 0, 58}) {
		t.Errorf("delegations %+v, want nosuch0/0/58", d.Delegations)
	}
	if d.DUID != "llt" || !d.RapidCommit || !d.Persistent || !d.NoIPv6RS || !d.IPv6Only || d.IANA || d.Release {
		t.Errorf("%+v", d)
	}
	if d.Script != "/etc/dhcpcd-pd-script" {
		t.Errorf("script %q", d.Script)
	}
	for _, want := range []string{"hostname", "require dhcp_server_identifier", "slaac private", `clientid ""`, "noauthrequired", "option ntp_servers"} {
		if !hasNote(d.Notes, want) {
			t.Errorf("no note for %q in %v", want, d.Notes)
		}
	}
	for _, n := range d.Notes {
		if n.Text == "persistent" || n.Text == "ipv6only" || strings.HasPrefix(n.Text, "ia_pd") {
			t.Errorf("imported option noted: %v", n)
		}
	}
}

func TestSeedHook(t *testing.T) {
	f := readTestdata(t, "seed-dhcpcd-pd-script")
	h, err := ParseHook(f.Name, f.Data)
	if err != nil {
		t.Fatal(err)
	}
	// The wiki's "fc::/58" is what it says (it is not a ULA: the import
	// fails validation on it, see TestImportSeedFailsOnItsPrefix).
	if want := netip.MustParsePrefix("fc::/58"); h.InternalPrefix != want || h.ExpectedLength != 58 {
		t.Errorf("internal %v, expected length %d; want %v, 58", h.InternalPrefix, h.ExpectedLength, want)
	}
	if h.WANInterface != "eth0" || h.Tool != "ip6tables" || !h.Hairpin {
		t.Errorf("wan %q tool %q hairpin %v", h.WANInterface, h.Tool, h.Hairpin)
	}
	if len(h.Extra) != 0 {
		t.Errorf("the seed's script only does NETMAP and bookkeeping, got extra %v", h.Extra)
	}
	if h.InternalLine != 8 {
		t.Errorf("internal prefix on line %d, want 8", h.InternalLine)
	}
}

func TestHookDoingMoreIsKept(t *testing.T) {
	script := `#!/bin/sh
internal="fd00:1:2:300::/56"
case "$reason" in
BOUND6|RENEW6)
	nft add rule ip6 nat postrouting oifname "ppp0" ip6 saddr fd00:1:2:300::/56 snat ip6 prefix to $new_dhcp6_ia_pd1_prefix1/56
	systemctl reload unbound
	ip -6 route add blackhole ${new_dhcp6_ia_pd1_prefix1}/56
	;;
esac
`
	h, err := ParseHook("hook", []byte(script))
	if err != nil {
		t.Fatal(err)
	}
	if h.InternalPrefix != netip.MustParsePrefix("fd00:1:2:300::/56") || h.WANInterface != "ppp0" || h.Tool != "nft" {
		t.Errorf("%+v", h)
	}
	if len(h.Extra) != 2 || h.Extra[0].Line != 6 || h.Extra[1].Line != 7 {
		t.Errorf("extra %+v, want lines 6 and 7", h.Extra)
	}
	res, err := Import(Inputs{
		Dhcpcd:   &File{"dhcpcd.conf", []byte("interface ppp0\nia_pd 1/::/56 lan0/1\n")},
		Hook:     &File{"hook", []byte(script)},
		HookPath: "/etc/dhcpcd-hook",
		Radvd:    &File{"radvd.conf", []byte("interface lan0 { AdvSendAdvert on; prefix fd00:1:2:301::/64 {}; };\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	text := mustParse(t, res)
	if !strings.Contains(text, `hook = "/etc/dhcpcd-hook"`) {
		t.Errorf("no wan.hook:\n%s", text)
	}
}

// mustParse renders res and checks the config validates as v6edge check
// does.
func mustParse(t *testing.T, res *Result) string {
	t.Helper()
	text := res.Render()
	if _, err := configs.Parse("imported", []byte(text)); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return text
}

func TestImportSeedFailsOnItsPrefix(t *testing.T) {
	res, err := Import(Inputs{
		Dhcpcd: readTestdata(t, "seed-dhcpcd.conf"), Hook: readTestdata(t, "seed-dhcpcd-pd-script"),
		Radvd: &File{"radvd.conf", []byte("interface eth1 {\n\tAdvSendAdvert on;\n\tprefix fc:0:0:1::/64 { };\n};\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	text := res.Render()
	_, err = configs.Parse("imported", []byte(text))
	if err == nil || !strings.Contains(err.Error(), "nat.internal_prefix") {
		t.Fatalf("want the validation error on fc::/58, got %v\n%s", err, text)
	}
	// With the prefix the wiki meant, the same files import.
	fixed := strings.ReplaceAll(string(readTestdata(t, "seed-dhcpcd-pd-script").Data), "fc::/58", "fd00::/58")
	res, err = Import(Inputs{
		Dhcpcd: readTestdata(t, "seed-dhcpcd.conf"), Hook: &File{"script", []byte(fixed)},
		Radvd: &File{"radvd.conf", []byte("interface eth1 {\n\tAdvSendAdvert on;\n\tprefix fd00:0:0:1::/64 { };\n};\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	text = mustParse(t, res)
	for _, want := range []string{`interface = "eth0"`, "prefix_length = 58", "rapid_commit = true", `internal_prefix = "fd00::/58"`, "hairpin = true", "subnet = 1", "# not imported: hostname (seed-dhcpcd.conf:8)"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
}

// The incumbent single router of the lab: everything has an equivalent.
func TestImportIncumbent(t *testing.T) {
	res, err := Import(Inputs{
		Dhcpcd: readTestdata(t, "incumbent-dhcpcd.conf"), Hook: readTestdata(t, "incumbent-hook.sh"),
		Radvd: readTestdata(t, "incumbent-radvd.conf"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) != 0 {
		t.Errorf("notes %v, want none", res.Notes)
	}
	c, err := configs.Parse("imported", []byte(res.Render()))
	if err != nil {
		t.Fatal(err)
	}
	w := c.WAN()
	if w.Interface != "wan0" || w.IAID != 1 || w.PrefixLength != 56 || c.NAT.InternalPrefix != netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/56") {
		t.Errorf("wan %+v nat %+v", w, c.NAT)
	}
	if len(c.LANs) != 1 || c.LANs[0].Interface != "lan0" || c.LANs[0].Subnet != 1 || c.LANs[0].Managed || c.LANs[0].Other {
		t.Errorf("lans %+v", c.LANs)
	}
	if c.HA != nil {
		t.Errorf("ha %+v", c.HA)
	}
}

// The incumbent pair's node: [ha] from keepalived.conf and the MAC its
// notify script moves.
func TestImportIncumbentPair(t *testing.T) {
	notify := readTestdata(t, "pairinc-notify.sh")
	read := func(p string) ([]byte, error) {
		if p == "/etc/pairinc/notify.sh" {
			return notify.Data, nil
		}
		return nil, os.ErrNotExist
	}
	in := Inputs{
		Dhcpcd: readTestdata(t, "pairinc-dhcpcd.conf"), Hook: readTestdata(t, "pairinc-dhcpcd-hook.sh"),
		Radvd: readTestdata(t, "pairinc-radvd.conf"), Keepalived: readTestdata(t, "pairinc-keepalived.conf"), ReadFile: read,
	}
	res, err := Import(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) != 0 {
		t.Errorf("notes %v, want none", res.Notes)
	}
	c, err := configs.Parse("imported", []byte(res.Render()))
	if err != nil {
		t.Fatal(err)
	}
	ha := c.HA
	if ha == nil || ha.VRID != 51 || ha.Priority != 150 || ha.Interface != "lan0" || ha.VirtualLinkLocal != netip.MustParseAddr("fe80::1") || ha.WANMAC.String() != "02:00:5e:00:01:33" {
		t.Fatalf("ha %+v", ha)
	}
	if c.LANs[0].Address != netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::1/64") {
		t.Errorf("lan address %v", c.LANs[0].Address)
	}

	in.KeepKeepalived, in.V6edge = true, "/usr/sbin/v6edge"
	res, err = Import(in)
	if err != nil {
		t.Fatal(err)
	}
	c, err = configs.Parse("imported", []byte(res.Render()))
	if err != nil {
		t.Fatal(err)
	}
	if c.HA == nil || c.HA.Mode != "external" {
		t.Fatalf("ha %+v", c.HA)
	}
	want := `notify_master "/usr/sbin/v6edge ha master"`
	if len(res.NotifyLines) != 3 || res.NotifyLines[0] != want {
		t.Errorf("notify lines %q, want %q first", res.NotifyLines, want)
	}
}

// Debian's radvd examples.
func TestDebianRadvd(t *testing.T) {
	f := readTestdata(t, "debian-radvd.conf.example")
	r, err := ParseRadvd(f.Name, f.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Interfaces) != 1 {
		t.Fatalf("%d interfaces", len(r.Interfaces))
	}
	ifc := r.Interfaces[0]
	if ifc.Name != "lo" || len(ifc.Prefixes) != 2 || len(ifc.Routes) != 1 || len(ifc.RDNSS) != 1 || len(ifc.DNSSL) != 1 {
		t.Errorf("%+v", ifc)
	}
	res, err := Import(Inputs{Dhcpcd: &File{"dhcpcd.conf", []byte("interface eth0\nia_pd 1 lo/0\n")}, Radvd: f})
	if err != nil {
		t.Fatal(err)
	}
	text := mustParse(t, res)
	for _, want := range []string{`advertise`, `dns = ["2001:db8::1", "2001:db8::2"]`, `domains = ["branch.example.com", "example.com"]`,
		`routes = ["2001:db0:fff::/48"]`, `preference = "low"`, `max_interval = "10s"`, `min_interval = "3s"`,
		"# not imported: prefix 0:0:0:1234::/64", "# not imported: AdvRoutePreference high", "# not imported: AdvRDNSSLifetime 30"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
	s := readTestdata(t, "debian-simple-radvd.conf")
	if _, err := ParseRadvd(s.Name, s.Data); err != nil {
		t.Fatal(err)
	}
}

func TestRadvdFlagsAndOptions(t *testing.T) {
	radvd := `interface lan0 {
	AdvSendAdvert on;
	AdvManagedFlag on;
	AdvOtherConfigFlag on;
	AdvLinkMTU 1492;
	AdvCurHopLimit 32;
	AdvDefaultLifetime 0;
	AdvSourceLLAddress off;
	prefix fd00:aaaa:bbbb:cc02::/64 { AdvAutonomous off; AdvValidLifetime 7200; AdvPreferredLifetime 3600; DeprecatePrefix on; };
	route fd00:aaaa:bbbb:cc00::/56 { RemoveRoute on; };
};
`
	res, err := Import(Inputs{
		Dhcpcd: readTestdata(t, "incumbent-dhcpcd.conf"), Hook: readTestdata(t, "incumbent-hook.sh"),
		Radvd: &File{"radvd.conf", []byte(radvd)},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := configs.Parse("imported", []byte(res.Render()))
	if err != nil {
		t.Fatalf("%v\n%s", err, res.Render())
	}
	l := c.LANs[0]
	if l.Mode != configs.ModeStateful || !l.Managed || !l.Other || l.Subnet != 2 {
		t.Errorf("lan %+v", l)
	}
	if l.RA.MTU != 1492 || l.RA.HopLimit != 32 || l.RA.RouterLifetime != 0 || l.RA.Valid.Seconds() != 7200 || l.RA.Preferred.Seconds() != 3600 || len(l.RA.Routes) != 1 {
		t.Errorf("ra %+v", l.RA)
	}
	if len(res.Notes) != 1 || res.Notes[0].Text != "AdvSourceLLAddress off" {
		t.Errorf("notes %v, want only AdvSourceLLAddress off", res.Notes)
	}
}

// Debian's keepalived samples: IPv4 and LVS, nothing for v6edge, but
// they parse and every line is accounted for.
func TestDebianKeepalived(t *testing.T) {
	for _, name := range []string{"IPv6", "track_interface", "vrrp", "vrrp.scripts", "vrrp.sync", "sample"} {
		f := readTestdata(t, "debian-keepalived.conf."+name)
		k, err := ParseKeepalived(f.Name, f.Data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "track_interface" {
			if len(k.Instances) != 1 || len(k.Other) != 1 {
				t.Errorf("%s: %d instances, %d other", name, len(k.Instances), len(k.Other))
			}
			res, err := Import(Inputs{
				Dhcpcd: readTestdata(t, "incumbent-dhcpcd.conf"), Hook: readTestdata(t, "incumbent-hook.sh"),
				Radvd:      &File{"radvd.conf", []byte("interface eth0.1 { AdvSendAdvert on; prefix fd00:aaaa:bbbb:cc01::/64 {}; };")},
				Keepalived: f,
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"track_interface", "192.168.200.16", "static_routes", "virtual_routes"} {
				if !hasNote(res.Notes, want) {
					t.Errorf("no note for %s in %v", want, res.Notes)
				}
			}
		}
	}
}

func TestNotifyMAC(t *testing.T) {
	tests := []struct{ name, script, want string }{
		{"the lab's notify script: the master branch's MAC", string(readTestdata(t, "pairinc-notify.sh").Data), "02:00:5e:00:01:33"},
		{"a single MAC anywhere", "#!/bin/sh\nip link set eth0 address 02:11:22:33:44:55\n", "02:11:22:33:44:55"},
		{"two MACs and no master branch is not a guess", "ip link set a address 02:11:22:33:44:55\nip link set b address 02:11:22:33:44:56\n", ""},
		{"a multicast MAC is not a WAN MAC", "x 01:00:5e:00:00:01\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NotifyMAC([]byte(tt.script)); got != tt.want {
				t.Errorf("NotifyMAC = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	var pe *ParseError
	if _, err := ParseDhcpcd("d", []byte("interface wan0\nia_pd x/::/56\n")); !errors.As(err, &pe) || pe.Line != 2 {
		t.Errorf("ia_pd: %v", err)
	}
	if _, err := ParseRadvd("r", []byte("interface lan0 {\n AdvSendAdvert on;\n")); !errors.As(err, &pe) {
		t.Errorf("unclosed radvd block: %v", err)
	}
	if _, err := ParseKeepalived("k", []byte("vrrp_instance x {\n}\n}\n")); !errors.As(err, &pe) || pe.Line != 3 {
		t.Errorf("extra }: %v", err)
	}
	if _, err := ParseHook("h", make([]byte, MaxInput+1)); err == nil {
		t.Error("an input over MaxInput was read")
	}
	if _, err := Import(Inputs{Radvd: &File{"r", []byte("interface lan0 { AdvSendAdvert on; };")}}); err == nil {
		t.Error("no WAN interface, no error")
	}
}

// Routed: no NETMAP hook, dhcpcd numbers the delegation onto the LAN
// (ia_pd 1 lan0/3) and radvd advertises whatever is there (::/64).
func TestImportRouted(t *testing.T) {
	res, err := Import(Inputs{
		Dhcpcd: &File{"dhcpcd.conf", []byte("duid ll\nipv6only\ninterface wan0\n\tia_na 2\n\tia_pd 1/::/56 lan0/3/64 dmz0/4/64\n")},
		Radvd:  &File{"radvd.conf", []byte("interface lan0 {\n\tAdvSendAdvert on;\n\tprefix ::/64 {\n\t\tAdvAutonomous on;\n\t};\n\tRDNSS 2001:db8::53 { };\n};\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := configs.Parse("imported", []byte(res.Render()))
	if err != nil {
		t.Fatalf("%v\n%s", err, res.Render())
	}
	if c.NAT.Enabled() || len(c.LANs) != 1 || c.LANs[0].Subnet != 3 || c.LANs[0].Advertise != configs.AdvertiseExternal {
		t.Errorf("nat %+v lans %+v", c.NAT, c.LANs)
	}
	if c.WAN().RequestAddress != "try" {
		t.Errorf("request_address %q, want try (ia_na)", c.WAN().RequestAddress)
	}
	if !hasNote(res.Notes, "dmz0/4/64") || !hasNote(res.Notes, "ia_na 2") {
		t.Errorf("notes %v, want dmz0 and ia_na's IAID", res.Notes)
	}
}
