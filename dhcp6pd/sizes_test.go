package dhcp6pd

import (
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// TestAnyDelegationSize: RFC 8415 §21.22 puts no bound on the delegated
// length, and ISPs give anything from /48 to /64. Every one up to /64 is
// bound; the daemon maps it and reports the LANs that do not fit. A
// longer one leaves no /64 for a LAN and is discarded.
func TestAnyDelegationSize(t *testing.T) {
	for _, p := range []string{"2001:db8:100::/48", "2001:db8:100::/56", "2001:db8:100::/60", "2001:db8:100::/62", "2001:db8:100::/64"} {
		t.Run(p+" is bound", func(t *testing.T) {
			m := newTestMachine(fixedSource(0), nil)
			now := bindMachine(t, m, oneIAPrefix(p))
			if got, ok := m.Lease().Chosen(56, now); !ok || got.Prefix.String() != p {
				t.Errorf("chose %s (%v), want %s", got.Prefix, ok, p)
			}
		})
	}
}

// TestOneBadPrefixDiscardsOnlyItself: RFC 8415 §18.2.10.1 — an IA_PREFIX
// the client cannot use is discarded; the other prefixes of the same
// IA_PD are bound, and the problem names the discarded one.
func TestOneBadPrefixDiscardsOnlyItself(t *testing.T) {
	for _, tt := range []struct{ bad, reason string }{
		{"2001:db8:900::/72", "length outside 1..64"},
		{"fd00:1::/48", "ULA"},
		{"fe80::/56", "link-local"},
	} {
		t.Run(tt.bad, func(t *testing.T) {
			m, req, now := requesting(t)
			pd := iapd(testIAID, 1000*time.Second, 1600*time.Second,
				iaprefix(tt.bad, 2000*time.Second, 3000*time.Second),
				iaprefix("2001:db8:100::/56", 2000*time.Second, 3000*time.Second))
			m.Receive(now, answer(req, dhcpv6.MessageTypeReply, serverA, pd), addrA)
			if m.State() != StateBound {
				t.Fatalf("state %s, want bound; %q", m.State(), m.Problems())
			}
			l := m.Lease()
			if len(l.Prefixes) != 1 || l.Prefixes[0].Prefix.String() != "2001:db8:100::/56" {
				t.Errorf("lease prefixes %+v, want only the good /56", l.Prefixes)
			}
			if p := lastProblem(m); !strings.Contains(p, tt.bad) || !strings.Contains(p, tt.reason) {
				t.Errorf("problem %q does not name %s (%s)", p, tt.bad, tt.reason)
			}
		})
	}
	t.Run("an Advertise with one bad and one good prefix is taken", func(t *testing.T) {
		m, sol, now := startSoliciting(t, nil)
		pd := iapd(testIAID, 0, 0,
			iaprefix("2001:db8:900::/80", 2000*time.Second, 3000*time.Second),
			iaprefix("2001:db8:100::/60", 2000*time.Second, 3000*time.Second))
		out := sends(t, now, m.Receive(now, answer(sol, dhcpv6.MessageTypeAdvertise, serverA, pd, preference(255)), addrA))
		if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRequest {
			t.Fatalf("want a Request, got %+v", out)
		}
		if ps := out[0].msg.Options.OneIAPD().Options.Prefixes(); len(ps) != 1 || ps[0].Prefix.String() != "2001:db8:100::/60" {
			t.Errorf("Request asks for %v, want only the /60", ps)
		}
	})
}
