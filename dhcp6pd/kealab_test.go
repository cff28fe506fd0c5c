package dhcp6pd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// keaLab is a kea-dhcp6 in one network namespace and a veth into a client
// namespace, for the lab tests of issue 15 (TestKea has its own, older
// set-up). Client sockets bind to fixed link-locals (added with nodad),
// so several clients can share the link, each getting its own Replies.
type keaLab struct {
	t        *testing.T
	nsS, nsC string
	dir      string
	leases   string
	cfgPath  string
	cmd      *exec.Cmd
	done     chan struct{}
}

func labCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newKeaLab starts Kea with subnet as the one subnet6 entry (its
// "interface" is filled in) and extra merged into Dhcp6.
func newKeaLab(t *testing.T, subnet map[string]any, extra map[string]any) *keaLab {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	kea, err := exec.LookPath("kea-dhcp6")
	if err != nil {
		kea = "/usr/sbin/kea-dhcp6"
		if _, err := os.Stat(kea); err != nil {
			t.Skip("kea-dhcp6 not installed")
		}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed")
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	l := &keaLab{t: t, nsS: "v6lab-" + hex.EncodeToString(suffix) + "-s", nsC: "v6lab-" + hex.EncodeToString(suffix) + "-c", dir: t.TempDir()}
	labCmd(t, "ip", "netns", "add", l.nsS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.nsS).Run() })
	labCmd(t, "ip", "netns", "add", l.nsC)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.nsC).Run() })
	labCmd(t, "ip", "netns", "exec", l.nsS, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
	labCmd(t, "ip", "-n", l.nsS, "link", "add", "s0", "type", "veth", "peer", "name", "c0", "netns", l.nsC)
	labCmd(t, "ip", "-n", l.nsS, "link", "set", "s0", "up")
	labCmd(t, "ip", "-n", l.nsC, "link", "set", "c0", "up")

	l.leases = filepath.Join(l.dir, "leases.csv")
	subnet["interface"] = "s0"
	d6 := map[string]any{
		"interfaces-config": map[string]any{"interfaces": []string{"s0"}},
		"lease-database":    map[string]any{"type": "memfile", "name": l.leases, "lfc-interval": 0},
		"server-id":         map[string]any{"type": "LL", "persist": false},
		"data-directory":    l.dir,
		"renew-timer":       4, "rebind-timer": 6, "preferred-lifetime": 15, "valid-lifetime": 20,
		"subnet6": []any{subnet},
		"loggers": []any{map[string]any{"name": "kea-dhcp6", "severity": "DEBUG", "debuglevel": 40,
			"output_options": []any{map[string]any{"output": filepath.Join(l.dir, "kea.log")}}}},
	}
	for k, v := range extra {
		d6[k] = v
	}
	data, _ := json.Marshal(map[string]any{"Dhcp6": d6})
	l.cfgPath = filepath.Join(l.dir, "kea.json")
	if err := os.WriteFile(l.cfgPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "exec", l.nsS, kea, "-t", l.cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("kea-dhcp6 -t: %v\n%s", err, out)
	}
	l.cmd = exec.Command("ip", "netns", "exec", l.nsS, kea, "-c", l.cfgPath)
	l.cmd.Env = append(os.Environ(), "KEA_PIDFILE_DIR="+l.dir, "KEA_LOCKFILE_DIR="+l.dir)
	out, _ := os.Create(filepath.Join(l.dir, "kea.out"))
	l.cmd.Stdout, l.cmd.Stderr = out, out
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l.done = make(chan struct{})
	go func() { l.cmd.Wait(); close(l.done) }()
	t.Cleanup(l.stop)
	// Clients start once Kea listens, so a lost first Solicit does not
	// make a test about something else slow.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(l.dir, "kea.log"))
		if strings.Contains(string(b), "DHCP6_STARTED") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(l.dir, "kea.log"))
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("kea log (tail):\n%s", b)
		}
	})
	return l
}

func (l *keaLab) stop() {
	select {
	case <-l.done:
		return
	default:
	}
	l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.done:
	case <-time.After(5 * time.Second):
		l.cmd.Process.Kill()
		<-l.done
	}
}

// leaseFile is Kea's memfile as it is now.
func (l *keaLab) leaseFile() string {
	b, _ := os.ReadFile(l.leases)
	return string(b)
}

// labClient is one Client in the lab's client namespace.
type labClient struct {
	c    *Client
	stop func()
}

// client starts a Client on c0 sourcing its messages from ll (added to c0
// without DAD). wrap, if not nil, wraps the socket.
func (l *keaLab) client(cfg Config, ll netip.Addr, wrap func(Conn) Conn) *labClient {
	t := l.t
	labCmd(t, "ip", "-n", l.nsC, "addr", "add", ll.String()+"/64", "dev", "c0", "nodad")
	cfg.Interface = "c0"
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ns := l.nsC
	cfg.Listen = func(ctx context.Context) (Conn, error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return nil, err
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			return nil, err
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			return nil, err
		}
		defer netns.Set(orig)
		c, err := ListenUDPFrom(ctx, "c0", ll)
		if err != nil {
			return nil, err
		}
		if wrap != nil {
			return wrap(c), nil
		}
		return c, nil
	}
	if cfg.Tune == nil {
		cfg.Tune = func(m *Machine) {
			m.SolMaxDelay = 100 * time.Millisecond
			m.RenTimeout = 500 * time.Millisecond
			m.RebTimeout = 500 * time.Millisecond
			m.RenMaxRT = 2 * time.Second
			m.RebMaxRT = 2 * time.Second
		}
	}
	c := NewClient(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return")
			}
		})
	}
	t.Cleanup(stop)
	return &labClient{c: c, stop: stop}
}
