package ha

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var syncKey = []byte("correct horse battery staple")

const leaseJSON = `{"prefixes":["2001:db8:100::/56"],"preferred":3600,"valid":7200,"acquired":"2026-01-01T00:00:00Z","server_duid":"00:01:00:01"}`

func TestSyncRoundTrip(t *testing.T) {
	msg := SealSync(syncKey, 42, []byte(leaseJSON))
	seq, payload, err := OpenSync(syncKey, msg, 41)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(struct {
		Seq     uint64
		Payload string
	}{42, leaseJSON}, struct {
		Seq     uint64
		Payload string
	}{seq, string(payload)}); diff != "" {
		t.Errorf("opened (-want +got):\n%s", diff)
	}
}

// reseal returns a sealed message whose header f has changed, with a MAC
// that is valid again: what a peer with the key but another format sends.
func reseal(f func([]byte)) []byte {
	b := SealSync(syncKey, 42, []byte(leaseJSON))
	body := b[:len(b)-sha256.Size]
	f(body)
	mac := hmac.New(sha256.New, syncKey)
	mac.Write(body)
	return mac.Sum(body)
}

func TestOpenSyncErrors(t *testing.T) {
	msg := SealSync(syncKey, 42, []byte(leaseJSON))
	flip := func(i int) []byte {
		b := append([]byte(nil), msg...)
		b[i] ^= 0x80
		return b
	}
	tests := []struct {
		name    string
		key     []byte
		msg     []byte
		lastSeq uint64
		want    error
	}{
		{"a message under another key fails authentication", []byte("other"), msg, 0, ErrSyncAuth},
		{"a changed payload byte fails authentication", syncKey, flip(25), 0, ErrSyncAuth},
		{"a changed sequence number fails authentication", syncKey, flip(15), 0, ErrSyncAuth},
		{"a changed MAC fails authentication", syncKey, flip(len(msg) - 1), 0, ErrSyncAuth},
		{"the same sequence number again is a replay", syncKey, msg, 42, ErrSyncReplay},
		{"an older sequence number is a replay", syncKey, msg, 1000, ErrSyncReplay},
		{"an empty key is refused", nil, msg, 0, ErrSyncKey},
		{"a message shorter than header and MAC is malformed", syncKey, msg[:40], 0, ErrSyncMalformed},
		{"a truncated message fails authentication", syncKey, msg[:len(msg)-1], 0, ErrSyncAuth},
		{"an authentic message of another version is malformed", syncKey, reseal(func(b []byte) { b[4] = 2 }), 0, ErrSyncMalformed},
		{"an authentic message with a wrong length is malformed", syncKey, reseal(func(b []byte) { b[19]++ }), 0, ErrSyncMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, p, err := OpenSync(tt.key, tt.msg, tt.lastSeq)
			if !errors.Is(err, tt.want) {
				t.Errorf("OpenSync = %q, %v; want %v", p, err, tt.want)
			}
			if err != nil && p != nil {
				t.Errorf("OpenSync returned payload %q with an error", p)
			}
		})
	}
}

func FuzzOpenSync(f *testing.F) {
	f.Add(SealSync(syncKey, 1, []byte(leaseJSON)), uint64(0))
	f.Add(SealSync(syncKey, 7, nil), uint64(7))
	f.Add([]byte("v6hs"), uint64(0))
	f.Fuzz(func(t *testing.T, msg []byte, lastSeq uint64) {
		seq, payload, err := OpenSync(syncKey, msg, lastSeq)
		if err != nil {
			return
		}
		if seq <= lastSeq {
			t.Fatalf("accepted seq %d not above %d", seq, lastSeq)
		}
		// Anything accepted must be exactly what SealSync makes of it.
		if diff := cmp.Diff(msg, SealSync(syncKey, seq, payload)); diff != "" {
			t.Errorf("accepted a message SealSync would not produce (-got +resealed):\n%s", diff)
		}
	})
}
