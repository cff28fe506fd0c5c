package dhcp6pd

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// startSoliciting returns a machine that has sent its first Solicit.
func startSoliciting(t *testing.T, mut func(*MachineConfig)) (*Machine, *dhcpv6.Message, time.Time) {
	t.Helper()
	m := newTestMachine(fixedSource(0), mut)
	now := t0
	out := sends(t, now, m.Start(now, nil))
	if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeSolicit {
		t.Fatalf("want one Solicit at start, got %+v", out)
	}
	return m, out[0].msg, now
}

func lastProblem(m *Machine) string {
	p := m.Problems()
	if len(p) == 0 {
		return ""
	}
	return p[len(p)-1]
}

func TestSolicitContents(t *testing.T) {
	_, sol, _ := startSoliciting(t, func(c *MachineConfig) { c.RapidCommit = true })
	if got := sol.Options.ClientID(); got == nil || !bytes.Equal(got.ToBytes(), clientDUID) {
		t.Errorf("Client ID %v, want our DUID", got)
	}
	if sol.GetOneOption(dhcpv6.OptionServerID) != nil {
		t.Error("Solicit carries a Server ID")
	}
	if sol.Options.IANA() != nil {
		t.Error("Solicit carries IA_NA; v6edge asks for IA_PD only")
	}
	pd := sol.Options.OneIAPD()
	if pd == nil || binary.BigEndian.Uint32(pd.IaId[:]) != testIAID {
		t.Fatalf("IA_PD %v, want IAID %d", pd, testIAID)
	}
	if ps := pd.Options.Prefixes(); len(ps) != 1 || ps[0].Prefix.String() != "::/56" {
		t.Errorf("IA_PD hint %v, want ::/56", ps)
	}
	if !sol.Options.RequestedOptions().Contains(optSolMaxRT) {
		t.Error("ORO lacks SOL_MAX_RT (RFC 8415 §18.2)")
	}
	if sol.GetOneOption(dhcpv6.OptionRapidCommit) == nil {
		t.Error("Rapid Commit configured but not sent")
	}
	if sol.GetOneOption(dhcpv6.OptionElapsedTime) == nil {
		t.Error("no Elapsed Time")
	}
}

func TestServerSelection(t *testing.T) {
	t.Run("the highest preference wins once the first RT ends", func(t *testing.T) {
		m, sol, now := startSoliciting(t, nil)
		m.Receive(now.Add(100*time.Millisecond), answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(10)), addrA)
		m.Receive(now.Add(200*time.Millisecond), answer(sol, dhcpv6.MessageTypeAdvertise, serverB, goodPD("2001:db8:200::/56"), preference(200)), addrB)
		if m.State() != StateSoliciting {
			t.Fatalf("state %s before the first RT ended, want soliciting", m.State())
		}
		out := advance(t, m, &now, 1100*time.Millisecond)
		if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRequest {
			t.Fatalf("want a Request at 1.1 s, got %+v", out)
		}
		if got := out[0].msg.Options.ServerID(); !bytes.Equal(got.ToBytes(), serverB) {
			t.Errorf("Request to %s, want server B (preference 200)", FormatDUID(got.ToBytes()))
		}
		if got := out[0].msg.Options.OneIAPD().Options.Prefixes()[0].Prefix.String(); got != "2001:db8:200::/56" {
			t.Errorf("Request asks for %s, want B's offer", got)
		}
	})
	t.Run("preference 255 is taken at once", func(t *testing.T) {
		m, sol, now := startSoliciting(t, nil)
		out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(255)), addrA))
		if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRequest || m.State() != StateRequesting {
			t.Fatalf("want an immediate Request, got %+v in %s", out, m.State())
		}
	})
	t.Run("after the first RT the first Advertise is taken at once", func(t *testing.T) {
		m, sol, now := startSoliciting(t, nil)
		out := advance(t, m, &now, 1500*time.Millisecond) // second Solicit at 1.1 s
		if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeSolicit {
			t.Fatalf("want a retransmitted Solicit, got %+v", out)
		}
		sol2 := out[0].msg
		if sol2.TransactionID != sol.TransactionID {
			t.Error("a retransmission must keep its transaction id")
		}
		out = sends(t, now, m.Receive(now, answer(sol2, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(0)), addrA))
		if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRequest {
			t.Fatalf("want an immediate Request, got %+v", out)
		}
	})
	t.Run("Request falls back to the next server after REQ_MAX_RC", func(t *testing.T) {
		m, sol, now := startSoliciting(t, nil)
		m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(10)), addrA)
		m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverB, goodPD(), preference(200)), addrB)
		m.ReqMaxRC = 2
		out := advance(t, m, &now, 20*time.Second)
		var servers []string
		for _, s := range out {
			if s.typ == dhcpv6.MessageTypeRequest {
				servers = append(servers, FormatDUID(s.msg.Options.ServerID().ToBytes()))
			}
		}
		want := []string{FormatDUID(serverB), FormatDUID(serverB), FormatDUID(serverA), FormatDUID(serverA)}
		if diff := cmp.Diff(want, servers); diff != "" {
			t.Errorf("Request targets (-want +got):\n%s", diff)
		}
	})
}

