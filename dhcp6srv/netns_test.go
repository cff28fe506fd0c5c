package dhcp6srv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/nstest"
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
	nstest.RequireRoot(t, bins...)
}

// lanPair is two namespaces joined by a veth: lan0 in router, eth0 in
// client. Both ends come up without DAD so link-locals are usable at once.
type lanPair struct {
	router, client string
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	return nstest.Run(t, args...)
}

func newLANPair(t testing.TB) *lanPair {
	t.Helper()
	router, client := nstest.NewNetns(t, "v6srv-r"), nstest.NewNetns(t, "v6srv-c")
	for _, ns := range []nstest.Netns{router, client} {
		ns.NoDAD(t)
		ns.IP(t, "link", "set", "lo", "up")
	}
	nstest.Veth(t, router, "lan0", client, "eth0")
	router.IP(t, "addr", "add", "fd00:aaaa:bbbb:cc01::1/64", "dev", "lan0", "nodad")
	router.IP(t, "link", "set", "lan0", "up")
	client.IP(t, "link", "set", "eth0", "up")
	router.WaitLinkLocal(t, "lan0", 10*time.Second)
	client.WaitLinkLocal(t, "eth0", 10*time.Second)
	return &lanPair{router: router.Name, client: client.Name}
}

// waitFor polls cond every 50 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	nstest.Eventually(t, d, 50*time.Millisecond, what, cond)
}

// listenIn opens the server socket inside namespace ns: from a locked OS
// thread switched into it, then back. The socket stays in ns.
func listenIn(ns, iface string) func(context.Context) (Conn, error) {
	return func(ctx context.Context) (c Conn, err error) {
		err = nstest.DoNamed(ns, func() (err error) { c, err = ListenUDP(ctx, iface); return err })
		return c, err
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
