package nat

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func twoUplinks(ext0, ext1 netip.Prefix) Ruleset {
	return Ruleset{Internal: internal, LANs: []string{"lan0"}, Hairpin: true,
		Uplinks: []Uplink{{WAN: "wan0", External: ext0, Mark: 1}, {WAN: "wan1", External: ext1, Mark: 2}}}
}

func TestSetIsIdempotent(t *testing.T) {
	for _, tc := range goldenRulesets {
		t.Run("setting the "+tc.name+" ruleset twice sends nothing the second time", func(t *testing.T) {
			fake := &FakeConn{}
			tbl := NewTableConn("", fake, nil)
			err1 := tbl.Set(tc.r)
			if fake.Batches == 0 {
				t.Fatal("the first Set sent nothing")
			}
			fake.Reset()
			err2 := tbl.Set(cloneRuleset(tc.r))
			if diff := cmp.Diff([]string(nil), fake.Ops); diff != "" {
				t.Errorf("second Set sent messages (-want +got):\n%s", diff)
			}
			if (err1 == nil) != (err2 == nil) {
				t.Errorf("second Set returned %v, first %v", err2, err1)
			}
		})
	}
}

func TestFirstSetCreatesEverythingInOneBatch(t *testing.T) {
	fake := &FakeConn{}
	tbl := NewTableConn("", fake, nil)
	if err := tbl.Set(goldenRulesets[2].r); err != nil { // hairpin-one-lan
		t.Fatal(err)
	}
	want := []string{
		"add table v6edge",
		"add chain v6edge hairpin",
		"add chain v6edge prerouting",
		"add chain v6edge postrouting",
		"add chain v6edge guard",
		"add rule v6edge prerouting",
		"add rule v6edge prerouting",
		"add rule v6edge postrouting",
		"add rule v6edge postrouting",
		"add rule v6edge hairpin",
	}
	if diff := cmp.Diff(want, fake.Ops); diff != "" {
		t.Errorf("ops mismatch (-want +got):\n%s", diff)
	}
	if fake.Batches != 1 {
		t.Errorf("sent %d batches, want 1", fake.Batches)
	}
}

