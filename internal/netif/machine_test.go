package netif

import (
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"
)

var (
	t0      = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	lanAddr = netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::1/64")
	ll      = netip.MustParsePrefix("fe80::1234/64")
)

// cmpOpts compares actions and the netip values inside them.
var cmpOpts = cmp.Options{cmp.AllowUnexported(action{}), cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testMachine(heal bool) *machine {
	return newMachine(discard(), TrackerOptions{HealLinkLocal: heal}.withDefaults())
}

// view builds an observation of lan0 holding the given addresses.
func view(addrs ...kernelAddr) map[string]linkView {
	return map[string]linkView{"lan0": {known: true, exists: true, up: true, carrier: true, acceptDAD: 1, addrs: addrs}}
}

func ka(p netip.Prefix, flags int) kernelAddr { return kernelAddr{prefix: p, flags: flags} }

const (
	tentative = unix.IFA_F_TENTATIVE | unix.IFA_F_PERMANENT
	failed    = unix.IFA_F_TENTATIVE | unix.IFA_F_DADFAILED | unix.IFA_F_PERMANENT
	ready     = unix.IFA_F_PERMANENT
)

func stateOfMachine(m *machine, p netip.Prefix) AddrState {
	for _, s := range m.status() {
		if s.Address == p {
			return s.State
		}
	}
	return ""
}

func TestMachineAddsAndFollowsDAD(t *testing.T) {
	tests := []struct {
		name      string
		noDAD     bool
		observed  []kernelAddr
		wantActs  []action
		wantState AddrState
	}{
		{"a missing address is added with DAD", false, nil,
			[]action{{kind: actAdd, iface: "lan0", prefix: lanAddr}}, StateTentative},
		{"a floating address is added without DAD", true, nil,
			[]action{{kind: actAdd, iface: "lan0", prefix: lanAddr, noDAD: true}}, StateTentative},
		{"a tentative address is left alone", false, []kernelAddr{ka(lanAddr, tentative)}, nil, StateTentative},
		{"an address that passed DAD is ok", false, []kernelAddr{ka(lanAddr, ready)}, nil, StateOK},
		{"a failed address is removed", false, []kernelAddr{ka(lanAddr, failed)},
			[]action{{kind: actDel, iface: "lan0", prefix: lanAddr}}, StateDADFailed},
		{"an address with another prefix length is replaced", false,
			[]kernelAddr{ka(netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::1/128"), ready)},
			[]action{
				{kind: actDel, iface: "lan0", prefix: netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::1/128")},
				{kind: actAdd, iface: "lan0", prefix: lanAddr},
			}, StateTentative},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMachine(false)
			m.setWants([]Want{{Interface: "lan0", Prefix: lanAddr, NoDAD: tt.noDAD}})
			acts := m.step(t0, view(tt.observed...))
			if diff := cmp.Diff(tt.wantActs, acts, cmpOpts); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if got := stateOfMachine(m, lanAddr); got != tt.wantState {
				t.Errorf("state = %q, want %q", got, tt.wantState)
			}
		})
	}
}

// failOnce drives one DAD failure at now and returns the retry time.
func failOnce(t *testing.T, m *machine, now time.Time) time.Time {
	t.Helper()
	if acts := m.step(now, view(ka(lanAddr, failed))); len(acts) != 1 || acts[0].kind != actDel {
		t.Fatalf("at %v: actions %+v, want one removal", now.Sub(t0), acts)
	}
	// The removal shows up; nothing happens before the retry is due.
	if acts := m.step(now, view()); len(acts) != 0 {
		t.Fatalf("at %v: actions %+v before the retry", now.Sub(t0), acts)
	}
	return m.entries[key{"lan0", lanAddr.Addr()}].nextRetry
}

func TestMachineBackoffDoublesFrom5sTo5m(t *testing.T) {
	m := testMachine(false)
	m.setWants([]Want{{Interface: "lan0", Prefix: lanAddr}})
	now := t0
	var got []time.Duration
	for range 9 {
		retry := failOnce(t, m, now)
		got = append(got, retry.Sub(now))
		if acts := m.step(retry.Add(-time.Millisecond), view()); len(acts) != 0 {
			t.Fatalf("retried early: %+v", acts)
		}
		if d := m.deadline(); !d.Equal(retry) {
			t.Fatalf("deadline = %v, want the retry time %v", d.Sub(t0), retry.Sub(t0))
		}
		if acts := m.step(retry, view()); len(acts) != 1 || acts[0].kind != actAdd {
			t.Fatalf("at the retry time: actions %+v, want one add", acts)
		}
		now = retry.Add(time.Second) // DAD fails again a second later
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second,
		80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backoff schedule (-want +got):\n%s", diff)
	}
	if m.dadFailures != 9 {
		t.Errorf("dadFailures = %d, want 9", m.dadFailures)
	}
}

func TestMachineFlapping(t *testing.T) {
	for _, tc := range []struct {
		name string
		good time.Duration // from the retry to the next conflict, address ready after 1s
		want time.Duration // the backoff after that conflict
	}{
		{"a conflict that comes back soon after success keeps doubling", 2 * time.Second, 10 * time.Second},
		{"a conflict after a long good spell starts over at 5s", time.Hour, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testMachine(false)
			m.setWants([]Want{{Interface: "lan0", Prefix: lanAddr}})
			retry := failOnce(t, m, t0)
			m.step(retry, view())
			m.step(retry.Add(time.Second), view(ka(lanAddr, ready)))
			at := retry.Add(tc.good)
			next := failOnce(t, m, at)
			if d := next.Sub(at); d != tc.want {
				t.Errorf("backoff = %v, want %v", d, tc.want)
			}
		})
	}
	t.Run("a link flap that takes the address away re-adds it", func(t *testing.T) {
		m := testMachine(false)
		m.setWants([]Want{{Interface: "lan0", Prefix: lanAddr}})
		m.step(t0, view())
		m.step(t0.Add(2*time.Second), view(ka(lanAddr, ready)))
		acts := m.step(t0.Add(time.Minute), view())
		want := []action{{kind: actAdd, iface: "lan0", prefix: lanAddr}}
		if diff := cmp.Diff(want, acts, cmpOpts); diff != "" {
			t.Errorf("actions (-want +got):\n%s", diff)
		}
	})
}

func TestMachineStuckTentative(t *testing.T) {
	tests := []struct {
		name    string
		carrier bool
		after   time.Duration
		want    []string
	}{
		{"a short DAD is not a problem", true, 9 * time.Second, nil},
		{"DAD far longer than it takes is reported", true, 10 * time.Second,
			[]string{"lan0: fd00:aaaa:bbbb:cc01::1 is still tentative after 10s: duplicate address detection does not finish (check dad_transmits, retrans_time_ms and the link)"}},
		{"without carrier the report says so", false, 12 * time.Second,
			[]string{"lan0: fd00:aaaa:bbbb:cc01::1 is still tentative after 12s: duplicate address detection cannot run: lan0 has no carrier"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMachine(false)
			m.setWants([]Want{{Interface: "lan0", Prefix: lanAddr}})
			m.step(t0, view())
			if d := m.deadline(); !d.Equal(t0.Add(10 * time.Second)) {
				t.Errorf("deadline = %v, want 10s after the add", d.Sub(t0))
			}
			v := view(ka(lanAddr, tentative))
			lv := v["lan0"]
			lv.carrier = tt.carrier
			v["lan0"] = lv
			now := t0.Add(tt.after)
			m.step(now, v)
			if diff := cmp.Diff(tt.want, m.problems(now)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMachineRemovesOnlyWhatItAdded(t *testing.T) {
	other := netip.MustParsePrefix("fd00:aaaa:bbbb:cc02::1/64")
	m := testMachine(false)
	m.setWants([]Want{{Interface: "lan0", Prefix: lanAddr}, {Interface: "lan0", Prefix: other}})
	// lanAddr is added by the machine, other was already there.
	m.step(t0, view(ka(other, ready)))
	m.step(t0.Add(time.Second), view(ka(lanAddr, ready), ka(other, ready)))
	m.setWants(nil)
	acts := m.step(t0.Add(2*time.Second), view(ka(lanAddr, ready), ka(other, ready)))
	want := []action{{kind: actDel, iface: "lan0", prefix: lanAddr}}
	if diff := cmp.Diff(want, acts, cmpOpts); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	m.step(t0.Add(3*time.Second), view(ka(other, ready)))
	if len(m.owned) != 0 {
		t.Errorf("owned = %v after the removal, want empty", m.owned)
	}
}

func TestMachineNothingIsRemovedBeforeTheFirstSet(t *testing.T) {
	m := testMachine(false)
	m.owned[key{"lan0", lanAddr.Addr()}] = lanAddr // from an earlier run
	if acts := m.step(t0, view(ka(lanAddr, ready))); len(acts) != 0 {
		t.Errorf("actions %+v before Set, want none", acts)
	}
	m.setWants(nil)
	if acts := m.step(t0, view(ka(lanAddr, ready))); len(acts) != 1 || acts[0].kind != actDel {
		t.Errorf("actions %+v after Set(nil), want the earlier run's address removed", acts)
	}
}

func TestMachineMissingInterface(t *testing.T) {
	m := testMachine(false)
	m.setWants([]Want{{Interface: "lan0", Prefix: lanAddr}})
	acts := m.step(t0, map[string]linkView{"lan0": {known: true}})
	if len(acts) != 0 {
		t.Errorf("actions %+v on a missing interface", acts)
	}
	want := []string{"lan0: fd00:aaaa:bbbb:cc01::1 is missing: interface lan0 not found"}
	if diff := cmp.Diff(want, m.problems(t0)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestMachineLinkLocals(t *testing.T) {
	t.Run("a failed link-local is reported as a likely clone and counted once", func(t *testing.T) {
		m := testMachine(false)
		m.setWants([]Want{{Interface: "lan0", Prefix: lanAddr}})
		for i := range 3 {
			if acts := m.step(t0.Add(time.Duration(i)*time.Second), view(ka(lanAddr, ready), ka(ll, failed))); len(acts) != 0 {
				t.Fatalf("actions %+v without healing", acts)
			}
		}
		if m.dadFailures != 1 {
			t.Errorf("dadFailures = %d, want 1", m.dadFailures)
		}
		p := m.problems(t0)
		if len(p) != 1 || !strings.Contains(p[0], "link-local fe80::1234 failed duplicate address detection") ||
			!strings.Contains(p[0], "cloned VM") {
			t.Errorf("problems = %q, want one naming the link-local and a cloned VM", p)
		}
	})
	t.Run("with healing a failed link-local is regenerated, again only after a backoff", func(t *testing.T) {
		m := testMachine(true)
		m.setWants([]Want{{Interface: "lan0", Prefix: lanAddr}})
		heal := []action{{kind: actHeal, iface: "lan0", failed: []netip.Prefix{ll}}}
		acts := m.step(t0, view(ka(lanAddr, ready), ka(ll, failed)))
		if diff := cmp.Diff(heal, acts, cmpOpts); diff != "" {
			t.Errorf("first actions (-want +got):\n%s", diff)
		}
		if acts := m.step(t0.Add(time.Second), view(ka(lanAddr, ready), ka(ll, failed))); len(acts) != 0 {
			t.Errorf("healed again at once: %+v", acts)
		}
		acts = m.step(t0.Add(5*time.Second), view(ka(lanAddr, ready), ka(ll, failed)))
		if diff := cmp.Diff(heal, acts, cmpOpts); diff != "" {
			t.Errorf("actions after the backoff (-want +got):\n%s", diff)
		}
	})
	t.Run("every failed link-local of a stable-privacy clone goes in one heal", func(t *testing.T) {
		m := testMachine(true)
		m.setWants([]Want{{Interface: "lan0", Prefix: lanAddr}})
		// Seen on a cloned VM: the kernel's idgen_retries produced three
		// link-locals and all failed.
		lls := []netip.Prefix{
			netip.MustParsePrefix("fe80::1435:486f:84ad:93ba/64"),
			netip.MustParsePrefix("fe80::25b4:c63e:38cb:4bcc/64"),
			netip.MustParsePrefix("fe80::4729:d09e:8f22:56c3/64"),
		}
		acts := m.step(t0, view(ka(lanAddr, ready), ka(lls[0], failed), ka(lls[1], failed), ka(lls[2], failed)))
		want := []action{{kind: actHeal, iface: "lan0", failed: lls}}
		if diff := cmp.Diff(want, acts, cmpOpts); diff != "" {
			t.Errorf("actions (-want +got):\n%s", diff)
		}
		if m.dadFailures != 3 {
			t.Errorf("dadFailures = %d, want 3", m.dadFailures)
		}
	})
	t.Run("link-locals show in the status with their state", func(t *testing.T) {
		m := testMachine(false)
		m.setWants([]Want{{Interface: "lan0", Prefix: lanAddr}})
		m.step(t0, view(ka(lanAddr, ready), ka(ll, tentative)))
		m.step(t0.Add(time.Second), view(ka(lanAddr, ready), ka(ll, ready)))
		want := []AddrStatus{
			{Interface: "lan0", Address: lanAddr, State: StateOK, Since: t0},
			{Interface: "lan0", Address: ll, State: StateOK, Since: t0.Add(time.Second), LinkLocal: true},
		}
		if diff := cmp.Diff(want, m.status(), cmpOpts); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
	})
	t.Run("IPv6 disabled after a MAC duplicate is reported with the cause", func(t *testing.T) {
		m := testMachine(false)
		m.setWants([]Want{{Interface: "lan0", Prefix: lanAddr}})
		v := map[string]linkView{"lan0": {known: true, exists: true, up: true, carrier: true, ipv6Disabled: true, acceptDAD: 2}}
		if acts := m.step(t0, v); len(acts) != 0 {
			t.Errorf("actions %+v with IPv6 disabled", acts)
		}
		p := strings.Join(m.problems(t0), "\n")
		if !strings.Contains(p, "IPv6 is disabled on lan0 (disable_ipv6=1)") || !strings.Contains(p, "same MAC address") {
			t.Errorf("problems = %q, want the disabled IPv6 and the duplicated MAC named", p)
		}
	})
}

func TestMachineProblemNamesTheRetry(t *testing.T) {
	m := testMachine(false)
	m.setWants([]Want{{Interface: "lan0", Prefix: lanAddr}})
	failOnce(t, m, t0)
	want := []string{"lan0: fd00:aaaa:bbbb:cc01::1 failed duplicate address detection (another host uses it); retrying in 5s"}
	if diff := cmp.Diff(want, m.problems(t0)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	st := m.status()[0]
	if st.State != StateDADFailed || st.Failures != 1 || !st.NextRetry.Equal(t0.Add(5*time.Second)) ||
		!strings.Contains(st.Detail, "another host on lan0 uses fd00:aaaa:bbbb:cc01::1; check for a duplicated static address or a cloned VM") {
		t.Errorf("status = %+v", st)
	}
}
