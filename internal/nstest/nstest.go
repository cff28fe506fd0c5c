// Package nstest is the network-namespace harness of the root-only tests:
// skipping when not root or when a peer program is missing, uniquely named
// namespaces removed when the test ends, running code on a thread switched
// into a namespace, veth pairs between namespaces, long-lived Run(ctx)
// tasks stopped at cleanup, bounded polling and a goroutine-safe buffer for
// the logs of peers.
//
// It is test-only code: import it from _test.go files only.
package nstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// RequireRoot skips the test unless it runs as root with iproute2's ip
// (which NewNetns and Veth use) and the programs named.
func RequireRoot(t testing.TB, programs ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces")
	}
	RequirePrograms(t, append([]string{"ip"}, programs...)...)
}

// sbin is where Debian puts the daemons a non-root PATH may lack.
var sbin = []string{"/usr/sbin", "/sbin"}

// LookProgram finds a program on PATH or, failing that, in /usr/sbin or
// /sbin.
func LookProgram(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	if !strings.Contains(name, "/") {
		for _, dir := range sbin {
			c := filepath.Join(dir, name)
			if fi, serr := os.Stat(c); serr == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return c, nil
			}
		}
	}
	return "", err
}

// RequirePrograms skips the test when one of the named programs is not
// installed.
func RequirePrograms(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := LookProgram(n); err != nil {
			t.Skipf("skipping: needs %s: %v", n, err)
		}
	}
}

// Program returns the path of the named program, skipping the test when it
// is not installed.
func Program(t testing.TB, name string) string {
	t.Helper()
	p, err := LookProgram(name)
	if err != nil {
		t.Skipf("skipping: needs %s: %v", name, err)
	}
	return p
}

// cmdTimeout bounds every command the helpers run: they build and inspect
// namespaces, which takes milliseconds, even on a loaded machine.
const cmdTimeout = 20 * time.Second

// Try runs a command and returns its combined output.
func Try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	return string(out), err
}

// Run runs a command and fails the test, with the output, when it fails.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := Try(args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Netns is a network namespace of a test.
type Netns struct {
	// Name is the name under /run/netns, for ip netns exec and ip -n.
	Name string
	// Handle is an open handle (file descriptor) of the namespace, valid
	// until the test ends.
	Handle netns.NsHandle
}

// Fd is the namespace's file descriptor, for the APIs that take one.
func (n Netns) Fd() int { return int(n.Handle) }

func (n Netns) String() string { return n.Name }

// Exec returns the arguments that run args inside the namespace.
func (n Netns) Exec(args ...string) []string {
	return append([]string{"ip", "netns", "exec", n.Name}, args...)
}

// Try runs a command inside the namespace and returns its combined output.
func (n Netns) Try(args ...string) (string, error) { return Try(n.Exec(args...)...) }

// Run runs a command inside the namespace and fails the test when it fails.
func (n Netns) Run(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, n.Exec(args...)...)
}

// IP runs ip -n <namespace> args and fails the test when it fails.
func (n Netns) IP(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, append([]string{"ip", "-n", n.Name}, args...)...)
}

// Sysctl sets each key=value inside the namespace (sysctl -qw).
func (n Netns) Sysctl(t testing.TB, kv ...string) {
	t.Helper()
	n.Run(t, append([]string{"sysctl", "-qw"}, kv...)...)
}

// NoDAD turns Duplicate Address Detection off for every interface the
// namespace has or gets: the test owns the links, and nothing is left
// tentative.
func (n Netns) NoDAD(t testing.TB) {
	t.Helper()
	n.Sysctl(t, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
}

// WaitLinkLocal waits (polling every 20 ms) until ifname in the namespace
// has a link-local address that is no longer tentative, and fails the test
// when it has none within timeout.
func (n Netns) WaitLinkLocal(t testing.TB, ifname string, timeout time.Duration) {
	t.Helper()
	var out string
	Eventually(t, timeout, 20*time.Millisecond, "a usable link-local on "+ifname+" in "+n.Name, func() bool {
		out, _ = Try("ip", "-n", n.Name, "-6", "addr", "show", "dev", ifname, "scope", "link")
		return strings.Contains(out, "fe80::") && !strings.Contains(out, "tentative")
	}, func() string { return out })
}

// Suffix returns a random suffix for names that must not collide with
// those of parallel tests.
func Suffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewNetns creates a network namespace named role-<random suffix> (so a
// role such as "v6nat-rtr" makes a leftover easy to attribute, and
// parallel tests never collide). When the test ends, whatever processes
// are left in it are killed (the name is unique to the test, so only its
// own peers can be there) and the namespace is removed, failed or not.
func NewNetns(t testing.TB, role string) Netns {
	t.Helper()
	return NewNamedNetns(t, role+"-"+Suffix())
}

// NewNamedNetns is NewNetns with the exact name given; the caller makes it
// unique (as with Suffix).
func NewNamedNetns(t testing.TB, name string) Netns {
	t.Helper()
	if out, err := Try("ip", "netns", "add", name); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() { deleteNetns(t, name) })
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("opening netns %s: %v", name, err)
	}
	t.Cleanup(func() { h.Close() })
	return Netns{Name: name, Handle: h}
}

