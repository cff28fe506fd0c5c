package ha

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Lease sync: the master tells the backup what it holds (the delegated
// prefix, its lifetimes, the server DUID) so that a takeover can install the
// NAT mapping and RAs at once and Renew the same lease instead of Soliciting
// a new one. The payload is opaque to this package (the daemon sends the
// lease as JSON); the envelope authenticates it and refuses replays.
//
// Transport: one UDP datagram from the master's own link-local to SyncGroup
// port SyncPort on the VRRP interface, sent whenever the lease changes and
// again with every Nth advert so a backup that starts late catches up. A
// multicast group is used because backups never speak VRRP, so the master
// cannot learn their addresses from the protocol.
var (
	// SyncGroup is the link-local multicast group of lease-sync datagrams.
	// It is not IANA-assigned; both nodes of a pair only need to agree.
	SyncGroup = netip.MustParseAddr("ff02::6:6")
)

// SyncPort is the UDP port of lease-sync datagrams (not IANA-assigned).
const SyncPort = 5798

// Envelope layout, network byte order:
//
//	0  magic "v6hs"
//	4  version (1), 3 reserved zero bytes
//	8  sequence number (uint64)
//	16 payload length (uint32)
//	20 payload
//	.. HMAC-SHA256 over everything before it (32 bytes)
const (
	syncMagic      = "v6hs"
	syncVersion    = 1
	syncHeaderLen  = 20
	syncMACLen     = sha256.Size
	MaxSyncPayload = 60 << 10 // fits a UDP datagram on any link with room to spare
)

// Errors returned by OpenSync.
var (
	ErrSyncKey       = errors.New("ha sync: empty key")
	ErrSyncMalformed = errors.New("ha sync: malformed message")
	ErrSyncAuth      = errors.New("ha sync: authentication failed")
	ErrSyncReplay    = errors.New("ha sync: replayed or stale sequence number")
)

// SealSync wraps payload in an authenticated envelope with sequence number
// seq. Senders should draw seq from the wall clock (uint64(now.UnixNano()))
// so it keeps growing across restarts of the master. Payloads longer than
// MaxSyncPayload are refused by OpenSync.
func SealSync(key []byte, seq uint64, payload []byte) []byte {
	b := make([]byte, syncHeaderLen, syncHeaderLen+len(payload)+syncMACLen)
	copy(b, syncMagic)
	b[4] = syncVersion
	binary.BigEndian.PutUint64(b[8:16], seq)
	binary.BigEndian.PutUint32(b[16:20], uint32(len(payload)))
	b = append(b, payload...)
	mac := hmac.New(sha256.New, key)
	mac.Write(b)
	return mac.Sum(b)
}

// OpenSync authenticates msg with key and returns its sequence number and
// payload. It refuses any sequence number not above lastSeq, so a receiver
// passes the last one it accepted. A receiver that starts without one should
// pass uint64(now.Add(-window).UnixNano()) (with a time-based seq on the
// sender) so that recorded old messages are refused too.
func OpenSync(key []byte, msg []byte, lastSeq uint64) (seq uint64, payload []byte, err error) {
	if len(key) == 0 {
		return 0, nil, ErrSyncKey
	}
	if len(msg) < syncHeaderLen+syncMACLen {
		return 0, nil, fmt.Errorf("%w: %d bytes", ErrSyncMalformed, len(msg))
	}
	// Authenticate before reading any field, in constant time.
	body, sum := msg[:len(msg)-syncMACLen], msg[len(msg)-syncMACLen:]
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	if !hmac.Equal(sum, mac.Sum(nil)) {
		return 0, nil, ErrSyncAuth
	}
	if string(body[:4]) != syncMagic || body[4] != syncVersion {
		return 0, nil, fmt.Errorf("%w: not a version %d sync message", ErrSyncMalformed, syncVersion)
	}
	n := binary.BigEndian.Uint32(body[16:20])
	if n > MaxSyncPayload || int(n) != len(body)-syncHeaderLen {
		return 0, nil, fmt.Errorf("%w: payload length %d in %d bytes", ErrSyncMalformed, n, len(body))
	}
	seq = binary.BigEndian.Uint64(body[8:16])
	if seq <= lastSeq {
		return seq, nil, fmt.Errorf("%w: %d, last accepted %d", ErrSyncReplay, seq, lastSeq)
	}
	return seq, append([]byte(nil), body[syncHeaderLen:]...), nil
}
