package plan

import (
	"net/netip"
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

func TestComputeTooLongDelegation(t *testing.T) {
	up := Uplink{Interface: "wan0", Delegated: pfx("2001:db8:100::/60"), ValidUntil: t0.Add(time.Hour), Healthy: true}
	d := Compute(Input{Config: baseConfig(), Uplinks: []Uplink{up}, Role: Standalone, Now: t0})
	if len(d.NAT.Uplinks) != 0 {
		t.Errorf("half mapping installed: %+v", d.NAT)
	}
	if len(d.Problems) != 1 {
		t.Errorf("problems = %q, want one naming the length mismatch", d.Problems)
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
