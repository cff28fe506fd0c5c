package plan

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/nat"
)

// netipOpt compares netip values by value: they have unexported fields.
var netipOpt = cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func baseConfig() *configs.Config {
	return &configs.Config{
		WANs: []configs.WAN{{Interface: "wan0", PrefixLength: 56, IAID: 1}},
		NAT:  configs.NAT{InternalPrefix: pfx("fd00:aaaa:bbbb:cc00::/56"), Hairpin: true},
		LANs: []configs.LAN{{
			Interface: "lan0", Subnet: 1, Mode: configs.ModeSLAAC, Autonomous: true, Advertise: configs.AdvertiseInternal,
			RA: configs.RA{Preferred: 2700 * time.Second, Valid: 5400 * time.Second},
		}},
	}
}

func TestSubnet64(t *testing.T) {
	for _, tc := range []struct {
		p    string
		n    int
		want string
	}{
		{"fd00:aaaa:bbbb:cc00::/56", 0, "fd00:aaaa:bbbb:cc00::/64"},
		{"fd00:aaaa:bbbb:cc00::/56", 1, "fd00:aaaa:bbbb:cc01::/64"},
		{"fd00:aaaa:bbbb:cc00::/56", 255, "fd00:aaaa:bbbb:ccff::/64"},
		{"2001:db8::/48", 0x1234, "2001:db8:0:1234::/64"},
		{"2001:db8:1:2::/64", 0, "2001:db8:1:2::/64"},
	} {
		if got := Subnet64(pfx(tc.p), tc.n); got != pfx(tc.want) {
			t.Errorf("Subnet64(%s, %d) = %s, want %s", tc.p, tc.n, got, tc.want)
		}
	}
	t.Run("a subnet index beyond the prefix is invalid", func(t *testing.T) {
		if got := Subnet64(pfx("fd00::/56"), 256); got.IsValid() {
			t.Errorf("got %s", got)
		}
		if got := Subnet64(pfx("fd00::/64"), 1); got.IsValid() {
			t.Errorf("got %s", got)
		}
	})
}

func TestComputeWithoutLease(t *testing.T) {
	d := Compute(Input{Config: baseConfig(), Uplinks: []Uplink{{Interface: "wan0", Healthy: true}}, Role: Standalone, Now: t0})
	if len(d.NAT.Uplinks) != 0 {
		t.Errorf("NAT installed without a lease: %+v", d.NAT)
	}
	if len(d.NAT.WANs) != 1 || d.NAT.WANs[0] != "wan0" {
		t.Errorf("the guard must know the WAN before any lease: %+v", d.NAT)
	}
	want := []Address{{Interface: "lan0", Prefix: pfx("fd00:aaaa:bbbb:cc01::1/64")}}
	if diff := cmp.Diff(want, d.Addresses, netipOpt); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if len(d.LANs) != 1 || len(d.LANs[0].Prefixes) != 1 || d.LANs[0].Prefixes[0].Prefix != pfx("fd00:aaaa:bbbb:cc01::/64") {
		t.Errorf("the ULA /64 must be advertised before any lease: %+v", d.LANs)
	}
	if diff := cmp.Diff([]netip.Prefix{pfx("fd00:aaaa:bbbb:cc00::/56")}, d.Unreachable, netipOpt); diff != "" {
		t.Errorf("unreachable (-want +got):\n%s", diff)
	}
}

