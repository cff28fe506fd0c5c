package uplink

import (
	"encoding/binary"
	"errors"
)

// ICMPv6 Echo (RFC 4443 §4.1, §4.2).
const (
	icmpEchoRequest = 128
	icmpEchoReply   = 129
	echoHeaderLen   = 8 // type, code, checksum, identifier, sequence number
)

// echoPayload marks our probes, so a reply to another program's ping with the same
// identifier is not taken for ours.
var echoPayload = []byte("v6edge uplink probe")

// marshalEcho builds an Echo Request. The checksum stays zero: for raw ICMPv6 sockets the
// kernel always computes it (RFC 3542 §3.1), since it covers the pseudo-header with the
// source address the kernel picks.
func marshalEcho(id, seq uint16) []byte {
	b := make([]byte, echoHeaderLen+len(echoPayload))
	b[0] = icmpEchoRequest
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[echoHeaderLen:], echoPayload)
	return b
}

var errNotOurEcho = errors.New("not an echo reply to a v6edge probe")

// parseEchoReply reads an Echo Reply as a raw ICMPv6 socket delivers it (from the ICMPv6
// header on; the kernel has verified the checksum) and returns its identifier and sequence
// number. Anything else, including a reply without our payload, is errNotOurEcho.
func parseEchoReply(b []byte) (id, seq uint16, err error) {
	if len(b) < echoHeaderLen+len(echoPayload) || b[0] != icmpEchoReply || b[1] != 0 {
		return 0, 0, errNotOurEcho
	}
	// RFC 4443 §4.2: the reply carries the request's data unchanged.
	if string(b[echoHeaderLen:echoHeaderLen+len(echoPayload)]) != string(echoPayload) {
		return 0, 0, errNotOurEcho
	}
	return binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]), nil
}

// probeBook is the pure bookkeeping of a Prober: one probe is outstanding at a time and it
// counts as missed when its timeout passes (expire) or, at the latest, when the next one is
// due without an answer.
type probeBook struct {
	id          uint16
	seq         uint16
	outstanding bool
}

// next is called when a probe is due: it reports whether the previous one went unanswered
// and returns the sequence number of the new one.
func (b *probeBook) next() (missed bool, seq uint16) {
	missed = b.outstanding
	b.seq++
	b.outstanding = true
	return missed, b.seq
}

// expire is called when the outstanding probe's answer is overdue: it reports whether
// there was one, which is then missed.
func (b *probeBook) expire() (missed bool) {
	missed = b.outstanding
	b.outstanding = false
	return missed
}

// unsent withdraws the probe that could not be sent: it counts as missed now.
func (b *probeBook) unsent() { b.outstanding = false }

// answer takes a reply and reports whether it answers the outstanding probe. A late reply
// to an earlier probe does not count: that probe was already reported missed.
func (b *probeBook) answer(id, seq uint16) bool {
	if !b.outstanding || id != b.id || seq != b.seq {
		return false
	}
	b.outstanding = false
	return true
}
