package dhcp6pd

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

const wanAddr = "2001:db8:ffff::77"

func goodNA() *dhcpv6.OptIANA {
	return ianaOpt(testIAID, 1000*time.Second, 1600*time.Second, iaaddr(wanAddr, 2000*time.Second, 3000*time.Second))
}

func withMode(mode AddressMode) func(*MachineConfig) {
	return func(c *MachineConfig) { c.RequestAddress = mode }
}

func naAddrs(msg *dhcpv6.Message) (bool, []string) {
	na := msg.Options.OneIANA()
	if na == nil {
		return false, nil
	}
	var out []string
	for _, a := range na.Options.Addresses() {
		out = append(out, a.IPv6Addr.String())
	}
	return true, out
}

// TestRequestAddressTry: RFC 7084 WAA-4/WAA-6 — the router asks for a WAN
// address (IA_NA) beside its prefix, and WPD-6 — a server that gives only
// the prefix, or none address, still delegates.
func TestRequestAddressTry(t *testing.T) {
	t.Run("Solicits carry IA_NA+IA_PD twice, then alternate with IA_PD alone", func(t *testing.T) {
		m, sol, now := startSoliciting(t, withMode(AddressTry))
		out := append([]sent{{msg: sol, typ: dhcpv6.MessageTypeSolicit}}, advance(t, m, &now, 20*time.Second)...)
		var got []bool
		for _, s := range out {
			has, _ := naAddrs(s.msg)
			got = append(got, has)
			if s.msg.Options.OneIAPD() == nil {
				t.Fatal("a Solicit without IA_PD")
			}
			if s.msg.TransactionID != sol.TransactionID {
				t.Error("the retransmissions must keep the transaction id")
			}
		}
		want := []bool{true, true, false, true, false}
		if len(got) < 5 {
			t.Fatalf("only %d Solicits", len(got))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("IA_NA in Solicits %v, want %v…", got, want)
			}
		}
	})
	t.Run("an address is asked for, bound, renewed and released with the prefix", func(t *testing.T) {
		m, sol, now := startSoliciting(t, withMode(AddressTry))
		out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), goodNA(), preference(255)), addrA))
		if has, as := naAddrs(out[0].msg); !has || len(as) != 1 || as[0] != wanAddr {
			t.Fatalf("Request IA_NA %v %v, want the offered address", has, as)
		}
		m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, goodPD(), goodNA()), addrA)
		l := m.Lease()
		if m.State() != StateBound || len(l.Addresses) != 1 || l.Addresses[0].Addr.String() != wanAddr || l.Addresses[0].Valid != 3000*time.Second {
			t.Fatalf("state %s addresses %+v", m.State(), l.Addresses)
		}
		out = advance(t, m, &now, 1000*time.Second)
		if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRenew {
			t.Fatalf("want a Renew, got %+v", out)
		}
		if has, as := naAddrs(out[0].msg); !has || len(as) != 1 || as[0] != wanAddr {
			t.Errorf("Renew IA_NA %v %v, want the address", has, as)
		}
		m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, goodPD(), goodNA()), addrA)
		if l := m.Lease(); !l.Acquired.Equal(now) || len(l.Addresses) != 1 {
			t.Errorf("after Renew %+v", l)
		}
		out = sends(t, now, m.Release(now))
		if has, as := naAddrs(out[0].msg); out[0].typ != dhcpv6.MessageTypeRelease || !has || len(as) != 1 {
			t.Errorf("Release IA_NA %v %v, want the address", has, as)
		}
	})
	t.Run("a server that answers only the IA_PD still delegates", func(t *testing.T) {
		m, sol, now := startSoliciting(t, withMode(AddressTry))
		out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(255)), addrA))
		if has, _ := naAddrs(out[0].msg); has {
			t.Error("Request carries IA_NA to a server that did not answer it")
		}
		m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, goodPD()), addrA)
		if m.State() != StateBound || len(m.Lease().Addresses) != 0 {
			t.Fatalf("state %s addresses %v", m.State(), m.Lease().Addresses)
		}
		out = advance(t, m, &now, 1000*time.Second)
		if has, _ := naAddrs(out[0].msg); has {
			t.Error("Renew carries IA_NA though the lease has no address")
		}
	})
	for _, level := range []string{"IA_NA", "IA Address"} {
		t.Run("NoAddrsAvail at "+level+" level still binds the prefix", func(t *testing.T) {
			m, sol, now := startSoliciting(t, withMode(AddressTry))
			na := ianaOpt(testIAID, 0, 0, statusOpt(iana.StatusNoAddrsAvail))
			if level != "IA_NA" {
				na = ianaOpt(testIAID, 0, 0, iaaddr(wanAddr, 0, 0, statusOpt(iana.StatusNoAddrsAvail)))
			}
			out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), na, preference(255)), addrA))
			if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRequest {
				t.Fatalf("want a Request, got %+v (%q)", out, m.Problems())
			}
			m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, goodPD(), na), addrA)
			if m.State() != StateBound || len(m.Lease().Addresses) != 0 {
				t.Fatalf("state %s lease %+v", m.State(), m.Lease())
			}
			if p := lastProblem(m); !strings.Contains(p, "NoAddrsAvail") || !strings.Contains(p, "without one") {
				t.Errorf("problem %q", p)
			}
		})
	}
	t.Run("unusable addresses are discarded alone", func(t *testing.T) {
		m, req, now := requestingMode(t, AddressTry)
		na := ianaOpt(testIAID, 0, 0,
			iaaddr("fd00::1", 100*time.Second, 200*time.Second),
			iaaddr("fe80::1", 100*time.Second, 200*time.Second),
			iaaddr("2001:db8:ffff::1", 300*time.Second, 200*time.Second),
			iaaddr(wanAddr, 100*time.Second, 200*time.Second))
		m.Receive(now, answer(req, dhcpv6.MessageTypeReply, serverA, goodPD(), na), addrA)
		l := m.Lease()
		if m.State() != StateBound || len(l.Addresses) != 1 || l.Addresses[0].Addr.String() != wanAddr {
			t.Fatalf("state %s addresses %+v; %q", m.State(), l.Addresses, m.Problems())
		}
		joined := strings.Join(m.Problems(), "\n")
		// The ULA and the link-local are one kind of problem (the latest
		// named, counted twice).
		for _, want := range []string{"fe80::1: not global unicast (×2)", "preferred lifetime 5m0s > valid lifetime"} {
			if !strings.Contains(joined, want) {
				t.Errorf("problems %q lack %q", m.Problems(), want)
			}
		}
	})
	t.Run("a Renew Reply without the IA_NA lets the address live out its lifetime", func(t *testing.T) {
		m, req, now := requestingMode(t, AddressTry)
		m.Receive(now, answer(req, dhcpv6.MessageTypeReply, serverA, goodPD(), goodNA()), addrA)
		out := advance(t, m, &now, 1000*time.Second)
		m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, goodPD()), addrA)
		l := m.Lease()
		if len(l.Addresses) != 1 || l.Addresses[0].Valid != 2000*time.Second {
			t.Fatalf("addresses %+v, want the old one with 2000 s left", l.Addresses)
		}
		if got := l.ValidAddresses(now.Add(2001 * time.Second)); len(got) != 0 {
			t.Errorf("ValidAddresses after its lifetime %v", got)
		}
	})
}

