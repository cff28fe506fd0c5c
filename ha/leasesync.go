package ha

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// SyncedLease is the delegated lease as the master tells it to the backup,
// inside a SealSync envelope. It mirrors the DHCPv6 client's lease without
// importing it: the daemon converts, so ha stays a protocol package.
type SyncedLease struct {
	WAN        string
	IAID       uint32
	ServerID   []byte
	ServerAddr netip.Addr
	T1, T2     time.Duration
	Acquired   time.Time
	Hint       int
	Prefixes   []SyncedPrefix
	// Addresses (IA_NA), DNS and Domains (options 23, 24) of the lease.
	Addresses []SyncedAddress
	DNS       []netip.Addr
	Domains   []string
}

// SyncedPrefix is one prefix of a SyncedLease.
type SyncedPrefix struct {
	Prefix           netip.Prefix
	Preferred, Valid time.Duration
	Exclude          netip.Prefix // RFC 6603; invalid when none
}

// SyncedAddress is one IA_NA address of a SyncedLease.
type SyncedAddress struct {
	Addr             netip.Addr
	Preferred, Valid time.Duration
}

// wireLease is the JSON payload. Times travel as ages and lifetimes as whole
// seconds, so the two nodes' clocks need not agree.
type wireLease struct {
	WAN        string        `json:"wan"`
	IAID       uint32        `json:"iaid"`
	ServerID   string        `json:"server_id"`
	T1S        int64         `json:"t1_s"`
	T2S        int64         `json:"t2_s"`
	AgeMS      int64         `json:"age_ms"`
	Hint       int           `json:"hint"`
	Prefixes   []wirePrefix  `json:"prefixes"`
	ServerAddr netip.Addr    `json:"server_addr,omitzero"`
	Addresses  []wireAddress `json:"addresses,omitempty"`
	DNS        []netip.Addr  `json:"dns,omitempty"`
	Domains    []string      `json:"domains,omitempty"`
}

type wirePrefix struct {
	Prefix     netip.Prefix `json:"prefix"`
	PreferredS int64        `json:"preferred_s"`
	ValidS     int64        `json:"valid_s"`
	Exclude    netip.Prefix `json:"exclude,omitzero"`
}

type wireAddress struct {
	Addr       netip.Addr `json:"addr"`
	PreferredS int64      `json:"preferred_s"`
	ValidS     int64      `json:"valid_s"`
}

// Bounds a synced lease must respect. A backup acts on it (NAT, RA), so it
// is validated as strictly as a Reply from the server would be.
const (
	maxSyncPrefixes = 64
	maxSyncList     = 8 // addresses, DNS servers, domains: as many as a client keeps
	maxSyncDomain   = 253
	maxServerID     = 130 // RFC 8415 §11.1: a DUID is at most 128 octets plus its type
	maxSyncAge      = 10 * 365 * 24 * time.Hour
	maxLifetimeS    = 0xffffffff // RFC 8415 §7.7 infinity
)

// ErrSyncLease is wrapped by every DecodeLease refusal.
var ErrSyncLease = errors.New("ha sync: bad lease")

// EncodeLease is the payload that tells a backup about l as of now.
func EncodeLease(l SyncedLease, now time.Time) ([]byte, error) {
	w := wireLease{WAN: l.WAN, IAID: l.IAID, ServerID: hex.EncodeToString(l.ServerID),
		T1S: int64(l.T1 / time.Second), T2S: int64(l.T2 / time.Second),
		AgeMS: now.Sub(l.Acquired).Milliseconds(), Hint: l.Hint, ServerAddr: l.ServerAddr,
		DNS: l.DNS, Domains: l.Domains}
	for _, p := range l.Prefixes {
		w.Prefixes = append(w.Prefixes, wirePrefix{Prefix: p.Prefix, Exclude: p.Exclude,
			PreferredS: int64(p.Preferred / time.Second), ValidS: int64(p.Valid / time.Second)})
	}
	for _, a := range l.Addresses {
		w.Addresses = append(w.Addresses, wireAddress{Addr: a.Addr,
			PreferredS: int64(a.Preferred / time.Second), ValidS: int64(a.Valid / time.Second)})
	}
	return json.Marshal(w)
}

