package ra

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

func mustMarshal(t testing.TB, m ndp.Message) []byte {
	t.Helper()
	b, err := ndp.MarshalMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRouterSolicitation(t *testing.T) {
	hostLL := netip.MustParseAddr("fe80::1234")
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	rs := func(opts ...ndp.Option) []byte { return mustMarshal(t, &ndp.RouterSolicitation{Options: opts}) }
	withCode := func(b []byte, code byte) []byte { b = append([]byte(nil), b...); b[1] = code; return b }
	cm255 := &ipv6.ControlMessage{HopLimit: 255}
	tests := []struct {
		name string
		b    []byte
		cm   *ipv6.ControlMessage
		src  netip.Addr
		want error
	}{
		{"an RS from a host with its link-layer address is valid", rs(&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}), cm255, hostLL, nil},
		{"an RS from the unspecified address without options is valid", rs(), cm255, netip.IPv6Unspecified(), nil},
		{"an RS that was forwarded (hop limit 254) is dropped", rs(), &ipv6.ControlMessage{HopLimit: 254}, hostLL, ErrHopLimit},
		{"an RS without a hop limit control message is dropped", rs(), nil, hostLL, ErrHopLimit},
		{"an RS with ICMP code 1 is dropped", withCode(rs(), 1), cm255, hostLL, ErrICMPCode},
		{"an RS shorter than 8 bytes is dropped", rs()[:6], cm255, hostLL, ErrTooShort},
		{"an RS from the unspecified address with a source link-layer address is dropped", rs(&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}), cm255, netip.IPv6Unspecified(), ErrSourceLLA},
		{"an RS with a zero-length option is dropped", append(rs(), 1, 0, 0, 0, 0, 0, 0, 0), cm255, hostLL, errAny},
		{"an RS with a truncated option is dropped", append(rs(), 1, 2, 0, 0, 0, 0, 0, 0), cm255, hostLL, errAny},
		{"a neighbor solicitation is not ours", mustMarshal(t, &ndp.NeighborSolicitation{TargetAddress: hostLL}), cm255, hostLL, ErrNotNDP},
		{"an RA from a link-local router is valid", mustMarshal(t, &ndp.RouterAdvertisement{CurrentHopLimit: 64}), cm255, hostLL, nil},
		{"an RA from a global address is dropped", mustMarshal(t, &ndp.RouterAdvertisement{}), cm255, netip.MustParseAddr("2001:db8::1"), ErrNotLinkLocal},
		{"an RA shorter than 16 bytes is dropped", mustMarshal(t, &ndp.RouterAdvertisement{})[:12], cm255, hostLL, ErrTooShort},
		{"an empty packet is dropped", nil, cm255, hostLL, ErrTooShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMessage(tt.b, tt.cm, tt.src)
			switch {
			case tt.want == errAny:
				if err == nil {
					t.Fatal("ParseMessage accepted it, want an error")
				}
			case !errors.Is(err, tt.want):
				t.Fatalf("ParseMessage error = %v, want %v", err, tt.want)
			}
		})
	}
}

// errAny marks a case where any error will do.
var errAny = errors.New("any error")

func TestInconsistencies(t *testing.T) {
	ours := baseConfig()
	ours.MTU = 1500
	ours.ReachableTime = 30 * time.Second
	ours.Prefixes = []Prefix{
		{Prefix: pfx("2001:db8:1::/64"), Preferred: 2700 * time.Second, Valid: 5400 * time.Second},
		{Prefix: pfx("2001:db8:2::/64"), PreferredUntil: t0.Add(1000 * time.Second), ValidUntil: t0.Add(2000 * time.Second)},
	}
	pi := func(p string, pref, valid time.Duration) *ndp.PrefixInformation {
		pp := pfx(p)
		return &ndp.PrefixInformation{PrefixLength: uint8(pp.Bits()), Prefix: pp.Addr(), PreferredLifetime: pref, ValidLifetime: valid, OnLink: true}
	}
	consistent := func() *ndp.RouterAdvertisement {
		return &ndp.RouterAdvertisement{CurrentHopLimit: 64, ReachableTime: 30 * time.Second, Options: []ndp.Option{
			ndp.NewMTU(1500),
			pi("2001:db8:1::/64", 2700*time.Second, 5400*time.Second),
			pi("2001:db8:2::/64", 1000*time.Second, 2000*time.Second),
		}}
	}
	tests := []struct {
		name   string
		now    time.Time
		change func(*ndp.RouterAdvertisement)
		want   []string
	}{
		{"the same information is consistent", t0, func(*ndp.RouterAdvertisement) {}, nil},
		{"unspecified hop limit and reachable time are not compared", t0, func(ra *ndp.RouterAdvertisement) {
			ra.CurrentHopLimit, ra.ReachableTime = 0, 0
		}, nil},
		{"another hop limit is inconsistent", t0, func(ra *ndp.RouterAdvertisement) { ra.CurrentHopLimit = 255 }, []string{"cur hop limit 255, we advertise 64"}},
		{"other M and O flags are inconsistent", t0, func(ra *ndp.RouterAdvertisement) {
			ra.ManagedConfiguration, ra.OtherConfiguration = true, true
		}, []string{"managed flag on, we advertise off", "other flag on, we advertise off"}},
		{"another reachable time is inconsistent", t0, func(ra *ndp.RouterAdvertisement) { ra.ReachableTime = time.Second }, []string{"reachable time 1s, we advertise 30s"}},
		{"another retrans timer is compared only when both set it", t0, func(ra *ndp.RouterAdvertisement) { ra.RetransmitTimer = time.Second }, nil},
		{"another MTU is inconsistent", t0, func(ra *ndp.RouterAdvertisement) { ra.Options[0] = ndp.NewMTU(1280) }, []string{"mtu 1280, we advertise 1500"}},
		{"another fixed valid lifetime is inconsistent", t0, func(ra *ndp.RouterAdvertisement) {
			ra.Options[1] = pi("2001:db8:1::/64", 2700*time.Second, 86400*time.Second)
		}, []string{"prefix 2001:db8:1::/64 valid lifetime 24h0m0s, we advertise 1h30m0s"}},
		{"decrementing lifetimes that end at the same time are consistent", t0.Add(100 * time.Second), func(ra *ndp.RouterAdvertisement) {
			ra.Options[2] = pi("2001:db8:2::/64", 901*time.Second, 1899*time.Second)
		}, nil},
		{"decrementing lifetimes that end at different times are inconsistent", t0.Add(100 * time.Second), func(ra *ndp.RouterAdvertisement) {
			ra.Options[2] = pi("2001:db8:2::/64", 900*time.Second, 1000*time.Second)
		}, []string{"prefix 2001:db8:2::/64 valid lifetime 16m40s, we advertise 31m40s"}},
		{"a prefix we do not advertise is not compared", t0, func(ra *ndp.RouterAdvertisement) {
			ra.Options = append(ra.Options, pi("2001:db8:9::/64", 0, 0))
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ra := consistent()
			tt.change(ra)
			got := Inconsistencies(ours, tt.now, ra)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
