package ra

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"

	"github.com/v6edge/v6edge/internal/nstest"
)

// lanHost is the host end of the link in the shared Advertiser test: a
// fake wire or a real socket in another network namespace.
type lanHost interface {
	// nextRA returns the next RA from the router that arrives within d.
	nextRA(t *testing.T, d time.Duration) (ra *ndp.RouterAdvertisement, unicast bool, ok bool)
	// solicit sends a Router Solicitation from the host's link-local.
	solicit(t *testing.T)
}

// advertiserTiming shrinks the RFC constants so the test runs in seconds
// on a real link too. slack is how late a real network may deliver.
type advertiserTiming struct {
	slack time.Duration
}

const (
	testMaxInitial = 500 * time.Millisecond
	testMinDelay   = 300 * time.Millisecond
	testRADelay    = 100 * time.Millisecond
)

// testAdvertiser is the Advertiser test body, run against a fake Conn
// (inside a synctest bubble, so timing is exact) and against a veth pair in
// network namespaces.
func testAdvertiser(t *testing.T, ifname string, lk link, host lanHost, mac net.HardwareAddr, tm advertiserTiming) {
	oldP, newP := pfx("2001:db8:100:1::/64"), pfx("2001:db8:200:1::/64")
	cfg := Config{
		Interface:      ifname,
		Other:          true,
		Prefixes:       []Prefix{{Prefix: oldP, Autonomous: true, OnLink: true}},
		RDNSS:          []netip.Addr{netip.MustParseAddr("2001:db8:100:1::1")},
		DNSSL:          []string{"lan.example"},
		MTU:            1500,
		RouterLifetime: 1800 * time.Second,
		MinInterval:    time.Second,
		MaxInterval:    2 * time.Second,
		Enabled:        true,
		FinalRA:        true,
		StateDir:       t.TempDir(),
	}
	a := NewAdvertiser(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	a.link = lk
	a.rand = newRand(42)
	a.tune = func(s *Schedule) {
		s.MaxInitialInterval, s.MinDelayBetweenRAs, s.MaxRADelay = testMaxInitial, testMinDelay, testRADelay
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()

	// expect waits up to d for an RA that satisfies ok.
	expect := func(step string, d time.Duration, ok func(ra *ndp.RouterAdvertisement, unicast bool) bool) *ndp.RouterAdvertisement {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			left := time.Until(deadline)
			if left <= 0 {
				t.Fatalf("%s: no matching RA within %s", step, d)
			}
			ra, uni, got := host.nextRA(t, left)
			if got && ok(ra, uni) {
				return ra
			}
		}
	}
	anyMulticast := func(_ *ndp.RouterAdvertisement, uni bool) bool { return !uni }

	// 1. The first RA goes out at once and carries every option.
	start := time.Now()
	first := expect("first RA", 200*time.Millisecond+tm.slack, anyMulticast)
	select {
	case <-a.Ready():
	case <-time.After(time.Second):
		t.Fatal("Ready not closed after the first RA")
	}
	want := &ndp.RouterAdvertisement{
		CurrentHopLimit:    64,
		OtherConfiguration: true,
		RouterLifetime:     1800 * time.Second,
		Options: []ndp.Option{
			&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac},
			ndp.NewMTU(1500),
			&ndp.PrefixInformation{PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true, PreferredLifetime: DefaultPreferred, ValidLifetime: DefaultValid, Prefix: oldP.Addr()},
			&ndp.RecursiveDNSServer{Lifetime: 6 * time.Second, Servers: cfg.RDNSS},
			&ndp.DNSSearchList{Lifetime: 6 * time.Second, DomainNames: cfg.DNSSL},
		},
	}
	if diff := cmp.Diff(want, first, netCmp); diff != "" {
		t.Fatalf("first RA mismatch (-want +got):\n%s", diff)
	}

	// 2. The initial burst: the next two RAs at most MaxInitialInterval apart.
	prev := time.Now()
	for i := range 2 {
		expect("initial burst", testMaxInitial+tm.slack, anyMulticast)
		if gap := time.Since(prev); gap < testMinDelay-tm.slack {
			t.Fatalf("initial RA %d only %s after the previous one, want at least %s", i+2, gap, testMinDelay)
		}
		prev = time.Now()
	}
	t.Logf("initial burst of 3 RAs took %s", time.Since(start))

	// 3. An RS from the host is answered by unicast within MaxRADelay.
	sentRS := time.Now()
	host.solicit(t)
	expect("answer to RS", testRADelay+tm.slack, func(_ *ndp.RouterAdvertisement, uni bool) bool { return uni })
	t.Logf("RS answered after %s", time.Since(sentRS))

	// 4. Renumbering: the old prefix is deprecated at once and in the next
	// RAs, the new one appears in the same RA.
	changed := time.Now()
	cfg.Prefixes = []Prefix{{Prefix: newP, Autonomous: true, OnLink: true}}
	a.Update(cfg)
	deprecates := func(ra *ndp.RouterAdvertisement, uni bool) bool {
		s := pioSummary(ra)
		old, okOld := s[oldP]
		_, okNew := s[newP]
		return !uni && okOld && old.Preferred == 0 && old.Valid > 0 && okNew
	}
	expect("first deprecation RA", testMinDelay+tm.slack, deprecates)
	t.Logf("old prefix deprecated %s after the update", time.Since(changed))
	for range RenumberAdverts - 1 {
		expect("following deprecation RAs", testMinDelay+tm.slack, deprecates)
	}
	st := a.Status()
	if diff := cmp.Diff([]PrefixStatus{{Prefix: newP, Preferred: DefaultPreferred, Valid: DefaultValid}}, st.Prefixes, netCmp); diff != "" {
		t.Errorf("Status.Prefixes (-want +got):\n%s", diff)
	}
	if len(st.Deprecated) != 1 || st.Deprecated[0].Prefix != oldP || st.Deprecated[0].Preferred != 0 {
		t.Errorf("Status.Deprecated = %+v, want %s with preferred 0", st.Deprecated, oldP)
	}
	// 3 initial, 1 unicast, 3 deprecating; the last may still be counting.
	if st.RAsSent < 6 || st.RSReceived < 1 || len(st.Problems) != 0 {
		t.Errorf("Status = %d RAs sent, %d RSs received, problems %q; want ≥6, ≥1, none", st.RAsSent, st.RSReceived, st.Problems)
	}

	// 5. Disabled (HA backup): silent, even when solicited.
	cfg.Enabled = false
	a.Update(cfg)
	quiet := time.Now().Add(tm.slack)
	host.solicit(t)
	for time.Now().Before(quiet.Add(3 * time.Second)) {
		if _, _, got := host.nextRA(t, time.Until(quiet.Add(3*time.Second))); got && time.Now().After(quiet) {
			t.Fatal("a disabled Advertiser sent an RA")
		}
	}

	// 6. Enabled again: advertises at once.
	cfg.Enabled = true
	a.Update(cfg)
	expect("RA after re-enabling", 200*time.Millisecond+tm.slack, anyMulticast)

	// 7. A clean stop sends a final RA with router lifetime 0.
	cancel()
	stopped = true
	expect("final RA", 200*time.Millisecond+tm.slack, func(ra *ndp.RouterAdvertisement, uni bool) bool {
		return !uni && ra.RouterLifetime == 0
	})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil on cancel", err)
		}
	case <-time.After(time.Second + tm.slack):
		t.Fatal("Run did not return after cancel")
	}
}

