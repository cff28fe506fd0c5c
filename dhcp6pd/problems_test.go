package dhcp6pd

import (
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// TestProblemsAreBounded: soliciting against a server that answers
// every Solicit with NoPrefixAvail (RFC 8415 §18.2.9: such an Advertise
// is ignored) used to add one Problems entry per Advertise. Now one
// entry per kind holds the latest text and a count, and the number of
// kinds is bounded.
func TestProblemsAreBounded(t *testing.T) {
	m, sol, now := startSoliciting(t, nil)
	for i := range 12 {
		adv := answer(sol, dhcpv6.MessageTypeAdvertise, serverA, iapd(testIAID, 0, 0, statusOpt(iana.StatusNoPrefixAvail)))
		m.Receive(now.Add(time.Duration(i)*time.Millisecond), adv, addrA)
	}
	ps := m.Problems()
	if len(ps) != 1 || !strings.Contains(ps[0], "NoPrefixAvail") || !strings.HasSuffix(ps[0], "(×12)") {
		t.Fatalf("problems %q, want one NoPrefixAvail line ending (×12)", ps)
	}
	// Transaction ids differ, the kind does not.
	for i := range 3 {
		bad := answer(sol, dhcpv6.MessageTypeAdvertise, serverA, goodPD())
		bad[1] ^= byte(i + 1)
		m.Receive(now, bad, addrA)
	}
	if ps := m.Problems(); len(ps) != 2 || !strings.HasSuffix(ps[1], "(×3)") || !strings.Contains(ps[1], "transaction id") {
		t.Fatalf("problems %q", ps)
	}
	// Many kinds: at most MaxProblems, the newest kept.
	for i := range 20 {
		m.problem(now, "kind "+strings.Repeat("x", i+1))
	}
	ps = m.Problems()
	if len(ps) != m.MaxProblems || ps[len(ps)-1] != "kind "+strings.Repeat("x", 20) {
		t.Errorf("%d problems, last %q", len(ps), ps[len(ps)-1])
	}
}