// TestStatusCodes sends each status code at each of the three levels
// (message, IA_PD, IA_PREFIX) in Advertise, in the Reply to Request and in
// the Reply to Renew.
func TestStatusCodes(t *testing.T) {
	wrap := func(level string, c iana.StatusCode) []dhcpv6.Option {
		switch level {
		case "message":
			return []dhcpv6.Option{statusOpt(c), iapd(testIAID, 0, 0)}
		case "IA_PD":
			return []dhcpv6.Option{iapd(testIAID, 0, 0, statusOpt(c))}
		default:
			return []dhcpv6.Option{iapd(testIAID, 0, 0, iaprefix("2001:db8:100::/56", 0, 0, statusOpt(c)))}
		}
	}
	for _, level := range []string{"message", "IA_PD", "IA_PREFIX"} {
		t.Run("an Advertise with NoPrefixAvail at "+level+" level is ignored", func(t *testing.T) {
			m, sol, now := startSoliciting(t, nil)
			opts := append(wrap(level, iana.StatusNoPrefixAvail), preference(255))
			out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, opts...), addrA))
			if len(out) != 0 || m.State() != StateSoliciting {
				t.Fatalf("sent %+v, state %s; want nothing, soliciting", out, m.State())
			}
			if !strings.Contains(lastProblem(m), "NoPrefixAvail") {
				t.Errorf("problem %q does not name NoPrefixAvail", lastProblem(m))
			}
		})
		t.Run("a Reply to Request with NoPrefixAvail at "+level+" level restarts discovery with the normal timing", func(t *testing.T) {
			m, sol, now := startSoliciting(t, nil)
			m.SolMaxRT = 100 * time.Second
			out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(255)), addrA))
			out = sends(t, now, m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, wrap(level, iana.StatusNoPrefixAvail)...), addrA))
			if m.State() != StateSoliciting || m.Lease() != nil {
				t.Fatalf("state %s lease %v, want soliciting without lease", m.State(), m.Lease())
			}
			// RFC 8415 §18.2.1: RAND 0 gives no initial delay, so the
			// Solicit goes at once; then RT 1.1 s (IRT = SOL_TIMEOUT),
			// doubling with RAND -0.1, up to MRT.
			out = append(out, advance(t, m, &now, 10*time.Second)...)
			if diff := cmp.Diff(ms(0, 1.1, 3.19, 7.161), sendTimes(out, dhcpv6.MessageTypeSolicit)); diff != "" {
				t.Errorf("Solicit times (-want +got):\n%s", diff)
			}
		})
		t.Run("a Reply to Renew with NoPrefixAvail at "+level+" level keeps the lease and keeps renewing", func(t *testing.T) {
			m := newTestMachine(fixedSource(0), nil)
			bound := bindMachine(t, m, goodPD())
			now := bound
			out := advance(t, m, &now, bound.Sub(t0)+1000*time.Second)
			m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, wrap(level, iana.StatusNoPrefixAvail)...), addrA)
			if m.State() != StateRenewing || m.Lease() == nil {
				t.Fatalf("state %s lease %v, want renewing with the lease", m.State(), m.Lease())
			}
		})
		// NoBinding is an IA-level status (RFC 8415 §18.3.4): no IA_PREFIX case.
		if level != "IA_PREFIX" {
			t.Run("a Reply to Renew with NoBinding at "+level+" level makes the client Request", func(t *testing.T) {
				m := newTestMachine(fixedSource(0), nil)
				bound := bindMachine(t, m, goodPD())
				now := bound
				out := advance(t, m, &now, bound.Sub(t0)+1000*time.Second)
				out = sends(t, now, m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, wrap(level, iana.StatusNoBinding)...), addrA))
				if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRequest || m.State() != StateRequesting {
					t.Fatalf("want a Request and requesting, got %+v in %s", out, m.State())
				}
				if ps := out[0].msg.Options.OneIAPD().Options.Prefixes(); len(ps) != 1 || ps[0].Prefix.String() != "2001:db8:100::/56" {
					t.Errorf("Request asks for %v, want the lease's prefix", ps)
				}
				if m.Lease() == nil {
					t.Error("lease withdrawn while Requesting it back")
				}
				m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, goodPD()), addrA)
				if m.State() != StateBound {
					t.Errorf("state %s, want bound again", m.State())
				}
			})
		}
	}
	t.Run("the Server Unicast option is ignored and UseMulticast is paced", func(t *testing.T) {
		// RFC 9915 deprecates Server Unicast: a server's unicast address
		// is often unreachable from our link-local source.
		m, sol, now := startSoliciting(t, nil)
		unicast := rawOpt(dhcpv6.OptionUnicast, netip.MustParseAddr("2001:db8::53").AsSlice()...)
		out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(255), unicast), addrA))
		if out[0].to != AllServers {
			t.Fatalf("Request to %s, want ff02::1:2", out[0].to)
		}
		// A UseMulticast Reply (each one) used to trigger an immediate
		// resend: a burst per Reply. Now the next RT paces it.
		for range 5 {
			got := sends(t, now, m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, statusOpt(iana.StatusUseMulticast)), addrA))
			if len(got) != 0 {
				t.Fatalf("UseMulticast made the client send %+v at once", got)
			}
		}
		if !strings.Contains(lastProblem(m), "UseMulticast") || !strings.Contains(lastProblem(m), "(×5)") {
			t.Errorf("problem %q", lastProblem(m))
		}
		next := advance(t, m, &now, 1200*time.Millisecond)
		if len(next) != 1 || next[0].typ != dhcpv6.MessageTypeRequest || next[0].to != AllServers {
			t.Fatalf("want the Request retransmitted at its RT, got %+v", next)
		}
	})
	t.Run("a saved lease's unicast address is not used for Renew", func(t *testing.T) {
		m := newTestMachine(fixedSource(0), nil)
		now := bindMachine(t, m, goodPD())
		saved := m.Lease()
		saved.Unicast = netip.MustParseAddr("2001:db8::53")
		m2 := newTestMachine(fixedSource(0), nil)
		sends(t, now, m2.Start(now, saved))
		m2.Receive(now, nil, addrA)
		out := advance(t, m2, &now, 1500*time.Second)
		for _, s := range out {
			if s.to != AllServers {
				t.Errorf("%s to %s", s.typ, s.to)
			}
		}
	})
	t.Run("UnspecFail is retried at the retransmission pace", func(t *testing.T) {
		m, sol, now := startSoliciting(t, nil)
		out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(255)), addrA))
		got := sends(t, now, m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, statusOpt(iana.StatusUnspecFail)), addrA))
		if len(got) != 0 || m.State() != StateRequesting {
			t.Fatalf("sent %+v in %s; want nothing until the next RT, requesting", got, m.State())
		}
	})
	t.Run("NotOnLink in a Reply to Request restarts discovery", func(t *testing.T) {
		m, sol, now := startSoliciting(t, nil)
		out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(255)), addrA))
		m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, iapd(testIAID, 0, 0, statusOpt(iana.StatusNotOnLink))), addrA)
		if m.State() != StateSoliciting {
			t.Fatalf("state %s, want soliciting", m.State())
		}
	})
}

