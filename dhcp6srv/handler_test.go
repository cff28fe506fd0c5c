package dhcp6srv

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

const (
	pref  = 2700 * time.Second
	valid = 5400 * time.Second
	t1    = 1350 * time.Second
	t2    = 2160 * time.Second
)

func TestInformationRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		refresh time.Duration
		opts    []dhcpv6.Option
		client  byte
		want    summary
	}{
		{
			name: "a stateless client gets DNS, domains and the default refresh time",
			opts: []dhcpv6.Option{oro(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList)}, client: 1,
			want: summary{Type: "REPLY", DNS: []string{"fd00:aaaa:bbbb:cc01::1"}, Domains: []string{"lan.example"}, InfoRefresh: 86400 * time.Second},
		},
		{
			name: "a client without identifier is answered too", client: 0,
			want: summary{Type: "REPLY", DNS: []string{"fd00:aaaa:bbbb:cc01::1"}, Domains: []string{"lan.example"}, InfoRefresh: 86400 * time.Second},
		},
		{
			name: "a refresh time below IRT_MINIMUM is raised to 600 s", refresh: 10 * time.Second, client: 1,
			want: summary{Type: "REPLY", DNS: []string{"fd00:aaaa:bbbb:cc01::1"}, Domains: []string{"lan.example"}, InfoRefresh: 600 * time.Second},
		},
		{
			name: "a message naming our server identifier is answered", client: 1, opts: []dhcpv6.Option{ours()},
			want: summary{Type: "REPLY", DNS: []string{"fd00:aaaa:bbbb:cc01::1"}, Domains: []string{"lan.example"}, InfoRefresh: 86400 * time.Second},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{now: t0}
			cfg := testConfig(c)
			cfg.InfoRefresh = tc.refresh
			h := NewHandler(cfg)
			got := exchange(t, h, t0, msg(t, dhcpv6.MessageTypeInformationRequest, tc.client, tc.opts...), hostA)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("reply (-want +got):\n%s", d)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	twoClients := func() []byte {
		m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeSolicit}
		m.AddOption(dhcpv6.OptClientID(duidOf(1)))
		m.AddOption(dhcpv6.OptClientID(duidOf(2)))
		return m.ToBytes()
	}
	relay := func() []byte {
		inner, _ := dhcpv6.MessageFromBytes(msg(t, dhcpv6.MessageTypeSolicit, 1))
		r, _ := dhcpv6.EncapsulateRelay(inner, dhcpv6.MessageTypeRelayForward, nil, nil)
		return r.ToBytes()
	}
	for _, tc := range []struct {
		name string
		req  []byte
		want error
	}{
		{"a Solicit without client identifier is dropped", msg(t, dhcpv6.MessageTypeSolicit, 0, na(1)), ErrInvalid},
		{"a Solicit with a server identifier is dropped", msg(t, dhcpv6.MessageTypeSolicit, 1, ours(), na(1)), ErrInvalid},
		{"a Request without server identifier is dropped", msg(t, dhcpv6.MessageTypeRequest, 1, na(1)), ErrInvalid},
		{"a Request for another server is not ours", msg(t, dhcpv6.MessageTypeRequest, 1, theirs(), na(1)), ErrNotForUs},
		{"a Renew without client identifier is dropped", msg(t, dhcpv6.MessageTypeRenew, 0, ours(), na(1)), ErrInvalid},
		{"a Renew for another server is not ours", msg(t, dhcpv6.MessageTypeRenew, 1, theirs(), na(1)), ErrNotForUs},
		{"a Rebind with a server identifier is dropped", msg(t, dhcpv6.MessageTypeRebind, 1, ours(), na(1)), ErrInvalid},
		{"a Release without server identifier is dropped", msg(t, dhcpv6.MessageTypeRelease, 1, na(1)), ErrInvalid},
		{"a Decline for another server is not ours", msg(t, dhcpv6.MessageTypeDecline, 1, theirs(), na(1)), ErrNotForUs},
		{"a Confirm with a server identifier is dropped", msg(t, dhcpv6.MessageTypeConfirm, 1, ours(), na(1, "fd00:aaaa:bbbb:cc01::1000")), ErrInvalid},
		{"an Information-request with an IA is dropped", msg(t, dhcpv6.MessageTypeInformationRequest, 1, na(1)), ErrInvalid},
		{"an Information-request for another server is not ours", msg(t, dhcpv6.MessageTypeInformationRequest, 1, theirs()), ErrNotForUs},
		{"two client identifiers are dropped", twoClients(), ErrInvalid},
		{"an Advertise is not a client message", msg(t, dhcpv6.MessageTypeAdvertise, 1), ErrUnsupported},
		{"a Reply is not a client message", msg(t, dhcpv6.MessageTypeReply, 1), ErrUnsupported},
		{"a relayed message is not served on a LAN", relay(), ErrUnsupported},
		{"three bytes are malformed", []byte{1, 2, 3}, ErrMalformed},
		{"an option running past the end is malformed", append(msg(t, dhcpv6.MessageTypeSolicit, 1), 0, 3, 0, 40, 1), ErrMalformed},
		{"a Confirm without addresses gets no reply", msg(t, dhcpv6.MessageTypeConfirm, 1, na(1)), ErrNoReply},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHandler(testConfig(&clock{now: t0}))
			r, err := h.Handle(t0, tc.req, hostA)
			if r != nil || !errors.Is(err, tc.want) {
				t.Errorf("Handle = %d bytes, %v; want no reply and %v", len(r), err, tc.want)
			}
		})
	}
}

