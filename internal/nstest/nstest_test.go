package nstest

import (
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a testing.TB that records failures instead of failing, and
// runs its cleanups when asked. Fatal ends the calling goroutine, as the
// real one does.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	errs     []string
	fatal    bool
	cleanups []func()
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatal(args ...any) {
	r.mu.Lock()
	r.errs = append(r.errs, fmt.Sprint(args...))
	r.fatal = true
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *recorder) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}

func (r *recorder) failures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// onGoroutine runs f on a goroutine of its own, as the testing package
// runs a test, so that Fatal can end it.
func onGoroutine(f func()) {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	<-done
}

func TestSyncBufferConcurrentWriters(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				fmt.Fprintf(&b, "%d\n", i)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 800 {
		t.Errorf("%d lines, want 800", n)
	}
}

func TestPoll(t *testing.T) {
	t.Run("a condition that holds at once is called once", func(t *testing.T) {
		calls := 0
		if !Poll(time.Second, time.Millisecond, func() bool { calls++; return true }) || calls != 1 {
			t.Errorf("calls = %d", calls)
		}
	})
	t.Run("a condition that holds later is waited for", func(t *testing.T) {
		calls := 0
		if !Poll(5*time.Second, time.Millisecond, func() bool { calls++; return calls == 3 }) {
			t.Error("Poll = false")
		}
	})
	t.Run("a condition that never holds gives up after the timeout", func(t *testing.T) {
		start := time.Now()
		if Poll(50*time.Millisecond, 5*time.Millisecond, func() bool { return false }) {
			t.Error("Poll = true")
		}
		if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
			t.Errorf("gave up after %v", d)
		}
	})
}

func TestEventually(t *testing.T) {
	t.Run("returns once the condition holds", func(t *testing.T) {
		r := &recorder{TB: t}
		n := 0
		onGoroutine(func() {
			Eventually(r, time.Second, time.Millisecond, "n to reach 2", func() bool { n++; return n >= 2 })
		})
		if f := r.failures(); len(f) != 0 {
			t.Errorf("failures %q", f)
		}
	})
	t.Run("fails with what it waited for and the diagnostics", func(t *testing.T) {
		r := &recorder{TB: t}
		after := false
		onGoroutine(func() {
			Eventually(r, 20*time.Millisecond, time.Millisecond, "the impossible", func() bool { return false },
				func() string { return "state: stuck" })
			after = true
		})
		f := r.failures()
		if !r.fatal || after || len(f) != 1 || !strings.Contains(f[0], "the impossible") || !strings.Contains(f[0], "state: stuck") {
			t.Errorf("fatal %v, went on %v, failures %q", r.fatal, after, f)
		}
	})
}

func TestRunTask(t *testing.T) {
	t.Run("a task that returns nil on cancel passes, and stop is idempotent", func(t *testing.T) {
		r := &recorder{TB: t}
		running := make(chan struct{})
		stop := RunTask(r, context.Background(), "task", func(ctx context.Context) error {
			close(running)
			<-ctx.Done()
			return nil
		})
		<-running
		stop()
		stop()
		r.cleanup()
		if f := r.failures(); len(f) != 0 {
			t.Errorf("failures %q", f)
		}
	})
	t.Run("an error fails the test at cleanup", func(t *testing.T) {
		r := &recorder{TB: t}
		RunTask(r, context.Background(), "task", func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		r.cleanup()
		if f := r.failures(); len(f) != 1 || !strings.Contains(f[0], "task: Run = context canceled") {
			t.Errorf("failures %q", f)
		}
	})
	t.Run("an early error is reported too", func(t *testing.T) {
		r := &recorder{TB: t}
		RunTask(r, context.Background(), "task", func(context.Context) error { return errors.New("boom") })
		r.cleanup()
		if f := r.failures(); len(f) != 1 || !strings.Contains(f[0], "boom") {
			t.Errorf("failures %q", f)
		}
	})
}

func TestLookProgram(t *testing.T) {
	if _, err := LookProgram("sh"); err != nil {
		t.Errorf("sh: %v", err)
	}
	if _, err := LookProgram("v6edge-no-such-program"); err == nil {
		t.Error("found a program that does not exist")
	}
	t.Run("a missing program skips", func(t *testing.T) {
		RequirePrograms(t, "v6edge-no-such-program")
		t.Error("not skipped")
	})
}

func TestSuffixIsRandom(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := Suffix()
		if len(s) != 8 || seen[s] {
			t.Fatalf("suffix %q (seen before: %v)", s, seen[s])
		}
		seen[s] = true
	}
}

// TestImportedFromTestsOnly: this package is test code; no non-test file
// of the module may import it.
func TestImportedFromTestsOnly(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	const path = "github.com/v6edge/v6edge/internal/nstest"
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if v, _ := strconv.Unquote(imp.Path.Value); v == path {
				t.Errorf("%s imports %s: only _test.go files may", p, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