// fakeHost is the host end of a fakeWire.
type fakeHost struct{ wire *fakeWire }

func (h fakeHost) nextRA(t *testing.T, d time.Duration) (*ndp.RouterAdvertisement, bool, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case s := <-h.wire.out:
		m, err := ndp.ParseMessage(s.b)
		if err != nil {
			t.Fatalf("router sent an unparsable message: %v", err)
		}
		ra, ok := m.(*ndp.RouterAdvertisement)
		return ra, ok && s.dst != allNodes, ok
	case <-timer.C:
		return nil, false, false
	}
}

func (h fakeHost) solicit(t *testing.T) {
	h.wire.in <- packet{
		b:   mustMarshal(t, &ndp.RouterSolicitation{}),
		cm:  &ipv6.ControlMessage{HopLimit: 255},
		src: netip.MustParseAddr("fe80::2"),
	}
}

func TestAdvertiserFake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wire := newFakeWire()
		mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
		lk := &fakeLink{wire: wire, src: netip.MustParseAddr("fe80::1"), mac: mac}
		// Timers that fire at the same fake instant race; a millisecond of
		// slack keeps "within 500 ms" meaning "at 500 ms at the latest".
		testAdvertiser(t, "lan0", lk, fakeHost{wire}, mac, advertiserTiming{slack: time.Millisecond})
	})
}

// realHost is an ICMPv6 socket in the host namespace of a vethLab.
type realHost struct {
	c *ndp.Conn
}

