package dhcp6pd

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/v6edge/v6edge/internal/statefile"
)

// savedLease is the on-disk form: prefixes and addresses as text, durations
// in whole seconds, so an operator can read and edit the file.
type savedLease struct {
	Interface      string        `json:"interface,omitempty"`
	IAID           uint32        `json:"iaid"`
	ServerID       string        `json:"server_duid"`
	ServerAddr     string        `json:"server_addr,omitempty"`
	Unicast        string        `json:"unicast,omitempty"`
	T1             int64         `json:"t1_s"`
	T2             int64         `json:"t2_s"`
	Acquired       time.Time     `json:"acquired"`
	Prefixes       []savedPrefix `json:"prefixes"`
	ReconfigureKey string        `json:"reconfigure_key,omitempty"`
	Hint           int           `json:"hint,omitempty"`
	Addresses      []savedAddr   `json:"addresses,omitempty"`
	DNS            []string      `json:"dns,omitempty"`
	Domains        []string      `json:"domains,omitempty"`
}

type savedPrefix struct {
	Prefix    string `json:"prefix"`
	Preferred int64  `json:"preferred_s"`
	Valid     int64  `json:"valid_s"`
	Exclude   string `json:"exclude,omitempty"` // RFC 6603
	Carried   bool   `json:"carried,omitempty"` // not named by the last Reply
}

type savedAddr struct {
	Address   string `json:"address"`
	Preferred int64  `json:"preferred_s"`
	Valid     int64  `json:"valid_s"`
}

func leasePath(stateDir, iface string, iaid uint32) string {
	return filepath.Join(stateDir, fmt.Sprintf("lease-%s-%d.json", iface, iaid))
}

// toSaved converts a lease to its text form.
func toSaved(l *Lease) savedLease {
	s := savedLease{
		IAID:           l.IAID,
		ServerID:       FormatDUID(l.ServerID),
		T1:             int64(l.T1 / time.Second),
		T2:             int64(l.T2 / time.Second),
		Acquired:       l.Acquired.UTC(),
		ReconfigureKey: hex.EncodeToString(l.ReconfigureKey),
		Hint:           l.Hint,
		Prefixes:       []savedPrefix{},
	}
	if l.ServerAddr.IsValid() {
		s.ServerAddr = l.ServerAddr.String()
	}
	if l.Unicast.IsValid() {
		s.Unicast = l.Unicast.String()
	}
	for _, a := range l.Addresses {
		s.Addresses = append(s.Addresses, savedAddr{Address: a.Addr.String(), Preferred: int64(a.Preferred / time.Second), Valid: int64(a.Valid / time.Second)})
	}
	for _, a := range l.DNS {
		s.DNS = append(s.DNS, a.String())
	}
	s.Domains = slices.Clone(l.Domains)
	for _, p := range l.Prefixes {
		sp := savedPrefix{
			Prefix:    p.Prefix.String(),
			Preferred: int64(p.Preferred / time.Second),
			Valid:     int64(p.Valid / time.Second),
			Carried:   p.Carried,
		}
		if p.Exclude.IsValid() {
			sp.Exclude = p.Exclude.String()
		}
		s.Prefixes = append(s.Prefixes, sp)
	}
	return s
}

