package dhcp6srv

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/insomniacslk/dhcp/rfc1035label"
)

var (
	t0         = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	serverDUID = []byte{0, 3, 0, 1, 0x02, 0, 0x5e, 0, 0, 0x01}
	otherDUID  = []byte{0, 3, 0, 1, 0x02, 0, 0x5e, 0, 0, 0x02}
	lanPool    = netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::/64")
	pdPoolA    = netip.MustParsePrefix("2001:db8:100::/56")
	hostA      = netip.MustParseAddr("fe80::a")
	hostB      = netip.MustParseAddr("fe80::b")
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testConfig serves addresses from lanPool, /60s from pdPoolA and DNS, with
// no rate limit (the rate-limit test sets its own).
func testConfig(c *clock) Config {
	return Config{
		Interface:  "lan0",
		ServerDUID: serverDUID,
		DNS:        []netip.Addr{netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1")},
		Domains:    []string{"lan.example"},
		Pool:       lanPool,
		PDPool:     pdPoolA,
		PDLength:   60,
		RateLimit:  -1,
		Now:        c.Now,
	}
}

func duidOf(n byte) dhcpv6.DUID {
	return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x02, 0, 0, 0, 0, n}}
}

// msg builds a client message of type typ from client n (0 = no client
// identifier) with the given options.
func msg(t testing.TB, typ dhcpv6.MessageType, client byte, opts ...dhcpv6.Option) []byte {
	t.Helper()
	m := &dhcpv6.Message{MessageType: typ, TransactionID: dhcpv6.TransactionID{1, 2, client}}
	if client != 0 {
		m.AddOption(dhcpv6.OptClientID(duidOf(client)))
	}
	m.AddOption(dhcpv6.OptElapsedTime(0))
	for _, o := range opts {
		m.AddOption(o)
	}
	return m.ToBytes()
}

func ours() dhcpv6.Option {
	d, err := dhcpv6.DUIDFromBytes(serverDUID)
	if err != nil {
		panic(err)
	}
	return dhcpv6.OptServerID(d)
}

func theirs() dhcpv6.Option {
	d, _ := dhcpv6.DUIDFromBytes(otherDUID)
	return dhcpv6.OptServerID(d)
}

func oro(codes ...dhcpv6.OptionCode) dhcpv6.Option { return dhcpv6.OptRequestedOption(codes...) }

func rapid() dhcpv6.Option { return &dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit} }

func na(iaid uint32, addrs ...string) dhcpv6.Option {
	o := &dhcpv6.OptIANA{}
	binary.BigEndian.PutUint32(o.IaId[:], iaid)
	for _, a := range addrs {
		o.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP(a)})
	}
	return o
}

func ta(iaid uint32) dhcpv6.Option {
	o := &dhcpv6.OptIATA{}
	binary.BigEndian.PutUint32(o.IaId[:], iaid)
	return o
}

func pd(iaid uint32, prefixes ...string) dhcpv6.Option {
	o := &dhcpv6.OptIAPD{}
	binary.BigEndian.PutUint32(o.IaId[:], iaid)
	for _, p := range prefixes {
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			panic(err)
		}
		o.Options.Add(&dhcpv6.OptIAPrefix{Prefix: n})
	}
	return o
}

// summary is a reply reduced to what the tests compare.
type summary struct {
	Type        string
	Status      string
	RapidCommit bool
	DNS         []string
	Domains     []string
	InfoRefresh time.Duration
	IAs         []iaSummary
}

type iaSummary struct {
	Kind   string
	IAID   uint32
	T1, T2 time.Duration
	Status string
	Leases []string // "addr-or-prefix preferred/valid"
}

func statusText(s *dhcpv6.OptStatusCode) string {
	if s == nil {
		return ""
	}
	return s.StatusCode.String()
}

func summarize(t testing.TB, b []byte) summary {
	t.Helper()
	m, err := dhcpv6.MessageFromBytes(b)
	if err != nil {
		t.Fatalf("our reply does not parse: %v", err)
	}
	if got := m.Options.ServerID(); got == nil || string(got.ToBytes()) != string(serverDUID) {
		t.Fatalf("reply carries server ID %v, want ours", got)
	}
	s := summary{Type: m.MessageType.String(), Status: statusText(m.Options.Status())}
	s.RapidCommit = m.GetOneOption(dhcpv6.OptionRapidCommit) != nil
	for _, ip := range m.Options.DNS() {
		s.DNS = append(s.DNS, ip.String())
	}
	if l := m.Options.DomainSearchList(); l != nil {
		s.Domains = l.Labels
	}
	if m.GetOneOption(dhcpv6.OptionInformationRefreshTime) != nil {
		s.InfoRefresh = m.Options.InformationRefreshTime(0)
	}
	for _, o := range m.Options.IANA() {
		ia := iaSummary{Kind: "NA", IAID: binary.BigEndian.Uint32(o.IaId[:]), T1: o.T1, T2: o.T2, Status: statusText(o.Options.Status())}
		for _, a := range o.Options.Addresses() {
			ia.Leases = append(ia.Leases, fmt.Sprintf("%s %v/%v", a.IPv6Addr, a.PreferredLifetime, a.ValidLifetime))
		}
		s.IAs = append(s.IAs, ia)
	}
	for _, o := range m.Options.IATA() {
		s.IAs = append(s.IAs, iaSummary{Kind: "TA", IAID: binary.BigEndian.Uint32(o.IaId[:]), Status: statusText(o.Options.Status())})
	}
	for _, o := range m.Options.IAPD() {
		ia := iaSummary{Kind: "PD", IAID: binary.BigEndian.Uint32(o.IaId[:]), T1: o.T1, T2: o.T2, Status: statusText(o.Options.Status())}
		for _, p := range o.Options.Prefixes() {
			ia.Leases = append(ia.Leases, fmt.Sprintf("%s %v/%v", p.Prefix, p.PreferredLifetime, p.ValidLifetime))
		}
		s.IAs = append(s.IAs, ia)
	}
	return s
}

// exchange hands b to h and summarizes the reply; it fails on a drop.
func exchange(t testing.TB, h *Handler, now time.Time, b []byte, from netip.Addr) summary {
	t.Helper()
	r, err := h.Handle(now, b, from)
	if err != nil || r == nil {
		t.Fatalf("Handle dropped the message: %v", err)
	}
	return summarize(t, r)
}

// leaseOf returns the first lease in an IA summary's list.
func leaseOf(t testing.TB, s summary, kind string) string {
	t.Helper()
	for _, ia := range s.IAs {
		if ia.Kind == kind && len(ia.Leases) > 0 {
			var l string
			fmt.Sscan(ia.Leases[0], &l)
			return l
		}
	}
	t.Fatalf("no %s lease in %+v", kind, s)
	return ""
}

var _ = rfc1035label.Labels{}
