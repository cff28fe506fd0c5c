package uplink

import (
	"net/netip"
	"testing"
)

// FuzzRender builds policies from arbitrary bytes and checks what Render promises
// whatever the input: rules only in our priority range, no two alike, at most one rule for
// new flows and it points at a healthy uplink with a gateway, a route only for uplinks that
// pass Check, and marks rules only for marked uplinks.
func FuzzRender(f *testing.F) {
	f.Add([]byte{3, 0xe8, 1, 1, 1, 0xe9, 2, 1, 0}, "wan0", "wan1")
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0}, "", "wan0")
	f.Add([]byte{1, 0xe8, 0xe8, 0, 1}, "a", "a")
	f.Fuzz(func(t *testing.T, b []byte, name0, name1 string) {
		if len(b) == 0 {
			return
		}
		p := Policy{LANs: []string{name1, "lan0"}, Internal: internal}
		if b[0]&1 == 0 {
			p.Internal = netip.Prefix{}
		}
		names := []string{name0, name1, "wan2", "wan3"}
		for i := 1; i+3 < len(b) && len(p.Uplinks) < 8; i += 4 {
			u := Uplink{
				Interface: names[len(p.Uplinks)%len(names)],
				Table:     int(b[i]) * 5,
				Mark:      uint32(b[i+1] % 4),
				Healthy:   b[i+2]&1 != 0,
				Preferred: b[i+2]&2 != 0,
			}
			if b[i+3]&1 != 0 {
				u.Gateway = netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 15: b[i+3]})
			}
			p.Uplinks = append(p.Uplinks, u)
		}
		rules, routes := Render(p)
		seen := map[ruleKey]bool{}
		fromRules := 0
		for _, r := range rules {
			if r.Priority < PriorityFirst || r.Priority > PriorityLast {
				t.Fatalf("rule %v outside our range", r)
			}
			if seen[ruleKey(r)] {
				t.Fatalf("rule %v twice", r)
			}
			seen[ruleKey(r)] = true
			if r.From.IsValid() {
				fromRules++
				a := p.Active()
				if a < 0 || p.Uplinks[a].Table != r.Table || !p.Uplinks[a].Healthy || !p.Uplinks[a].Gateway.IsValid() {
					t.Fatalf("rule %v for new flows, active uplink %d of %+v", r, a, p.Uplinks)
				}
			}
		}
		if fromRules > 1 {
			t.Fatalf("%d rules for new flows", fromRules)
		}
		for _, rt := range routes {
			i := -1
			for j, u := range p.Uplinks {
				if u.Table == rt.Table && p.checkUplink(j) == nil {
					i = j
				}
			}
			if i < 0 || p.Uplinks[i].Interface != rt.Interface || p.Uplinks[i].Gateway != rt.Gateway {
				t.Fatalf("route %v matches no valid uplink of %+v", rt, p.Uplinks)
			}
		}
		marked := 0
		for i, u := range p.Uplinks {
			if u.Mark != 0 && p.checkUplink(i) == nil {
				marked++
			}
		}
		out := 0
		for _, m := range RenderMarks(p) {
			if m.Chain == ChainMarkOut {
				out++
			}
		}
		if out != marked {
			t.Fatalf("%d postrouting mark rules for %d marked uplinks", out, marked)
		}
		_ = RenderText(p)
	})
}
