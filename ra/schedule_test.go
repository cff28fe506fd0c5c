package ra

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed+1)) }

// startedSchedule is a schedule of 200 to 600 s intervals started at t0.
func startedSchedule() *Schedule {
	s := NewSchedule(200*time.Second, 600*time.Second)
	s.Start(t0)
	return s
}

// steadySchedule is startedSchedule without the initial fast adverts, so
// every unsolicited interval is drawn from 200 to 600 s.
func steadySchedule() *Schedule {
	s := NewSchedule(200*time.Second, 600*time.Second)
	s.MaxInitialAdverts = 0
	s.Start(t0)
	return s
}

// multicastTimes fires s at each deadline until n multicast RAs went out
// and returns their offsets from t0.
func multicastTimes(s *Schedule, r *rand.Rand, n int) []time.Duration {
	var out []time.Duration
	for len(out) < n {
		now := s.Next()
		if m, _ := s.Fire(now, r); m {
			out = append(out, now.Sub(t0))
		}
	}
	return out
}

func TestScheduleIntervals(t *testing.T) {
	t.Run("unsolicited intervals stay within min and max over thousands of draws", func(t *testing.T) {
		s := steadySchedule()
		r := newRand(1)
		times := multicastTimes(s, r, 5001)
		lo, hi := time.Duration(1<<62), time.Duration(0)
		var buckets [4]int
		for i := 1; i < len(times); i++ {
			d := times[i] - times[i-1]
			lo, hi = min(lo, d), max(hi, d)
			buckets[min(int((d-200*time.Second)/(100*time.Second)), 3)]++
		}
		if lo < 200*time.Second || hi > 600*time.Second {
			t.Fatalf("intervals in [%s, %s], want within [200s, 600s]", lo, hi)
		}
		// Uniform: each quarter of the range gets about 1250 of 5000 draws.
		for i, n := range buckets {
			if n < 1100 || n > 1400 {
				t.Errorf("quarter %d got %d of 5000 intervals; not uniform: %v", i, n, buckets)
			}
		}
		if hi-lo < 390*time.Second {
			t.Errorf("intervals only span [%s, %s]; the whole range should be used", lo, hi)
		}
	})
	t.Run("the first three RAs are at most 16 s apart, then the full interval applies", func(t *testing.T) {
		for seed := range uint64(200) {
			s := startedSchedule()
			times := multicastTimes(s, newRand(seed), 4)
			if times[0] != 0 {
				t.Fatalf("first RA at %s, want at once", times[0])
			}
			for i := 1; i < 3; i++ {
				if d := times[i] - times[i-1]; d > 16*time.Second || d < 3*time.Second {
					t.Fatalf("seed %d: initial RA %d came %s after the previous one, want 3s..16s", seed, i+1, d)
				}
			}
			if d := times[3] - times[2]; d < 200*time.Second {
				t.Fatalf("seed %d: fourth RA only %s after the third, want the normal interval", seed, d)
			}
		}
	})
	t.Run("a schedule that never started sends nothing", func(t *testing.T) {
		s := NewSchedule(0, 0)
		s.Solicited(t0, netip.Addr{}, newRand(1))
		s.Renumber(t0)
		if !s.Next().IsZero() {
			t.Fatalf("Next = %s, want zero", s.Next())
		}
	})
}

