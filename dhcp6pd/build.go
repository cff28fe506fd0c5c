package dhcp6pd

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// AllServers is All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1), where
// every client message goes unless the server allowed unicast.
var AllServers = netip.MustParseAddr("ff02::1:2")

// elapsedCentiseconds is the Elapsed Time value (RFC 8415 §21.9): hundredths
// of a second since the first transmission of this exchange, 0 in the
// first message, pinned at 0xffff once it would overflow.
func elapsedCentiseconds(first, now time.Time) uint16 {
	cs := now.Sub(first) / (10 * time.Millisecond)
	switch {
	case cs < 0:
		return 0
	case cs > 0xffff:
		return 0xffff
	}
	return uint16(cs)
}

// build encodes the message of the running exchange as sent at now.
func (m *Machine) build(ex *exchange, now time.Time) []byte {
	msg := &dhcpv6.Message{MessageType: ex.typ, TransactionID: ex.xid}
	msg.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionClientID, OptionData: m.cfg.DUID})
	if len(ex.serverID) > 0 {
		// Request, Renew and Release name their server; Solicit and Rebind
		// must not (RFC 8415 §18.2.1, §18.2.5).
		msg.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionServerID, OptionData: ex.serverID})
	}
	et := make([]byte, 2)
	binary.BigEndian.PutUint16(et, elapsedCentiseconds(ex.first, now))
	msg.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionElapsedTime, OptionData: et})
	if ex.typ != dhcpv6.MessageTypeRelease {
		// RFC 8415 §18.2: SOL_MAX_RT must be in the ORO of Solicit, Request,
		// Renew and Rebind so that a server can slow a stuck client down.
		// The ISP's DNS servers and search list (RFC 3646) are passed on
		// to the LANs.
		msg.AddOption(dhcpv6.OptRequestedOption(optSolMaxRT, dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList,
			// RFC 6603 §4.1: the prefix the ISP keeps for the WAN link.
			dhcpv6.OptionPDExclude))
		// We can check the Reconfigure Key authentication (§20.4).
		msg.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionReconfAccept})
	}
	if ex.typ == dhcpv6.MessageTypeSolicit && m.cfg.RapidCommit {
		msg.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
	}
	pd := &dhcpv6.OptIAPD{}
	binary.BigEndian.PutUint32(pd.IaId[:], m.cfg.IAID)
	// T1, T2 and lifetimes stay 0: "no preference" (RFC 8415 §21.21,
	// §21.22 say a client SHOULD send 0).
	for _, p := range ex.prefixes {
		pd.Options.Add(&dhcpv6.OptIAPrefix{Prefix: &net.IPNet{
			IP:   net.IP(p.Addr().AsSlice()),
			Mask: net.CIDRMask(p.Bits(), 128),
		}})
	}
	msg.AddOption(pd)
	if ex.naNow {
		na := &dhcpv6.OptIANA{}
		binary.BigEndian.PutUint32(na.IaId[:], m.cfg.IAID)
		for _, a := range ex.addrs {
			na.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.IP(a.AsSlice())})
		}
		msg.AddOption(na)
	}
	return msg.ToBytes()
}
