package dhcp6pd

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

func ms(s ...float64) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, v := range s {
		out[i] = time.Duration(v * float64(time.Second)).Round(time.Millisecond)
	}
	return out
}

func sendTimes(ss []sent, typ dhcpv6.MessageType) []time.Duration {
	var out []time.Duration
	for _, s := range ss {
		if s.typ == typ {
			out = append(out, s.at.Round(time.Millisecond))
		}
	}
	return out
}

// TestSolicitRetransmission checks RFC 8415 §15 and §18.2.1 to the
// millisecond with RAND forced to its bounds: RT1 = IRT + RAND*IRT with
// RAND > 0, RT = 2RT + RAND*RT, and RT = MRT + RAND*MRT past SOL_MAX_RT.
func TestSolicitRetransmission(t *testing.T) {
	tests := []struct {
		name string
		src  rand.Source
		want []time.Duration
	}{
		{
			name: "with RAND at its lower bound the first Solicit goes at once and RT1 is 1.1 s",
			src:  fixedSource(0),
			want: ms(0, 1.1, 3.19, 7.161, 14.706, 29.041, 56.278, 108.029, 206.355, 393.174, 748.13,
				1422.548, 2703.94, 5138.587, 8378.587, 11618.587),
		},
		{
			name: "with RAND at its upper bound the first Solicit waits SOL_MAX_DELAY and RT1 is just over 1 s",
			src:  fixedSource(^uint64(0)),
			want: ms(1.0, 2.0, 4.1, 8.51, 17.771, 37.219, 78.06, 163.826, 343.935, 722.164, 1516.444,
				3184.432, 6687.207, 10647.207),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, got := startAndRun(t, tt.src, 12000*time.Second)
			if diff := cmp.Diff(tt.want, sendTimes(got, dhcpv6.MessageTypeSolicit)); diff != "" {
				t.Errorf("Solicit times (-want +got):\n%s", diff)
			}
			if m.State() != StateSoliciting {
				t.Errorf("state %s, want soliciting", m.State())
			}
		})
	}
}

// TestSolicitRetransmissionSeeded checks each interval against the §15
// bounds with an ordinary seeded generator.
func TestSolicitRetransmissionSeeded(t *testing.T) {
	for seed := range uint64(20) {
		_, _, got := startAndRun(t, rand.NewPCG(seed, 7), 20000*time.Second)
		at := sendTimes(got, dhcpv6.MessageTypeSolicit)
		if at[0] < 0 || at[0] > time.Second {
			t.Fatalf("seed %d: first Solicit after %s, want within SOL_MAX_DELAY", seed, at[0])
		}
		rt1 := at[1] - at[0]
		if rt1 <= time.Second || rt1 > 1100*time.Millisecond {
			t.Fatalf("seed %d: first RT %s, want in (1s, 1.1s]", seed, rt1)
		}
		for i := 2; i < len(at); i++ {
			prev, rt := at[i-1]-at[i-2], at[i]-at[i-1]
			// Either doubled with jitter and not past MRT, or capped:
			// MRT + RAND*MRT.
			doubled := rt >= scale(prev, 1.9)-time.Millisecond && rt <= scale(prev, 2.1)+time.Millisecond && rt <= 3600*time.Second
			capped := rt >= 3240*time.Second && rt <= 3960*time.Second+time.Millisecond
			if !doubled && !capped {
				t.Fatalf("seed %d: RT %d is %s after %s: neither 2RT+RAND*RT nor MRT+RAND*MRT", seed, i, rt, prev)
			}
		}
	}
}

