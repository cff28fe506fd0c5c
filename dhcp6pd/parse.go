package dhcp6pd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// Option codes that dhcpv6 has no typed decoder for.
const (
	optSolMaxRT = dhcpv6.OptionCode(82) // RFC 8415 §21.24
)

// Auth option constants for the Reconfigure Key protocol (RFC 8415 §20.4,
// §21.11).
const (
	authProtoReconfigureKey = 3
	authAlgHMACMD5          = 1
	authRDMCounter          = 0
	authTypeKey             = 1 // the key itself, in a Reply
	authTypeHMAC            = 2 // an HMAC-MD5 digest, in a Reconfigure
	authHeaderLen           = 11
	authKeyLen              = 16
)

// errMalformed marks wire input that is not a well-formed DHCPv6 message.
var errMalformed = errors.New("malformed message")

// message is a received server message after decoding and the structural
// checks of RFC 8415 §16 and §21. Semantic checks against the client's
// state (transaction id, Client ID, lifetimes) happen in validate.go.
type message struct {
	Type        dhcpv6.MessageType
	XID         dhcpv6.TransactionID
	ClientID    []byte
	ServerID    []byte
	Status      *status // message level
	Preference  int     // 0..255; 0 when absent (RFC 8415 §18.2.9)
	RapidCommit bool
	Unicast     netip.Addr
	SolMaxRT    time.Duration // 0 when absent
	ReconfMsg   dhcpv6.MessageType
	IAPDs       []iaPD
	IANAs       []iaNA
	Auth        *auth
	DNS         []netip.Addr // option 23 (RFC 3646), validated
	Domains     []string     // option 24 (RFC 3646), validated
	// ignored says why an option was left out without dropping the
	// message (a malformed DNS option does not make the prefix unusable).
	ignored []string
}

type status struct {
	Code    iana.StatusCode
	Message string
}

func (s *status) String() string {
	if s.Message == "" {
		return s.Code.String()
	}
	return fmt.Sprintf("%s (%q)", s.Code, s.Message)
}

// iaHead is what IA_PD and IA_NA options share (RFC 8415 §21.4, §21.21).
type iaHead struct {
	IAID   uint32
	T1, T2 time.Duration
	Status *status
}

func newIAHead(id [4]byte, t1, t2 time.Duration, st *dhcpv6.OptStatusCode) iaHead {
	return iaHead{IAID: binary.BigEndian.Uint32(id[:]), T1: t1, T2: t2, Status: statusOf(st)}
}

func (h iaHead) iaid() uint32 { return h.IAID }

type iaPD struct {
	iaHead
	Prefixes []iaPrefix
}

type iaPrefix struct {
	Prefix    netip.Prefix
	Preferred time.Duration
	Valid     time.Duration
	Status    *status
	// Exclude holds the payloads of the OPTION_PD_EXCLUDEs inside (RFC
	// 6603 §4.2); they are decoded against the delegated length in
	// validate.go.
	Exclude [][]byte
}

// iaNA is an IA_NA (RFC 8415 §21.4) with its IA Addresses (§21.6).
type iaNA struct {
	iaHead
	Addrs []iaAddr
}

type iaAddr struct {
	Addr      netip.Addr
	Preferred time.Duration
	Valid     time.Duration
	Status    *status
}

type auth struct {
	Protocol, Algorithm, RDM uint8
	Replay                   uint64
	InfoType                 uint8
	Value                    []byte // key or digest, authKeyLen bytes
	valueOffset              int    // of Value in the whole message, for the HMAC
}

// rawOption is one top-level option as found on the wire.
type rawOption struct {
	code   dhcpv6.OptionCode
	data   []byte
	offset int // of data within the message
}