func TestScheduleSolicitations(t *testing.T) {
	host := netip.MustParseAddr("fe80::1234")
	t.Run("an answer to an RS from a host is unicast after 0 to 500 ms", func(t *testing.T) {
		r := newRand(7)
		var lo, hi time.Duration = time.Hour, 0
		for range 2000 {
			s := steadySchedule()
			s.Fire(t0, r) // the first unsolicited RA; the next is 200 s or more away
			rs := t0.Add(100 * time.Second)
			s.Solicited(rs, host, r)
			due := s.Next()
			m, uni := s.Fire(due, r)
			if m || len(uni) != 1 || uni[0] != host {
				t.Fatalf("Fire = %v %v, want one unicast to %s", m, uni, host)
			}
			d := due.Sub(rs)
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < 0 || hi > 500*time.Millisecond {
			t.Fatalf("delays in [%s, %s], want within [0, 500ms]", lo, hi)
		}
		if hi-lo < 450*time.Millisecond {
			t.Errorf("delays only span [%s, %s]; should use the whole 0..500ms", lo, hi)
		}
	})
	t.Run("repeated RSs from one host get one pending answer", func(t *testing.T) {
		s := startedSchedule()
		r := newRand(3)
		s.Fire(t0, r)
		for i := range 5 {
			s.Solicited(t0.Add(time.Duration(i)*time.Millisecond), host, r)
		}
		_, uni := s.Fire(t0.Add(time.Second), r)
		if diff := cmp.Diff([]netip.Addr{host}, uni, netCmp); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("multicast answers to RSs from the unspecified address are never closer than 3 s", func(t *testing.T) {
		r := newRand(11)
		s := steadySchedule()
		var sent []time.Time
		// An RS every 100 ms for a minute.
		for i := 0; i < 600; i++ {
			now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
			for next := s.Next(); !next.After(now); next = s.Next() {
				if m, _ := s.Fire(next, r); m {
					sent = append(sent, next)
				}
			}
			s.Solicited(now, netip.IPv6Unspecified(), r)
		}
		if len(sent) < 15 {
			t.Fatalf("only %d multicast RAs in a minute of RSs, want about 20", len(sent))
		}
		for i := 1; i < len(sent); i++ {
			if d := sent[i].Sub(sent[i-1]); d < 3*time.Second || d > 3500*time.Millisecond {
				t.Fatalf("RAs %d and %d are %s apart, want 3s..3.5s", i-1, i, d)
			}
		}
	})
	t.Run("an RS answer never postpones an earlier scheduled RA", func(t *testing.T) {
		s := startedSchedule()
		r := newRand(5)
		s.Fire(t0, r)
		scheduled := s.Next()
		s.Solicited(scheduled.Add(-10*time.Millisecond), netip.IPv6Unspecified(), r)
		if got := s.Next(); got.After(scheduled) {
			t.Fatalf("Next = %s, after the scheduled %s", got, scheduled)
		}
	})
	t.Run("a multicast RA answers hosts still waiting for a unicast one", func(t *testing.T) {
		s := startedSchedule()
		r := newRand(5)
		s.Solicited(t0, host, r)
		m, uni := s.Fire(t0, r)
		if !m || len(uni) > 1 {
			t.Fatalf("Fire = %v %v, want a multicast RA", m, uni)
		}
		if _, uni := s.Fire(t0.Add(time.Second), r); len(uni) != 0 {
			t.Fatalf("unicast %v after a multicast RA already answered", uni)
		}
	})
	t.Run("an RS flood from many sources falls back to rate-limited multicast", func(t *testing.T) {
		s := startedSchedule()
		r := newRand(5)
		s.Fire(t0, r)
		for i := range 1000 {
			a := netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 14: byte(i >> 8), 15: byte(i)})
			s.Solicited(t0.Add(time.Second), a, r)
		}
		if n := len(s.unicast); n > maxPendingUnicast {
			t.Fatalf("%d pending unicast answers, want at most %d", n, maxPendingUnicast)
		}
		if next := s.Next(); next.After(t0.Add(3500 * time.Millisecond)) {
			t.Fatalf("next RA at %s, want a multicast answer by 3.5s", next.Sub(t0))
		}
	})
}

func TestScheduleRenumber(t *testing.T) {
	t.Run("a prefix change sends three RAs 3 s apart starting at once", func(t *testing.T) {
		s := steadySchedule()
		r := newRand(9)
		s.Fire(t0, r)
		change := t0.Add(100 * time.Second)
		s.Renumber(change)
		var got []time.Duration
		for range 4 {
			now := s.Next()
			if m, _ := s.Fire(now, r); m {
				got = append(got, now.Sub(change))
			}
		}
		if diff := cmp.Diff([]time.Duration{0, 3 * time.Second, 6 * time.Second}, got[:3]); diff != "" {
			t.Errorf("burst times mismatch (-want +got):\n%s", diff)
		}
		if got[3]-got[2] < 200*time.Second {
			t.Errorf("RA after the burst came %s later, want the normal interval", got[3]-got[2])
		}
	})
	t.Run("a prefix change right after an RA waits for the rate limit", func(t *testing.T) {
		s := startedSchedule()
		r := newRand(9)
		s.Fire(t0, r)
		s.Renumber(t0.Add(time.Second))
		if got := s.Next().Sub(t0); got != 3*time.Second {
			t.Errorf("first renumbering RA at %s, want 3s (MIN_DELAY_BETWEEN_RAS)", got)
		}
	})
}