// renewAtT1 binds a machine to goodPD and runs it to T1, where it must
// send one Renew; it returns the machine, that Renew and the time.
func renewAtT1(t *testing.T) (*Machine, *dhcpv6.Message, time.Time) {
	t.Helper()
	m := newTestMachine(fixedSource(0), nil)
	bound := bindMachine(t, m, goodPD())
	now := bound
	out := advance(t, m, &now, bound.Sub(t0)+1000*time.Second)
	if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRenew {
		t.Fatalf("want a Renew at T1, got %+v", out)
	}
	return m, out[0].msg, now
}

func TestRenewReplies(t *testing.T) {
	prefixes := func(l *Lease) []string {
		var out []string
		for _, p := range l.Prefixes {
			out = append(out, p.Prefix.String()+" "+p.Valid.String())
		}
		return out
	}
	t.Run("a successful Renew restarts the lifetimes", func(t *testing.T) {
		m, renew, now := renewAtT1(t)
		m.Receive(now, answer(renew, dhcpv6.MessageTypeReply, serverA, goodPD()), addrA)
		l := m.Lease()
		if m.State() != StateBound || !l.Acquired.Equal(now) || l.ValidUntil(now) != now.Add(3000*time.Second) {
			t.Fatalf("state %s, lease %+v", m.State(), l)
		}
	})
	t.Run("a new prefix in a Renew reply is taken at once and the withdrawn one dropped", func(t *testing.T) {
		m, renew, now := renewAtT1(t)
		pd := iapd(testIAID, 1000*time.Second, 1600*time.Second,
			iaprefix("2001:db8:100::/56", 0, 0),
			iaprefix("2001:db8:300::/56", 2000*time.Second, 3000*time.Second))
		acts := m.Receive(now, answer(renew, dhcpv6.MessageTypeReply, serverA, pd), addrA)
		if diff := cmp.Diff([]string{"2001:db8:300::/56 50m0s"}, prefixes(m.Lease())); diff != "" {
			t.Errorf("prefixes (-want +got):\n%s", diff)
		}
		if p, _ := m.Lease().Chosen(56, now); p.Prefix.String() != "2001:db8:300::/56" {
			t.Errorf("chosen %s", p.Prefix)
		}
		if !strings.Contains(acts[0].Info, "renumbered") {
			t.Errorf("info %q does not say renumbered", acts[0].Info)
		}
	})
	t.Run("a prefix the Renew reply does not mention keeps its remaining lifetime", func(t *testing.T) {
		m, renew, now := renewAtT1(t)
		pd := iapd(testIAID, 1000*time.Second, 1600*time.Second, iaprefix("2001:db8:300::/56", 2000*time.Second, 3000*time.Second))
		m.Receive(now, answer(renew, dhcpv6.MessageTypeReply, serverA, pd), addrA)
		want := []string{"2001:db8:300::/56 50m0s", "2001:db8:100::/56 33m20s"}
		if diff := cmp.Diff(want, prefixes(m.Lease())); diff != "" {
			t.Errorf("prefixes (-want +got):\n%s", diff)
		}
	})
	t.Run("a Renew reply withdrawing every prefix expires the lease", func(t *testing.T) {
		m, renew, now := renewAtT1(t)
		pd := iapd(testIAID, 0, 0, iaprefix("2001:db8:100::/56", 0, 0))
		m.Receive(now, answer(renew, dhcpv6.MessageTypeReply, serverA, pd), addrA)
		if m.Lease() != nil || m.State() != StateSoliciting {
			t.Fatalf("state %s lease %v, want soliciting without lease", m.State(), m.Lease())
		}
	})
	t.Run("a Renew reply without our IA_PD is ignored", func(t *testing.T) {
		m, renew, now := renewAtT1(t)
		m.Receive(now, answer(renew, dhcpv6.MessageTypeReply, serverA, iapd(99, 0, 0, iaprefix("2001:db8:9::/56", 10, 20))), addrA)
		if m.State() != StateRenewing {
			t.Fatalf("state %s, want renewing", m.State())
		}
	})
	t.Run("a Rebind reply from another server moves the lease to it", func(t *testing.T) {
		m := newTestMachine(fixedSource(0), nil)
		bound := bindMachine(t, m, goodPD())
		now := bound
		out := advance(t, m, &now, bound.Sub(t0)+1600*time.Second)
		rebind := out[len(out)-1]
		if rebind.typ != dhcpv6.MessageTypeRebind {
			t.Fatalf("want a Rebind at T2, got %s", rebind.typ)
		}
		m.Receive(now, answer(rebind.msg, dhcpv6.MessageTypeReply, serverB, goodPD()), addrB)
		if l := m.Lease(); m.State() != StateBound || !bytes.Equal(l.ServerID, serverB) || l.ServerAddr != addrB {
			t.Fatalf("state %s lease %+v", m.State(), l)
		}
	})
}