// parseMessage decodes a server-to-client message. It never panics: the
// dhcpv6 decoder is not hardened against hostile bytes, so it runs under
// recover, and the raw option layout is walked strictly first (every length
// must fit exactly, fixed-size options must have their size, singletons
// must be single).
func parseMessage(b []byte) (m *message, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%w: decoder panic: %v", errMalformed, r)
		}
	}()
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the 4-byte header", errMalformed, len(b))
	}
	typ := dhcpv6.MessageType(b[0])
	switch typ {
	case dhcpv6.MessageTypeAdvertise, dhcpv6.MessageTypeReply, dhcpv6.MessageTypeReconfigure:
	default:
		return nil, fmt.Errorf("%w: message type %d is not one a server sends to a client", errMalformed, b[0])
	}
	raws, err := walkOptions(b[4:], 4)
	if err != nil {
		return nil, err
	}
	m = &message{Type: typ}
	copy(m.XID[:], b[1:4])
	seen := map[dhcpv6.OptionCode]bool{}
	for _, o := range raws {
		switch o.code {
		case dhcpv6.OptionClientID, dhcpv6.OptionServerID, dhcpv6.OptionPreference,
			dhcpv6.OptionStatusCode, dhcpv6.OptionRapidCommit, dhcpv6.OptionUnicast,
			dhcpv6.OptionAuth, dhcpv6.OptionReconfMessage, optSolMaxRT:
			if seen[o.code] {
				return nil, fmt.Errorf("%w: option %s appears twice", errMalformed, o.code)
			}
			seen[o.code] = true
		}
		if err := m.addRaw(o); err != nil {
			return nil, err
		}
	}
	// The typed decode of IA_PD by dhcpv6. Only the IA options go to it:
	// its decoders of other options (DNS, domain lists, ...) are stricter
	// or looser than ours, and an option we do not need must not drop
	// the message.
	typed := append([]byte(nil), b[:4]...)
	for _, o := range raws {
		if o.code == dhcpv6.OptionIAPD || o.code == dhcpv6.OptionIANA {
			typed = binary.BigEndian.AppendUint16(typed, uint16(o.code))
			typed = binary.BigEndian.AppendUint16(typed, uint16(len(o.data)))
			typed = append(typed, o.data...)
		}
	}
	dm, err := dhcpv6.MessageFromBytes(typed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if m.IAPDs, err = convertIAs(dm.Options.Get(dhcpv6.OptionIAPD), "IA_PD", convertIAPD); err != nil {
		return nil, err
	}
	if m.IANAs, err = convertIAs(dm.Options.Get(dhcpv6.OptionIANA), "IA_NA", convertIANA); err != nil {
		return nil, err
	}
	return m, nil
}

// convertIAs converts the IA options (IA_PD or IA_NA, named what) of a
// message, refusing one the library left undecoded and a second one for an
// IAID.
func convertIAs[O dhcpv6.Option, IA interface{ iaid() uint32 }](opts []dhcpv6.Option, what string, convert func(O) (IA, error)) ([]IA, error) {
	var out []IA
	seen := map[uint32]bool{}
	for _, o := range opts {
		opt, ok := o.(O)
		if !ok {
			return nil, fmt.Errorf("%w: %s not decoded", errMalformed, what)
		}
		ia, err := convert(opt)
		if err != nil {
			return nil, err
		}
		if seen[ia.iaid()] {
			return nil, fmt.Errorf("%w: duplicate %s for IAID %d", errMalformed, what, ia.iaid())
		}
		seen[ia.iaid()] = true
		out = append(out, ia)
	}
	return out, nil
}

// walkOptions splits an option area into its options, refusing any length
// that runs past the end (RFC 8415 §21.1; the CVE-2019-11577 class).
func walkOptions(b []byte, base int) ([]rawOption, error) {
	var out []rawOption
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return nil, fmt.Errorf("%w: %d trailing bytes after the last option", errMalformed, len(b)-off)
		}
		code := dhcpv6.OptionCode(binary.BigEndian.Uint16(b[off:]))
		n := int(binary.BigEndian.Uint16(b[off+2:]))
		if n > len(b)-off-4 {
			return nil, fmt.Errorf("%w: option %s claims %d bytes, %d left", errMalformed, code, n, len(b)-off-4)
		}
		out = append(out, rawOption{code: code, data: b[off+4 : off+4+n], offset: base + off + 4})
		off += 4 + n
	}
	return out, nil
}

