package dhcp6pd

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// fixedSource makes rand.Float64 return one value: 0 gives RAND = -0.1
// (and +0.1 for the first Solicit, whose RAND is positive), ^0 gives
// RAND just under +0.1 (and just over 0 for the first Solicit).
type fixedSource uint64

func (s fixedSource) Uint64() uint64 { return uint64(s) }

var (
	t0         = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clientDUID = DUIDLL(net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x01, 0x33})
	serverA    = DUIDLL(net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0xaa})
	serverB    = DUIDLL(net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0xbb})
	addrA      = netip.MustParseAddr("fe80::a")
	addrB      = netip.MustParseAddr("fe80::b")
)

const testIAID = 1

func newTestMachine(src rand.Source, mut func(*MachineConfig)) *Machine {
	cfg := MachineConfig{DUID: clientDUID, IAID: testIAID, PrefixLength: 56}
	if mut != nil {
		mut(&cfg)
	}
	return NewMachine(cfg, rand.New(src))
}

// sent is one transmission seen by a test.
type sent struct {
	at  time.Duration // since t0
	typ dhcpv6.MessageType
	to  netip.Addr
	msg *dhcpv6.Message
}

func sends(t *testing.T, at time.Time, acts []Action) []sent {
	t.Helper()
	var out []sent
	for _, a := range acts {
		if a.Send == nil {
			continue
		}
		msg, err := dhcpv6.MessageFromBytes(a.Send.Msg)
		if err != nil {
			t.Fatalf("our own %s does not parse: %v", a.Send.Type, err)
		}
		if msg.Type() != a.Send.Type {
			t.Fatalf("Outgoing.Type %s, message says %s", a.Send.Type, msg.Type())
		}
		out = append(out, sent{at: at.Sub(t0), typ: msg.Type(), to: a.Send.To, msg: msg})
	}
	return out
}

// advance fires the machine's timers until (and including) t0+until and
// returns what it sent.
func advance(t *testing.T, m *Machine, now *time.Time, until time.Duration) []sent {
	t.Helper()
	var out []sent
	for range 10000 {
		d := m.Deadline()
		if d.IsZero() || d.After(t0.Add(until)) {
			*now = t0.Add(until)
			return out
		}
		if d.After(*now) {
			*now = d
		}
		out = append(out, sends(t, *now, m.Timer(*now))...)
	}
	t.Fatal("machine never went quiet")
	return nil
}

// srvMsg builds a server message answering req.
type srvMsg struct {
	typ      dhcpv6.MessageType
	xid      dhcpv6.TransactionID
	clientID []byte
	serverID []byte
	opts     []dhcpv6.Option
}

func answer(req *dhcpv6.Message, typ dhcpv6.MessageType, server []byte, opts ...dhcpv6.Option) []byte {
	return srvMsg{typ: typ, xid: req.TransactionID, clientID: clientDUID, serverID: server, opts: opts}.bytes()
}

func (s srvMsg) bytes() []byte {
	m := &dhcpv6.Message{MessageType: s.typ, TransactionID: s.xid}
	if s.clientID != nil {
		m.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionClientID, OptionData: s.clientID})
	}
	if s.serverID != nil {
		m.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionServerID, OptionData: s.serverID})
	}
	for _, o := range s.opts {
		m.AddOption(o)
	}
	return m.ToBytes()
}

// iaID is an IAID as the options carry it.
func iaID(iaid uint32) (id [4]byte) {
	binary.BigEndian.PutUint32(id[:], iaid)
	return id
}

func iapd(iaid uint32, t1, t2 time.Duration, opts ...dhcpv6.Option) *dhcpv6.OptIAPD {
	return &dhcpv6.OptIAPD{IaId: iaID(iaid), T1: t1, T2: t2, Options: dhcpv6.PDOptions{Options: opts}}
}

func ianaOpt(iaid uint32, t1, t2 time.Duration, opts ...dhcpv6.Option) *dhcpv6.OptIANA {
	return &dhcpv6.OptIANA{IaId: iaID(iaid), T1: t1, T2: t2, Options: dhcpv6.IdentityOptions{Options: opts}}
}

func iaprefix(p string, preferred, valid time.Duration, opts ...dhcpv6.Option) *dhcpv6.OptIAPrefix {
	pp := netip.MustParsePrefix(p)
	return &dhcpv6.OptIAPrefix{
		PreferredLifetime: preferred,
		ValidLifetime:     valid,
		Prefix:            &net.IPNet{IP: net.IP(pp.Addr().AsSlice()), Mask: net.CIDRMask(pp.Bits(), 128)},
		Options:           dhcpv6.PrefixOptions{Options: opts},
	}
}

func iaaddr(a string, preferred, valid time.Duration, opts ...dhcpv6.Option) *dhcpv6.OptIAAddress {
	return &dhcpv6.OptIAAddress{IPv6Addr: net.IP(netip.MustParseAddr(a).AsSlice()), PreferredLifetime: preferred, ValidLifetime: valid,
		Options: dhcpv6.AddressOptions{Options: opts}}
}

func statusOpt(c iana.StatusCode) *dhcpv6.OptStatusCode {
	return &dhcpv6.OptStatusCode{StatusCode: c, StatusMessage: c.String()}
}

func preference(p uint8) dhcpv6.Option { return dhcpv6.OptPreference(p) }

func rawOpt(code dhcpv6.OptionCode, data ...byte) dhcpv6.Option {
	return &dhcpv6.OptionGeneric{OptionCode: code, OptionData: data}
}

// goodPD is the IA_PD a well-behaved server sends: a /56, T1 1000 s,
// T2 1600 s, preferred 2000 s, valid 3000 s.
func goodPD(prefixes ...string) *dhcpv6.OptIAPD {
	if len(prefixes) == 0 {
		prefixes = []string{"2001:db8:100::/56"}
	}
	var opts []dhcpv6.Option
	for _, p := range prefixes {
		opts = append(opts, iaprefix(p, 2000*time.Second, 3000*time.Second))
	}
	return iapd(testIAID, 1000*time.Second, 1600*time.Second, opts...)
}

// bindMachine drives a fresh machine to bound with goodPD at t0 (+ what
// the Solicit delay and first RT took) and returns the time it bound.
func bindMachine(t *testing.T, m *Machine, pd *dhcpv6.OptIAPD) time.Time {
	t.Helper()
	now := t0
	var out []sent
	out = append(out, sends(t, now, m.Start(now, nil))...)
	out = append(out, advance(t, m, &now, time.Second)...) // SOL_MAX_DELAY
	if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeSolicit {
		t.Fatalf("want one Solicit, got %+v", out)
	}
	out = sends(t, now, m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeAdvertise, serverA, pd, preference(255)), addrA))
	if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRequest {
		t.Fatalf("want a Request, got %+v (problems %q)", out, m.Problems())
	}
	m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, pd), addrA)
	if m.State() != StateBound {
		t.Fatalf("state %s, want bound; problems %q", m.State(), m.Problems())
	}
	return now
}

// startAndRun starts a machine drawing its RAND from src at t0 and runs it
// for d; it returns the machine, the time then and everything it sent.
func startAndRun(t *testing.T, src rand.Source, d time.Duration) (*Machine, time.Time, []sent) {
	t.Helper()
	m := newTestMachine(src, nil)
	now := t0
	out := sends(t, now, m.Start(now, nil))
	out = append(out, advance(t, m, &now, d)...)
	return m, now, out
}