func TestSolicitRequestRenew(t *testing.T) {
	c := &clock{now: t0}
	h := NewHandler(testConfig(c))

	adv := exchange(t, h, t0, msg(t, dhcpv6.MessageTypeSolicit, 1, na(7), pd(8), oro(dhcpv6.OptionDNSRecursiveNameServer)), hostA)
	addr, prefix := leaseOf(t, adv, "NA"), leaseOf(t, adv, "PD")
	a, p := netip.MustParseAddr(addr), netip.MustParsePrefix(prefix)
	if _, ok := mustRange(t).index(a); !ok {
		t.Errorf("advertised %s outside ::1000-::ffff of %s", a, lanPool)
	}
	if p.Bits() != 60 || !pdPoolA.Contains(p.Addr()) {
		t.Errorf("advertised prefix %s is not a /60 of %s", p, pdPoolA)
	}
	wantAdv := summary{Type: "ADVERTISE", DNS: []string{"fd00:aaaa:bbbb:cc01::1"}, IAs: []iaSummary{
		{Kind: "NA", IAID: 7, T1: t1, T2: t2, Leases: []string{addr + " 45m0s/1h30m0s"}},
		{Kind: "PD", IAID: 8, T1: t1, T2: t2, Leases: []string{prefix + " 45m0s/1h30m0s"}},
	}}
	if d := cmp.Diff(wantAdv, adv); d != "" {
		t.Errorf("Advertise (-want +got):\n%s", d)
	}
	if l := h.Leases(); len(l) != 0 {
		t.Errorf("an Advertise committed leases: %v", l)
	}

	c.Advance(time.Second)
	rep := exchange(t, h, c.Now(), msg(t, dhcpv6.MessageTypeRequest, 1, ours(), na(7, addr), pd(8, prefix)), hostA)
	wantRep := wantAdv
	wantRep.Type, wantRep.DNS = "REPLY", nil
	if d := cmp.Diff(wantRep, rep); d != "" {
		t.Errorf("Reply to Request (-want +got):\n%s", d)
	}
	wantLeases := []Lease{
		{DUID: duidOf(1).ToBytes(), IAID: 7, Addr: a, PreferredUntil: c.Now().Add(pref), ValidUntil: c.Now().Add(valid), Via: hostA},
		{DUID: duidOf(1).ToBytes(), IAID: 8, Prefix: p, PreferredUntil: c.Now().Add(pref), ValidUntil: c.Now().Add(valid), Via: hostA},
	}
	if d := cmp.Diff(wantLeases, h.Leases(), cmpAddrs); d != "" {
		t.Errorf("leases after Request (-want +got):\n%s", d)
	}

	// Three Renews, each half a preferred lifetime apart: the lifetimes
	// are reset every time, never counted down (FIELD-NOTES: networkd).
	for i := range 3 {
		c.Advance(t1)
		rn := exchange(t, h, c.Now(), msg(t, dhcpv6.MessageTypeRenew, 1, ours(), na(7, addr), pd(8, prefix)), hostA)
		if d := cmp.Diff(wantRep, rn); d != "" {
			t.Errorf("Reply to Renew %d (-want +got):\n%s", i+1, d)
		}
	}
	if got := h.Leases()[0].ValidUntil; !got.Equal(c.Now().Add(valid)) {
		t.Errorf("after the Renews the address is valid until %v, want %v", got, c.Now().Add(valid))
	}
}

var cmpAddrs = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

