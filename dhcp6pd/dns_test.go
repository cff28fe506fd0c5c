package dhcp6pd

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

func dnsOpt(addrs ...string) dhcpv6.Option {
	var b []byte
	for _, a := range addrs {
		b = append(b, netip.MustParseAddr(a).AsSlice()...)
	}
	return rawOpt(dhcpv6.OptionDNSRecursiveNameServer, b...)
}

// wireNames encodes names in uncompressed RFC 1035 form.
func wireNames(names ...string) []byte {
	var b []byte
	for _, n := range names {
		for _, l := range strings.Split(strings.TrimSuffix(n, "."), ".") {
			if l != "" {
				b = append(b, byte(len(l)))
				b = append(b, l...)
			}
		}
		b = append(b, 0)
	}
	return b
}

func domainOpt(names ...string) dhcpv6.Option {
	return rawOpt(dhcpv6.OptionDomainSearchList, wireNames(names...)...)
}

// TestDNSOptions: RFC 3646 options 23 and 24 are requested in every ORO
// and taken from the Reply into the lease; a bad one is ignored with a
// problem, never costing the prefix.
func TestDNSOptions(t *testing.T) {
	t.Run("the ORO asks for DNS servers and the domain list", func(t *testing.T) {
		_, sol, _ := startSoliciting(t, nil)
		oro := sol.Options.RequestedOptions()
		if !oro.Contains(dhcpv6.OptionDNSRecursiveNameServer) || !oro.Contains(dhcpv6.OptionDomainSearchList) {
			t.Errorf("ORO %v lacks 23 or 24", oro)
		}
	})
	bindWith := func(t *testing.T, opts ...dhcpv6.Option) *Machine {
		t.Helper()
		m, req, now := requesting(t)
		m.Receive(now, answer(req, dhcpv6.MessageTypeReply, serverA, append([]dhcpv6.Option{goodPD()}, opts...)...), addrA)
		if m.State() != StateBound {
			t.Fatalf("state %s, want bound; %q", m.State(), m.Problems())
		}
		return m
	}
	t.Run("servers and domains reach the lease", func(t *testing.T) {
		m := bindWith(t, dnsOpt("2001:db8::53", "2001:db8::54", "2001:db8::53"), domainOpt("Isp.Example.", "example.net"))
		l := m.Lease()
		if diff := cmp.Diff([]netip.Addr{netip.MustParseAddr("2001:db8::53"), netip.MustParseAddr("2001:db8::54")}, l.DNS, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("DNS (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"isp.example", "example.net"}, l.Domains); diff != "" {
			t.Errorf("Domains (-want +got):\n%s", diff)
		}
	})
	t.Run("at most MaxDNSServers and MaxDomains are kept", func(t *testing.T) {
		var as, ds []string
		for i := range 12 {
			as = append(as, fmt.Sprintf("2001:db8::%x", i+1))
			ds = append(ds, fmt.Sprintf("d%d.example", i))
		}
		l := bindWith(t, dnsOpt(as...), domainOpt(ds...)).Lease()
		if len(l.DNS) != MaxDNSServers || len(l.Domains) != MaxDomains {
			t.Errorf("%d servers, %d domains kept", len(l.DNS), len(l.Domains))
		}
	})
	for _, tt := range []struct {
		name string
		opt  dhcpv6.Option
		why  string
	}{
		{"a link-local DNS server", dnsOpt("fe80::53"), "not a global"},
		{"a multicast DNS server", dnsOpt("2001:db8::53", "ff02::1"), "not a global"},
		{"an IPv4-mapped DNS server", dnsOpt("::ffff:192.0.2.1"), "not an IPv6"},
		{"a 15-byte DNS option", rawOpt(dhcpv6.OptionDNSRecursiveNameServer, make([]byte, 15)...), "multiple of 16"},
		{"a compressed domain name", rawOpt(dhcpv6.OptionDomainSearchList, 3, 'i', 's', 'p', 0xc0, 0), "compressed"},
		{"a name running past the option", rawOpt(dhcpv6.OptionDomainSearchList, 3, 'i', 's', 'p'), "past the end"},
		{"a label with a space", domainOpt("bad name.example"), "character"},
		{"a name of 300 characters", domainOpt(strings.Repeat("a.", 150) + "example"), "length"},
	} {
		t.Run(tt.name+" is ignored, the prefix bound", func(t *testing.T) {
			m := bindWith(t, tt.opt)
			l := m.Lease()
			if len(l.DNS) != 0 || len(l.Domains) != 0 {
				t.Errorf("DNS %v Domains %v taken from a bad option", l.DNS, l.Domains)
			}
			found := false
			for _, p := range m.Problems() {
				found = found || strings.Contains(p, "ignored option") && strings.Contains(p, tt.why)
			}
			if !found {
				t.Errorf("problems %q do not say %q", m.Problems(), tt.why)
			}
		})
	}
	t.Run("a Renew Reply's options replace the old ones (RFC 8415 §18.2.10)", func(t *testing.T) {
		m := bindWith(t, dnsOpt("2001:db8::53"), domainOpt("isp.example"))
		now := t0
		out := advance(t, m, &now, 1000*time.Second)
		if len(out) != 1 || out[0].typ != dhcpv6.MessageTypeRenew {
			t.Fatalf("want a Renew, got %+v", out)
		}
		m.Receive(now, answer(out[0].msg, dhcpv6.MessageTypeReply, serverA, goodPD(), dnsOpt("2001:db8::99")), addrA)
		l := m.Lease()
		if len(l.DNS) != 1 || l.DNS[0] != netip.MustParseAddr("2001:db8::99") || l.Domains != nil {
			t.Errorf("after Renew DNS %v Domains %v", l.DNS, l.Domains)
		}
	})
}

func TestDNSInLeaseFile(t *testing.T) {
	dir := t.TempDir()
	l := &Lease{IAID: 1, ServerID: serverA, Acquired: t0, Prefixes: []Prefix{{Prefix: netip.MustParsePrefix("2001:db8:100::/56"), Preferred: 100, Valid: 200}},
		DNS: []netip.Addr{netip.MustParseAddr("2001:db8::53")}, Domains: []string{"isp.example"}}
	if err := SaveLease(dir, "wan0", l); err != nil {
		t.Fatal(err)
	}
	got, err := LoadLease(dir, "wan0", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.DNS) != 1 || got.DNS[0] != l.DNS[0] || len(got.Domains) != 1 || got.Domains[0] != "isp.example" {
		t.Errorf("loaded DNS %v Domains %v", got.DNS, got.Domains)
	}
	for _, bad := range []string{`"dns": ["fe80::1"]`, `"dns": ["nonsense"]`, `"domains": ["a..b"]`} {
		s := savedLease{IAID: 1, ServerID: FormatDUID(serverA)}
		raw := fmt.Sprintf(`{"iaid": 1, "server_duid": %q, "acquired": "2026-11-26T12:00:00Z", "prefixes": [], %s}`, s.ServerID, bad)
		var x Lease
		if err := x.UnmarshalJSON([]byte(raw)); err == nil {
			t.Errorf("%s loaded", bad)
		}
	}
}