func TestComputeBound(t *testing.T) {
	cfg := baseConfig()
	cfg.LANs[0].Advertise = configs.AdvertiseBoth
	up := Uplink{Interface: "wan0", Delegated: pfx("2001:db8:100::/56"), PreferredUntil: t0.Add(time.Hour), ValidUntil: t0.Add(2 * time.Hour), Healthy: true}
	d := Compute(Input{Config: cfg, Uplinks: []Uplink{up}, Role: Standalone, Now: t0})

	wantNAT := nat.Ruleset{Internal: pfx("fd00:aaaa:bbbb:cc00::/56"), LANs: []string{"lan0"}, Hairpin: true, WANs: []string{"wan0"},
		Direct:  []netip.Prefix{pfx("2001:db8:100:1::/64")},
		Uplinks: []nat.Uplink{{WAN: "wan0", External: pfx("2001:db8:100::/56")}}}
	if diff := cmp.Diff(wantNAT, d.NAT, netipOpt); diff != "" {
		t.Errorf("NAT (-want +got):\n%s", diff)
	}
	wantPrefixes := []RAPrefix{
		{Prefix: pfx("fd00:aaaa:bbbb:cc01::/64"), Autonomous: true, Preferred: 2700 * time.Second, Valid: 5400 * time.Second},
		{Prefix: pfx("2001:db8:100:1::/64"), Autonomous: true, Preferred: 2700 * time.Second, Valid: 5400 * time.Second,
			PreferredUntil: t0.Add(time.Hour), ValidUntil: t0.Add(2 * time.Hour)},
	}
	if diff := cmp.Diff(wantPrefixes, d.LANs[0].Prefixes, netipOpt); diff != "" {
		t.Errorf("RA prefixes (-want +got):\n%s", diff)
	}
	wantAddrs := []Address{
		{Interface: "lan0", Prefix: pfx("fd00:aaaa:bbbb:cc01::1/64")},
		{Interface: "lan0", Prefix: pfx("2001:db8:100:1::1/64")},
	}
	if diff := cmp.Diff(wantAddrs, d.Addresses, netipOpt); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]netip.Prefix{pfx("fd00:aaaa:bbbb:cc00::/56"), pfx("2001:db8:100::/56")}, d.Unreachable, netipOpt); diff != "" {
		t.Errorf("unreachable (-want +got):\n%s", diff)
	}
	if d.Preferred != "wan0" {
		t.Errorf("preferred = %q", d.Preferred)
	}
}

func TestComputeExpiredLeaseWithdrawsEverything(t *testing.T) {
	cfg := baseConfig()
	cfg.LANs[0].Advertise = configs.AdvertiseExternal
	up := Uplink{Interface: "wan0", Delegated: pfx("2001:db8:100::/56"), ValidUntil: t0.Add(-time.Second), Healthy: true}
	d := Compute(Input{Config: cfg, Uplinks: []Uplink{up}, Role: Standalone, Now: t0})
	if len(d.NAT.Uplinks) != 0 || len(d.LANs[0].Prefixes) != 0 || len(d.Addresses) != 0 {
		t.Errorf("an expired lease must leave no mapping, prefix or address: %+v", d)
	}
}

func TestComputeAnyDelegationSize(t *testing.T) {
	cfg := baseConfig()
	cfg.LANs[0].Advertise = configs.AdvertiseBoth
	cfg.LANs = append(cfg.LANs, configs.LAN{Interface: "lan1", Subnet: 17, Advertise: configs.AdvertiseBoth,
		RA: configs.RA{Preferred: 2700 * time.Second, Valid: 5400 * time.Second}})
	for _, tc := range []struct {
		name      string
		delegated string
		// want: the NAT mapping (external, internal block; "" = whole) and
		// each LAN's global /64 ("" = none).
		external, block string
		lan0, lan1      string
		problem         string // a substring of the one problem, "" = none
	}{
		{"a /56 maps 1:1", "2001:db8:100::/56", "2001:db8:100::/56", "", "2001:db8:100:1::/64", "2001:db8:100:11::/64", ""},
		{"a /48 maps its sub_prefix-th /56", "2001:db8:100::/48", "2001:db8:100::/56", "", "2001:db8:100:1::/64", "2001:db8:100:11::/64", ""},
		{"a /60 holds subnets 0-15: lan1 is reported", "2001:db8:100:40::/60", "2001:db8:100:40::/60", "fd00:aaaa:bbbb:cc00::/60",
			"2001:db8:100:41::/64", "", "lan1: subnet 17 does not fit the /60 delegated on wan0 (it holds subnets 0-15)"},
		{"a /64 holds subnet 0 only", "2001:db8:100:40::/64", "2001:db8:100:40::/64", "fd00:aaaa:bbbb:cc00::/64",
			"", "", "subnet 1 does not fit the /64"},
		{"a /72 cannot hold a LAN", "2001:db8:100:40::/72", "", "", "", "", "longer than /64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := Uplink{Interface: "wan0", Delegated: pfx(tc.delegated), ValidUntil: t0.Add(time.Hour), Healthy: true}
			d := Compute(Input{Config: cfg, Uplinks: []Uplink{up}, Role: Standalone, Now: t0})
			var ext, block string
			if len(d.NAT.Uplinks) == 1 {
				ext = d.NAT.Uplinks[0].External.String()
				if b := d.NAT.Uplinks[0].Internal; b.IsValid() {
					block = b.String()
				}
			}
			if ext != tc.external || block != tc.block {
				t.Errorf("NAT maps %q from block %q, want %q from %q", ext, block, tc.external, tc.block)
			}
			if err := d.NAT.Check(); err != nil {
				t.Errorf("the planned ruleset fails nat's own check: %v", err)
			}
			for i, want := range []string{tc.lan0, tc.lan1} {
				var got string
				for _, p := range d.LANs[i].Prefixes {
					if !p.ValidUntil.IsZero() {
						got = p.Prefix.String()
					}
				}
				if got != want {
					t.Errorf("%s advertises global %q, want %q", d.LANs[i].Interface, got, want)
				}
				if len(d.LANs[i].Prefixes) == 0 || d.LANs[i].Prefixes[0].Prefix != Subnet64(cfg.NAT.InternalPrefix, d.LANs[i].Config.Subnet) {
					t.Errorf("%s lost its ULA: %+v", d.LANs[i].Interface, d.LANs[i].Prefixes)
				}
			}
			if tc.problem == "" && len(d.Problems) != 0 || tc.problem != "" && !slices.ContainsFunc(d.Problems, func(p string) bool { return strings.Contains(p, tc.problem) }) {
				t.Errorf("problems %q, want one containing %q", d.Problems, tc.problem)
			}
		})
	}
}

