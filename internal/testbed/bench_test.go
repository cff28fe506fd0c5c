package testbed

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		in   []time.Duration
		want time.Duration
	}{
		{"no samples give zero", nil, 0},
		{"an odd count gives the middle sample", []time.Duration{9 * ms, 1 * ms, 5 * ms}, 5 * ms},
		{"an even count gives the mean of the middle two", []time.Duration{4 * ms, 1 * ms, 2 * ms, 100 * ms}, 3 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Median(tt.in); got != tt.want {
				t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestBenchRatio(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name              string
		incumbent, v6edge time.Duration
		want              string
	}{
		{"a ratio above 1 has one decimal", 50 * ms, 10 * ms, "5.0×"},
		{"a ratio of a hundred or more has none", 1065 * ms, 10 * ms, "106×"},
		{"a ratio far below 1 keeps two decimals", 3 * ms, 68 * ms, "0.04×"},
		{"a zero figure gives no ratio", 0, 10 * ms, "n/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := benchRatio(tt.incumbent, tt.v6edge); got != tt.want {
				t.Errorf("benchRatio(%v, %v) = %q, want %q", tt.incumbent, tt.v6edge, got, tt.want)
			}
		})
	}
}

func TestWriteBenchTableShowsMediansAndRatio(t *testing.T) {
	var b bytes.Buffer
	WriteBenchTable(&b, map[string][]Startup{
		SetupV6edge:    {{NAT: 10 * time.Millisecond, RA: 20 * time.Millisecond}},
		SetupIncumbent: {{NAT: 50 * time.Millisecond, RA: 1000 * time.Millisecond}},
	}, 1)
	for _, want := range []string{"| process start → NETMAP rules in the kernel | 10.0 ms | 50.0 ms | 5.0× |", "| 20.0 ms | 1000.0 ms | 50.0× |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestMeasureStartupOfTheIncumbent(t *testing.T) {
	requireLab(t)
	t.Parallel()
	l := newLab(t, Options{})
	for i := range 2 {
		s, err := MeasureStartup(t.Context(), l, SetupIncumbent, V6edge{})
		if err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		t.Logf("run %d: NAT after %v, first RA after %v", i+1, s.NAT, s.RA)
		if s.NAT <= 0 || s.RA <= 0 {
			t.Errorf("run %d: %+v, want positive durations", i+1, s)
		}
	}
}