func (h *realHost) nextRA(t *testing.T, d time.Duration) (*ndp.RouterAdvertisement, bool, bool) {
	if err := h.c.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	for {
		m, cm, _, err := h.c.ReadFrom()
		if err != nil {
			return nil, false, false // deadline
		}
		ra, ok := m.(*ndp.RouterAdvertisement)
		if !ok {
			continue
		}
		dst, _ := netip.AddrFromSlice(cm.Dst)
		return ra, !dst.IsMulticast(), true
	}
}

func (h *realHost) solicit(t *testing.T) {
	if err := h.c.WriteTo(&ndp.RouterSolicitation{}, nil, allRouters); err != nil {
		t.Fatalf("sending RS: %v", err)
	}
}

// listenHost opens an ICMPv6 socket for RAs on the lab host's interface.
func listenHost(t *testing.T, l *vethLab) *realHost {
	t.Helper()
	var c *ndp.Conn
	err := nstest.DoHandle(l.hostNS, func() error {
		ifi, err := net.InterfaceByName(l.hostIf)
		if err != nil {
			return err
		}
		c, _, err = ndp.Listen(ifi, ndp.LinkLocal)
		if err != nil {
			return err
		}
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeRouterAdvertisement)
		if err := c.SetICMPFilter(&f); err != nil {
			return err
		}
		return c.SetControlMessage(ipv6.FlagDst, true)
	})
	if err != nil {
		t.Fatalf("opening the host socket: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &realHost{c: c}
}

func TestAdvertiserVeth(t *testing.T) {
	nstest.RequireRoot(t)
	// The host's kernel must not solicit on its own: its RSs would get
	// unicast answers the test could mistake for the answer to its RS.
	l := newVethLab(t, map[string]string{"router_solicitations": "0", "accept_ra": "0"})
	mac, _ := net.ParseMAC("02:00:5e:10:00:01")
	// Half a second of slack: this machine is shared with other test
	// suites and its load average reaches 15 on two CPUs. The fake run
	// checks the timing exactly.
	testAdvertiser(t, l.routerIf, nsLink{l.routerNS}, listenHost(t, l), mac, advertiserTiming{slack: 500 * time.Millisecond})
}

func TestAdvertiserSourceAndNeighbors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wire := newFakeWire()
		lk := &fakeLink{wire: wire, src: netip.MustParseAddr("fe80::1"), mac: net.HardwareAddr{2, 0, 0, 0, 0, 1}, missing: true}
		cfg := baseConfig()
		cfg.MinInterval, cfg.MaxInterval = 100*time.Second, 200*time.Second
		cfg.Source = netip.MustParseAddr("fe80::1")
		cfg.Prefixes = []Prefix{{Prefix: pfx("2001:db8:1::/64"), Autonomous: true, OnLink: true}}
		a := NewAdvertiser(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
		a.link = lk
		a.rand = newRand(1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		host := fakeHost{wire}
		hasProblem := func(sub string) bool {
			for _, p := range a.Status().Problems {
				if strings.Contains(p, sub) {
					return true
				}
			}
			return false
		}

		synctest.Wait()
		if !hasProblem("cannot send router advertisements") {
			t.Fatalf("Problems = %q, want the missing source reported", a.Status().Problems)
		}
		if _, _, got := host.nextRA(t, 900*time.Millisecond); got {
			t.Fatal("sent an RA without a source address")
		}

		// The virtual link-local appears (HA master): advertising starts
		// within the retry delay.
		lk.setMissing(false)
		if _, _, got := host.nextRA(t, retryDelay+time.Millisecond); !got {
			t.Fatal("no RA within the retry delay after the source appeared")
		}
		if p := a.Status().Problems; len(p) != 0 {
			t.Fatalf("Problems = %q after recovery, want none", p)
		}
		if src := a.Status().Source; src != cfg.Source {
			t.Fatalf("Status.Source = %s, want %s", src, cfg.Source)
		}

		// Another router with other flags: reported, and cleared when it
		// agrees again.
		other := netip.MustParseAddr("fe80::99")
		wire.in <- packet{b: mustMarshal(t, &ndp.RouterAdvertisement{CurrentHopLimit: 64, ManagedConfiguration: true}), cm: &ipv6.ControlMessage{HopLimit: 255}, src: other}
		synctest.Wait()
		if !hasProblem("router fe80::99 advertises managed flag on, we advertise off") {
			t.Fatalf("Problems = %q, want the managed flag mismatch", a.Status().Problems)
		}
		wire.in <- packet{b: mustMarshal(t, &ndp.RouterAdvertisement{CurrentHopLimit: 64}), cm: &ipv6.ControlMessage{HopLimit: 255}, src: other}
		synctest.Wait()
		if p := a.Status().Problems; len(p) != 0 {
			t.Fatalf("Problems = %q, want none once the other router agrees", p)
		}
		// Our own RAs looped back are not "another router".
		wire.in <- packet{b: mustMarshal(t, &ndp.RouterAdvertisement{CurrentHopLimit: 1}), cm: &ipv6.ControlMessage{HopLimit: 255}, src: cfg.Source}
		synctest.Wait()
		if p := a.Status().Problems; len(p) != 0 {
			t.Fatalf("Problems = %q, want our own RA ignored", p)
		}

		// Updates and Status from other goroutines while serving.
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				c := cfg
				c.DNSSL = []string{fmt.Sprintf("d%d.example", i)}
				a.Update(c)
				_ = a.Status()
			})
		}
		wg.Wait()

		// The address goes away (lost mastership): advertising stops
		// within the source check interval, without a final RA.
		lk.setMissing(true)
		time.Sleep(sourceCheckInterval + time.Millisecond)
		wire.drain()
		if _, _, got := host.nextRA(t, 10*time.Second); got {
			t.Fatal("sent an RA after the source address went away")
		}
		if !hasProblem("source address not on the interface") {
			t.Fatalf("Problems = %q, want the lost source reported", a.Status().Problems)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
	})
}