func TestComputeRouted(t *testing.T) {
	cfg := baseConfig()
	cfg.NAT = configs.NAT{}
	cfg.LANs[0].Advertise = configs.AdvertiseExternal
	cfg.LANs[0].Managed = true
	cfg.LANs[0].PD = &configs.LANPD{Length: 62, Count: 2}
	t.Run("before a lease: no prefix, no mapping, no error", func(t *testing.T) {
		d := Compute(Input{Config: cfg, Uplinks: []Uplink{{Interface: "wan0", Healthy: true}}, Role: Standalone, Now: t0})
		if len(d.Problems) != 0 || len(d.NAT.Uplinks) != 0 || len(d.LANs[0].Prefixes) != 0 {
			t.Errorf("problems %q, NAT %+v, prefixes %+v", d.Problems, d.NAT.Uplinks, d.LANs[0].Prefixes)
		}
	})
	for _, delegated := range []string{"2001:db8:100::/56", "2001:db8:100::/60", "2001:db8:100::/48"} {
		t.Run("a "+delegated[len(delegated)-3:]+" is routed to the LAN", func(t *testing.T) {
			up := Uplink{Interface: "wan0", Delegated: pfx(delegated), PreferredUntil: t0.Add(30 * time.Minute), ValidUntil: t0.Add(time.Hour), Healthy: true}
			d := Compute(Input{Config: cfg, Uplinks: []Uplink{up}, Role: Standalone, Now: t0})
			lan := pfx("2001:db8:100:1::/64")
			if len(d.Problems) != 0 {
				t.Errorf("problems %q", d.Problems)
			}
			if len(d.NAT.Uplinks) != 0 {
				t.Errorf("routed mode installs NETMAP: %+v", d.NAT.Uplinks)
			}
			if ps := d.LANs[0].Prefixes; len(ps) != 1 || ps[0].Prefix != lan || !ps[0].ValidUntil.Equal(up.ValidUntil) {
				t.Errorf("RA prefixes %+v, want %v bounded by the lease", ps, lan)
			}
			if want := netip.PrefixFrom(lan.Addr().Next(), 64); !slices.Contains(d.LANs[0].Addresses, want) {
				t.Errorf("router addresses %v lack %v", d.LANs[0].Addresses, want)
			}
			dh := d.LANs[0].DHCP
			if dh == nil || dh.Pool != lan || dh.PDPool != pfx(delegated).Masked() || !slices.Contains(dh.PDExclude, lan) {
				t.Errorf("LAN DHCPv6 %+v: want addresses from %v and delegations from the delegated prefix, the LAN's /64 excluded", dh, lan)
			}
			if !slices.Contains(d.Unreachable, pfx(delegated).Masked()) {
				t.Errorf("unreachable %v lacks the delegated aggregate (RFC 7084 WPD-5)", d.Unreachable)
			}
		})
	}
}