func TestSwapRewritesOnlyTheChangedUplink(t *testing.T) {
	fake := &FakeConn{}
	tbl := NewTableConn("", fake, nil)
	var flushed []netip.Prefix
	tbl.SetConntrackFlusher(func(old netip.Prefix) (int, error) {
		flushed = append(flushed, old)
		return 3, nil
	})
	if err := tbl.Set(twoUplinks(ext1, ext2)); err != nil {
		t.Fatal(err)
	}
	pre := fake.Rules(DefaultName, ChainPrerouting)   // wan0: mark, dnat, hairpin; wan1: same
	post := fake.Rules(DefaultName, ChainPostrouting) // wan0: snat, hairpin snat; wan1: snat
	fake.Reset()

	if err := tbl.Set(twoUplinks(ext1, ext3)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		// batch 1: wan1's new pair, inserted at the head in reverse order
		"insert rule v6edge postrouting",
		"insert rule v6edge prerouting",
		"insert rule v6edge prerouting",
		"insert rule v6edge prerouting",
		// batch 2: wan1's old pair, by handle
		"delete rule v6edge prerouting handle " + itoa(pre[3]),
		"delete rule v6edge prerouting handle " + itoa(pre[4]),
		"delete rule v6edge prerouting handle " + itoa(pre[5]),
		"delete rule v6edge postrouting handle " + itoa(post[2]),
	}
	if diff := cmp.Diff(want, fake.Ops); diff != "" {
		t.Errorf("ops mismatch (-want +got):\n%s", diff)
	}
	if fake.Batches != 2 {
		t.Errorf("sent %d batches, want 2", fake.Batches)
	}
	gotPre := fake.Rules(DefaultName, ChainPrerouting)
	if diff := cmp.Diff(pre[:3], gotPre[3:]); diff != "" {
		t.Errorf("wan0's prerouting rules were touched (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]netip.Prefix{ext2}, flushed, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("conntrack flushed for (-want +got):\n%s", diff)
	}
	st := tbl.Status()
	if !st.Installed || st.Swaps != 2 || st.ConntrackFlushed != 3 || !slices.Equal(st.External, []netip.Prefix{ext1, ext3}) {
		t.Errorf("Status() = %+v", st)
	}

	t.Run("and the next swap deletes the handles learned from the first", func(t *testing.T) {
		newPre := fake.Rules(DefaultName, ChainPrerouting)
		fake.Reset()
		if err := tbl.Set(twoUplinks(ext1, ext2)); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(fake.Ops, "delete rule v6edge prerouting handle "+itoa(newPre[0])) {
			t.Errorf("ops %q do not delete the inserted rule %d", fake.Ops, newPre[0])
		}
		if n := len(fake.Rules(DefaultName, ChainPrerouting)); n != 6 {
			t.Errorf("prerouting holds %d rules, want 6", n)
		}
	})
}

func TestFlushStrategyUsesOneBatch(t *testing.T) {
	fake := &FakeConn{}
	tbl := NewTableConn("", fake, nil)
	tbl.strategy = flushAndAdd
	if err := tbl.Set(twoUplinks(ext1, ext2)); err != nil {
		t.Fatal(err)
	}
	fake.Reset()
	if err := tbl.Set(twoUplinks(ext1, ext3)); err != nil {
		t.Fatal(err)
	}
	if fake.Batches != 1 || fake.Ops[0] != "flush chain v6edge hairpin" {
		t.Errorf("flush strategy sent %d batches: %q", fake.Batches, fake.Ops)
	}
	if n := len(fake.Rules(DefaultName, ChainPrerouting)); n != 6 {
		t.Errorf("prerouting holds %d rules, want 6", n)
	}
}

func TestLengthMismatchInstallsNoHalfMapping(t *testing.T) {
	fake := &FakeConn{}
	tbl := NewTableConn("", fake, nil)
	r := Ruleset{Internal: internal, Uplinks: []Uplink{{WAN: "wan0", External: netip.MustParsePrefix("2001:db8:100::/60")}}}
	err := tbl.Set(r)
	if !errors.Is(err, ErrLength) {
		t.Fatalf("Set() = %v, want an error wrapping ErrLength", err)
	}
	if n := len(fake.Rules(DefaultName, ChainPrerouting)) + len(fake.Rules(DefaultName, ChainPostrouting)); n != 0 {
		t.Errorf("table holds %d rules, want none", n)
	}
	st := tbl.Status()
	if st.Installed || !strings.Contains(st.Problem, "/60") {
		t.Errorf("Status() = %+v, want not installed with a problem naming the /60", st)
	}

	t.Run("and a mapping that was installed is taken down", func(t *testing.T) {
		if err := tbl.Set(Ruleset{Internal: internal, Uplinks: []Uplink{{WAN: "wan0", External: ext1}}}); err != nil {
			t.Fatal(err)
		}
		if err := tbl.Set(r); !errors.Is(err, ErrLength) {
			t.Fatalf("Set() = %v, want ErrLength", err)
		}
		if n := len(fake.Rules(DefaultName, ChainPrerouting)); n != 0 {
			t.Errorf("prerouting holds %d rules, want none", n)
		}
	})
}

func TestCheckRestoresDrift(t *testing.T) {
	tests := []struct {
		name    string
		mangle  func(*FakeConn)
		problem string
	}{
		{"a dropped table is rebuilt", func(f *FakeConn) { f.DropTable(DefaultName) }, "table v6edge missing"},
		{"a deleted rule is put back", func(f *FakeConn) {
			h := f.Rules(DefaultName, ChainPostrouting)[0]
			_ = f.DelRule(ruleRef(ChainPostrouting, h))
			_ = f.Flush()
		}, "1 rules missing"},
		{"a flushed chain is refilled", func(f *FakeConn) {
			f.FlushChain(chainRef(ChainPrerouting))
			_ = f.Flush()
		}, "chain prerouting: 6 rules missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &FakeConn{}
			tbl := NewTableConn("", fake, nil)
			r := twoUplinks(ext1, ext2)
			if err := tbl.Set(r); err != nil {
				t.Fatal(err)
			}
			if err := tbl.Check(); err != nil {
				t.Fatal(err)
			}
			if tbl.Status().Restores != 0 {
				t.Fatal("Check restored an intact table")
			}
			what, _ := tbl.drift()
			if what != "" {
				t.Fatalf("drift() = %q on an intact table", what)
			}
			tc.mangle(fake)
			what, err := tbl.drift()
			if err != nil || !strings.Contains(what, tc.problem) {
				t.Errorf("drift() = %q, %v; want it to mention %q", what, err, tc.problem)
			}
			if err := tbl.Check(); err != nil {
				t.Fatal(err)
			}
			if got := len(fake.Rules(DefaultName, ChainPrerouting)); got != 6 {
				t.Errorf("prerouting holds %d rules after restore, want 6", got)
			}
			if st := tbl.Status(); st.Restores != 1 || !st.Installed {
				t.Errorf("Status() = %+v, want 1 restore and installed", st)
			}
			fake.Reset()
			if err := tbl.Set(r); err != nil || len(fake.Ops) != 0 {
				t.Errorf("Set after restore sent %q (err %v), want nothing", fake.Ops, err)
			}
		})
	}
}