func TestEffectiveTimers(t *testing.T) {
	ps := []Prefix{{Preferred: 1000 * time.Second, Valid: 2000 * time.Second}, {Preferred: 400 * time.Second, Valid: 800 * time.Second}}
	tests := []struct {
		name           string
		t1, t2         time.Duration
		prefixes       []Prefix
		wantT1, wantT2 time.Duration
	}{
		{"server values are kept", 100 * time.Second, 200 * time.Second, ps, 100 * time.Second, 200 * time.Second},
		{"zero T1 and T2 become 0.5 and 0.8 of the shortest preferred lifetime", 0, 0, ps, 200 * time.Second, 320 * time.Second},
		{"a zero T1 never exceeds the server's T2", 0, 150 * time.Second, ps, 150 * time.Second, 150 * time.Second},
		{"a zero T2 is never below the server's T1", 300 * time.Second, 0, ps, 300 * time.Second, 320 * time.Second},
		{"infinite lifetimes mean no renewal", 0, 0, []Prefix{{Preferred: Infinity, Valid: Infinity}}, Infinity, Infinity},
		{"a deprecated prefix counts with its valid lifetime", 0, 0, []Prefix{{Preferred: 0, Valid: 100 * time.Second}}, 50 * time.Second, 80 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t1, t2 := effectiveTimers(tt.t1, tt.t2, tt.prefixes)
			if t1 != tt.wantT1 || t2 != tt.wantT2 {
				t.Errorf("got T1 %s T2 %s, want %s %s", t1, t2, tt.wantT1, tt.wantT2)
			}
		})
	}
}

