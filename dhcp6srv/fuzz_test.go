package dhcp6srv

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// FuzzHandle feeds arbitrary bytes, as every message type, to a server
// that already holds leases: it must never panic, and whatever it answers
// must parse and carry our server identifier.
func FuzzHandle(f *testing.F) {
	seeds := [][]byte{
		msg(f, dhcpv6.MessageTypeSolicit, 1, na(1), pd(2, "::/60"), oro(23, 24), rapid()),
		msg(f, dhcpv6.MessageTypeRequest, 1, ours(), na(1, "fd00:aaaa:bbbb:cc01::1000"), pd(2)),
		msg(f, dhcpv6.MessageTypeRenew, 1, ours(), na(1, "fd00:aaaa:bbbb:cc01::1000"), pd(2, "2001:db8:100:40::/60")),
		msg(f, dhcpv6.MessageTypeRebind, 2, na(1, "2001:db8::1"), pd(2, "2001:db8:100::/60")),
		msg(f, dhcpv6.MessageTypeRelease, 1, ours(), na(1), pd(2)),
		msg(f, dhcpv6.MessageTypeDecline, 1, ours(), na(1, "fd00:aaaa:bbbb:cc01::1000")),
		msg(f, dhcpv6.MessageTypeConfirm, 1, na(1, "fd00:aaaa:bbbb:cc01::1000")),
		msg(f, dhcpv6.MessageTypeInformationRequest, 1, oro(23, 24, 32)),
		{12, 0},
		{1, 0, 0, 0, 0, 3, 0, 200, 0, 1},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	c := &clock{now: t0}
	cfg := testConfig(c)
	cfg.RapidCommit = true
	cfg.PDCount = 8
	f.Fuzz(func(t *testing.T, b []byte) {
		h := NewHandler(cfg)
		for n := byte(1); n < 4; n++ {
			h.Handle(t0, msg(t, dhcpv6.MessageTypeRequest, n, ours(), na(1), pd(2)), hostA)
		}
		for i, now := range []time.Time{t0, t0.Add(valid)} {
			r, err := h.Handle(now, b, hostA)
			if errors.Is(err, errPanic) {
				t.Fatalf("round %d: %v", i, err)
			}
			if r == nil {
				continue
			}
			m, err := dhcpv6.MessageFromBytes(r)
			if err != nil {
				t.Fatalf("round %d: our reply does not parse: %v", i, err)
			}
			if id := m.Options.ServerID(); id == nil || string(id.ToBytes()) != string(serverDUID) {
				t.Fatalf("round %d: reply without our server identifier", i)
			}
		}
		h.Expire(t0.Add(2 * valid))
	})
}

// FuzzLoadLeases feeds arbitrary lease files: decoding must fail cleanly
// or give leases that survive another encode and decode unchanged.
func FuzzLoadLeases(f *testing.F) {
	f.Add([]byte(`{"version":1,"interface":"lan0","leases":[{"duid":"00030001020000000001","iaid":1,` +
		`"addr":"fd00:aaaa:bbbb:cc01::1000","preferred_until":"2026-11-26T12:45:00Z","valid_until":"2026-11-26T13:30:00Z","via":"fe80::a"},` +
		`{"duid":"00030001020000000001","iaid":2,"prefix":"2001:db8:100:40::/60","preferred_until":"2026-11-26T12:45:00Z","valid_until":"2026-11-26T13:30:00Z"}]}`))
	f.Add([]byte(`{"version":1,"leases":[{"duid":"zz","iaid":1}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		leases, err := decodeLeases(data)
		if err != nil {
			return
		}
		enc, err := encodeLeases("lan0", leases)
		if err != nil {
			t.Fatalf("encoding what was decoded: %v", err)
		}
		again, err := decodeLeases(enc)
		if err != nil {
			t.Fatalf("decoding what was encoded: %v", err)
		}
		// Dates go to UTC on the way out; compare instants.
		if d := cmp.Diff(leases, again, cmpAddrs, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); d != "" {
			t.Errorf("round trip (-decoded +re-decoded):\n%s", d)
		}
		// And a handler takes them without complaint.
		NewHandler(testConfig(&clock{now: t0})).Restore(t0, leases)
	})
}