func TestComputePDExclude(t *testing.T) {
	cfg := baseConfig()
	cfg.LANs[0].Advertise = configs.AdvertiseBoth
	cfg.LANs = append(cfg.LANs, configs.LAN{Interface: "lan1", Subnet: 255, Advertise: configs.AdvertiseBoth})
	up := Uplink{Interface: "wan0", Delegated: pfx("2001:db8:100::/56"), Exclude: pfx("2001:db8:100:ff::/64"), ValidUntil: t0.Add(time.Hour), Healthy: true}
	d := Compute(Input{Config: cfg, Uplinks: []Uplink{up}, Role: Standalone, Now: t0})
	if got := d.NAT.Uplinks[0].Exclude; len(got) != 1 || got[0] != up.Exclude {
		t.Errorf("NAT exclude %v, want %v", got, up.Exclude)
	}
	for _, p := range d.LANs[1].Prefixes {
		if p.Prefix.Overlaps(up.Exclude) {
			t.Errorf("lan1 advertises the excluded %v", p.Prefix)
		}
	}
	if !slices.ContainsFunc(d.Problems, func(p string) bool { return strings.Contains(p, "lan1: subnet 255") && strings.Contains(p, "excluded") }) {
		t.Errorf("problems %q do not name lan1 on the excluded /64", d.Problems)
	}
	if err := d.NAT.Check(); err != nil {
		t.Error(err)
	}
}

func TestComputeISPDNS(t *testing.T) {
	cfg := baseConfig()
	cfg.LANs = append(cfg.LANs, configs.LAN{Interface: "lan1", Subnet: 2, DNS: []netip.Addr{}, Domains: []string{"own.example"}})
	isp := []netip.Addr{netip.MustParseAddr("2001:db8::53")}
	up := Uplink{Interface: "wan0", Delegated: pfx("2001:db8:100::/56"), ValidUntil: t0.Add(time.Hour), Healthy: true,
		DNS: isp, Domains: []string{"isp.example"}}
	d := Compute(Input{Config: cfg, Uplinks: []Uplink{up}, Role: Standalone, Now: t0})
	if got := d.LANs[0].Config; !slices.Equal(got.DNS, isp) || !slices.Equal(got.Domains, []string{"isp.example"}) {
		t.Errorf("a LAN without dns/domains tells %v %v, want the ISP's", got.DNS, got.Domains)
	}
	if got := d.LANs[1].Config; len(got.DNS) != 0 || !slices.Equal(got.Domains, []string{"own.example"}) {
		t.Errorf("a LAN with dns = [] and its own domains tells %v %v", got.DNS, got.Domains)
	}
	d = Compute(Input{Config: cfg, Uplinks: []Uplink{{Interface: "wan0", Healthy: true}}, Role: Standalone, Now: t0})
	if got := d.LANs[0].Config; len(got.DNS) != 0 || len(got.Domains) != 0 {
		t.Errorf("without a lease the ISP's options stay: %v %v", got.DNS, got.Domains)
	}
}

func TestComputeHA(t *testing.T) {
	cfg := baseConfig()
	cfg.HA = &configs.HA{Mode: "vrrp", VRID: 51, Priority: 150, Interface: "lan0", VirtualLinkLocal: netip.MustParseAddr("fe80::1")}
	up := Uplink{Interface: "wan0", Delegated: pfx("2001:db8:100::/56"), ValidUntil: t0.Add(time.Hour), Healthy: true}

	t.Run("the master holds floating addresses without DAD and advertises from the virtual link-local", func(t *testing.T) {
		d := Compute(Input{Config: cfg, Uplinks: []Uplink{up}, Role: Master, Now: t0})
		want := []Address{
			{Interface: "lan0", Prefix: pfx("fe80::1/64"), NoDAD: true},
			{Interface: "lan0", Prefix: pfx("fd00:aaaa:bbbb:cc01::1/64"), NoDAD: true},
		}
		if diff := cmp.Diff(want, d.Addresses, netipOpt); diff != "" {
			t.Errorf("addresses (-want +got):\n%s", diff)
		}
		if !d.LANs[0].Advertise || d.LANs[0].Source != netip.MustParseAddr("fe80::1") {
			t.Errorf("LAN = %+v", d.LANs[0])
		}
	})
	t.Run("the backup is silent and holds no floating address but keeps the NAT mapping ready", func(t *testing.T) {
		d := Compute(Input{Config: cfg, Uplinks: []Uplink{up}, Role: Backup, Now: t0})
		if len(d.Addresses) != 0 || d.LANs[0].Advertise {
			t.Errorf("backup: addresses %v, advertise %t", d.Addresses, d.LANs[0].Advertise)
		}
		if len(d.NAT.Uplinks) != 1 {
			t.Errorf("backup lost the NAT mapping it needs at takeover: %+v", d.NAT)
		}
	})
}