func TestRestartFromSavedLease(t *testing.T) {
	saved := &Lease{
		IAID: testIAID, ServerID: serverA, ServerAddr: addrA, T1: 1000 * time.Second, T2: 1600 * time.Second,
		Acquired: t0.Add(-500 * time.Second),
		Prefixes: []Prefix{{Prefix: netip.MustParsePrefix("2001:db8:100::/56"), Preferred: 2000 * time.Second, Valid: 3000 * time.Second}},
	}
	t.Run("a valid saved lease is Rebound, not Solicited, and stays visible", func(t *testing.T) {
		m := newTestMachine(fixedSource(0), nil)
		out := sends(t, t0, m.Start(t0, saved))
		if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRebind {
			t.Fatalf("want one Rebind, got %+v", out)
		}
		if m.State() != StateRebinding || m.Lease() == nil {
			t.Fatalf("state %s lease %v", m.State(), m.Lease())
		}
		if ps := out[0].msg.Options.OneIAPD().Options.Prefixes(); len(ps) != 1 || ps[0].Prefix.String() != "2001:db8:100::/56" {
			t.Errorf("Rebind asks for %v", ps)
		}
		m.Receive(t0, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, goodPD()), addrA)
		if m.State() != StateBound {
			t.Errorf("state %s, want bound", m.State())
		}
	})
	t.Run("an expired saved lease is dropped and the client Solicits", func(t *testing.T) {
		m := newTestMachine(fixedSource(0), nil)
		out := sends(t, t0, m.Start(t0.Add(2600*time.Second), saved))
		if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeSolicit || m.Lease() != nil {
			t.Fatalf("want one Solicit and no lease, got %+v, %v", out, m.Lease())
		}
	})
	t.Run("a link coming back Rebinds the lease", func(t *testing.T) {
		m := newTestMachine(fixedSource(0), nil)
		bound := bindMachine(t, m, goodPD())
		out := sends(t, bound, m.LinkUp(bound.Add(10*time.Second)))
		if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRebind {
			t.Fatalf("want a Rebind, got %+v", out)
		}
	})
}

