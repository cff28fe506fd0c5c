package uplink

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/v6edge/v6edge/internal/golden"
)

var internal = netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/56")

func uplinks(n int) []Uplink {
	var us []Uplink
	for i := range n {
		us = append(us, Uplink{
			Interface: "wan" + string(rune('0'+i)),
			Table:     1000 + i,
			Mark:      0x76650000 + uint32(i) + 1,
			Gateway:   netip.MustParseAddr("fe80::" + string(rune('1'+i))),
			Healthy:   true,
			Preferred: i == 0,
		})
	}
	return us
}

func TestRenderGolden(t *testing.T) {
	three := uplinks(3)
	three[0].Healthy = false // the preferred one failed: the second takes new flows
	three[2].Gateway = netip.Addr{}
	tests := []struct {
		name, file string
		p          Policy
	}{
		{"one uplink", "one.golden", Policy{Uplinks: uplinks(1), LANs: []string{"lan0"}, Internal: internal}},
		{"two uplinks", "two.golden", Policy{Uplinks: uplinks(2), LANs: []string{"lan0", "lan1"}, Internal: internal}},
		{"three uplinks, the preferred one failed, one without gateway", "three.golden",
			Policy{Uplinks: three, LANs: []string{"lan0"}, Internal: internal}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" renders as in "+tt.file, func(t *testing.T) {
			got := RenderText(tt.p)
			want := golden.File(t, filepath.Join("testdata", tt.file), got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("RenderText (-want +got):\n%s", diff)
			}
		})
	}
}

func TestActive(t *testing.T) {
	tests := []struct {
		name string
		edit func([]Uplink)
		want int
	}{
		{"the preferred healthy uplink takes new flows", func([]Uplink) {}, 0},
		{"a preferred uplink later in the list wins over order", func(u []Uplink) { u[0].Preferred, u[2].Preferred = false, true }, 2},
		{"an unhealthy preferred uplink hands over to the first healthy one", func(u []Uplink) { u[0].Healthy = false }, 1},
		{"an uplink without a gateway is skipped", func(u []Uplink) { u[0].Healthy = false; u[1].Gateway = netip.Addr{} }, 2},
		{"without a healthy uplink there is none", func(u []Uplink) {
			for i := range u {
				u[i].Healthy = false
			}
		}, -1},
		{"without a preferred mark the first healthy one is used", func(u []Uplink) { u[0].Preferred = false; u[0].Healthy = false }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			us := uplinks(3)
			tt.edit(us)
			if got := (Policy{Uplinks: us, Internal: internal}).Active(); got != tt.want {
				t.Errorf("Active() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Policy)
		want string // substring of the error; "" for none
	}{
		{"a good policy passes", func(*Policy) {}, ""},
		{"a reserved table is refused", func(p *Policy) { p.Uplinks[1].Table = 254 }, "table 254 is reserved"},
		{"a table used twice is refused", func(p *Policy) { p.Uplinks[1].Table = 1000 }, "already used by wan0"},
		{"a mark used twice is refused", func(p *Policy) { p.Uplinks[1].Mark = p.Uplinks[0].Mark }, "mark 0x76650001 already used"},
		{"an interface listed twice is refused", func(p *Policy) { p.Uplinks[1].Interface = "wan0" }, "listed twice"},
		{"an internal prefix with host bits is refused", func(p *Policy) { p.Internal = netip.MustParsePrefix("fd00::1/56") }, "not a masked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Policy{Uplinks: uplinks(2), Internal: internal}
			tt.edit(&p)
			err := p.Check()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Check() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	t.Run("a bad uplink is left out of the rendering, the others stay", func(t *testing.T) {
		p := Policy{Uplinks: uplinks(2), Internal: internal}
		p.Uplinks[0].Table = 7
		rules, routes := Render(p)
		for _, r := range rules {
			if r.Table == 7 {
				t.Errorf("rule %v uses the bad uplink's table", r)
			}
		}
		if len(routes) != 1 || routes[0].Interface != "wan1" {
			t.Errorf("routes = %v, want wan1's only", routes)
		}
	})
}

func TestFailed(t *testing.T) {
	tests := []struct {
		name string
		edit func(next *Policy)
		want []uint32
	}{
		{"nothing changed, nothing failed", func(*Policy) {}, nil},
		{"an uplink that turned unhealthy failed", func(p *Policy) { p.Uplinks[1].Healthy = false }, []uint32{0x76650002}},
		{"an uplink that left the policy failed", func(p *Policy) { p.Uplinks = p.Uplinks[:1] }, []uint32{0x76650002}},
		{"a change of preference alone fails nothing", func(p *Policy) { p.Uplinks[0].Preferred, p.Uplinks[1].Preferred = false, true }, nil},
		{"an uplink with a new mark lost its flows' mark", func(p *Policy) { p.Uplinks[0].Mark = 0x99 }, []uint32{0x76650001}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := Policy{Uplinks: uplinks(2), Internal: internal}
			next := Policy{Uplinks: uplinks(2), Internal: internal}
			tt.edit(&next)
			if diff := cmp.Diff(tt.want, Failed(prev, next)); diff != "" {
				t.Errorf("Failed (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("an uplink that was already unhealthy does not fail again", func(t *testing.T) {
		prev := Policy{Uplinks: uplinks(2)}
		prev.Uplinks[0].Healthy = false
		next := Policy{Uplinks: uplinks(2)}
		next.Uplinks[0].Healthy = false
		if got := Failed(prev, next); got != nil {
			t.Errorf("Failed = %v, want nil", got)
		}
	})
}
