package dhcp6pd

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// noPrefix is a Reply refusing the IA_PD (RFC 8415 §18.3.2, NoPrefixAvail
// at IA_PD level, as Kea sends it).
func noPrefix() *dhcpv6.OptIAPD {
	return iapd(testIAID, 0, 0, statusOpt(iana.StatusNoPrefixAvail))
}

// TestRefusedRequestRecovers: RFC 8415 §18.2.10.1 — a Reply to Request
// refusing the prefix makes the client restart discovery with the §18.2.1
// timing (random initial delay, IRT = SOL_TIMEOUT), not wait SOL_MAX_RT:
// a server that has a prefix again seconds later is bound seconds later.
func TestRefusedRequestRecovers(t *testing.T) {
	for _, code := range []iana.StatusCode{iana.StatusNoPrefixAvail, iana.StatusNotOnLink} {
		t.Run(code.String()+" then a good server binds within seconds", func(t *testing.T) {
			m, now, out := startAndRun(t, fixedSource(^uint64(0)), time.Second) // RAND at its top: the longest delays
			sol := out[len(out)-1].msg
			out = sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(255)), addrA))
			refusedAt := now
			m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, iapd(testIAID, 0, 0, statusOpt(code))), addrA)
			if m.State() != StateSoliciting {
				t.Fatalf("state %s after the refusal, want soliciting", m.State())
			}
			// The new Solicit waits at most SOL_MAX_DELAY (1 s).
			out = advance(t, m, &now, now.Sub(t0)+m.SolMaxDelay)
			if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeSolicit {
				t.Fatalf("want a Solicit within SOL_MAX_DELAY of the refusal, got %+v", out)
			}
			if et := out[0].msg.Options.ElapsedTime(); et != 0 {
				t.Errorf("Elapsed Time %s, want 0 in a fresh exchange", et)
			}
			// Its first RT is SOL_TIMEOUT + RAND (≈1.1 s), not SOL_MAX_RT.
			first := out[0].at
			out = advance(t, m, &now, first+1200*time.Millisecond)
			if len(out) != 1 || out[0].at-first > 1100*time.Millisecond {
				t.Fatalf("want the retransmission about 1.1 s later, got %+v", out)
			}
			out = sends(t, now, m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeAdvertise, serverB, goodPD("2001:db8:200::/56"), preference(0)), addrB))
			if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRequest {
				t.Fatalf("want a Request to B, got %+v", out)
			}
			m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverB, goodPD("2001:db8:200::/56")), addrB)
			if m.State() != StateBound {
				t.Fatalf("state %s, want bound; %q", m.State(), m.Problems())
			}
			if took := now.Sub(refusedAt); took > 5*time.Second {
				t.Errorf("bound %s after the refusal, want seconds", took)
			}
		})
	}
	t.Run("the next server that Advertised is Requested at once", func(t *testing.T) {
		m, sol, now := startSoliciting(t, nil)
		m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(200)), addrA)
		m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverB, goodPD("2001:db8:200::/56"), preference(10)), addrB)
		out := advance(t, m, &now, 1200*time.Millisecond)
		if len(out) != 1 || !bytes.Equal(out[0].msg.Options.ServerID().ToBytes(), serverA) {
			t.Fatalf("want a Request to A, got %+v", out)
		}
		out = sends(t, now, m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, noPrefix()), addrA))
		if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRequest || !bytes.Equal(out[0].msg.Options.ServerID().ToBytes(), serverB) {
			t.Fatalf("want an immediate Request to B, got %+v", out)
		}
		if !strings.Contains(lastProblem(m), "requesting from the next server") {
			t.Errorf("problem %q", lastProblem(m))
		}
		m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverB, goodPD("2001:db8:200::/56")), addrB)
		if m.State() != StateBound {
			t.Fatalf("state %s, want bound to B", m.State())
		}
	})
	t.Run("a server refusing every Request is not hammered", func(t *testing.T) {
		m, sol, now := startSoliciting(t, nil) // RAND -0.1, no initial delay
		var solicits []time.Duration
		for i := range 6 {
			out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(255)), addrA))
			out = append(out, sends(t, now, m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, noPrefix()), addrA))...)
			if i < refusedFree {
				// Free restarts: the Solicit goes at once (RAND 0 delay).
				if len(out) != 2 || out[1].typ != dhcpv6.MessageTypeSolicit {
					t.Fatalf("refusal %d: want an immediate Solicit, got %+v", i+1, out)
				}
				sol = out[1].msg
				solicits = append(solicits, 0)
				continue
			}
			start := now
			out = advance(t, m, &now, now.Sub(t0)+time.Hour)
			if len(out) == 0 {
				t.Fatalf("refusal %d: no Solicit", i+1)
			}
			sol = out[0].msg
			now = t0.Add(out[0].at)
			solicits = append(solicits, now.Sub(start))
		}
		// SOL_TIMEOUT doubled per refusal past refusedFree, RAND -0.1.
		want := []time.Duration{0, 0, 0, 1800 * time.Millisecond, 3600 * time.Millisecond, 7200 * time.Millisecond}
		for i := range want {
			if solicits[i].Round(time.Millisecond) != want[i] {
				t.Errorf("delays before the Solicits %v, want %v", solicits, want)
				break
			}
		}
		// A bind resets the count.
		out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(255)), addrA))
		m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, goodPD()), addrA)
		if m.State() != StateBound || m.refusals != 0 {
			t.Errorf("state %s refusals %d after a bind", m.State(), m.refusals)
		}
	})
}