// fromSaved reads the text form back.
func fromSaved(s savedLease) (*Lease, error) {
	l := &Lease{
		IAID:     s.IAID,
		T1:       time.Duration(s.T1) * time.Second,
		T2:       time.Duration(s.T2) * time.Second,
		Acquired: s.Acquired,
		Hint:     s.Hint,
	}
	var err error
	if l.ServerID, err = ParseDUID(s.ServerID); err != nil {
		return nil, fmt.Errorf("server_duid: %w", err)
	}
	if s.ServerAddr != "" {
		if l.ServerAddr, err = netip.ParseAddr(s.ServerAddr); err != nil {
			return nil, fmt.Errorf("server_addr: %w", err)
		}
	}
	if s.Unicast != "" {
		if l.Unicast, err = netip.ParseAddr(s.Unicast); err != nil {
			return nil, fmt.Errorf("unicast: %w", err)
		}
	}
	if l.ReconfigureKey, err = hex.DecodeString(s.ReconfigureKey); err != nil {
		return nil, fmt.Errorf("reconfigure_key: %w", err)
	}
	if len(l.ReconfigureKey) == 0 {
		l.ReconfigureKey = nil
	}
	if len(s.DNS) > MaxDNSServers || len(s.Domains) > MaxDomains {
		return nil, fmt.Errorf("%d DNS servers and %d domains, at most %d and %d", len(s.DNS), len(s.Domains), MaxDNSServers, MaxDomains)
	}
	for _, sa := range s.Addresses {
		a, err := netip.ParseAddr(sa.Address)
		if err != nil {
			return nil, fmt.Errorf("addresses: %w", err)
		}
		if err := CheckAddress(a); err != nil {
			return nil, fmt.Errorf("addresses: %w", err)
		}
		if sa.Preferred < 0 || sa.Valid < sa.Preferred {
			return nil, fmt.Errorf("addresses: %s preferred %d s, valid %d s", a, sa.Preferred, sa.Valid)
		}
		l.Addresses = append(l.Addresses, Address{Addr: a, Preferred: time.Duration(sa.Preferred) * time.Second, Valid: time.Duration(sa.Valid) * time.Second})
	}
	for _, d := range s.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf("dns: %w", err)
		}
		if err := CheckDNSServer(a); err != nil {
			return nil, fmt.Errorf("dns: %w", err)
		}
		l.DNS = append(l.DNS, a)
	}
	for _, d := range s.Domains {
		if err := CheckDomain(d); err != nil {
			return nil, fmt.Errorf("domains: %w", err)
		}
		l.Domains = append(l.Domains, d)
	}
	for _, sp := range s.Prefixes {
		p, err := netip.ParsePrefix(sp.Prefix)
		if err != nil {
			return nil, fmt.Errorf("prefix: %w", err)
		}
		lp := Prefix{
			Prefix:    p,
			Preferred: time.Duration(sp.Preferred) * time.Second,
			Valid:     time.Duration(sp.Valid) * time.Second,
			Carried:   sp.Carried,
		}
		if sp.Exclude != "" {
			if lp.Exclude, err = netip.ParsePrefix(sp.Exclude); err != nil {
				return nil, fmt.Errorf("exclude: %w", err)
			}
			if err := CheckExclude(p, lp.Exclude); err != nil {
				return nil, fmt.Errorf("exclude: %w", err)
			}
		}
		l.Prefixes = append(l.Prefixes, lp)
	}
	return l, nil
}

// MarshalJSON writes the lease in the same text form as the lease file
// (prefixes as text, lifetimes in seconds), e.g. for HA sync or status.
func (l *Lease) MarshalJSON() ([]byte, error) {
	return json.Marshal(toSaved(l))
}

// UnmarshalJSON reads what MarshalJSON writes.
func (l *Lease) UnmarshalJSON(b []byte) error {
	var s savedLease
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	got, err := fromSaved(s)
	if err != nil {
		return fmt.Errorf("decoding lease: %w", err)
	}
	*l = *got
	return nil
}

// SaveLease writes l to <stateDir>/lease-<iface>-<iaid>.json atomically:
// a crash leaves either the old file or the new one, never a torn one.
func SaveLease(stateDir, iface string, l *Lease) error {
	if l == nil {
		return errors.New("saving lease: nil lease")
	}
	s := toSaved(l)
	s.Interface = iface
	if err := statefile.WriteJSON(leasePath(stateDir, iface, l.IAID), s, 0o600); err != nil {
		return fmt.Errorf("saving lease: %w", err)
	}
	return nil
}

// RemoveLease deletes the saved lease, e.g. after a Release or expiry, so a
// restart does not Rebind a prefix the server no longer holds for us.
func RemoveLease(stateDir, iface string, iaid uint32) error {
	err := os.Remove(leasePath(stateDir, iface, iaid))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing saved lease: %w", err)
	}
	return nil
}

// LoadLease reads the lease SaveLease wrote. A missing file is (nil, nil).
func LoadLease(stateDir, iface string, iaid uint32) (*Lease, error) {
	path := leasePath(stateDir, iface, iaid)
	data, found, err := statefile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("loading lease: %w", err)
	}
	if !found {
		return nil, nil
	}
	var s savedLease
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("loading lease %s: %w", path, err)
	}
	l, err := fromSaved(s)
	if err != nil {
		return nil, fmt.Errorf("loading lease %s: %w", path, err)
	}
	return l, nil
}