// requestingMode is requesting with an address mode and an Advertise that
// offered an address.
func requestingMode(t *testing.T, mode AddressMode) (*Machine, *dhcpv6.Message, time.Time) {
	t.Helper()
	m, sol, now := startSoliciting(t, withMode(mode))
	out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), goodNA(), preference(255)), addrA))
	if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRequest {
		t.Fatalf("want a Request, got %+v (%q)", out, m.Problems())
	}
	return m, out[0].msg, now
}

// TestRequestAddressRequire: no bind without an address.
func TestRequestAddressRequire(t *testing.T) {
	t.Run("every Solicit carries IA_NA", func(t *testing.T) {
		m, sol, now := startSoliciting(t, withMode(AddressRequire))
		out := append([]sent{{msg: sol}}, advance(t, m, &now, 5*time.Second)...)
		for i, s := range out {
			if has, _ := naAddrs(s.msg); !has {
				t.Errorf("Solicit %d without IA_NA", i+1)
			}
		}
	})
	t.Run("an Advertise without an address is ignored", func(t *testing.T) {
		m, sol, now := startSoliciting(t, withMode(AddressRequire))
		na := ianaOpt(testIAID, 0, 0, statusOpt(iana.StatusNoAddrsAvail))
		out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), na, preference(255)), addrA))
		if len(out) != 0 || m.State() != StateSoliciting || !strings.Contains(lastProblem(m), "NoAddrsAvail") {
			t.Fatalf("sent %+v in %s, problem %q", out, m.State(), lastProblem(m))
		}
	})
	t.Run("a Reply to Request without an address is a refusal", func(t *testing.T) {
		m, req, now := requestingMode(t, AddressRequire)
		m.Receive(now, answer(req, dhcpv6.MessageTypeReply, serverA, goodPD(), ianaOpt(testIAID, 0, 0, statusOpt(iana.StatusNoAddrsAvail))), addrA)
		if m.State() != StateSoliciting || m.Lease() != nil {
			t.Fatalf("state %s lease %v, want soliciting without a lease", m.State(), m.Lease())
		}
	})
	t.Run("with an address it binds", func(t *testing.T) {
		m, req, now := requestingMode(t, AddressRequire)
		m.Receive(now, answer(req, dhcpv6.MessageTypeReply, serverA, goodPD(), goodNA()), addrA)
		if m.State() != StateBound || len(m.Lease().Addresses) != 1 {
			t.Fatalf("state %s lease %+v", m.State(), m.Lease())
		}
	})
}

