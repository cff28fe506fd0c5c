package dhcp6srv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// This file holds the namespace plumbing shared by the root-only tests:
// a router namespace running the Server (or Kea) on lan0, a client
// namespace on the other end of a veth, and peers started inside it.

// requireRoot skips the test unless it can build namespaces and has the
// named binaries.
func requireRoot(t *testing.T, bins ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("namespace test: not with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces")
	}
	for _, b := range append([]string{"ip"}, bins...) {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s: %v", b, err)
		}
	}
}

// lanPair is two namespaces joined by a veth: lan0 in router, eth0 in
// client. Both ends come up without DAD so link-locals are usable at once.
type lanPair struct {
	router, client string
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newLANPair(t testing.TB) *lanPair {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	suffix := hex.EncodeToString(b[:])
	p := &lanPair{router: "v6srv-" + suffix + "-r", client: "v6srv-" + suffix + "-c"}
	for _, ns := range []string{p.router, p.client} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { deleteNetns(t, ns) })
		for _, k := range []string{"all", "default"} {
			run(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf."+k+".accept_dad=0")
		}
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "-n", p.router, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", p.client)
	run(t, "ip", "-n", p.router, "addr", "add", "fd00:aaaa:bbbb:cc01::1/64", "dev", "lan0", "nodad")
	run(t, "ip", "-n", p.router, "link", "set", "lan0", "up")
	run(t, "ip", "-n", p.client, "link", "set", "eth0", "up")
	waitFor(t, 10*time.Second, "link-locals on both ends", func() bool {
		r := run(t, "ip", "-n", p.router, "-6", "addr", "show", "dev", "lan0", "scope", "link")
		c := run(t, "ip", "-n", p.client, "-6", "addr", "show", "dev", "eth0", "scope", "link")
		return strings.Contains(r, "fe80::") && strings.Contains(c, "fe80::") &&
			!strings.Contains(r, "tentative") && !strings.Contains(c, "tentative")
	})
	return p
}

// deleteNetns kills what is left in ns (only our own peers can be there:
// the name is unique to this test) and removes it.
func deleteNetns(t testing.TB, ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		t.Logf("deleting netns %s: %v: %s", ns, err, out)
	}
}

// waitFor polls cond every 50 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listenIn opens the server socket inside namespace ns: from a locked OS
// thread switched into it, then back. The socket stays in ns.
func listenIn(ns, iface string) func(context.Context) (Conn, error) {
	return func(ctx context.Context) (Conn, error) {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		c, lerr := ListenUDP(ctx, iface)
		if err := netns.Set(orig); err != nil {
			// The thread is stuck in ns: leave it locked so the runtime
			// retires it with this goroutine.
			return c, errors.Join(lerr, fmt.Errorf("returning to the original namespace: %w", err))
		}
		runtime.UnlockOSThread()
		return c, lerr
	}
}

// peer is a background process in a namespace, in its own process group.
type peer struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startPeer(t testing.TB, dir, name string, env []string, args ...string) *peer {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &peer{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

func (p *peer) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after 5 s.
func (p *peer) stop() {
	if p.exited() {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // helpers that outlived the leader
}

func (p *peer) logText() string {
	b, _ := os.ReadFile(p.log)
	s := string(b)
	if len(s) > 3000 {
		s = s[len(s)-3000:]
	}
	return s
}

func execCtx(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, args[0], args[1:]...)
}