func (m *message) addRaw(o rawOption) error {
	wantLen := func(n int) error {
		if len(o.data) != n {
			return fmt.Errorf("%w: option %s has length %d, want %d", errMalformed, o.code, len(o.data), n)
		}
		return nil
	}
	switch o.code {
	case dhcpv6.OptionClientID, dhcpv6.OptionServerID:
		// RFC 8415 §11.1: a DUID has a 2-byte type and at most 128 bytes.
		if len(o.data) < 3 || len(o.data) > duidMaxLength {
			return fmt.Errorf("%w: %s of length %d", errMalformed, o.code, len(o.data))
		}
		if o.code == dhcpv6.OptionClientID {
			m.ClientID = append([]byte(nil), o.data...)
		} else {
			m.ServerID = append([]byte(nil), o.data...)
		}
	case dhcpv6.OptionPreference:
		if err := wantLen(1); err != nil {
			return err
		}
		m.Preference = int(o.data[0])
	case dhcpv6.OptionStatusCode:
		s, err := parseStatus(o.data)
		if err != nil {
			return err
		}
		m.Status = s
	case dhcpv6.OptionRapidCommit:
		if err := wantLen(0); err != nil {
			return err
		}
		m.RapidCommit = true
	case dhcpv6.OptionUnicast:
		if err := wantLen(16); err != nil {
			return err
		}
		m.Unicast = netip.AddrFrom16([16]byte(o.data))
	case optSolMaxRT:
		if err := wantLen(4); err != nil {
			return err
		}
		m.SolMaxRT = time.Duration(binary.BigEndian.Uint32(o.data)) * time.Second
	case dhcpv6.OptionReconfMessage:
		if err := wantLen(1); err != nil {
			return err
		}
		m.ReconfMsg = dhcpv6.MessageType(o.data[0])
	case dhcpv6.OptionAuth:
		if len(o.data) < authHeaderLen {
			return fmt.Errorf("%w: Auth option of length %d", errMalformed, len(o.data))
		}
		a := &auth{
			Protocol:  o.data[0],
			Algorithm: o.data[1],
			RDM:       o.data[2],
			Replay:    binary.BigEndian.Uint64(o.data[3:11]),
		}
		if info := o.data[authHeaderLen:]; a.Protocol == authProtoReconfigureKey {
			// RFC 8415 §20.4.1: one type octet and a 16-octet value.
			if len(info) != 1+authKeyLen {
				return fmt.Errorf("%w: reconfigure key Auth info of length %d", errMalformed, len(info))
			}
			a.InfoType = info[0]
			a.Value = append([]byte(nil), info[1:]...)
			a.valueOffset = o.offset + authHeaderLen + 1
		}
		m.Auth = a
	case dhcpv6.OptionDNSRecursiveNameServer:
		addList(m, o, &m.DNS, parseDNSServers)
	case dhcpv6.OptionDomainSearchList:
		addList(m, o, &m.Domains, parseDomainList)
	case dhcpv6.OptionIAPD:
		// RFC 8415 §21.21: IAID, T1, T2 are 12 bytes; PixieFail-style short
		// IA options must not reach a decoder.
		if len(o.data) < 12 {
			return fmt.Errorf("%w: IA_PD of length %d", errMalformed, len(o.data))
		}
		return checkNested(o.data[12:], o.offset+12, dhcpv6.OptionIAPrefix, 25)
	case dhcpv6.OptionIANA:
		// §21.4: IAID, T1, T2, then IA Addresses of at least 24 bytes.
		if len(o.data) < 12 {
			return fmt.Errorf("%w: IA_NA of length %d", errMalformed, len(o.data))
		}
		return checkNested(o.data[12:], o.offset+12, dhcpv6.OptionIAAddr, 24)
	}
	return nil
}

// checkNested checks the option area inside an IA_PD or IA_PREFIX: every
// length fits, each child of code child has at least min bytes, and
// IA_PREFIX children are checked one level further.
func checkNested(b []byte, base int, child dhcpv6.OptionCode, min int) error {
	opts, err := walkOptions(b, base)
	if err != nil {
		return err
	}
	for _, o := range opts {
		switch o.code {
		case child:
			if len(o.data) < min {
				return fmt.Errorf("%w: %s of length %d, want at least %d", errMalformed, o.code, len(o.data), min)
			}
			if child == dhcpv6.OptionIAPrefix || child == dhcpv6.OptionIAAddr {
				if err := checkNested(o.data[min:], o.offset+min, 0, 0); err != nil {
					return err
				}
			}
		case dhcpv6.OptionStatusCode:
			if len(o.data) < 2 {
				return fmt.Errorf("%w: Status Code of length %d", errMalformed, len(o.data))
			}
		}
	}
	return nil
}