func mustRange(t *testing.T) addrRange {
	t.Helper()
	r, err := newAddrRange(testConfig(&clock{}).withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStatuses(t *testing.T) {
	type step struct {
		advance time.Duration
		req     []byte
		want    summary
	}
	const addr = "fd00:aaaa:bbbb:cc01::1000" // PoolStart: the only address of the tiny pool
	solicit := msg(t, dhcpv6.MessageTypeSolicit, 1, na(1))
	request := msg(t, dhcpv6.MessageTypeRequest, 1, ours(), na(1))
	bound := summary{Type: "REPLY", IAs: []iaSummary{{Kind: "NA", IAID: 1, T1: t1, T2: t2, Leases: []string{addr + " 45m0s/1h30m0s"}}}}
	for _, tc := range []struct {
		name  string
		mut   func(*Config)
		steps []step
	}{
		{
			name: "a Renew for an unknown IA gets NoBinding",
			steps: []step{{req: msg(t, dhcpv6.MessageTypeRenew, 1, ours(), na(1, addr)),
				want: summary{Type: "REPLY", IAs: []iaSummary{{Kind: "NA", IAID: 1, Status: "NoBinding"}}}}},
		},
		{
			name: "a Rebind of an address off the link gets it back with zero lifetimes and a new one",
			steps: []step{{req: msg(t, dhcpv6.MessageTypeRebind, 1, na(1, "2001:db8:dead::1")),
				want: summary{Type: "REPLY", IAs: []iaSummary{{Kind: "NA", IAID: 1, T1: t1, T2: t2,
					Leases: []string{addr + " 45m0s/1h30m0s", "2001:db8:dead::1 0s/0s"}}}}}},
		},
		{
			name: "a Request naming an address from another prefix gets it back with zero lifetimes",
			steps: []step{{req: msg(t, dhcpv6.MessageTypeRequest, 1, ours(), na(1, "2001:db8:dead::1")),
				want: summary{Type: "REPLY", IAs: []iaSummary{{Kind: "NA", IAID: 1, T1: t1, T2: t2,
					Leases: []string{addr + " 45m0s/1h30m0s", "2001:db8:dead::1 0s/0s"}}}}}},
		},
		{
			name: "a Rebind of a free address on the link after a server restart keeps it",
			mut:  func(c *Config) { c.PoolEnd = netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1fff") },
			steps: []step{{req: msg(t, dhcpv6.MessageTypeRebind, 1, na(1, "fd00:aaaa:bbbb:cc01::1234")),
				want: summary{Type: "REPLY", IAs: []iaSummary{{Kind: "NA", IAID: 1, T1: t1, T2: t2,
					Leases: []string{"fd00:aaaa:bbbb:cc01::1234 45m0s/1h30m0s"}}}}}},
		},
		{
			name: "a second client finds the pool exhausted",
			steps: []step{
				{req: request, want: bound},
				{req: msg(t, dhcpv6.MessageTypeSolicit, 2, na(1)),
					want: summary{Type: "ADVERTISE", IAs: []iaSummary{{Kind: "NA", IAID: 1, Status: "NoAddrsAvail"}}}},
			},
		},
		{
			name: "an address is free again when its lease expired",
			steps: []step{
				{req: request, want: bound},
				{advance: valid, req: msg(t, dhcpv6.MessageTypeRequest, 2, ours(), na(1)), want: bound},
			},
		},
		{
			name: "a released address goes to the next client",
			steps: []step{
				{req: request, want: bound},
				{req: msg(t, dhcpv6.MessageTypeRelease, 1, ours(), na(1, addr)), want: summary{Type: "REPLY", Status: "Success"}},
				{req: msg(t, dhcpv6.MessageTypeRequest, 2, ours(), na(1)), want: bound},
			},
		},
		{
			name: "a Release of an unknown IA gets NoBinding in it",
			steps: []step{{req: msg(t, dhcpv6.MessageTypeRelease, 1, ours(), na(9, addr)),
				want: summary{Type: "REPLY", Status: "Success", IAs: []iaSummary{{Kind: "NA", IAID: 9, Status: "NoBinding"}}}}},
		},
		{
			name: "a declined address is quarantined for an hour",
			steps: []step{
				{req: request, want: bound},
				{req: msg(t, dhcpv6.MessageTypeDecline, 1, ours(), na(1, addr)), want: summary{Type: "REPLY", Status: "Success"}},
				{req: msg(t, dhcpv6.MessageTypeRequest, 2, ours(), na(1)),
					want: summary{Type: "REPLY", IAs: []iaSummary{{Kind: "NA", IAID: 1, Status: "NoAddrsAvail"}}}},
				{advance: time.Hour, req: msg(t, dhcpv6.MessageTypeRequest, 2, ours(), na(1)), want: bound},
			},
		},
		{
			name:  "a Confirm of an address on the link gets Success",
			steps: []step{{req: msg(t, dhcpv6.MessageTypeConfirm, 1, na(1, addr)), want: summary{Type: "REPLY", Status: "Success"}}},
		},
		{
			name:  "a Confirm of an address from elsewhere gets NotOnLink",
			steps: []step{{req: msg(t, dhcpv6.MessageTypeConfirm, 1, na(1, addr, "2001:db8::1")), want: summary{Type: "REPLY", Status: "NotOnLink"}}},
		},
		{
			name: "a Solicit with Rapid Commit is committed when the server allows it",
			mut:  func(c *Config) { c.RapidCommit = true },
			steps: []step{
				{req: msg(t, dhcpv6.MessageTypeSolicit, 1, na(1), rapid()), want: summary{Type: "REPLY", RapidCommit: true, IAs: bound.IAs}},
				{req: msg(t, dhcpv6.MessageTypeSolicit, 2, na(1)),
					want: summary{Type: "ADVERTISE", IAs: []iaSummary{{Kind: "NA", IAID: 1, Status: "NoAddrsAvail"}}}},
			},
		},
		{
			name: "a Solicit with Rapid Commit gets an Advertise when the server does not allow it",
			steps: []step{
				{req: msg(t, dhcpv6.MessageTypeSolicit, 1, na(1), rapid()), want: summary{Type: "ADVERTISE", IAs: bound.IAs}},
				{req: msg(t, dhcpv6.MessageTypeSolicit, 2, na(1)), want: summary{Type: "ADVERTISE", IAs: bound.IAs}},
			},
		},
		{
			name: "addresses never outlive the lifetime cap",
			mut:  func(c *Config) { c.LifetimeCap = t0.Add(100 * time.Second) },
			steps: []step{{req: solicit, want: summary{Type: "ADVERTISE", IAs: []iaSummary{{Kind: "NA", IAID: 1, T1: 50 * time.Second, T2: 80 * time.Second,
				Leases: []string{addr + " 1m40s/1m40s"}}}}}},
		},
		{
			name: "a request for a temporary address gets NoAddrsAvail in its IA_TA",
			steps: []step{{req: msg(t, dhcpv6.MessageTypeRequest, 1, ours(), na(1), ta(3)),
				want: summary{Type: "REPLY", IAs: append(append([]iaSummary{}, bound.IAs...), iaSummary{Kind: "TA", IAID: 3, Status: "NoAddrsAvail"})}}},
		},
		{
			name: "a prefix request without PD service gets NoPrefixAvail",
			mut:  func(c *Config) { c.PDPool = netip.Prefix{} },
			steps: []step{{req: msg(t, dhcpv6.MessageTypeRequest, 1, ours(), pd(1)),
				want: summary{Type: "REPLY", IAs: []iaSummary{{Kind: "PD", IAID: 1, Status: "NoPrefixAvail"}}}}},
		},
		{
			name: "excluded sub-prefixes are never delegated",
			mut: func(c *Config) {
				c.PDPool, c.PDLength = netip.MustParsePrefix("2001:db8:100::/62"), 64
				c.PDExclude = []netip.Prefix{netip.MustParsePrefix("2001:db8:100::/63"), netip.MustParsePrefix("2001:db8:100:3::/64")}
			},
			steps: []step{
				{req: msg(t, dhcpv6.MessageTypeRequest, 1, ours(), pd(1)), want: summary{Type: "REPLY", IAs: []iaSummary{{Kind: "PD", IAID: 1, T1: t1, T2: t2,
					Leases: []string{"2001:db8:100:2::/64 45m0s/1h30m0s"}}}}},
				{req: msg(t, dhcpv6.MessageTypeRequest, 2, ours(), pd(1)),
					want: summary{Type: "REPLY", IAs: []iaSummary{{Kind: "PD", IAID: 1, Status: "NoPrefixAvail"}}}},
			},
		},
		{
			name: "the delegation count limit gives the second router NoPrefixAvail",
			mut:  func(c *Config) { c.PDCount = 1 },
			steps: []step{
				{req: msg(t, dhcpv6.MessageTypeRequest, 1, ours(), pd(1)), want: summary{Type: "REPLY", IAs: []iaSummary{{Kind: "PD", IAID: 1, T1: t1, T2: t2,
					Leases: []string{"2001:db8:100:40::/60 45m0s/1h30m0s"}}}}},
				{req: msg(t, dhcpv6.MessageTypeRequest, 2, ours(), pd(1)),
					want: summary{Type: "REPLY", IAs: []iaSummary{{Kind: "PD", IAID: 1, Status: "NoPrefixAvail"}}}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{now: t0}
			cfg := testConfig(c)
			cfg.PoolStart, cfg.PoolEnd = netip.MustParseAddr(addr), netip.MustParseAddr(addr)
			if tc.mut != nil {
				tc.mut(&cfg)
			}
			h := NewHandler(cfg)
			for i, s := range tc.steps {
				c.Advance(s.advance)
				got := exchange(t, h, c.Now(), s.req, hostA)
				if d := cmp.Diff(s.want, got); d != "" {
					t.Errorf("step %d (-want +got):\n%s", i+1, d)
				}
			}
		})
	}
}