func TestStandby(t *testing.T) {
	lease := &Lease{
		IAID: testIAID, ServerID: serverA, T1: 1000 * time.Second, T2: 1600 * time.Second, Acquired: t0,
		Prefixes: []Prefix{{Prefix: netip.MustParsePrefix("2001:db8:100::/56"), Preferred: 2000 * time.Second, Valid: 3000 * time.Second}},
	}
	m := newTestMachine(fixedSource(0), nil)
	now := t0
	m.Start(now, nil)
	m.SetStandby(now, true, lease)
	if m.State() != StateStandby || m.Lease() == nil {
		t.Fatalf("state %s lease %v", m.State(), m.Lease())
	}
	var out []sent
	out = append(out, advance(t, m, &now, 5000*time.Second)...)
	out = append(out, sends(t, now, m.Release(now))...)
	out = append(out, sends(t, now, m.Renew(now))...)
	out = append(out, sends(t, now, m.LinkUp(now))...)
	if len(out) != 0 {
		t.Fatalf("standby sent %+v", out)
	}
	t.Run("leaving standby with a valid lease Renews it", func(t *testing.T) {
		now := t0.Add(100 * time.Second)
		out := sends(t, now, m.SetStandby(now, false, nil))
		if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRenew {
			t.Fatalf("want a Renew, got %+v", out)
		}
	})
	t.Run("leaving standby without a lease Solicits", func(t *testing.T) {
		m := newTestMachine(fixedSource(0), nil)
		m.SetStandby(t0, true, nil)
		out := sends(t, t0, m.SetStandby(t0, false, nil))
		if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeSolicit {
			t.Fatalf("want a Solicit, got %+v", out)
		}
	})
}

func TestRelease(t *testing.T) {
	m := newTestMachine(fixedSource(0), nil)
	bound := bindMachine(t, m, goodPD())
	now := bound
	out := sends(t, now, m.Release(now))
	if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRelease || m.Lease() != nil || m.State() != StateReleased {
		t.Fatalf("sent %+v, state %s, lease %v", out, m.State(), m.Lease())
	}
	if !bytes.Equal(out[0].msg.Options.ServerID().ToBytes(), serverA) {
		t.Error("Release without our server's ID")
	}
	out = append(out, advance(t, m, &now, bound.Sub(t0)+time.Hour)...)
	// REL_TIMEOUT 1 s, REL_MAX_RC 4, RAND -0.1: 0, 0.9, 2.61, 5.859.
	got := sendTimes(out, dhcpv6.MessageTypeRelease)
	for i := range got {
		got[i] -= bound.Sub(t0)
	}
	if diff := cmp.Diff(ms(0, 0.9, 2.61, 5.859), got); diff != "" {
		t.Errorf("Release times (-want +got):\n%s", diff)
	}
	if m.State() != StateReleased {
		t.Errorf("state %s after Release, want released (idle)", m.State())
	}
	out = sends(t, now, m.Renew(now))
	if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeSolicit {
		t.Errorf("renew after release: want a Solicit, got %+v", out)
	}
}

