package dhcp6srv

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/v6edge/v6edge/internal/statefile"
)

// fileVersion guards the on-disk format.
const fileVersion = 1

// savedFile is the lease file: text addresses and prefixes, RFC 3339
// dates, so an operator can read (and, with care, edit) it.
type savedFile struct {
	Version   int          `json:"version"`
	Interface string       `json:"interface"`
	Leases    []savedLease `json:"leases"`
}

type savedLease struct {
	DUID           string    `json:"duid"`
	IAID           uint32    `json:"iaid"`
	Addr           string    `json:"addr,omitempty"`
	Prefix         string    `json:"prefix,omitempty"`
	PreferredUntil time.Time `json:"preferred_until"`
	ValidUntil     time.Time `json:"valid_until"`
	Via            string    `json:"via,omitempty"`
}

// LeasePath is where the leases of the server on iface are kept.
func LeasePath(stateDir, iface string) string {
	return filepath.Join(stateDir, "dhcp6srv-"+iface+".json")
}

// SaveLeases writes leases to path atomically (temporary file, fsync,
// rename, fsync of the directory): a crash leaves the old file or the new
// one, never a torn one.
func SaveLeases(path, iface string, leases []Lease) error {
	data, err := encodeLeases(iface, leases)
	if err != nil {
		return fmt.Errorf("saving leases: %w", err)
	}
	if err := statefile.Write(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving leases: %w", err)
	}
	return nil
}

func encodeLeases(iface string, leases []Lease) ([]byte, error) {
	f := savedFile{Version: fileVersion, Interface: iface, Leases: make([]savedLease, 0, len(leases))}
	for _, l := range leases {
		s := savedLease{
			DUID: hex.EncodeToString(l.DUID), IAID: l.IAID,
			PreferredUntil: l.PreferredUntil.UTC(), ValidUntil: l.ValidUntil.UTC(),
		}
		if l.Addr.IsValid() {
			s.Addr = l.Addr.String()
		}
		if l.Prefix.IsValid() {
			s.Prefix = l.Prefix.String()
		}
		if l.Via.IsValid() {
			s.Via = l.Via.String()
		}
		f.Leases = append(f.Leases, s)
	}
	// One lease a line: readable and diffable, and much cheaper to write
	// than an indented document when the table is large.
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\"version\": %d, \"interface\": %q, \"leases\": [", f.Version, f.Interface)
	for i, l := range f.Leases {
		line, err := json.Marshal(l)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n  ")
		b.Write(line)
	}
	b.WriteString("\n]}")
	return b.Bytes(), nil
}

// LoadLeases reads a file written by SaveLeases. A missing file is no
// error: it is the first start.
func LoadLeases(path string) ([]Lease, error) {
	data, found, err := statefile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("loading leases: %w", err)
	}
	if !found {
		return nil, nil
	}
	leases, err := decodeLeases(data)
	if err != nil {
		return nil, fmt.Errorf("loading leases from %s: %w", path, err)
	}
	return leases, nil
}

func decodeLeases(data []byte) ([]Lease, error) {
	var f savedFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("version %d, want %d", f.Version, fileVersion)
	}
	out := make([]Lease, 0, len(f.Leases))
	for i, s := range f.Leases {
		l := Lease{IAID: s.IAID, PreferredUntil: s.PreferredUntil, ValidUntil: s.ValidUntil}
		var err error
		if l.DUID, err = hex.DecodeString(s.DUID); err != nil || len(l.DUID) == 0 {
			return nil, fmt.Errorf("lease %d: bad duid %q", i, s.DUID)
		}
		if s.Addr != "" {
			if l.Addr, err = netip.ParseAddr(s.Addr); err != nil {
				return nil, fmt.Errorf("lease %d: %w", i, err)
			}
		}
		if s.Prefix != "" {
			if l.Prefix, err = netip.ParsePrefix(s.Prefix); err != nil {
				return nil, fmt.Errorf("lease %d: %w", i, err)
			}
		}
		if l.Addr.IsValid() == l.Prefix.IsValid() {
			return nil, fmt.Errorf("lease %d: needs exactly one of addr and prefix", i)
		}
		if s.Via != "" {
			if l.Via, err = netip.ParseAddr(s.Via); err != nil {
				return nil, fmt.Errorf("lease %d: %w", i, err)
			}
		}
		out = append(out, l)
	}
	return out, nil
}