func TestAdvertiserRestartKeepsDeprecating(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		oldP, newP := pfx("2001:db8:1::/64"), pfx("2001:db8:2::/64")
		cfg := baseConfig()
		cfg.StateDir = dir
		cfg.Prefixes = []Prefix{{Prefix: oldP, Autonomous: true, OnLink: true}}
		NewAdvertiser(cfg, nil) // advertises oldP (state saved), then the daemon stops
		time.Sleep(10 * time.Minute)
		cfg.Prefixes = []Prefix{{Prefix: newP, Autonomous: true, OnLink: true}}
		a := NewAdvertiser(cfg, nil) // restarted with a new lease
		want := []PrefixStatus{{Prefix: oldP, Preferred: 0, Valid: DefaultValid - 10*time.Minute}}
		if diff := cmp.Diff(want, a.Status().Deprecated, netCmp); diff != "" {
			t.Errorf("Status.Deprecated after restart (-want +got):\n%s", diff)
		}
	})
}

func TestAdvertiserWithdrawsDNS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wire := newFakeWire()
		lk := &fakeLink{wire: wire, src: netip.MustParseAddr("fe80::1")}
		oldDNS, newDNS := netip.MustParseAddr("2001:db8::53"), netip.MustParseAddr("2001:db8::54")
		cfg := baseConfig()
		cfg.MinInterval, cfg.MaxInterval = 100*time.Second, 200*time.Second
		cfg.RDNSS, cfg.DNSSL = []netip.Addr{oldDNS}, []string{"old.example"}
		a := NewAdvertiser(cfg, nil)
		a.link = lk
		a.rand = newRand(1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go a.Run(ctx)
		host := fakeHost{wire}
		time.Sleep(time.Minute) // past the initial burst
		wire.drain()
		cfg.RDNSS, cfg.DNSSL = []netip.Addr{newDNS}, []string{"new.example"}
		a.Update(cfg)
		type dns struct {
			Server string
			Life   time.Duration
		}
		var got [][]dns
		for range RenumberAdverts + 1 {
			ra, _, ok := host.nextRA(t, 300*time.Second)
			if !ok {
				t.Fatal("no RA")
			}
			var opts []dns
			for _, o := range ra.Options {
				switch o := o.(type) {
				case *ndp.RecursiveDNSServer:
					opts = append(opts, dns{o.Servers[0].String(), o.Lifetime})
				case *ndp.DNSSearchList:
					opts = append(opts, dns{o.DomainNames[0], o.Lifetime})
				}
			}
			got = append(got, opts)
		}
		live := []dns{{"2001:db8::54", 600 * time.Second}, {"new.example", 600 * time.Second}}
		withdrawing := append(live, dns{"2001:db8::53", 0}, dns{"old.example", 0})
		want := [][]dns{withdrawing, withdrawing, withdrawing, live}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("DNS options of successive RAs (-want +got):\n%s", diff)
		}
	})
}