func TestComputeSeveralUplinks(t *testing.T) {
	cfg := baseConfig()
	cfg.WANs = []configs.WAN{{Interface: "wan0", Priority: 10}, {Interface: "wan1", Priority: 20}}
	cfg.LANs[0].Advertise = configs.AdvertiseExternal
	ups := []Uplink{
		{Interface: "wan0", Delegated: pfx("2001:db8:100::/56"), ValidUntil: t0.Add(time.Hour), Healthy: false},
		{Interface: "wan1", Delegated: pfx("2001:db8:200::/56"), ValidUntil: t0.Add(time.Hour), Healthy: true},
	}
	d := Compute(Input{Config: cfg, Uplinks: ups, Role: Standalone, Now: t0})
	if d.Preferred != "wan1" {
		t.Errorf("preferred = %q, want the healthy wan1", d.Preferred)
	}
	if len(d.NAT.Uplinks) != 2 || d.NAT.Uplinks[0].Mark == 0 || d.NAT.Uplinks[0].Mark == d.NAT.Uplinks[1].Mark {
		t.Errorf("each uplink needs its own pair and mark: %+v", d.NAT.Uplinks)
	}
	if got := d.LANs[0].Prefixes; len(got) != 1 || got[0].Prefix != pfx("2001:db8:200:1::/64") {
		t.Errorf("RA must carry the preferred healthy uplink's /64: %+v", got)
	}
}

func TestComputeLANDHCP(t *testing.T) {
	up := Uplink{Interface: "wan0", Delegated: pfx("2001:db8:100::/56"), ValidUntil: t0.Add(time.Hour), Healthy: true}
	t.Run("slaac without downstream PD needs no DHCPv6 server", func(t *testing.T) {
		d := Compute(Input{Config: baseConfig(), Uplinks: []Uplink{up}, Role: Standalone, Now: t0})
		if d.LANs[0].DHCP != nil {
			t.Errorf("DHCP = %+v", d.LANs[0].DHCP)
		}
	})
	t.Run("stateless mode serves options only", func(t *testing.T) {
		cfg := baseConfig()
		cfg.LANs[0].Mode, cfg.LANs[0].Other = configs.ModeStateless, true
		d := Compute(Input{Config: cfg, Uplinks: []Uplink{up}, Role: Standalone, Now: t0})
		if dh := d.LANs[0].DHCP; dh == nil || dh.Pool.IsValid() || dh.PDPool.IsValid() {
			t.Errorf("DHCP = %+v", dh)
		}
	})
	t.Run("stateful mode hands out addresses from the advertised ULA /64", func(t *testing.T) {
		cfg := baseConfig()
		cfg.LANs[0].Mode, cfg.LANs[0].Managed, cfg.LANs[0].Other = configs.ModeStateful, true, true
		d := Compute(Input{Config: cfg, Uplinks: []Uplink{up}, Role: Standalone, Now: t0})
		if dh := d.LANs[0].DHCP; dh == nil || dh.Pool != pfx("fd00:aaaa:bbbb:cc01::/64") || !dh.LifetimeCap.IsZero() {
			t.Errorf("DHCP = %+v", dh)
		}
	})
	t.Run("stateful external addresses never outlive the lease", func(t *testing.T) {
		cfg := baseConfig()
		cfg.LANs[0].Managed, cfg.LANs[0].Advertise = true, configs.AdvertiseExternal
		d := Compute(Input{Config: cfg, Uplinks: []Uplink{up}, Role: Standalone, Now: t0})
		if dh := d.LANs[0].DHCP; dh == nil || dh.Pool != pfx("2001:db8:100:1::/64") || !dh.LifetimeCap.Equal(t0.Add(time.Hour)) {
			t.Errorf("DHCP = %+v", dh)
		}
	})
	t.Run("downstream PD delegates from the internal prefix, never a LAN's own /64", func(t *testing.T) {
		cfg := baseConfig()
		cfg.LANs[0].PD = &configs.LANPD{Length: 60, Count: 4}
		cfg.LANs = append(cfg.LANs, configs.LAN{Interface: "lan1", Subnet: 2, Advertise: configs.AdvertiseInternal})
		d := Compute(Input{Config: cfg, Uplinks: []Uplink{up}, Role: Standalone, Now: t0})
		dh := d.LANs[0].DHCP
		want := &DHCP{PDPool: pfx("fd00:aaaa:bbbb:cc00::/56"), PDLength: 60, PDCount: 4,
			PDExclude: []netip.Prefix{pfx("fd00:aaaa:bbbb:cc01::/64"), pfx("fd00:aaaa:bbbb:cc02::/64")}}
		if diff := cmp.Diff(want, dh, netipOpt); diff != "" {
			t.Errorf("DHCP (-want +got):\n%s", diff)
		}
	})
	t.Run("an HA backup serves no DHCPv6", func(t *testing.T) {
		cfg := baseConfig()
		cfg.LANs[0].Other = true
		cfg.HA = &configs.HA{Mode: "vrrp", Interface: "lan0", VirtualLinkLocal: netip.MustParseAddr("fe80::1")}
		d := Compute(Input{Config: cfg, Uplinks: []Uplink{up}, Role: Backup, Now: t0})
		if d.LANs[0].DHCP != nil {
			t.Errorf("backup DHCP = %+v", d.LANs[0].DHCP)
		}
	})
}

