package dhcp6pd

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/v6edge/v6edge/internal/statefile"
)

// DUID types and the hardware type, RFC 8415 §11.1 and IANA "ARP hardware
// types".
const (
	duidTypeLLT   = 1
	duidTypeEN    = 2
	duidTypeLL    = 3
	hwTypeEther   = 1
	duidMaxLength = 128 // RFC 8415 §11.1: a DUID is at most 128 octets
)

// duidEpoch is the DUID-LLT time origin: midnight UTC, 1 January 2000
// (RFC 8415 §11.2).
var duidEpoch = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// DUIDLL returns a DUID-LL (RFC 8415 §11.4) for an Ethernet address:
// 00:03:00:01 followed by the MAC. An HA pair that shares the WAN MAC thereby
// shares the DUID, and the server sees one client.
func DUIDLL(mac net.HardwareAddr) []byte {
	b := make([]byte, 4, 4+len(mac))
	binary.BigEndian.PutUint16(b[0:], duidTypeLL)
	binary.BigEndian.PutUint16(b[2:], hwTypeEther)
	return append(b, mac...)
}

// DUIDLLT returns a DUID-LLT (RFC 8415 §11.2): type 1, hardware type 1, the
// seconds since 2000-01-01 UTC modulo 2^32, then the MAC.
func DUIDLLT(mac net.HardwareAddr, t time.Time) []byte {
	b := make([]byte, 8, 8+len(mac))
	binary.BigEndian.PutUint16(b[0:], duidTypeLLT)
	binary.BigEndian.PutUint16(b[2:], hwTypeEther)
	binary.BigEndian.PutUint32(b[4:], uint32(int64(t.Sub(duidEpoch)/time.Second)))
	return append(b, mac...)
}

// DUIDEN returns a DUID-EN (RFC 8415 §11.3): type 2, the IANA enterprise
// number, then the vendor's identifier.
func DUIDEN(enterprise uint32, id []byte) []byte {
	b := make([]byte, 6, 6+len(id))
	binary.BigEndian.PutUint16(b[0:], duidTypeEN)
	binary.BigEndian.PutUint32(b[2:], enterprise)
	return append(b, id...)
}

// FormatDUID writes a DUID as colon-separated hex octets, the way dhcpcd,
// Kea and the status JSON show it.
func FormatDUID(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = hex.EncodeToString([]byte{c})
	}
	return strings.Join(parts, ":")
}

// ParseDUID reads what FormatDUID writes; colons are optional.
func ParseDUID(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(s, ":", ""))
	if err != nil {
		return nil, fmt.Errorf("parsing DUID %q: %w", s, err)
	}
	if len(b) < 3 || len(b) > duidMaxLength {
		return nil, fmt.Errorf("parsing DUID %q: length %d outside 3..%d", s, len(b), duidMaxLength)
	}
	return b, nil
}

// LoadOrCreateDUIDLLT returns the DUID-LLT saved in stateDir/duid, creating
// and saving it on first use. A DUID-LLT must stay the same across restarts
// (RFC 8415 §11.2): regenerating it at each start makes the server hand out a
// new prefix every time.
func LoadOrCreateDUIDLLT(stateDir string, mac net.HardwareAddr, now time.Time) ([]byte, error) {
	path := filepath.Join(stateDir, "duid")
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		duid, perr := ParseDUID(strings.TrimSpace(string(data)))
		if perr != nil {
			return nil, fmt.Errorf("reading saved DUID: %w", perr)
		}
		return duid, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("reading saved DUID: %w", err)
	}
	duid := DUIDLLT(mac, now)
	if err := statefile.Write(path, []byte(FormatDUID(duid)+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("saving DUID: %w", err)
	}
	return duid, nil
}

// DUIDFromSpec turns the wan.duid setting of the config file into a DUID:
// "ll" (or empty) is DUID-LL from mac; "llt" is the DUID-LLT kept in
// stateDir; "en:<enterprise>:<hex id>" is DUID-EN; anything else is a raw
// DUID in hex, colons optional.
func DUIDFromSpec(spec string, mac net.HardwareAddr, stateDir string, now time.Time) ([]byte, error) {
	switch {
	case spec == "" || spec == "ll":
		if len(mac) == 0 {
			return nil, errors.New("DUID-LL needs a MAC address")
		}
		return DUIDLL(mac), nil
	case spec == "llt":
		if len(mac) == 0 {
			return nil, errors.New("DUID-LLT needs a MAC address")
		}
		return LoadOrCreateDUIDLLT(stateDir, mac, now)
	case strings.HasPrefix(spec, "en:"):
		ent, id, ok := strings.Cut(strings.TrimPrefix(spec, "en:"), ":")
		if !ok {
			return nil, fmt.Errorf("DUID %q: want en:<enterprise number>:<hex id>", spec)
		}
		n, err := strconv.ParseUint(ent, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("DUID %q: enterprise number: %w", spec, err)
		}
		b, err := hex.DecodeString(strings.ReplaceAll(id, ":", ""))
		if err != nil || len(b) == 0 || 6+len(b) > duidMaxLength {
			return nil, fmt.Errorf("DUID %q: identifier must be 1..%d hex octets", spec, duidMaxLength-6)
		}
		return DUIDEN(uint32(n), b), nil
	}
	return ParseDUID(spec)
}