func parseStatus(b []byte) (*status, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: Status Code of length %d", errMalformed, len(b))
	}
	return &status{Code: iana.StatusCode(binary.BigEndian.Uint16(b)), Message: string(b[2:])}, nil
}

// statusOf is the Status Code option the library decoded, nil when absent.
func statusOf(s *dhcpv6.OptStatusCode) *status {
	if s == nil {
		return nil
	}
	return &status{Code: s.StatusCode, Message: s.StatusMessage}
}

func convertIAPD(pd *dhcpv6.OptIAPD) (iaPD, error) {
	ia := iaPD{iaHead: newIAHead(pd.IaId, pd.T1, pd.T2, pd.Options.Status())}
	for _, o := range pd.Options.Get(dhcpv6.OptionIAPrefix) {
		p, ok := o.(*dhcpv6.OptIAPrefix)
		if !ok {
			return iaPD{}, fmt.Errorf("%w: IA_PREFIX not decoded", errMalformed)
		}
		pre := iaPrefix{Preferred: p.PreferredLifetime, Valid: p.ValidLifetime}
		if p.Prefix != nil && len(p.Prefix.Mask) == 16 {
			addr, ok := netip.AddrFromSlice(p.Prefix.IP.To16())
			bits, _ := p.Prefix.Mask.Size()
			if !ok {
				return iaPD{}, fmt.Errorf("%w: IA_PREFIX address", errMalformed)
			}
			pre.Prefix = netip.PrefixFrom(addr, bits)
		}
		// An invalid pre.Prefix (length 0 or over 128) is rejected with a
		// reason in validate.go.
		pre.Status = statusOf(p.Options.Status())
		for _, x := range p.Options.Get(dhcpv6.OptionPDExclude) {
			pre.Exclude = append(pre.Exclude, x.ToBytes())
		}
		ia.Prefixes = append(ia.Prefixes, pre)
	}
	return ia, nil
}

// addList sets *dst, a list option we can do without (DNS servers, the
// domain search list), from o. A second one, and one that does not parse,
// is ignored with the reason, not the message dropped.
func addList[E any](m *message, o rawOption, dst *[]E, parse func([]byte) ([]E, error)) {
	if *dst != nil || m.hasIgnored(o.code) {
		m.ignore(o.code, "appears twice; the first one counts")
		return
	}
	list, err := parse(o.data)
	if err != nil {
		m.ignore(o.code, err.Error())
		return
	}
	*dst = list
}

func (m *message) ignore(code dhcpv6.OptionCode, why string) {
	m.ignored = append(m.ignored, fmt.Sprintf("ignored option %s: %s", code, why))
}

func (m *message) hasIgnored(code dhcpv6.OptionCode) bool {
	prefix := fmt.Sprintf("ignored option %s:", code)
	for _, s := range m.ignored {
		if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

func convertIANA(na *dhcpv6.OptIANA) (iaNA, error) {
	ia := iaNA{iaHead: newIAHead(na.IaId, na.T1, na.T2, na.Options.Status())}
	for _, o := range na.Options.Get(dhcpv6.OptionIAAddr) {
		a, ok := o.(*dhcpv6.OptIAAddress)
		if !ok {
			return iaNA{}, fmt.Errorf("%w: IA Address not decoded", errMalformed)
		}
		addr, ok := netip.AddrFromSlice(a.IPv6Addr.To16())
		if !ok {
			return iaNA{}, fmt.Errorf("%w: IA Address", errMalformed)
		}
		ad := iaAddr{Addr: addr, Preferred: a.PreferredLifetime, Valid: a.ValidLifetime}
		ad.Status = statusOf(a.Options.Status())
		ia.Addrs = append(ia.Addrs, ad)
	}
	return ia, nil
}
