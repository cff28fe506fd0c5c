package netif

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// runTracker starts t.Run in the synctest bubble and returns a stop func
// that cancels it and returns Run's error.
func runTracker(tr *Tracker) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	synctest.Wait()
	return func() error {
		cancel()
		return <-done
	}
}

func addrStates(f *FakeHandle) map[netip.Prefix]AddrState { return f.Addrs("lan0") }

func TestTrackerDrivesTheKernel(t *testing.T) {
	t.Run("a failed address is removed, retried after 5s and comes back when the conflict is gone", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := NewFakeHandle("lan0")
			var changes atomic.Int32
			tr := NewTracker(f, discard(), TrackerOptions{Watcher: f, Sysctls: &FakeSysctls{},
				OnChange: func() { changes.Add(1) }})
			tr.Set([]Want{{Interface: "lan0", Prefix: lanAddr}})
			stop := runTracker(tr)
			defer stop()

			if diff := cmp.Diff(map[netip.Prefix]AddrState{lanAddr: StateTentative}, addrStates(f), cmpOpts); diff != "" {
				t.Fatalf("kernel after start (-want +got):\n%s", diff)
			}
			f.FinishDAD("lan0", lanAddr.Addr(), false)
			synctest.Wait()
			if got := addrStates(f); len(got) != 0 {
				t.Fatalf("kernel after the failure = %v, want the failed address removed", got)
			}
			want := []string{"lan0: fd00:aaaa:bbbb:cc01::1 failed duplicate address detection (another host uses it); retrying in 5s"}
			if diff := cmp.Diff(want, tr.Problems()); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if tr.DADFailures() != 1 {
				t.Errorf("DADFailures = %d, want 1", tr.DADFailures())
			}

			time.Sleep(5*time.Second - time.Millisecond)
			synctest.Wait()
			if got := addrStates(f); len(got) != 0 {
				t.Fatalf("re-added before the backoff ended: %v", got)
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
			if diff := cmp.Diff(map[netip.Prefix]AddrState{lanAddr: StateTentative}, addrStates(f), cmpOpts); diff != "" {
				t.Fatalf("kernel after the backoff (-want +got):\n%s", diff)
			}
			// Retrying is not a recovery: the problem stays until DAD passes.
			want = []string{"lan0: fd00:aaaa:bbbb:cc01::1 failed duplicate address detection 1 time(s) (another host uses it); trying it again"}
			if diff := cmp.Diff(want, tr.Problems()); diff != "" {
				t.Errorf("problems while retrying (-want +got):\n%s", diff)
			}
			f.FinishDAD("lan0", lanAddr.Addr(), true)
			synctest.Wait()
			if st := tr.Status(); len(st) != 1 || st[0].State != StateOK {
				t.Errorf("status = %+v, want ok", st)
			}
			if p := tr.Problems(); len(p) != 0 {
				t.Errorf("problems once the address holds: %q", p)
			}
			if len(tr.Problems()) != 0 {
				t.Errorf("problems = %q after recovery", tr.Problems())
			}
			if changes.Load() < 3 {
				t.Errorf("OnChange called %d times, want at least 3 (tentative, dadfailed, ok)", changes.Load())
			}
		})
	})
	t.Run("an address removed by someone else is added again", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := NewFakeHandle("lan0")
			_, stop := runWanting(f, Want{Interface: "lan0", Prefix: lanAddr, NoDAD: true})
			defer stop()
			f.RemoveAddr("lan0", lanAddr.Addr())
			synctest.Wait()
			if diff := cmp.Diff(map[netip.Prefix]AddrState{lanAddr: StateOK}, addrStates(f), cmpOpts); diff != "" {
				t.Errorf("kernel (-want +got):\n%s", diff)
			}
			if n := f.Calls["AddrAdd"]; n != 2 {
				t.Errorf("AddrAdd called %d times, want 2", n)
			}
		})
	})
	t.Run("an unwanted address is removed and setting the same set again changes nothing", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := NewFakeHandle("lan0")
			tr := NewTracker(f, discard(), TrackerOptions{Watcher: f, Sysctls: &FakeSysctls{}})
			wants := []Want{{Interface: "lan0", Prefix: lanAddr, NoDAD: true}}
			tr.Set(wants)
			stop := runTracker(tr)
			defer stop()
			tr.Set(wants)
			synctest.Wait()
			if n := f.Calls["AddrAdd"]; n != 1 {
				t.Errorf("AddrAdd called %d times, want 1", n)
			}
			tr.Set(nil)
			synctest.Wait()
			if got := addrStates(f); len(got) != 0 {
				t.Errorf("kernel = %v, want the unwanted address removed", got)
			}
		})
	})
	t.Run("a tentative address that never finishes is reported as stuck", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := NewFakeHandle("lan0")
			f.SetCarrier("lan0", false)
			tr, stop := runWanting(f, Want{Interface: "lan0", Prefix: lanAddr})
			defer stop()
			time.Sleep(10 * time.Second)
			synctest.Wait()
			want := []string{"lan0: fd00:aaaa:bbbb:cc01::1 is still tentative after 10s: duplicate address detection cannot run: lan0 has no carrier"}
			if diff := cmp.Diff(want, tr.Problems()); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("address events of other interfaces do not make it look again", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := NewFakeHandle("lan0", "veth9")
			_, stop := runWanting(f, Want{Interface: "lan0", Prefix: lanAddr, NoDAD: true})
			defer stop()
			looks := f.Calls["AddrList"]
			f.PutAddr("veth9", netip.MustParsePrefix("2001:db8::9/64"), unix.IFA_F_PERMANENT)
			synctest.Wait()
			if n := f.Calls["AddrList"]; n != looks {
				t.Errorf("AddrList calls went from %d to %d on a foreign event", looks, n)
			}
			f.PutAddr("lan0", netip.MustParsePrefix("2001:db8::1/64"), unix.IFA_F_PERMANENT)
			synctest.Wait()
			if n := f.Calls["AddrList"]; n == looks {
				t.Errorf("no new look after an event on lan0")
			}
		})
	})
	t.Run("a lost subscription is renewed and the state re-read", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := NewFakeHandle("lan0")
			_, stop := runWanting(f, Want{Interface: "lan0", Prefix: lanAddr, NoDAD: true})
			defer stop()
			f.EndWatches()
			synctest.Wait()
			f.RemoveAddr("lan0", lanAddr.Addr()) // nobody listens: missed
			time.Sleep(resubscribeDelay)
			synctest.Wait()
			if diff := cmp.Diff(map[netip.Prefix]AddrState{lanAddr: StateOK}, addrStates(f), cmpOpts); diff != "" {
				t.Errorf("kernel after resubscribing (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("added addresses stay on stop unless RemoveOnStop", func(t *testing.T) {
		for _, remove := range []bool{false, true} {
			synctest.Test(t, func(t *testing.T) {
				f := NewFakeHandle("lan0")
				tr := NewTracker(f, discard(), TrackerOptions{Watcher: f, Sysctls: &FakeSysctls{}, RemoveOnStop: remove})
				tr.Set([]Want{{Interface: "lan0", Prefix: lanAddr, NoDAD: true}})
				stop := runTracker(tr)
				if err := stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
				if got := len(addrStates(f)); (got == 0) != remove {
					t.Errorf("RemoveOnStop=%v: %d addresses left", remove, got)
				}
			})
		}
	})
}

