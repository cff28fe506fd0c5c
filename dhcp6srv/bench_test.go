package dhcp6srv

import (
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// BenchmarkHandle measures the pure handler: one Solicit and one Request
// (a whole stateful exchange) per iteration, for ever new clients.
func BenchmarkHandle(b *testing.B) {
	c := &clock{now: t0}
	cfg := testConfig(c)
	cfg.PoolStart, cfg.PoolEnd = netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1"), netip.MustParseAddr("fd00:aaaa:bbbb:cc01::ff:ffff")
	h := NewHandler(cfg)
	const clients = 1 << 16
	sol := make([][]byte, 0, clients)
	req := make([][]byte, 0, clients)
	for i := range clients {
		m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeSolicit}
		m.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDEN{EnterpriseNumber: 1, EnterpriseIdentifier: []byte{byte(i >> 8), byte(i)}}))
		m.AddOption(na(1))
		sol = append(sol, m.ToBytes())
		m.MessageType = dhcpv6.MessageTypeRequest
		m.AddOption(ours())
		req = append(req, m.ToBytes())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % clients
		if r, err := h.Handle(t0, sol[k], hostA); r == nil {
			b.Fatal(err)
		}
		if r, err := h.Handle(t0, req[k], hostA); r == nil {
			b.Fatal(err)
		}
	}
}
