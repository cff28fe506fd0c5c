package dhcp6pd

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

func excludeOpt(b ...byte) dhcpv6.Option { return rawOpt(dhcpv6.OptionPDExclude, b...) }

// TestDecodeExclude: RFC 6603 §4.2 — prefix length, then the subnet ID
// bits after the delegated length, zero-padded to a byte.
func TestDecodeExclude(t *testing.T) {
	tests := []struct {
		delegated string
		b         []byte
		want      string // "" wants an error containing err
		err       string
	}{
		{"2001:db8:100::/56", []byte{64, 0x01}, "2001:db8:100:1::/64", ""},
		{"2001:db8:100::/56", []byte{64, 0xff}, "2001:db8:100:ff::/64", ""},
		{"2001:db8:100::/60", []byte{64, 0x10}, "2001:db8:100:1::/64", ""},
		{"2001:db8:100::/48", []byte{52, 0xf0}, "2001:db8:100:f000::/52", ""},
		{"2001:db8:100::/62", []byte{64, 0xc0}, "2001:db8:100:3::/64", ""},
		{"2001:db8:100::/64", []byte{128, 0, 0, 0, 0, 0, 0, 0, 1}, "2001:db8:100::1/128", ""},
		{"2001:db8:100::/56", []byte{56, 0}, "", "not longer"},
		{"2001:db8:100::/56", []byte{48, 0}, "", "not longer"},
		{"2001:db8:100::/56", []byte{129, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "", "at most /128"},
		{"2001:db8:100::/56", []byte{64}, "", "at least 2"},
		{"2001:db8:100::/56", []byte{64, 1, 0}, "", "want 2"},
		{"2001:db8:100::/60", []byte{64, 0x11}, "", "padding"},
		{"2001:db8:100::/56", []byte{72, 0x01}, "", "want 3"},
	}
	for _, tt := range tests {
		got, err := decodeExclude(netip.MustParsePrefix(tt.delegated), tt.b)
		if tt.want == "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s %x: %v, %v; want an error with %q", tt.delegated, tt.b, got, err, tt.err)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("%s %x: %v, %v; want %s", tt.delegated, tt.b, got, err, tt.want)
			continue
		}
		if err := CheckExclude(netip.MustParsePrefix(tt.delegated), got); err != nil {
			t.Errorf("decoded %s fails CheckExclude: %v", got, err)
		}
	}
}

// TestPDExclude: OPTION_PD_EXCLUDE is asked for (RFC 6603 §4.1), a valid
// one reaches the lease, and an invalid one is ignored with a problem
// while the prefix is bound.
func TestPDExclude(t *testing.T) {
	_, sol, _ := startSoliciting(t, nil)
	if !sol.Options.RequestedOptions().Contains(dhcpv6.OptionPDExclude) {
		t.Error("ORO lacks OPTION_PD_EXCLUDE")
	}
	reply := func(t *testing.T, x dhcpv6.Option) *Machine {
		m, req, now := requesting(t)
		pd := iapd(testIAID, 1000*time.Second, 1600*time.Second, iaprefix("2001:db8:100::/56", 2000*time.Second, 3000*time.Second, x))
		m.Receive(now, answer(req, dhcpv6.MessageTypeReply, serverA, pd), addrA)
		if m.State() != StateBound {
			t.Fatalf("state %s, want bound; %q", m.State(), m.Problems())
		}
		return m
	}
	t.Run("a valid exclusion is in the lease", func(t *testing.T) {
		m := reply(t, excludeOpt(64, 0x01))
		if got := m.Lease().Prefixes[0].Exclude; got != netip.MustParsePrefix("2001:db8:100:1::/64") {
			t.Errorf("Exclude %s", got)
		}
	})
	t.Run("an invalid exclusion is ignored, the prefix kept", func(t *testing.T) {
		m := reply(t, excludeOpt(48, 0x01))
		if got := m.Lease().Prefixes[0].Exclude; got.IsValid() {
			t.Errorf("Exclude %s taken", got)
		}
		if p := lastProblem(m); !strings.Contains(p, "ignored PD Exclude in 2001:db8:100::/56") {
			t.Errorf("problem %q", p)
		}
	})
	t.Run("the exclusion survives a restart", func(t *testing.T) {
		m := reply(t, excludeOpt(64, 0xff))
		dir := t.TempDir()
		if err := SaveLease(dir, "wan0", m.Lease()); err != nil {
			t.Fatal(err)
		}
		l, err := LoadLease(dir, "wan0", testIAID)
		if err != nil || l.Prefixes[0].Exclude != netip.MustParsePrefix("2001:db8:100:ff::/64") {
			t.Fatalf("loaded %+v, %v", l, err)
		}
	})
	t.Run("a lease file with a bad exclusion is refused", func(t *testing.T) {
		for _, x := range []string{"2001:db8:200::/64", "2001:db8:100::/48", "junk"} {
			raw := `{"iaid": 1, "server_duid": "` + FormatDUID(serverA) + `", "acquired": "2026-11-26T12:00:00Z", "prefixes": [{"prefix": "2001:db8:100::/56", "preferred_s": 1, "valid_s": 2, "exclude": "` + x + `"}]}`
			var l Lease
			if err := l.UnmarshalJSON([]byte(raw)); err == nil {
				t.Errorf("exclude %s loaded", x)
			}
		}
	})
}