func TestTrackerStateDir(t *testing.T) {
	t.Run("an address added by an earlier run is removed when no longer wanted", func(t *testing.T) {
		dir := t.TempDir()
		synctest.Test(t, func(t *testing.T) {
			f := NewFakeHandle("lan0")
			tr := NewTracker(f, discard(), TrackerOptions{Watcher: f, Sysctls: &FakeSysctls{}, StateDir: dir})
			tr.Set([]Want{{Interface: "lan0", Prefix: lanAddr, NoDAD: true}})
			stop := runTracker(tr)
			stop()

			tr2 := NewTracker(f, discard(), TrackerOptions{Watcher: f, Sysctls: &FakeSysctls{}, StateDir: dir})
			stop2 := runTracker(tr2)
			defer stop2()
			if len(addrStates(f)) != 1 {
				t.Fatalf("removed before the first Set")
			}
			tr2.Set(nil)
			synctest.Wait()
			if got := addrStates(f); len(got) != 0 {
				t.Errorf("kernel = %v, want the earlier run's address removed", got)
			}
		})
	})
	t.Run("healing writes a fresh stable_secret, saves it and regenerates the link-local", func(t *testing.T) {
		dir := t.TempDir()
		synctest.Test(t, func(t *testing.T) {
			f := NewFakeHandle("lan0")
			f.PutAddr("lan0", ll, failed)
			sys := &FakeSysctls{}
			secret := bytes.Repeat([]byte{0xab}, 16)
			tr := NewTracker(f, discard(), TrackerOptions{Watcher: f, Sysctls: sys, StateDir: dir,
				HealLinkLocal: true, Rand: bytes.NewReader(secret)})
			tr.Set([]Want{{Interface: "lan0", Prefix: lanAddr, NoDAD: true}})
			stop := runTracker(tr)
			defer stop()
			want := []string{
				"lan0/stable_secret=abab:abab:abab:abab:abab:abab:abab:abab",
				"lan0/addr_gen_mode=1",
				"lan0/addr_gen_mode=2",
			}
			if diff := cmp.Diff(want, sys.Snapshot()); diff != "" {
				t.Errorf("sysctl writes (-want +got):\n%s", diff)
			}
			if _, ok := addrStates(f)[ll]; ok {
				t.Errorf("the failed link-local is still there")
			}
			b, err := os.ReadFile(filepath.Join(dir, "stable_secret-lan0"))
			if err != nil || strings.TrimSpace(string(b)) != "abab:abab:abab:abab:abab:abab:abab:abab" {
				t.Errorf("saved secret = %q, %v", b, err)
			}
			// The kernel's new link-local shows up and passes DAD.
			newLL := netip.MustParsePrefix("fe80::9a7b:1c2d:3e4f:5061/64")
			f.PutAddr("lan0", newLL, unix.IFA_F_PERMANENT|unix.IFA_F_STABLE_PRIVACY)
			synctest.Wait()
			st := tr.Status()
			if len(st) != 2 || st[1].Address != newLL || st[1].State != StateOK {
				t.Errorf("status = %+v, want the new link-local ok", st)
			}
			if len(tr.Problems()) != 0 {
				t.Errorf("problems = %q after healing", tr.Problems())
			}
		})
	})
	t.Run("after a reboot the saved stable_secret is applied and the EUI-64 link-local replaced", func(t *testing.T) {
		saved := "2001:0db8:0000:0000:0000:0000:0000:0042"
		dir := secretDir(t, saved)
		synctest.Test(t, func(t *testing.T) {
			f := NewFakeHandle("lan0")
			eui := netip.MustParsePrefix("fe80::ff:fe00:1/64")
			f.PutAddr("lan0", eui, unix.IFA_F_PERMANENT)
			sys := &FakeSysctls{}
			defer runHealing(f, sys, dir)()
			want := []string{"lan0/stable_secret=" + saved, "lan0/addr_gen_mode=1", "lan0/addr_gen_mode=2"}
			if diff := cmp.Diff(want, sys.Snapshot()); diff != "" {
				t.Errorf("sysctl writes (-want +got):\n%s", diff)
			}
			if _, ok := addrStates(f)[eui]; ok {
				t.Errorf("the EUI-64 link-local is still there")
			}
		})
	})
	t.Run("a saved stable_secret already in place changes nothing", func(t *testing.T) {
		saved := "2001:db8::42"
		dir := secretDir(t, saved)
		synctest.Test(t, func(t *testing.T) {
			f := NewFakeHandle("lan0")
			f.PutAddr("lan0", ll, unix.IFA_F_PERMANENT|unix.IFA_F_STABLE_PRIVACY)
			sys := &FakeSysctls{Values: map[string]string{"lan0/stable_secret": "2001:0db8:0000:0000:0000:0000:0000:0042"}}
			defer runHealing(f, sys, dir)()
			if w := sys.Snapshot(); len(w) != 0 {
				t.Errorf("sysctl writes %q, want none", w)
			}
		})
	})
}

// runWanting runs a Tracker on f, with fake sysctls, wanting wants.
func runWanting(f *FakeHandle, wants ...Want) (*Tracker, func() error) {
	tr := NewTracker(f, discard(), TrackerOptions{Watcher: f, Sysctls: &FakeSysctls{}})
	tr.Set(wants)
	return tr, runTracker(tr)
}

// secretDir is a state directory holding lan0's saved stable_secret.
func secretDir(t *testing.T, secret string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stable_secret-lan0"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runHealing runs a Tracker that heals link-locals, on f with sys and the
// state in dir, wanting lanAddr (nodad) on lan0.
func runHealing(f *FakeHandle, sys *FakeSysctls, dir string) (stop func() error) {
	tr := NewTracker(f, discard(), TrackerOptions{Watcher: f, Sysctls: sys, StateDir: dir, HealLinkLocal: true})
	tr.Set([]Want{{Interface: "lan0", Prefix: lanAddr, NoDAD: true}})
	return runTracker(tr)
}
