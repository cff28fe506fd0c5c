package dhcp6pd

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// holdConn holds the first Request until released, so the test can let
// another client take the prefix the server just Advertised.
type holdConn struct {
	Conn
	once    sync.Once
	held    chan struct{} // closed when the first Request is waiting
	release chan struct{}
}

func (c *holdConn) WriteTo(b []byte, to netip.AddrPort) error {
	if len(b) > 0 && dhcpv6.MessageType(b[0]) == dhcpv6.MessageTypeRequest {
		first := false
		c.once.Do(func() { first = true })
		if first {
			close(c.held)
			<-c.release
		}
	}
	return c.Conn.WriteTo(b, to)
}

// TestKeaRefusedRequest: RFC 8415 §18.2.10.1 against a real Kea. Its pool
// holds one /56. Kea Advertises it to X; before X's Request goes out, Y
// takes it (rapid commit), so Kea refuses X with NoPrefixAvail. Y then
// releases it. X must be bound within 15 s of the refusal — it restarts
// discovery with the normal Solicit timing instead of waiting SOL_MAX_RT.
func TestKeaRefusedRequest(t *testing.T) {
	lab := newKeaLab(t, map[string]any{
		"subnet": "2001:db8::/32", "rapid-commit": true,
		"pd-pools": []any{map[string]any{"prefix": "2001:db8:100::", "prefix-len": 56, "delegated-len": 56}},
	}, nil)
	hc := &holdConn{held: make(chan struct{}), release: make(chan struct{})}
	x := lab.client(Config{
		DUID: DUIDLL(net.HardwareAddr{0x02, 0, 0x5e, 0, 0x01, 0x01}), IAID: 1, PrefixLength: 56,
	}, netip.MustParseAddr("fe80::1"), func(c Conn) Conn { hc.Conn = c; return hc })
	select {
	case <-hc.held:
	case <-time.After(20 * time.Second):
		t.Fatal("X never sent a Request")
	}
	y := lab.client(Config{
		DUID: DUIDLL(net.HardwareAddr{0x02, 0, 0x5e, 0, 0x01, 0x02}), IAID: 1, PrefixLength: 56, RapidCommit: true,
		ReleaseOnStop: true,
	}, netip.MustParseAddr("fe80::2"), nil)
	waitFor(t, "Y bound to the only /56", 20*time.Second, func() bool { return y.c.Snapshot().State == StateBound })
	close(hc.release)
	waitFor(t, "Kea refusing X's Request", 10*time.Second, func() bool {
		for _, p := range x.c.Snapshot().Problems {
			if strings.Contains(p, "NoPrefixAvail") && strings.Contains(p, "Reply") {
				return true
			}
		}
		return false
	})
	refused := time.Now()
	if s := x.c.Snapshot(); s.State == StateBound {
		t.Fatalf("X bound though Y holds the only prefix: %+v", s.Lease)
	}
	y.c.Release()
	waitFor(t, "Y released", 10*time.Second, func() bool { return y.c.Snapshot().State == StateReleased })
	waitFor(t, "X bound after the refusal", 15*time.Second, func() bool { return x.c.Snapshot().State == StateBound })
	p, _ := x.c.Snapshot().Lease.Chosen(56, time.Now())
	t.Logf("X bound to %s %s after the refusal", p.Prefix, time.Since(refused).Round(time.Millisecond))
	if p.Prefix != netip.MustParsePrefix("2001:db8:100::/56") {
		t.Errorf("X bound to %s", p.Prefix)
	}
}