func deleteNetns(t testing.TB, name string) {
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if out, err := Try("ip", "netns", "del", name); err != nil {
		t.Errorf("ip netns del %s: %v\n%s", name, err, out)
	}
}

// Veth creates a veth pair with end aName in a and end bName in b. It is
// created inside a and its peer moved, so nothing ever appears in the
// namespace the test runs in. Both ends are left down.
func Veth(t testing.TB, a Netns, aName string, b Netns, bName string) {
	t.Helper()
	a.IP(t, "link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.Name)
}

// ErrThreadRetired wraps the error of a thread that could not switch back
// to its original namespace: it stays locked, so the runtime ends it with
// its goroutine instead of reusing it elsewhere.
var ErrThreadRetired = errors.New("nstest: OS thread retired in the wrong namespace")

// Do runs f on the calling goroutine's OS thread, locked and switched into
// ns, then switches the thread back. Sockets f opens stay in ns for their
// whole life. It returns f's error, or why the thread could not switch.
// Do is safe to call from any goroutine (it does not use a testing.TB).
func Do(ns Netns, f func() error) error {
	return DoHandle(ns.Handle, f)
}

// DoNamed is Do for the namespace named name (under /run/netns).
func DoNamed(name string, f func() error) error {
	h, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("opening netns %s: %w", name, err)
	}
	defer h.Close()
	return DoHandle(h, f)
}

// DoHandle is Do with a bare namespace handle.
func DoHandle(ns netns.NsHandle, f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening the thread's namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering %v: %w", ns, err)
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime retires it with the
		// goroutine, so the namespace never leaks into other code.
		return errors.Join(ferr, fmt.Errorf("%w: switching back: %w", ErrThreadRetired, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// In runs f as Do does and fails the test (t.Fatal) when f or the switch
// fails. Call it from the test's goroutine. f may itself call t.Fatal: the
// thread then stays locked in ns and ends with the goroutine.
func In(t testing.TB, ns Netns, f func() error) {
	t.Helper()
	if err := Do(ns, f); err != nil {
		t.Fatalf("in netns %s: %v", ns.Name, err)
	}
}

// taskStopTimeout bounds how long a cancelled task may take to return.
const taskStopTimeout = 5 * time.Second

// RunTask runs run (a long-lived Run(ctx)) on its own goroutine with a
// context derived from ctx, until stop is called or the test ends. Stopping
// cancels the context and waits for run to return; the test fails when run
// returned an error (a Run is expected to return nil once cancelled) or did
// not return within 5 s of the cancel. stop may be called more than once.
func RunTask(t testing.TB, ctx context.Context, name string, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: Run = %v", name, err)
				}
			case <-time.After(taskStopTimeout):
				t.Errorf("%s: Run did not return within %v of cancel", name, taskStopTimeout)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers (a peer
// process's stdout and stderr, a logger) and readers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Logger returns a text logger writing to the test's output at level and
// above.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// Poll calls cond every `every` until it holds or timeout has passed, and
// reports whether it held. cond is always called at least once, and once
// more after the deadline.
func Poll(timeout, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
}

// Eventually polls cond as Poll does and fails the test (t.Fatal) when it
// does not hold within timeout, with what it waited for and, when given,
// the state each diag describes. It returns how long cond took to hold.
func Eventually(t testing.TB, timeout, every time.Duration, what string, cond func() bool, diag ...func() string) time.Duration {
	t.Helper()
	start := time.Now()
	if Poll(timeout, every, cond) {
		return time.Since(start)
	}
	msg := fmt.Sprintf("timed out after %v waiting for %s", timeout, what)
	for _, d := range diag {
		msg += "\n" + d()
	}
	t.Fatal(msg)
	return 0
}
