package dhcp6pd

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/nstest"
)

// keaLab is a kea-dhcp6 in one network namespace and a veth into a client
// namespace, for the lab tests of issue 15 (TestKea has its own, older
// set-up). Client sockets bind to fixed link-locals (added with nodad),
// so several clients can share the link, each getting its own Replies.
type keaLab struct {
	t        *testing.T
	nsS, nsC nstest.Netns
	dir      string
	leases   string
	cfgPath  string
	cmd      *exec.Cmd
	done     chan struct{}
}

// newKeaLab starts Kea with subnet as the one subnet6 entry (its
// "interface" is filled in) and extra merged into Dhcp6.
func newKeaLab(t *testing.T, subnet map[string]any, extra map[string]any) *keaLab {
	nstest.RequireRoot(t)
	kea := nstest.Program(t, "kea-dhcp6")
	suffix := nstest.Suffix()
	l := &keaLab{t: t, nsS: nstest.NewNamedNetns(t, "v6lab-"+suffix+"-s"), nsC: nstest.NewNamedNetns(t, "v6lab-"+suffix+"-c"), dir: t.TempDir()}
	l.nsS.Sysctl(t, "net.ipv6.conf.default.accept_dad=0")
	nstest.Veth(t, l.nsS, "s0", l.nsC, "c0")
	l.nsS.IP(t, "link", "set", "s0", "up")
	l.nsC.IP(t, "link", "set", "c0", "up")

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
	if out, err := exec.Command("ip", "netns", "exec", l.nsS.Name, kea, "-t", l.cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("kea-dhcp6 -t: %v\n%s", err, out)
	}
	l.cmd = exec.Command("ip", "netns", "exec", l.nsS.Name, kea, "-c", l.cfgPath)
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
	l.nsC.IP(t, "addr", "add", ll.String()+"/64", "dev", "c0", "nodad")
	cfg.Interface = "c0"
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if wrap == nil {
		wrap = func(c Conn) Conn { return c }
	}
	cfg.Listen = listenIn(l.nsC, wrap, func(ctx context.Context) (Conn, error) { return ListenUDPFrom(ctx, "c0", ll) })
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