func TestComputeHARoleParts(t *testing.T) {
	cfg := baseConfig()
	cfg.LANs = append(cfg.LANs, configs.LAN{Interface: "lan1", Subnet: 2, Advertise: configs.AdvertiseExternal,
		Address: pfx("2001:db8:ffff::1/64")})
	cfg.HA = &configs.HA{Mode: "vrrp", VRID: 51, Priority: 150, Interface: "lan0", VirtualLinkLocal: netip.MustParseAddr("fe80::1")}
	cfg.HA.WANMAC = []byte{2, 0x76, 0x65, 0, 0, 1}
	up := Uplink{Interface: "wan0", Delegated: pfx("2001:db8:100::/56"), ValidUntil: t0.Add(time.Hour), Healthy: true}
	wantVirtual := []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1"), netip.MustParseAddr("2001:db8:ffff::1")}
	for _, tc := range []struct {
		role    Role
		standby bool
		hold    bool
	}{
		{Master, false, true},
		{Backup, true, false},
		{Fault, true, false},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			// The same with and without a lease: none of it may depend on one.
			for _, ups := range [][]Uplink{nil, {up}} {
				d := Compute(Input{Config: cfg, Uplinks: ups, Role: tc.role, Now: t0})
				if diff := cmp.Diff([]WAN{{Interface: "wan0", Standby: tc.standby}}, d.WANs); diff != "" {
					t.Errorf("WANs (-want +got):\n%s", diff)
				}
				if d.HA == nil {
					t.Fatal("no HA part")
				}
				if diff := cmp.Diff(wantVirtual, d.HA.VirtualAddrs, netipOpt); diff != "" {
					t.Errorf("virtual addresses (-want +got):\n%s", diff)
				}
				if d.HA.HoldWANMAC != tc.hold {
					t.Errorf("HoldWANMAC = %v, want %v", d.HA.HoldWANMAC, tc.hold)
				}
				if want := netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1"); d.ProbeSource != want {
					t.Errorf("probe source %v, want %v", d.ProbeSource, want)
				}
			}
		})
	}
	t.Run("standalone", func(t *testing.T) {
		cfg := baseConfig()
		d := Compute(Input{Config: cfg, Role: Standalone, Now: t0})
		if d.HA != nil || len(d.WANs) != 1 || d.WANs[0].Standby {
			t.Errorf("standalone: HA %+v, WANs %+v", d.HA, d.WANs)
		}
	})
}