// DecodeLease parses and validates a payload from the peer, taking its age
// relative to now. Anything a Reply could not carry is refused.
func DecodeLease(b []byte, now time.Time) (SyncedLease, error) {
	var w wireLease
	if err := json.Unmarshal(b, &w); err != nil {
		return SyncedLease{}, fmt.Errorf("%w: %v", ErrSyncLease, err)
	}
	sid, err := hex.DecodeString(w.ServerID)
	switch {
	case err != nil || len(sid) < 2 || len(sid) > maxServerID:
		return SyncedLease{}, fmt.Errorf("%w: server id", ErrSyncLease)
	case w.WAN == "":
		return SyncedLease{}, fmt.Errorf("%w: no WAN", ErrSyncLease)
	case w.AgeMS < 0 || time.Duration(w.AgeMS)*time.Millisecond > maxSyncAge:
		return SyncedLease{}, fmt.Errorf("%w: age %d ms", ErrSyncLease, w.AgeMS)
	case len(w.Prefixes) == 0 || len(w.Prefixes) > maxSyncPrefixes:
		return SyncedLease{}, fmt.Errorf("%w: %d prefixes", ErrSyncLease, len(w.Prefixes))
	case w.T1S < 0 || w.T2S < 0 || w.T1S > maxLifetimeS || w.T2S > maxLifetimeS:
		return SyncedLease{}, fmt.Errorf("%w: T1/T2", ErrSyncLease)
	case w.Hint < 0 || w.Hint > 128:
		return SyncedLease{}, fmt.Errorf("%w: hint %d", ErrSyncLease, w.Hint)
	case w.ServerAddr.IsValid() && !w.ServerAddr.Is6():
		return SyncedLease{}, fmt.Errorf("%w: server address %v", ErrSyncLease, w.ServerAddr)
	case len(w.Addresses) > maxSyncList || len(w.DNS) > maxSyncList || len(w.Domains) > maxSyncList:
		return SyncedLease{}, fmt.Errorf("%w: too many addresses, DNS servers or domains", ErrSyncLease)
	}
	l := SyncedLease{WAN: w.WAN, IAID: w.IAID, ServerID: sid, ServerAddr: w.ServerAddr,
		T1: time.Duration(w.T1S) * time.Second, T2: time.Duration(w.T2S) * time.Second,
		Acquired: now.Add(-time.Duration(w.AgeMS) * time.Millisecond), Hint: w.Hint}
	for _, p := range w.Prefixes {
		if !p.Prefix.IsValid() || !p.Prefix.Addr().Is6() || p.Prefix.Addr().Is4In6() || p.Prefix.Bits() > 64 ||
			p.PreferredS < 0 || p.ValidS < p.PreferredS || p.ValidS > maxLifetimeS {
			return SyncedLease{}, fmt.Errorf("%w: prefix %v", ErrSyncLease, p.Prefix)
		}
		if x := p.Exclude; x.IsValid() && (x.Bits() <= p.Prefix.Bits() || !p.Prefix.Masked().Contains(x.Addr())) {
			return SyncedLease{}, fmt.Errorf("%w: excluded %v is not inside %v", ErrSyncLease, x, p.Prefix)
		}
		l.Prefixes = append(l.Prefixes, SyncedPrefix{Prefix: p.Prefix.Masked(), Exclude: p.Exclude.Masked(),
			Preferred: time.Duration(p.PreferredS) * time.Second, Valid: time.Duration(p.ValidS) * time.Second})
	}
	for _, a := range w.Addresses {
		if !a.Addr.Is6() || a.Addr.Is4In6() || !a.Addr.IsGlobalUnicast() || a.PreferredS < 0 || a.ValidS < a.PreferredS || a.ValidS > maxLifetimeS {
			return SyncedLease{}, fmt.Errorf("%w: address %v", ErrSyncLease, a.Addr)
		}
		l.Addresses = append(l.Addresses, SyncedAddress{Addr: a.Addr,
			Preferred: time.Duration(a.PreferredS) * time.Second, Valid: time.Duration(a.ValidS) * time.Second})
	}
	for _, a := range w.DNS {
		if !a.Is6() || a.Is4In6() || a.IsMulticast() || a.IsUnspecified() || a.IsLoopback() {
			return SyncedLease{}, fmt.Errorf("%w: DNS server %v", ErrSyncLease, a)
		}
	}
	for _, dn := range w.Domains {
		if dn == "" || len(dn) > maxSyncDomain {
			return SyncedLease{}, fmt.Errorf("%w: domain %q", ErrSyncLease, dn)
		}
	}
	l.DNS, l.Domains = w.DNS, w.Domains
	return l, nil
}