// TestRequestRetransmission: REQ_TIMEOUT 1 s, REQ_MAX_RT 30 s and after
// REQ_MAX_RC (10) transmissions the client goes back to Solicit.
func TestRequestRetransmission(t *testing.T) {
	tests := []struct {
		name string
		src  rand.Source
		want []time.Duration
	}{
		{"with RAND at -0.1 ten Requests go out over 127 s", fixedSource(0),
			ms(0, 0.9, 2.61, 5.859, 12.032, 23.761, 46.046, 73.046, 100.046, 127.046)},
		{"with RAND at +0.1 ten Requests go out over 172 s", fixedSource(^uint64(0)),
			ms(0, 1.1, 3.41, 8.261, 18.448, 39.841, 72.841, 105.841, 138.841, 171.841)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, now, out := startAndRun(t, tt.src, 2*time.Second)
			// Answer the first Solicit with preference 255: the Request
			// goes out at once; count from there.
			req := sends(t, now, m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeAdvertise, serverA, goodPD(), preference(255)), addrA))
			start := now
			req = append(req, advance(t, m, &now, 300*time.Second)...)
			var got []time.Duration
			for _, s := range req {
				if s.typ == dhcpv6.MessageTypeRequest {
					got = append(got, (s.at - start.Sub(t0)).Round(time.Millisecond))
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Request times (-want +got):\n%s", diff)
			}
			if m.State() != StateSoliciting {
				t.Errorf("state %s after REQ_MAX_RC, want soliciting", m.State())
			}
		})
	}
}

// TestLeaseTimers: Renew at T1 with MRD up to T2, Rebind at T2 until the
// valid lifetime ends, then expired, the lease withdrawn and Solicit.
func TestLeaseTimers(t *testing.T) {
	m := newTestMachine(fixedSource(0), nil)
	bound := bindMachine(t, m, goodPD()) // T1 1000, T2 1600, valid 3000
	now := bound
	rel := func(ss []sent) []time.Duration {
		var out []time.Duration
		for _, s := range ss {
			out = append(out, (s.at - bound.Sub(t0)).Round(time.Millisecond))
		}
		return out
	}
	if out := advance(t, m, &now, bound.Sub(t0)+999*time.Second); len(out) != 0 || m.State() != StateBound {
		t.Fatalf("before T1: sent %d, state %s", len(out), m.State())
	}
	out := advance(t, m, &now, bound.Sub(t0)+1599*time.Second)
	if m.State() != StateRenewing {
		t.Fatalf("state %s after T1, want renewing", m.State())
	}
	// REN_TIMEOUT 10 s with RAND -0.1: 1000, 1009, 1026.1, 1058.59,
	// 1120.321, 1237.61, 1460.459; the next would be past T2.
	if diff := cmp.Diff(ms(1000, 1009, 1026.1, 1058.59, 1120.321, 1237.61, 1460.459), rel(out)); diff != "" {
		t.Errorf("Renew times (-want +got):\n%s", diff)
	}
	for _, s := range out {
		if s.to != AllServers || s.msg.GetOneOption(dhcpv6.OptionServerID) == nil {
			t.Fatalf("Renew must go to ff02::1:2 with the Server ID, got to %s", s.to)
		}
	}
	out = advance(t, m, &now, bound.Sub(t0)+2999*time.Second)
	if m.State() != StateRebinding {
		t.Fatalf("state %s after T2, want rebinding", m.State())
	}
	if diff := cmp.Diff(ms(1600, 1609, 1626.1, 1658.59, 1720.321, 1837.61, 2060.459, 2483.872), rel(out)); diff != "" {
		t.Errorf("Rebind times (-want +got):\n%s", diff)
	}
	for _, s := range out {
		if s.msg.GetOneOption(dhcpv6.OptionServerID) != nil {
			t.Fatal("Rebind must not carry a Server ID (RFC 8415 §18.2.5)")
		}
	}
	if m.Lease() == nil {
		t.Fatal("lease withdrawn before its valid lifetime ended")
	}
	acts := m.Timer(bound.Add(3000 * time.Second))
	if m.Lease() != nil {
		t.Fatal("lease still held after every prefix expired")
	}
	var leaseChanged bool
	for _, a := range acts {
		leaseChanged = leaseChanged || a.LeaseChanged
	}
	if !leaseChanged {
		t.Error("expiry did not report LeaseChanged")
	}
	// With RAND 0 the Solicit delay is 0: expired turns into soliciting.
	if m.State() != StateSoliciting {
		t.Errorf("state %s after expiry, want soliciting", m.State())
	}
}

