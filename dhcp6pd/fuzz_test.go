package dhcp6pd

import (
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// With fixedSource(0) every transaction id is 00 00 00, so seeds built
// with a zero xid reach deep into the machine.
func fuzzSeeds() [][]byte {
	reply := func(typ dhcpv6.MessageType, opts ...dhcpv6.Option) []byte {
		return srvMsg{typ: typ, clientID: clientDUID, serverID: serverA, opts: opts}.bytes()
	}
	return [][]byte{
		reply(dhcpv6.MessageTypeAdvertise, goodPD(), preference(255)),
		reply(dhcpv6.MessageTypeAdvertise, goodPD(), preference(3), rawOpt(optSolMaxRT, 0, 0, 0, 120)),
		reply(dhcpv6.MessageTypeReply, goodPD()),
		reply(dhcpv6.MessageTypeReply, goodPD("2001:db8:100::/56", "2001:db8:200::/60")),
		reply(dhcpv6.MessageTypeReply, goodPD(), rawOpt(dhcpv6.OptionRapidCommit)),
		reply(dhcpv6.MessageTypeReply, statusOpt(iana.StatusUseMulticast)),
		reply(dhcpv6.MessageTypeReply, iapd(testIAID, 0, 0, statusOpt(iana.StatusNoBinding))),
		reply(dhcpv6.MessageTypeReply, iapd(testIAID, 0, 0, iaprefix("2001:db8:100::/56", 0, 0, statusOpt(iana.StatusNoPrefixAvail)))),
		reply(dhcpv6.MessageTypeReply, goodPD(), authOpt(authTypeKey, 1, reconfKey)),
		reply(dhcpv6.MessageTypeReply, goodPD(), rawOpt(dhcpv6.OptionUnicast, netip.MustParseAddr("2001:db8::1").AsSlice()...)),
		reply(dhcpv6.MessageTypeReply, goodPD(), dnsOpt("2001:db8::53", "2001:db8::54"), domainOpt("isp.example", "example.net")),
		reply(dhcpv6.MessageTypeReply, goodPD(), rawOpt(dhcpv6.OptionDomainSearchList, 3, 'i', 's', 'p', 0xc0, 0)),
		reply(dhcpv6.MessageTypeReply, goodPD(), goodNA()),
		reply(dhcpv6.MessageTypeAdvertise, goodPD(), goodNA(), preference(255)),
		reply(dhcpv6.MessageTypeReply, goodPD(), ianaOpt(testIAID, 0, 0, statusOpt(iana.StatusNoAddrsAvail))),
		reply(dhcpv6.MessageTypeReply, goodPD(), ianaOpt(testIAID, 0, 0, iaaddr("fd00::1", 1, 2), iaaddr(wanAddr, 0, 0, statusOpt(iana.StatusNoAddrsAvail)))),
		reply(dhcpv6.MessageTypeReply, iapd(testIAID, 0, 0, iaprefix("2001:db8:100::/56", 2000*time.Second, 3000*time.Second, excludeOpt(64, 0x01)))),
		reply(dhcpv6.MessageTypeReply, iapd(testIAID, 0, 0, iaprefix("2001:db8:100::/60", 2000*time.Second, 3000*time.Second, excludeOpt(64, 0x11)))),
		reconfigure(serverA, reconfKey, 9, dhcpv6.MessageTypeRenew),
		{7, 0, 0, 0},
		{},
	}
}

// FuzzParseReply: the parser must never panic, and whatever it accepts
// must be structurally sound.
func FuzzParseReply(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMessage(b)
		if err != nil {
			return
		}
		seen := map[uint32]bool{}
		for _, ia := range m.IAPDs {
			if seen[ia.IAID] {
				t.Fatalf("duplicate IAID %d accepted", ia.IAID)
			}
			seen[ia.IAID] = true
		}
		if m.ClientID != nil && (len(m.ClientID) < 3 || len(m.ClientID) > duidMaxLength) {
			t.Fatalf("Client ID of length %d accepted", len(m.ClientID))
		}
		if len(m.DNS) > MaxDNSServers || len(m.Domains) > MaxDomains {
			t.Fatalf("%d DNS servers, %d domains accepted", len(m.DNS), len(m.Domains))
		}
		for _, a := range m.DNS {
			if err := CheckDNSServer(a); err != nil {
				t.Fatal(err)
			}
		}
		for _, d := range m.Domains {
			if err := CheckDomain(d); err != nil {
				t.Fatal(err)
			}
		}
		if a := m.Auth; a != nil && a.Protocol == authProtoReconfigureKey && a.valueOffset+authKeyLen > len(b) {
			t.Fatalf("Auth value offset %d outside the message", a.valueOffset)
		}
	})
}

// FuzzReceive drives a machine into one of several states and feeds it
// arbitrary bytes: it must never panic and never bind to a prefix that
// fails validation.
func FuzzReceive(f *testing.F) {
	for _, s := range fuzzSeeds() {
		for st := range byte(15) {
			f.Add(st, s)
		}
	}
	f.Fuzz(func(t *testing.T, st byte, b []byte) {
		modes := []AddressMode{AddressNever, AddressTry, AddressRequire}
		m := newTestMachine(fixedSource(0), func(c *MachineConfig) {
			c.RapidCommit = st%2 == 0
			c.RequestAddress = modes[int(st/5)%3]
		})
		now := t0
		m.Start(now, nil)
		good := srvMsg{typ: dhcpv6.MessageTypeAdvertise, clientID: clientDUID, serverID: serverA,
			opts: []dhcpv6.Option{goodPD(), preference(255), authOpt(authTypeKey, 1, reconfKey)}}
		switch st % 5 {
		case 1: // requesting
			m.Receive(now, good.bytes(), addrA)
		case 2, 3, 4: // bound, renewing, rebinding
			m.Receive(now, good.bytes(), addrA)
			good.typ = dhcpv6.MessageTypeReply
			m.Receive(now, good.bytes(), addrA)
			if st%5 >= 3 {
				now = now.Add(1000 * time.Second)
				m.Timer(now)
			}
			if st%5 == 4 {
				now = now.Add(600 * time.Second)
				m.Timer(now)
			}
		}
		m.Receive(now, b, addrA)
		if l := m.Lease(); l != nil {
			for _, p := range l.Prefixes {
				if reason := m.checkPrefix(p.Prefix); reason != "" {
					t.Fatalf("bound an invalid prefix: %s", reason)
				}
				if p.Exclude.IsValid() {
					if err := CheckExclude(p.Prefix, p.Exclude); err != nil {
						t.Fatal(err)
					}
				}
				if p.Valid <= 0 || p.Preferred > p.Valid {
					t.Fatalf("bound prefix %s with preferred %s valid %s", p.Prefix, p.Preferred, p.Valid)
				}
			}
			for _, a := range l.Addresses {
				if err := CheckAddress(a.Addr); err != nil || a.Preferred > a.Valid {
					t.Fatalf("bound address %s preferred %s valid %s: %v", a.Addr, a.Preferred, a.Valid, err)
				}
			}
			if m.cfg.RequestAddress == AddressNever && len(l.Addresses) > 0 {
				t.Fatal("bound an address in never mode")
			}
			if l.T1 > l.T2 {
				t.Fatalf("bound with T1 %s > T2 %s", l.T1, l.T2)
			}
		}
		if d := m.Deadline(); m.State() != StateReleased && m.State() != StateStandby && d.IsZero() {
			t.Fatalf("state %s with no deadline: the client would hang", m.State())
		}
	})
}