func TestRapidCommit(t *testing.T) {
	t.Run("a Reply with Rapid Commit to a Solicit binds", func(t *testing.T) {
		m, sol, now := startSoliciting(t, func(c *MachineConfig) { c.RapidCommit = true })
		m.Receive(now, answer(sol, dhcpv6.MessageTypeReply, serverA, goodPD(), rawOpt(dhcpv6.OptionRapidCommit)), addrA)
		if m.State() != StateBound {
			t.Fatalf("state %s, want bound; %q", m.State(), m.Problems())
		}
	})
	t.Run("a Reply without Rapid Commit to a Solicit is rejected", func(t *testing.T) {
		m, sol, now := startSoliciting(t, func(c *MachineConfig) { c.RapidCommit = true })
		m.Receive(now, answer(sol, dhcpv6.MessageTypeReply, serverA, goodPD()), addrA)
		if m.State() != StateSoliciting || !strings.Contains(lastProblem(m), "without Rapid Commit") {
			t.Fatalf("state %s, problem %q", m.State(), lastProblem(m))
		}
	})
	t.Run("a rapid Reply is rejected when rapid commit is not configured", func(t *testing.T) {
		m, sol, now := startSoliciting(t, nil)
		m.Receive(now, answer(sol, dhcpv6.MessageTypeReply, serverA, goodPD(), rawOpt(dhcpv6.OptionRapidCommit)), addrA)
		if m.State() != StateSoliciting {
			t.Fatalf("state %s, want soliciting", m.State())
		}
	})
}

var reconfKey = []byte("0123456789abcdef")

func authOpt(infoType byte, replay uint64, value []byte) dhcpv6.Option {
	b := []byte{authProtoReconfigureKey, authAlgHMACMD5, authRDMCounter}
	b = binary.BigEndian.AppendUint64(b, replay)
	b = append(b, infoType)
	return rawOpt(dhcpv6.OptionAuth, append(b, value...)...)
}

// reconfigure builds a Reconfigure signed with key; the Auth option is
// last, so its digest is the last 16 bytes.
func reconfigure(server, key []byte, replay uint64, msgType dhcpv6.MessageType) []byte {
	b := srvMsg{typ: dhcpv6.MessageTypeReconfigure, clientID: clientDUID, serverID: server, opts: []dhcpv6.Option{
		rawOpt(dhcpv6.OptionReconfMessage, byte(msgType)),
		authOpt(authTypeHMAC, replay, make([]byte, 16)),
	}}.bytes()
	h := hmac.New(md5.New, key)
	h.Write(b)
	copy(b[len(b)-16:], h.Sum(nil))
	return b
}