func TestRequestAddressNever(t *testing.T) {
	m, sol, now := startSoliciting(t, withMode(AddressNever))
	if has, _ := naAddrs(sol); has {
		t.Fatal("Solicit carries IA_NA in never mode")
	}
	out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), goodNA(), preference(255)), addrA))
	if has, _ := naAddrs(out[0].msg); has {
		t.Error("Request carries IA_NA in never mode")
	}
	m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, goodPD(), goodNA()), addrA)
	if len(m.Lease().Addresses) != 0 {
		t.Error("an unasked-for address was taken")
	}
}

func TestAddressesInLeaseFile(t *testing.T) {
	dir := t.TempDir()
	l := &Lease{IAID: 1, ServerID: serverA, Acquired: t0, Prefixes: []Prefix{{Prefix: netip.MustParsePrefix("2001:db8:100::/56"), Preferred: time.Hour, Valid: 2 * time.Hour}},
		Addresses: []Address{{Addr: netip.MustParseAddr(wanAddr), Preferred: time.Hour, Valid: 2 * time.Hour}}}
	if err := SaveLease(dir, "wan0", l); err != nil {
		t.Fatal(err)
	}
	got, err := LoadLease(dir, "wan0", 1)
	if err != nil || len(got.Addresses) != 1 || got.Addresses[0] != l.Addresses[0] {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	for _, bad := range []string{
		`[{"address": "fd00::1", "preferred_s": 1, "valid_s": 2}]`,
		`[{"address": "2001:db8::1", "preferred_s": 3, "valid_s": 2}]`,
		`[{"address": "x", "preferred_s": 1, "valid_s": 2}]`,
	} {
		raw := `{"iaid": 1, "server_duid": "` + FormatDUID(serverA) + `", "acquired": "2026-11-26T12:00:00Z", "prefixes": [], "addresses": ` + bad + `}`
		var x Lease
		if err := x.UnmarshalJSON([]byte(raw)); err == nil {
			t.Errorf("%s loaded", bad)
		}
	}
}

// TestServerIgnoringBothIAs: RFC 7084 WPD-6 — a server that drops every
// Solicit holding IA_NA is still found in try mode, through the Solicit
// transmissions that carry the IA_PD alone, and then asked for the IA_PD
// alone.
func TestServerIgnoringBothIAs(t *testing.T) {
	m, sol, now := startSoliciting(t, withMode(AddressTry))
	pending := []sent{{msg: sol}}
	for range 20 {
		for _, s := range pending {
			if has, _ := naAddrs(s.msg); has || s.msg.Type() != dhcpv6.MessageTypeSolicit {
				continue // dropped, as that server does
			}
			out := sends(t, now, m.Receive(now, answer(s.msg, dhcpv6.MessageTypeAdvertise, serverA, goodPD()), addrA))
			if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRequest {
				t.Fatalf("want a Request, got %+v", out)
			}
			if has, _ := naAddrs(out[0].msg); has {
				t.Fatal("Request carries IA_NA to a server that answered only the IA_PD")
			}
			m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, goodPD()), addrA)
			if m.State() != StateBound {
				t.Fatalf("state %s", m.State())
			}
			// RAND -0.1: transmissions at 0, 1.1 and 3.19 s; the third
			// is the first with the IA_PD alone.
			if took := now.Sub(t0); took > 4*time.Second {
				t.Errorf("bound after %s", took)
			}
			return
		}
		d := m.Deadline()
		now = d
		pending = sends(t, now, m.Timer(now))
	}
	t.Fatal("never bound")
}
