package netif

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

var floatAddr = netip.MustParsePrefix("fe80::1/64")

func isNoDAD(w Want) bool { return w.NoDAD }

func readOwned(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ownedFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTrackerRelease(t *testing.T) {
	t.Run("while Run runs: the matching addresses go, stay gone, and come back with a Set", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := NewFakeHandle("lan0")
			dir := t.TempDir()
			var changes atomic.Int32
			tr := NewTracker(f, discard(), TrackerOptions{Watcher: f, Sysctls: &FakeSysctls{}, StateDir: dir,
				OnChange: func() { changes.Add(1) }})
			wants := []Want{{Interface: "lan0", Prefix: lanAddr}, {Interface: "lan0", Prefix: floatAddr, NoDAD: true}}
			tr.Set(wants)
			stop := runTracker(tr)
			defer stop()
			f.FinishDAD("lan0", lanAddr.Addr(), true)
			synctest.Wait()
			if got, want := readOwned(t, dir), "lan0 fd00:aaaa:bbbb:cc01::1/64\nlan0 fe80::1/64\n"; got != want {
				t.Fatalf("owned file before = %q, want %q", got, want)
			}

			before := changes.Load()
			if err := tr.Release(isNoDAD); err != nil {
				t.Fatalf("Release: %v", err)
			}
			// Synchronous: gone before Run had a chance to look.
			if diff := cmp.Diff(map[netip.Prefix]AddrState{lanAddr: StateOK}, addrStates(f), cmpOpts); diff != "" {
				t.Fatalf("kernel right after Release (-want +got):\n%s", diff)
			}
			if got, want := readOwned(t, dir), "lan0 fd00:aaaa:bbbb:cc01::1/64\n"; got != want {
				t.Errorf("owned file after = %q, want %q", got, want)
			}
			if changes.Load() == before {
				t.Errorf("OnChange not called by Release")
			}
			synctest.Wait()
			if diff := cmp.Diff(map[netip.Prefix]AddrState{lanAddr: StateOK}, addrStates(f), cmpOpts); diff != "" {
				t.Fatalf("kernel after Run looked again (-want +got):\n%s", diff)
			}
			if st := tr.Status(); len(st) != 1 || st[0].Address != lanAddr {
				t.Errorf("status = %+v, want only %v", st, lanAddr)
			}

			tr.Set(wants)
			synctest.Wait()
			want := map[netip.Prefix]AddrState{lanAddr: StateOK, floatAddr: StateOK}
			if diff := cmp.Diff(want, addrStates(f), cmpOpts); diff != "" {
				t.Errorf("kernel after Set wants it again (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("after Run returned", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := NewFakeHandle("lan0")
			dir := t.TempDir()
			tr := NewTracker(f, discard(), TrackerOptions{Watcher: f, Sysctls: &FakeSysctls{}, StateDir: dir})
			tr.Set([]Want{{Interface: "lan0", Prefix: lanAddr}, {Interface: "lan0", Prefix: floatAddr, NoDAD: true}})
			stop := runTracker(tr)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if len(addrStates(f)) != 2 {
				t.Fatalf("kernel after Run = %v, want both addresses kept", addrStates(f))
			}
			if err := tr.Release(isNoDAD); err != nil {
				t.Fatalf("Release: %v", err)
			}
			if diff := cmp.Diff(map[netip.Prefix]AddrState{lanAddr: StateTentative}, addrStates(f), cmpOpts); diff != "" {
				t.Errorf("kernel (-want +got):\n%s", diff)
			}
			if got, want := readOwned(t, dir), "lan0 fd00:aaaa:bbbb:cc01::1/64\n"; got != want {
				t.Errorf("owned file = %q, want %q", got, want)
			}
		})
	})
	t.Run("addresses of an earlier run: NoDAD as the kernel says; a restart no longer owns them", func(t *testing.T) {
		f := NewFakeHandle("lan0", "lan1")
		dir := t.TempDir()
		other := netip.MustParsePrefix("fd00:aaaa:bbbb:cc02::1/64")
		f.PutAddr("lan0", lanAddr, unix.IFA_F_PERMANENT)
		f.PutAddr("lan0", floatAddr, unix.IFA_F_PERMANENT|unix.IFA_F_NODAD)
		// Another prefix length than recorded: the kernel's is the one deleted.
		f.PutAddr("lan1", netip.PrefixFrom(other.Addr(), 128), unix.IFA_F_PERMANENT|unix.IFA_F_NODAD)
		owned := "lan0 fd00:aaaa:bbbb:cc01::1/64\nlan0 fe80::1/64\nlan1 fd00:aaaa:bbbb:cc02::1/64\ngone0 fd00::1/64\n"
		if err := os.WriteFile(filepath.Join(dir, ownedFile), []byte(owned), 0o600); err != nil {
			t.Fatal(err)
		}
		tr := NewTracker(f, discard(), TrackerOptions{Watcher: f, Sysctls: &FakeSysctls{}, StateDir: dir})
		var seen []Want
		err := tr.Release(func(w Want) bool {
			seen = append(seen, w)
			return w.NoDAD || w.Interface == "gone0"
		})
		if err != nil {
			t.Fatalf("Release: %v", err)
		}
		wantSeen := []Want{
			{Interface: "gone0", Prefix: netip.MustParsePrefix("fd00::1/64")},
			{Interface: "lan0", Prefix: lanAddr},
			{Interface: "lan0", Prefix: floatAddr, NoDAD: true},
			{Interface: "lan1", Prefix: other, NoDAD: true},
		}
		if diff := cmp.Diff(wantSeen, seen, cmpOpts); diff != "" {
			t.Errorf("match saw (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[netip.Prefix]AddrState{lanAddr: StateOK}, f.Addrs("lan0"), cmpOpts); diff != "" {
			t.Errorf("lan0 (-want +got):\n%s", diff)
		}
		if got := f.Addrs("lan1"); len(got) != 0 {
			t.Errorf("lan1 = %v, want empty", got)
		}
		if got, want := readOwned(t, dir), "lan0 fd00:aaaa:bbbb:cc01::1/64\n"; got != want {
			t.Errorf("owned file = %q, want %q", got, want)
		}
		again := NewTracker(f, discard(), TrackerOptions{Watcher: f, Sysctls: &FakeSysctls{}, StateDir: dir})
		if n := len(again.m.owned); n != 1 {
			t.Errorf("a restart owns %d addresses, want 1", n)
		}
	})
	t.Run("a wanted address the Tracker did not add stays in the kernel but is no longer wanted", func(t *testing.T) {
		f := NewFakeHandle("lan0")
		f.PutAddr("lan0", floatAddr, unix.IFA_F_PERMANENT|unix.IFA_F_NODAD) // e.g. added by hand
		tr := NewTracker(f, discard(), TrackerOptions{Watcher: f, Sysctls: &FakeSysctls{}})
		tr.Set([]Want{{Interface: "lan0", Prefix: floatAddr, NoDAD: true}})
		calls := 0
		if err := tr.Release(func(w Want) bool { calls++; return w.NoDAD }); err != nil {
			t.Fatal(err)
		}
		if calls != 1 {
			t.Errorf("match called %d times, want once", calls)
		}
		if f.Calls["AddrDel"] != 0 || len(f.Addrs("lan0")) != 1 {
			t.Errorf("AddrDel called %d times, kernel %v: want the address left alone", f.Calls["AddrDel"], f.Addrs("lan0"))
		}
		if st := tr.Status(); len(st) != 0 {
			t.Errorf("status = %+v, want nothing wanted", st)
		}
	})
	t.Run("nothing matches: nothing changes", func(t *testing.T) {
		f := NewFakeHandle("lan0")
		f.PutAddr("lan0", lanAddr, unix.IFA_F_PERMANENT)
		tr := NewTracker(f, discard(), TrackerOptions{Watcher: f, Sysctls: &FakeSysctls{}})
		tr.Set([]Want{{Interface: "lan0", Prefix: lanAddr}})
		if err := tr.Release(isNoDAD); err != nil {
			t.Fatal(err)
		}
		if f.Calls["AddrDel"] != 0 {
			t.Errorf("AddrDel called %d times", f.Calls["AddrDel"])
		}
		if st := tr.Status(); len(st) != 1 {
			t.Errorf("status = %+v, want the wanted address kept", st)
		}
	})
}

// The daemon runs the Tracker as a task and calls Release at an HA stop: *Tracker must
// satisfy that without a wrapper.
var _ interface {
	Run(ctx context.Context) error
	String() string
	Set(wants []Want)
	Release(match func(Want) bool) error
} = (*Tracker)(nil)