func TestElapsedTime(t *testing.T) {
	_, _, out := startAndRun(t, fixedSource(0), 800*time.Second)
	var got []time.Duration
	for _, s := range out {
		got = append(got, s.msg.Options.ElapsedTime())
	}
	// Centiseconds since the first Solicit, pinned at 0xffff (655.35 s).
	want := []time.Duration{0, 1100 * time.Millisecond, 3190 * time.Millisecond, 7160 * time.Millisecond,
		14700 * time.Millisecond, 29040 * time.Millisecond, 56270 * time.Millisecond, 108020 * time.Millisecond,
		206350 * time.Millisecond, 393170 * time.Millisecond, 655350 * time.Millisecond}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Elapsed Time (-want +got):\n%s", diff)
	}
}

// TestSeededSchedules pins the schedules a seeded generator produces (each
// interval was checked against the §15 bounds when pinned): a change in
// how RAND is drawn shows up here to the millisecond.
func TestSeededSchedules(t *testing.T) {
	t.Run("Solicit with seed 1,2", func(t *testing.T) {
		_, _, got := startAndRun(t, rand.NewPCG(1, 2), 8000*time.Second)
		want := ms(0.461, 1.511, 3.594, 7.885, 16.372, 33.887, 68.351, 140.538, 281.758, 567.156, 1162.372, 2312.79, 4665.715)
		if diff := cmp.Diff(want, sendTimes(got, dhcpv6.MessageTypeSolicit)); diff != "" {
			t.Errorf("Solicit times (-want +got):\n%s", diff)
		}
	})
	t.Run("Renew until T2 then Rebind until expiry with seed 1,2", func(t *testing.T) {
		m := newTestMachine(rand.NewPCG(1, 2), nil)
		bound := bindMachine(t, m, goodPD())
		now := bound
		out := advance(t, m, &now, bound.Sub(t0)+2999*time.Second)
		var got []string
		for _, s := range out {
			got = append(got, fmt.Sprintf("%s %v", s.typ, (s.at-bound.Sub(t0)).Round(time.Millisecond)))
		}
		want := []string{"RENEW 16m40s", "RENEW 16m50.639s", "RENEW 17m11.571s", "RENEW 17m55.417s", "RENEW 19m21.193s",
			"RENEW 22m14.541s", "REBIND 26m40s", "REBIND 26m50.453s", "REBIND 27m11.771s", "REBIND 27m55.534s",
			"REBIND 29m24.975s", "REBIND 32m25.389s", "REBIND 38m42.632s", "REBIND 48m44.657s"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("schedule (-want +got):\n%s", diff)
		}
	})
}

// TestRenewRebindUpperBound: with RAND at +0.1 Renew doubles by 2.1 and is
// cut off at T2 (MRD = T2 - T1); Rebind likewise at the valid lifetime.
func TestRenewRebindUpperBound(t *testing.T) {
	m := newTestMachine(fixedSource(^uint64(0)), nil)
	bound := bindMachine(t, m, goodPD())
	now := bound
	out := advance(t, m, &now, bound.Sub(t0)+2999*time.Second)
	var renew, rebind []time.Duration
	for _, s := range out {
		d := (s.at - bound.Sub(t0)).Round(time.Millisecond)
		if s.typ == dhcpv6.MessageTypeRenew {
			renew = append(renew, d)
		} else {
			rebind = append(rebind, d)
		}
	}
	// 10 s + RAND: 11, then 23.1, 48.51, 101.871, 213.929 (cumulative).
	if diff := cmp.Diff(ms(1000, 1011, 1034.1, 1082.61, 1184.481, 1398.41), renew); diff != "" {
		t.Errorf("Renew times (-want +got):\n%s", diff)
	}
	// Rebind likewise from T2; the next RT after 2447.661 s would pass
	// REB_MAX_RT (600 s) and become 660 s, beyond the valid lifetime
	// (3000 s), where the lease expires instead.
	if diff := cmp.Diff(ms(1600, 1611, 1634.1, 1682.61, 1784.481, 1998.41, 2447.661), rebind); diff != "" {
		t.Errorf("Rebind times (-want +got):\n%s", diff)
	}
}