func TestWatchStopsWithItsContext(t *testing.T) {
	fake := &FakeConn{}
	tbl := NewTableConn("", fake, nil)
	if err := tbl.Set(twoUplinks(ext1, ext2)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- tbl.Watch(ctx, time.Millisecond) }()
	fake.DropTable(DefaultName)
	deadline := time.Now().Add(5 * time.Second)
	for tbl.Status().Restores == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch() = %v, want nil on cancel", err)
	}
	if tbl.Status().Restores == 0 {
		t.Error("Watch did not restore the dropped table within 5 s")
	}
}

func TestRemoveDeletesTheTableAndStopsRestores(t *testing.T) {
	fake := &FakeConn{}
	tbl := NewTableConn("", fake, nil)
	if err := tbl.Set(twoUplinks(ext1, ext2)); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Remove(); err != nil {
		t.Fatal(err)
	}
	if fake.Rules(DefaultName, ChainPrerouting) != nil {
		t.Error("table still present after Remove")
	}
	if err := tbl.Check(); err != nil || tbl.Status().Restores != 0 {
		t.Errorf("Check after Remove: %v, restores %d", err, tbl.Status().Restores)
	}
	if err := tbl.Remove(); err != nil {
		t.Errorf("a second Remove failed: %v", err)
	}
}

func TestFailedBatchIsRetried(t *testing.T) {
	t.Run("a swap whose batch fails rebuilds the table at once", func(t *testing.T) {
		fake := &FakeConn{}
		tbl := NewTableConn("", fake, nil)
		if err := tbl.Set(twoUplinks(ext1, ext2)); err != nil {
			t.Fatal(err)
		}
		fake.FailNext = errors.New("EBUSY")
		if err := tbl.Set(twoUplinks(ext1, ext3)); err != nil {
			t.Fatalf("Set: %v", err)
		}
		if got := tbl.Status().External; !slices.Equal(got, []netip.Prefix{ext1, ext3}) {
			t.Errorf("External = %v", got)
		}
		if what, _ := tbl.drift(); what != "" {
			t.Errorf("drift after the rebuild: %s", what)
		}
	})
	t.Run("a Set after the table vanished rebuilds it without waiting for Watch", func(t *testing.T) {
		fake := &FakeConn{}
		tbl := NewTableConn("", fake, nil)
		if err := tbl.Set(twoUplinks(ext1, ext2)); err != nil {
			t.Fatal(err)
		}
		fake.DropTable(DefaultName)
		if err := tbl.Set(twoUplinks(ext1, ext3)); err != nil {
			t.Fatalf("Set: %v", err)
		}
		if n := len(fake.Rules(DefaultName, ChainPrerouting)); n != 6 {
			t.Errorf("prerouting holds %d rules, want 6", n)
		}
	})
	t.Run("when the rebuild fails too, Set reports it and the next Set tries again", func(t *testing.T) {
		fake := &FakeConn{}
		tbl := NewTableConn("", fake, nil)
		fake.FailNext = errors.New("EPERM")
		if err := tbl.Set(twoUplinks(ext1, ext2)); err == nil {
			t.Fatal("Set succeeded although its only batch failed")
		}
		if tbl.Status().Problem == "" {
			t.Error("Status().Problem is empty after a failed Set")
		}
		if err := tbl.Set(twoUplinks(ext1, ext2)); err != nil {
			t.Fatalf("retrying Set: %v", err)
		}
		if st := tbl.Status(); !st.Installed || st.Problem != "" {
			t.Errorf("Status() = %+v after the retry", st)
		}
	})
}