func TestComputeWANAddress(t *testing.T) {
	wanAddr := netip.MustParseAddr("2001:db8:0:1::1:5")
	la := LeaseAddr{Addr: wanAddr, PreferredUntil: t0.Add(30 * time.Minute), ValidUntil: t0.Add(time.Hour)}
	up := Uplink{Interface: "wan0", Delegated: pfx("2001:db8:100::/56"), ValidUntil: t0.Add(time.Hour), Healthy: true,
		Addresses: []LeaseAddr{la}}
	has := func(d Desired, noDAD bool) bool {
		return slices.Contains(d.Addresses, Address{Interface: "wan0", Prefix: netip.PrefixFrom(wanAddr, 128), NoDAD: noDAD,
			PreferredUntil: la.PreferredUntil, ValidUntil: la.ValidUntil})
	}
	if d := Compute(Input{Config: baseConfig(), Uplinks: []Uplink{up}, Role: Standalone, Now: t0}); !has(d, false) {
		t.Errorf("standalone: addresses %v lack the IA_NA /128 with DAD", d.Addresses)
	}
	cfg := baseConfig()
	cfg.HA = &configs.HA{Mode: "vrrp", VRID: 51, Interface: "lan0", VirtualLinkLocal: netip.MustParseAddr("fe80::1")}
	if d := Compute(Input{Config: cfg, Uplinks: []Uplink{up}, Role: Master, Now: t0}); !has(d, true) {
		t.Errorf("HA master: addresses %v lack the floating IA_NA /128", d.Addresses)
	}
	if d := Compute(Input{Config: cfg, Uplinks: []Uplink{up}, Role: Backup, Now: t0}); has(d, true) || has(d, false) {
		t.Errorf("HA backup holds the IA_NA address: %v", d.Addresses)
	}
	if d := Compute(Input{Config: baseConfig(), Uplinks: []Uplink{up}, Role: Standalone, Now: la.ValidUntil}); has(d, false) {
		t.Errorf("an expired IA_NA address is still wanted: %v", d.Addresses)
	}
}

// TestComputeRouterLifetime: RFC 7084 G-4. Without a usable delegation and
// a default router upstream the LAN is told this router is no default
// router (lifetime 0); with one it gets the configured lifetime; with
// several uplinks any one usable is enough.
func TestComputeRouterLifetime(t *testing.T) {
	cfg := baseConfig()
	cfg.LANs[0].RA.RouterLifetime = 1800 * time.Second
	bound := func(iface string, healthy, router bool) Uplink {
		return Uplink{Interface: iface, Delegated: pfx("2001:db8:100::/56"), ValidUntil: t0.Add(time.Hour), Healthy: healthy, DefaultRouter: router}
	}
	for _, tc := range []struct {
		name    string
		uplinks []Uplink
		want    time.Duration
	}{
		{"before the first lease", []Uplink{{Interface: "wan0", Healthy: true, DefaultRouter: true}}, 0},
		{"a lease but no default router upstream", []Uplink{bound("wan0", true, false)}, 0},
		{"a lease and a default router", []Uplink{bound("wan0", true, true)}, 1800 * time.Second},
		{"the lease expired", []Uplink{{Interface: "wan0", Delegated: pfx("2001:db8:100::/56"), ValidUntil: t0, Healthy: true, DefaultRouter: true}}, 0},
		{"two uplinks, one dead", []Uplink{bound("wan0", false, true), {Interface: "wan1", Delegated: pfx("2001:db8:200::/56"), ValidUntil: t0.Add(time.Hour), Healthy: true, DefaultRouter: true}}, 1800 * time.Second},
		{"two uplinks, both dead", []Uplink{bound("wan0", false, true), bound("wan1", false, true)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if len(tc.uplinks) > 1 {
				cc := *cfg
				cc.WANs = []configs.WAN{{Interface: "wan0", PrefixLength: 56}, {Interface: "wan1", PrefixLength: 56}}
				c = &cc
			}
			d := Compute(Input{Config: c, Uplinks: tc.uplinks, Role: Standalone, Now: t0})
			if got := d.LANs[0].Config.RA.RouterLifetime; got != tc.want {
				t.Errorf("router lifetime %v, want %v", got, tc.want)
			}
		})
	}
}
