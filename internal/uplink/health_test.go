package uplink

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// step is one input to a Health machine, or a question (ask) at a time.
type step struct {
	at     float64
	link   *bool
	lease  *bool
	probe  *bool
	ask    bool
	want   bool
	reason string
}

func b(v bool) *bool { return &v }

func TestHealth(t *testing.T) {
	cfg := HealthConfig{Interval: time.Second, Misses: 3, HoldDown: 10 * time.Second}
	up := []step{{at: 0, link: b(true)}, {at: 0, lease: b(true)}}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a fresh uplink is unhealthy until link and lease are known", []step{
			{at: 0, ask: true, want: false, reason: "link down"},
			{at: 0, link: b(true)},
			{at: 0, ask: true, want: false, reason: "lease expired"},
			{at: 0, lease: b(true)},
			{at: 0, ask: true, want: true},
		}},
		{"the first time it becomes usable there is no hold-down", append(slicesOf(up),
			step{at: 0.001, ask: true, want: true}),
		},
		{"probe loss turns it unhealthy at the third miss, not before", append(slicesOf(up),
			step{at: 1, probe: b(false)}, step{at: 1, ask: true, want: true},
			step{at: 2, probe: b(false)}, step{at: 2, ask: true, want: true},
			step{at: 3, probe: b(false)}, step{at: 3, ask: true, want: false, reason: "3 probes missed"},
		)},
		{"an answered probe resets the count of misses", append(slicesOf(up),
			step{at: 1, probe: b(false)}, step{at: 2, probe: b(false)}, step{at: 3, probe: b(true)},
			step{at: 4, probe: b(false)}, step{at: 5, probe: b(false)},
			step{at: 5, ask: true, want: true},
		)},
		{"link down is unhealthy at once", append(slicesOf(up),
			step{at: 5, link: b(false)}, step{at: 5, ask: true, want: false, reason: "link down"},
		)},
		{"lease loss is unhealthy at once", append(slicesOf(up),
			step{at: 5, lease: b(false)}, step{at: 5, ask: true, want: false, reason: "lease expired"},
		)},
		{"recovery is held down for the hold-down time", append(slicesOf(up),
			step{at: 5, link: b(false)}, step{at: 6, link: b(true)},
			step{at: 6, ask: true, want: false, reason: "holding down after recovery (10s left)"},
			step{at: 12, ask: true, want: false, reason: "holding down after recovery (4s left)"},
			step{at: 15.999, ask: true, want: false, reason: "holding down after recovery (0s left)"},
			step{at: 16, ask: true, want: true},
		)},
		{"a flapping link stays unhealthy until it holds still for the hold-down", append(slicesOf(up),
			step{at: 1, link: b(false)}, step{at: 2, link: b(true)},
			step{at: 8, link: b(false)}, step{at: 8.5, link: b(true)},
			step{at: 11, ask: true, want: false},
			step{at: 15, link: b(false)}, step{at: 15.2, link: b(true)},
			step{at: 18.4, ask: true, want: false},
			step{at: 25.1, ask: true, want: false},
			step{at: 25.2, ask: true, want: true},
		)},
		{"after probe loss the first answer starts the hold-down", append(slicesOf(up),
			step{at: 1, probe: b(false)}, step{at: 2, probe: b(false)}, step{at: 3, probe: b(false)},
			step{at: 4, probe: b(true)},
			step{at: 4, ask: true, want: false, reason: "holding down after recovery (10s left)"},
			step{at: 14, ask: true, want: true},
		)},
		{"a second fault during the hold-down names that fault", append(slicesOf(up),
			step{at: 1, link: b(false)}, step{at: 2, link: b(true)}, step{at: 3, lease: b(false)},
			step{at: 3, ask: true, want: false, reason: "lease expired"},
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHealth(cfg, t0)
			for i, s := range tt.steps {
				now := at(s.at)
				switch {
				case s.link != nil:
					h.Link(now, *s.link)
				case s.lease != nil:
					h.Lease(now, *s.lease)
				case s.probe != nil:
					h.ProbeResult(now, *s.probe)
				case s.ask:
					got := h.Healthy(now)
					if got != s.want {
						t.Errorf("step %d: Healthy(%vs) = %v, want %v (reason %q)", i, s.at, got, s.want, h.Reason())
					}
					if !s.want && s.reason != "" && h.Reason() != s.reason {
						t.Errorf("step %d: Reason() = %q, want %q", i, h.Reason(), s.reason)
					}
					if s.want && h.Reason() != "" {
						t.Errorf("step %d: healthy with reason %q", i, h.Reason())
					}
				}
			}
		})
	}
}

func slicesOf(s []step) []step { return append([]step(nil), s...) }

func TestHealthDeadline(t *testing.T) {
	t.Run("the deadline is the end of the hold-down, and zero otherwise", func(t *testing.T) {
		h := NewHealth(HealthConfig{HoldDown: 10 * time.Second}, t0)
		h.Link(at(0), true)
		h.Lease(at(0), true)
		var got []time.Time
		got = append(got, h.Deadline())
		h.Link(at(1), false)
		got = append(got, h.Deadline())
		h.Link(at(2), true)
		got = append(got, h.Deadline())
		h.Healthy(at(12))
		got = append(got, h.Deadline())
		want := []time.Time{{}, {}, at(12), {}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("deadlines (-want +got):\n%s", diff)
		}
	})
	t.Run("zero fields take the defaults", func(t *testing.T) {
		if diff := cmp.Diff(DefaultHealthConfig(), NewHealth(HealthConfig{}, t0).Config()); diff != "" {
			t.Errorf("config (-want +got):\n%s", diff)
		}
	})
}

// TestHealthSimulated drives a machine second by second as the daemon would: the
// uplink's check target stops answering at 10 s and answers again at 20 s.
func TestHealthSimulated(t *testing.T) {
	t.Run("a silent check target is noticed within three intervals and trusted again after the hold-down", func(t *testing.T) {
		h := NewHealth(HealthConfig{Interval: time.Second, Misses: 3, HoldDown: 10 * time.Second}, t0)
		h.Link(t0, true)
		h.Lease(t0, true)
		var down, back time.Time
		was := true
		for s := 1; s <= 60; s++ {
			now := at(float64(s))
			h.ProbeResult(now, s < 10 || s >= 20)
			if got := h.Healthy(now); got != was {
				if got {
					back = now
				} else {
					down = now
				}
				was = got
			}
		}
		if diff := cmp.Diff([]time.Time{at(12), at(30)}, []time.Time{down, back}); diff != "" {
			t.Errorf("unhealthy from, healthy again from (-want +got):\n%s", diff)
		}
	})
}
