package ra

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/v6edge/v6edge/internal/statefile"
)

// History remembers which /64s were advertised, and which of them left the
// configuration and are being deprecated (RFC 9096 §3.5). Entries are keyed
// by the MASKED prefix: odhcpd once stored full addresses, so a router
// address with a random interface identifier made the new prefix look stale
// (odhcpd issue #387).
//
// History is pure; Load and Save move it to and from a file.
type History struct {
	// advertised maps each current /64 to the latest instant hosts may
	// still hold it valid (the send time plus the valid lifetime of the
	// last RA that carried it).
	advertised map[netip.Prefix]advertisement
	// Deprecated are the /64s being withdrawn, oldest first.
	Deprecated []Deprecated
}

type advertisement struct {
	ValidUntil time.Time
	Autonomous bool
	OnLink     bool
}

// Observe records the prefixes of cfg as advertised at now and deprecates
// every /64 that was advertised before and is missing from cfg. A prefix
// that comes back stops being deprecated. It reports whether the set of
// advertised or deprecated prefixes changed (the caller then sends RAs
// quickly and saves the history).
func (h *History) Observe(cfg Config, now time.Time) (changed bool) {
	if h.advertised == nil {
		h.advertised = make(map[netip.Prefix]advertisement)
	}
	current := make(map[netip.Prefix]advertisement, len(cfg.Prefixes))
	for _, p := range cfg.Prefixes {
		if !p.Prefix.IsValid() {
			continue
		}
		_, valid := PrefixLifetimes(p, now)
		current[p.Prefix.Masked()] = advertisement{ValidUntil: now.Add(valid), Autonomous: p.Autonomous, OnLink: p.OnLink}
	}
	for p, old := range h.advertised {
		if _, ok := current[p]; ok {
			continue
		}
		changed = true
		delete(h.advertised, p)
		// Hosts were told at most old.ValidUntil; never announce more than
		// that, and never more than 2 h (see deprecatedValidMax).
		until := now.Add(deprecatedValidMax)
		if old.ValidUntil.Before(until) {
			until = old.ValidUntil
		}
		if !until.After(now) {
			continue
		}
		h.Deprecated = slices.DeleteFunc(h.Deprecated, func(d Deprecated) bool { return d.Prefix == p })
		h.Deprecated = append(h.Deprecated, Deprecated{Prefix: p, Since: now, Until: until, Autonomous: old.Autonomous, OnLink: old.OnLink})
	}
	for p, a := range current {
		if _, ok := h.advertised[p]; !ok {
			changed = true
		}
		h.advertised[p] = a
		n := len(h.Deprecated)
		h.Deprecated = slices.DeleteFunc(h.Deprecated, func(d Deprecated) bool { return d.Prefix == p })
		changed = changed || n != len(h.Deprecated)
	}
	return h.Expire(now) || changed
}

// Expire drops deprecated prefixes whose valid lifetime ran out; it
// reports whether any were dropped.
func (h *History) Expire(now time.Time) bool {
	n := len(h.Deprecated)
	h.Deprecated = slices.DeleteFunc(h.Deprecated, func(d Deprecated) bool { return !d.Until.After(now) })
	return n != len(h.Deprecated)
}

// Active returns the deprecated prefixes still to be announced at now,
// oldest first.
func (h *History) Active(now time.Time) []Deprecated {
	var out []Deprecated
	for _, d := range h.Deprecated {
		if d.Until.After(now) {
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, func(a, b Deprecated) int { return a.Since.Compare(b.Since) })
	return out
}

// stateFile is the JSON layout of ra-<iface>.json. Prefixes are text, not
// net.IPNet JSON, so the file is readable and stable.
type stateFile struct {
	Advertised []stateEntry `json:"advertised"`
	Deprecated []stateEntry `json:"deprecated"`
}

type stateEntry struct {
	Prefix     string    `json:"prefix"`
	Since      time.Time `json:"since,omitzero"`
	ValidUntil time.Time `json:"valid_until"`
	Autonomous bool      `json:"autonomous"`
	OnLink     bool      `json:"on_link"`
}

// StatePath is where the history of iface is kept inside dir.
func StatePath(dir, iface string) string {
	return filepath.Join(dir, "ra-"+iface+".json")
}

// LoadHistory reads the history kept at path. A missing file is an empty
// history, not an error.
func LoadHistory(path string) (*History, error) {
	h := &History{advertised: make(map[netip.Prefix]advertisement)}
	b, found, err := statefile.Read(path)
	if err != nil {
		return h, fmt.Errorf("ra: reading prefix history: %w", err)
	}
	if !found {
		return h, nil
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return h, fmt.Errorf("ra: parsing prefix history %s: %w", path, err)
	}
	for _, e := range f.Advertised {
		p, err := netip.ParsePrefix(e.Prefix)
		if err != nil {
			return h, fmt.Errorf("ra: parsing prefix history %s: %w", path, err)
		}
		h.advertised[p.Masked()] = advertisement{ValidUntil: e.ValidUntil, Autonomous: e.Autonomous, OnLink: e.OnLink}
	}
	for _, e := range f.Deprecated {
		p, err := netip.ParsePrefix(e.Prefix)
		if err != nil {
			return h, fmt.Errorf("ra: parsing prefix history %s: %w", path, err)
		}
		h.Deprecated = append(h.Deprecated, Deprecated{Prefix: p.Masked(), Since: e.Since, Until: e.ValidUntil, Autonomous: e.Autonomous, OnLink: e.OnLink})
	}
	return h, nil
}

// Save writes the history to path atomically (temporary file, fsync,
// rename), so a crash never leaves a half-written file that would lose the
// deprecated prefixes.
func (h *History) Save(path string) error {
	var f stateFile
	for p, a := range h.advertised {
		f.Advertised = append(f.Advertised, stateEntry{Prefix: p.String(), ValidUntil: a.ValidUntil.UTC(), Autonomous: a.Autonomous, OnLink: a.OnLink})
	}
	slices.SortFunc(f.Advertised, func(a, b stateEntry) int { return strings.Compare(a.Prefix, b.Prefix) })
	for _, d := range h.Deprecated {
		f.Deprecated = append(f.Deprecated, stateEntry{Prefix: d.Prefix.String(), Since: d.Since.UTC(), ValidUntil: d.Until.UTC(), Autonomous: d.Autonomous, OnLink: d.OnLink})
	}
	if err := statefile.WriteJSON(path, f, 0o644); err != nil {
		return fmt.Errorf("ra: saving prefix history: %w", err)
	}
	return nil
}