func TestReconfigure(t *testing.T) {
	bindWithKey := func(t *testing.T) (*Machine, time.Time) {
		m, sol, now := startSoliciting(t, nil)
		out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(255)), addrA))
		m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, goodPD(), authOpt(authTypeKey, 5, reconfKey)), addrA)
		if m.State() != StateBound || !bytes.Equal(m.Lease().ReconfigureKey, reconfKey) {
			t.Fatalf("state %s, key %x", m.State(), m.Lease().ReconfigureKey)
		}
		return m, now.Add(time.Minute)
	}
	tests := []struct {
		name    string
		msg     []byte
		wantTyp dhcpv6.MessageType // 0: rejected
		reason  string
	}{
		{"a Reconfigure signed with our key makes the client Renew", reconfigure(serverA, reconfKey, 6, dhcpv6.MessageTypeRenew), dhcpv6.MessageTypeRenew, ""},
		{"a Reconfigure signed with our key may ask for Rebind", reconfigure(serverA, reconfKey, 6, dhcpv6.MessageTypeRebind), dhcpv6.MessageTypeRebind, ""},
		{"a Reconfigure signed with another key is dropped", reconfigure(serverA, []byte("fedcba9876543210"), 6, dhcpv6.MessageTypeRenew), 0, "digest does not match"},
		{"a replayed Reconfigure is dropped", reconfigure(serverA, reconfKey, 5, dhcpv6.MessageTypeRenew), 0, "replayed"},
		{"a Reconfigure from another server is dropped", reconfigure(serverB, reconfKey, 6, dhcpv6.MessageTypeRenew), 0, "not our server"},
		{"a Reconfigure without Auth is dropped", srvMsg{typ: dhcpv6.MessageTypeReconfigure, clientID: clientDUID, serverID: serverA,
			opts: []dhcpv6.Option{rawOpt(dhcpv6.OptionReconfMessage, 5)}}.bytes(), 0, "no Auth option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, now := bindWithKey(t)
			out := sends(t, now, m.Receive(now, tt.msg, addrA))
			if tt.wantTyp == 0 {
				if len(out) != 0 || m.State() != StateBound || !strings.Contains(lastProblem(m), tt.reason) {
					t.Fatalf("sent %+v in %s, problem %q; want dropped for %q", out, m.State(), lastProblem(m), tt.reason)
				}
				return
			}
			if len(out) != 1 || out[0].typ != tt.wantTyp {
				t.Fatalf("want a %s, got %+v; problem %q", tt.wantTyp, out, lastProblem(m))
			}
		})
	}
	t.Run("a Reconfigure without a key from the Reply is dropped", func(t *testing.T) {
		m := newTestMachine(fixedSource(0), nil)
		now := bindMachine(t, m, goodPD())
		m.Receive(now, reconfigure(serverA, reconfKey, 6, dhcpv6.MessageTypeRenew), addrA)
		if m.State() != StateBound || !strings.Contains(lastProblem(m), "no reconfigure key") {
			t.Fatalf("state %s, problem %q", m.State(), lastProblem(m))
		}
	})
}

// TestSolMaxRTOption: a server's SOL_MAX_RT (RFC 8415 §21.24) caps the
// Solicit backoff even when carried in an Advertise that is otherwise
// ignored; values outside 60..86400 s are ignored.
func TestSolMaxRTOption(t *testing.T) {
	tests := []struct {
		name  string
		value byte // seconds
		want  []time.Duration
	}{
		{"SOL_MAX_RT 120 s caps RT at 120 s (108 s with RAND -0.1)", 120,
			ms(0, 1.1, 3.19, 7.161, 14.706, 29.041, 56.278, 108.029, 206.355, 314.355, 422.355)},
		{"SOL_MAX_RT 30 s is below the minimum and ignored", 30,
			ms(0, 1.1, 3.19, 7.161, 14.706, 29.041, 56.278, 108.029, 206.355, 393.174)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, sol, now := startSoliciting(t, nil)
			adv := answer(sol, dhcpv6.MessageTypeAdvertise, serverA,
				iapd(testIAID, 0, 0, statusOpt(iana.StatusNoPrefixAvail)), rawOpt(optSolMaxRT, 0, 0, 0, tt.value))
			m.Receive(now, adv, addrA)
			out := []sent{{at: 0, typ: dhcpv6.MessageTypeSolicit}}
			out = append(out, advance(t, m, &now, 430*time.Second)...)
			if diff := cmp.Diff(tt.want, sendTimes(out, dhcpv6.MessageTypeSolicit)); diff != "" {
				t.Errorf("Solicit times (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLinkUpWhileSoliciting(t *testing.T) {
	m, _, now := startSoliciting(t, nil)
	advance(t, m, &now, 100*time.Second) // deep into the backoff
	now = t0.Add(100 * time.Second)
	out := sends(t, now, m.LinkUp(now))
	out = append(out, advance(t, m, &now, 102*time.Second)...)
	// A fresh exchange: a new Solicit at once (RAND 0 → no delay) and the
	// next after RT1 = 1.1 s, not after the long backoff RT.
	if diff := cmp.Diff(ms(100, 101.1), sendTimes(out, dhcpv6.MessageTypeSolicit)); diff != "" {
		t.Errorf("Solicit times (-want +got):\n%s", diff)
	}
	if out[0].msg.Options.ElapsedTime() != 0 {
		t.Error("a fresh exchange must restart Elapsed Time at 0")
	}
}
