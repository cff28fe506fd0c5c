package uplink

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func reply(id, seq uint16) []byte {
	b := marshalEcho(id, seq)
	b[0] = icmpEchoReply
	return b
}

func TestParseEchoReply(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		id, seq uint16
		ok      bool
	}{
		{"a reply to our probe is read", reply(0x1234, 7), 0x1234, 7, true},
		{"our own request is not a reply", marshalEcho(1, 1), 0, 0, false},
		{"a reply to another program's ping is ignored", append(reply(1, 1)[:echoHeaderLen], "abcdefghijklmnopqrstuvw"...), 0, 0, false},
		{"a truncated reply is ignored", reply(1, 1)[:10], 0, 0, false},
		{"an empty packet is ignored", nil, 0, 0, false},
		{"a reply with a non-zero code is ignored", func() []byte { b := reply(1, 1); b[1] = 1; return b }(), 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, seq, err := parseEchoReply(tt.in)
			if (err == nil) != tt.ok || id != tt.id || seq != tt.seq {
				t.Errorf("parseEchoReply = %#x, %d, %v; want %#x, %d, ok=%v", id, seq, err, tt.id, tt.seq, tt.ok)
			}
		})
	}
}

func FuzzParseEchoReply(f *testing.F) {
	f.Add(reply(0x1234, 7))
	f.Add(marshalEcho(1, 2))
	f.Add([]byte{129, 0, 0, 0, 0, 1, 0, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, seq, err := parseEchoReply(b)
		if err != nil {
			if id != 0 || seq != 0 {
				t.Fatalf("error %v with id %d seq %d", err, id, seq)
			}
			return
		}
		// Whatever is accepted must be an echo reply carrying our payload, and round-trip.
		if b[0] != icmpEchoReply || !bytes.HasPrefix(b[echoHeaderLen:], echoPayload) {
			t.Fatalf("accepted %x", b)
		}
		// The checksum (bytes 2-3) is the kernel's business: it verified it already.
		got := reply(id, seq)
		copy(got[2:4], b[2:4])
		if !bytes.Equal(got, b[:len(got)]) {
			t.Fatalf("accepted %x, which is not the reply %x", b, got)
		}
	})
}

func TestProbeBook(t *testing.T) {
	t.Run("a probe answered in time is not a miss; an unanswered or expired one is, once", func(t *testing.T) {
		b := probeBook{id: 9}
		var got []string
		log := func(s string, v bool) {
			if v {
				got = append(got, s)
			}
		}
		m, seq := b.next()
		log("miss", m)
		log("answered", b.answer(9, seq))
		log("answered twice", b.answer(9, seq))
		m, seq = b.next()
		log("miss", m)
		log("answered with a foreign id", b.answer(8, seq))
		m, _ = b.next() // the previous one went unanswered
		log("miss", m)
		log("late answer counted", b.answer(9, seq))
		_, _ = b.next()
		log("expired", b.expire())
		log("expired twice", b.expire())
		b.unsent()
		m, _ = b.next()
		log("miss after an unsent probe", m) // unsent was already reported by the Prober
		if diff := cmp.Diff([]string{"answered", "miss", "expired"}, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}
