package dhcp6pd

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"

	"github.com/v6edge/v6edge/internal/nstest"
)

// countingConn records the type of every message the client sends.
type countingConn struct {
	Conn
	mu    sync.Mutex
	types []dhcpv6.MessageType
}

func (c *countingConn) WriteTo(b []byte, to netip.AddrPort) error {
	if len(b) > 0 {
		c.mu.Lock()
		c.types = append(c.types, dhcpv6.MessageType(b[0]))
		c.mu.Unlock()
	}
	return c.Conn.WriteTo(b, to)
}

func (c *countingConn) count(t dhcpv6.MessageType) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, x := range c.types {
		if x == t {
			n++
		}
	}
	return n
}

// listenIn opens the client socket with listen inside network namespace
// ns: the socket stays in the namespace it was created in, so the thread
// switches in, binds, and switches back. wrap wraps the socket.
func listenIn(ns nstest.Netns, wrap func(Conn) Conn, listen func(context.Context) (Conn, error)) func(ctx context.Context) (Conn, error) {
	return func(ctx context.Context) (Conn, error) {
		var c Conn
		if err := nstest.Do(ns, func() (err error) { c, err = listen(ctx); return err }); err != nil {
			return nil, err
		}
		return wrap(c), nil
	}
}

// TestKea runs the Client against a real kea-dhcp6 across a veth pair
// between two fresh network namespaces.
func TestKea(t *testing.T) {
	nstest.RequireRoot(t)
	kea := nstest.Program(t, "kea-dhcp6")
	nsS, nsC := nstest.NewNetns(t, "v6pd-s"), nstest.NewNetns(t, "v6pd-c")
	// The server side skips DAD so Kea finds a usable link-local at once;
	// the client side does DAD, so ListenUDP must wait for it.
	nsS.Sysctl(t, "net.ipv6.conf.default.accept_dad=0")
	mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x01, 0x33}
	nstest.Veth(t, nsS, "s0", nsC, "c0")
	nsC.IP(t, "link", "set", "c0", "address", mac.String())
	nsS.IP(t, "link", "set", "s0", "up")
	nsC.IP(t, "link", "set", "c0", "up")

	dir := t.TempDir()
	leases := filepath.Join(dir, "leases.csv")
	cfg := map[string]any{"Dhcp6": map[string]any{
		"interfaces-config": map[string]any{"interfaces": []string{"s0"}},
		"lease-database":    map[string]any{"type": "memfile", "name": leases, "lfc-interval": 0},
		"server-id":         map[string]any{"type": "LL", "persist": false},
		"data-directory":    dir,
		"renew-timer":       4, "rebind-timer": 6, "preferred-lifetime": 15, "valid-lifetime": 20,
		"subnet6": []any{map[string]any{
			"subnet": "2001:db8::/32", "interface": "s0", "rapid-commit": true,
			"pd-pools": []any{map[string]any{"prefix": "2001:db8:100::", "prefix-len": 40, "delegated-len": 56}},
		}},
		"loggers": []any{map[string]any{"name": "kea-dhcp6", "severity": "INFO",
			"output_options": []any{map[string]any{"output": filepath.Join(dir, "kea.log")}}}},
	}}
	data, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "kea.json")
	if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "exec", nsS.Name, kea, "-t", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("kea-dhcp6 -t: %v\n%s", err, out)
	}
	keaCmd := exec.Command("ip", "netns", "exec", nsS.Name, kea, "-c", cfgPath)
	keaCmd.Env = append(os.Environ(), "KEA_PIDFILE_DIR="+dir, "KEA_LOCKFILE_DIR="+dir)
	keaOut, _ := os.Create(filepath.Join(dir, "kea.out"))
	keaCmd.Stdout, keaCmd.Stderr = keaOut, keaOut
	if err := keaCmd.Start(); err != nil {
		t.Fatal(err)
	}
	keaDone := make(chan struct{})
	go func() { keaCmd.Wait(); close(keaDone) }()
	stopKea := func() {
		select {
		case <-keaDone:
			return
		default:
		}
		keaCmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-keaDone:
		case <-time.After(5 * time.Second):
			keaCmd.Process.Kill()
			<-keaDone
		}
	}
	t.Cleanup(stopKea)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "kea.log"))
			t.Logf("kea log:\n%s", b)
		}
	})

	stateDir := filepath.Join(dir, "state")
	type started struct {
		c     *Client
		cc    *countingConn
		stop  func()
		mu    sync.Mutex
		notes []Snapshot
	}
	start := func(iaid uint32, rapid bool) *started {
		cc := &countingConn{}
		st := &started{cc: cc}
		c := NewClient(Config{
			Interface:    "c0",
			DUID:         DUIDLL(mac),
			IAID:         iaid,
			PrefixLength: 56,
			RapidCommit:  rapid,
			StateDir:     stateDir,
			Logger:       testLogger(t),
			Notify: func(s Snapshot) {
				st.mu.Lock()
				st.notes = append(st.notes, s)
				st.mu.Unlock()
			},
			Listen: listenIn(nsC, func(c Conn) Conn { cc.Conn = c; return cc },
				func(ctx context.Context) (Conn, error) { return ListenUDP(ctx, "c0") }),
			Tune: func(m *Machine) {
				m.SolMaxDelay = 100 * time.Millisecond
				m.RenTimeout = 500 * time.Millisecond
				m.RebTimeout = 500 * time.Millisecond
				m.RenMaxRT = 2 * time.Second
				m.RebMaxRT = 2 * time.Second
			},
		})
		stop := nstest.RunTask(t, context.Background(), "Client", c.Run)
		st.c, st.stop = c, stop
		return st
	}
	pool := netip.MustParsePrefix("2001:db8:100::/40")

	first1 := start(1, false)
	c, cc, stop := first1.c, first1.cc, first1.stop
	waitFor(t, "bound to a prefix from Kea", 20*time.Second, func() bool { return c.Snapshot().State == StateBound })
	first := c.Snapshot().Lease
	p, _ := first.Chosen(56, time.Now())
	if p.Prefix.Bits() != 56 || !pool.Contains(p.Prefix.Addr()) {
		t.Fatalf("bound to %s, want a /56 from %s", p.Prefix, pool)
	}
	if first.T1 != 4*time.Second || first.T2 != 6*time.Second {
		t.Errorf("T1 %s T2 %s, want 4s 6s", first.T1, first.T2)
	}
	t.Logf("bound to %s", p.Prefix)
	duid := "00:03:00:01:02:00:5e:00:01:33"
	waitFor(t, "the lease in Kea's lease file", 5*time.Second, func() bool {
		b, _ := os.ReadFile(leases)
		return strings.Contains(string(b), duid) && strings.Contains(string(b), p.Prefix.Addr().String())
	})

	waitFor(t, "a Renew at T1 keeping the prefix", 10*time.Second, func() bool {
		s := c.Snapshot()
		return cc.count(dhcpv6.MessageTypeRenew) > 0 && s.State == StateBound && s.Lease.Acquired.After(first.Acquired)
	})
	if q, _ := c.Snapshot().Lease.Chosen(56, time.Now()); q.Prefix != p.Prefix {
		t.Fatalf("Renew changed the prefix %s -> %s", p.Prefix, q.Prefix)
	}
	if n := cc.count(dhcpv6.MessageTypeRequest); n != 1 {
		t.Errorf("%d Requests without rapid commit, want 1", n)
	}
	stop()

	// Rapid commit (RFC 8415 §18.2.1, Kea's subnet-level rapid-commit):
	// a second IA_PD binds with Solicit and Reply only, then is released.
	rapid := start(2, true)
	waitFor(t, "bound by rapid commit", 10*time.Second, func() bool { return rapid.c.Snapshot().State == StateBound })
	if n := rapid.cc.count(dhcpv6.MessageTypeRequest); n != 0 {
		t.Errorf("rapid commit sent %d Requests, want none", n)
	}
	rp, _ := rapid.c.Snapshot().Lease.Chosen(56, time.Now())
	if rp.Prefix == p.Prefix || !pool.Contains(rp.Prefix.Addr()) {
		t.Errorf("IAID 2 got %s (IAID 1 has %s)", rp.Prefix, p.Prefix)
	}
	rapid.c.Release()
	waitFor(t, "released", 5*time.Second, func() bool {
		s := rapid.c.Snapshot()
		return s.State == StateReleased && s.Lease == nil && rapid.cc.count(dhcpv6.MessageTypeRelease) > 0
	})
	waitFor(t, "the released lease removed from disk", 2*time.Second, func() bool {
		l, err := LoadLease(stateDir, "c0", 2)
		return l == nil && err == nil
	})
	rapid.stop()

	restarted := start(1, false)
	c2, cc2 := restarted.c, restarted.cc
	waitFor(t, "bound again from the saved lease", 10*time.Second, func() bool {
		return c2.Snapshot().State == StateBound && cc2.count(dhcpv6.MessageTypeRebind) > 0
	})
	restarted.mu.Lock()
	for i, n := range restarted.notes {
		if n.Lease == nil {
			t.Errorf("snapshot %d during the restart (state %s) had no lease: NAT and RA would flap", i, n.State)
		}
	}
	restarted.mu.Unlock()
	if q, _ := c2.Snapshot().Lease.Chosen(56, time.Now()); q.Prefix != p.Prefix {
		t.Fatalf("restart changed the prefix %s -> %s", p.Prefix, q.Prefix)
	}
	if n := cc2.count(dhcpv6.MessageTypeSolicit); n != 0 {
		t.Fatalf("restart sent %d Solicits, want none", n)
	}

	stopKea()
	waitFor(t, "Rebind after Kea stopped", 15*time.Second, func() bool { return cc2.count(dhcpv6.MessageTypeRebind) > 1 })
	waitFor(t, "the lease withdrawn at expiry", 25*time.Second, func() bool { return c2.Snapshot().Lease == nil })
	if s := c2.Snapshot(); s.State != StateExpired && s.State != StateSoliciting {
		t.Errorf("state %s after expiry, want expired or soliciting", s.State)
	}
	waitFor(t, "the expired lease removed from disk", 2*time.Second, func() bool {
		l, err := LoadLease(stateDir, "c0", 1)
		return l == nil && err == nil
	})
}

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
