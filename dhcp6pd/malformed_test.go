package dhcp6pd

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// requesting returns a machine that has sent a Request to server A.
func requesting(t *testing.T) (*Machine, *dhcpv6.Message, time.Time) {
	t.Helper()
	m, sol, now := startSoliciting(t, nil)
	out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(255)), addrA))
	if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRequest {
		t.Fatalf("want a Request, got %+v", out)
	}
	return m, out[0].msg, now
}

// optBytes encodes one option by hand, for layouts dhcpv6 would not write.
func optBytes(code dhcpv6.OptionCode, data ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(code))
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

func iapdHeader(iaid uint32, t1, t2 uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, iaid)
	b = binary.BigEndian.AppendUint32(b, t1)
	return binary.BigEndian.AppendUint32(b, t2)
}

func oneIAPrefix(p string) *dhcpv6.OptIAPD {
	return iapd(testIAID, 1000*time.Second, 1600*time.Second, iaprefix(p, 2000*time.Second, 3000*time.Second))
}

// TestMalformedReplies feeds hostile or broken Replies to a requesting
// client: each is dropped whole, with the reason in Problems, and nothing
// is bound.
func TestMalformedReplies(t *testing.T) {
	_, req, _ := requesting(t)
	good := func(opts ...dhcpv6.Option) srvMsg {
		return srvMsg{typ: dhcpv6.MessageTypeReply, xid: req.TransactionID, clientID: clientDUID, serverID: serverA, opts: opts}
	}
	withRaw := func(s srvMsg, raw []byte) []byte { return append(s.bytes(), raw...) }
	// goodBut is the good Reply with one change.
	goodBut := func(change func(*srvMsg)) func(*dhcpv6.Message) []byte {
		return func(*dhcpv6.Message) []byte {
			s := good(goodPD())
			change(&s)
			return s.bytes()
		}
	}
	tests := []struct {
		name   string
		msg    func(req *dhcpv6.Message) []byte
		reason string
	}{
		{"a 3-byte datagram is too short for a header", func(*dhcpv6.Message) []byte { return []byte{7, 0, 0} }, "shorter than the 4-byte header"},
		{"a Relay-reply is not for a client", func(*dhcpv6.Message) []byte { return append([]byte{13}, make([]byte, 40)...) }, "not one a server sends"},
		{"an option running past the end is refused", func(*dhcpv6.Message) []byte {
			b := good(goodPD()).bytes()
			return append(b, 0, 23, 0, 200, 1, 2)
		}, "claims 200 bytes"},
		{"trailing bytes after the last option are refused", func(*dhcpv6.Message) []byte { return withRaw(good(goodPD()), []byte{0, 1}) }, "trailing bytes"},
		{"a foreign transaction id is refused", goodBut(func(s *srvMsg) { s.xid[0] ^= 0xff }), "transaction id"},
		{"a Reply without Client ID is refused", goodBut(func(s *srvMsg) { s.clientID = nil }), "no Client ID"},
		{"a Reply for another client is refused", goodBut(func(s *srvMsg) { s.clientID = serverB }), "is not ours"},
		{"a Reply without Server ID is refused", goodBut(func(s *srvMsg) { s.serverID = nil }), "no Server ID"},
		{"a second Server ID is refused", func(*dhcpv6.Message) []byte {
			return good(goodPD(), rawOpt(dhcpv6.OptionServerID, serverB...)).bytes()
		}, "appears twice"},
		{"an Advertise while requesting is refused", goodBut(func(s *srvMsg) { s.typ = dhcpv6.MessageTypeAdvertise }), "unexpected while sending Request"},
		{"T1 greater than T2 is refused", func(*dhcpv6.Message) []byte {
			return good(iapd(testIAID, 2000*time.Second, 1000*time.Second, iaprefix("2001:db8:100::/56", 2000*time.Second, 3000*time.Second))).bytes()
		}, "T1 33m20s > T2 16m40s"},
		{"a prefix preferred longer than valid is discarded", func(*dhcpv6.Message) []byte {
			return good(iapd(testIAID, 0, 0, iaprefix("2001:db8:100::/56", 3000*time.Second, 2000*time.Second))).bytes()
		}, "preferred lifetime > valid lifetime"},
		{"a /72 cannot be delegated on", func(*dhcpv6.Message) []byte { return good(oneIAPrefix("2001:db8:100::/72")).bytes() }, "length outside 1..64"},
		{"a link-local prefix is refused", func(*dhcpv6.Message) []byte { return good(oneIAPrefix("fe80::/56")).bytes() }, "link-local"},
		{"a multicast prefix is refused", func(*dhcpv6.Message) []byte { return good(oneIAPrefix("ff00::/8")).bytes() }, "multicast"},
		{"a ULA prefix is refused", func(*dhcpv6.Message) []byte { return good(oneIAPrefix("fd00:1::/48")).bytes() }, "ULA"},
		{"the unspecified prefix is refused", func(*dhcpv6.Message) []byte { return good(oneIAPrefix("::/56")).bytes() }, "unspecified"},
		{"a loopback prefix is refused", func(*dhcpv6.Message) []byte { return good(oneIAPrefix("::1/56")).bytes() }, "loopback"},
		{"an IPv4-mapped prefix is refused", func(*dhcpv6.Message) []byte { return good(oneIAPrefix("::ffff:0.0.0.0/56")).bytes() }, "IPv4-mapped"},
		{"a prefix length over 128 is refused", func(*dhcpv6.Message) []byte {
			pd := iapdHeader(testIAID, 1000, 1600)
			pfx := binary.BigEndian.AppendUint32(nil, 2000)
			pfx = binary.BigEndian.AppendUint32(pfx, 3000)
			pfx = append(pfx, 200)
			pfx = append(pfx, make([]byte, 16)...)
			pd = append(pd, optBytes(dhcpv6.OptionIAPrefix, pfx...)...)
			return withRaw(good(), optBytes(dhcpv6.OptionIAPD, pd...))
		}, "invalid prefix length"},
		{"two IA_PDs with our IAID are refused", func(*dhcpv6.Message) []byte { return good(goodPD(), goodPD()).bytes() }, "duplicate IA_PD for IAID 1"},
		{"the same prefix twice is refused", func(*dhcpv6.Message) []byte {
			return good(goodPD("2001:db8:100::/56", "2001:db8:100::/56")).bytes()
		}, "appears twice"},
		{"an IA_PD shorter than 12 bytes is refused", func(*dhcpv6.Message) []byte {
			return withRaw(good(), optBytes(dhcpv6.OptionIAPD, 0, 0, 0, 1, 0))
		}, "IA_PD of length 5"},
		{"an IA_PREFIX shorter than 25 bytes is refused", func(*dhcpv6.Message) []byte {
			pd := append(iapdHeader(testIAID, 1000, 1600), optBytes(dhcpv6.OptionIAPrefix, make([]byte, 10)...)...)
			return withRaw(good(), optBytes(dhcpv6.OptionIAPD, pd...))
		}, "of length 10, want at least 25"},
		{"a nested option running past its IA_PD is refused", func(*dhcpv6.Message) []byte {
			pd := append(iapdHeader(testIAID, 1000, 1600), 0, 26, 0, 99, 1, 2, 3)
			return withRaw(good(), optBytes(dhcpv6.OptionIAPD, pd...))
		}, "claims 99 bytes"},
		{"a one-byte Status Code is refused", func(*dhcpv6.Message) []byte {
			return withRaw(good(goodPD()), optBytes(dhcpv6.OptionStatusCode, 0))
		}, "Status Code of length 1"},
		{"a two-byte Preference is refused", func(*dhcpv6.Message) []byte {
			return withRaw(good(goodPD()), optBytes(dhcpv6.OptionPreference, 0, 1))
		}, "has length 2, want 1"},
		{"a Reply without our IA_PD binds nothing", func(*dhcpv6.Message) []byte {
			return good(iapd(7, 0, 0, iaprefix("2001:db8:100::/56", 10*time.Second, 20*time.Second))).bytes()
		}, "no usable prefix"},
	}
	if len(tests) < 15 {
		t.Fatal("the table must hold at least 15 cases")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, req, now := requesting(t)
			m.Receive(now, tt.msg(req), addrA)
			if m.State() != StateRequesting || m.Lease() != nil {
				t.Fatalf("state %s lease %v: a bad Reply was taken", m.State(), m.Lease())
			}
			if got := lastProblem(m); !strings.Contains(got, tt.reason) {
				t.Errorf("problem %q, want it to contain %q", got, tt.reason)
			}
		})
	}
}
