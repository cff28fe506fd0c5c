package ha

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/v6edge/v6edge/internal/nstest"
)

// The tests in this file build network namespaces named v6ha-<random> joined
// by a veth pair, run real VRRP peers in them (keepalived, or two Nodes) and
// clean up whatever happens. They need root and iproute2.

// schedSlack bounds how late a takeover may come in these tests. They share
// a two-CPU machine with other builds and fuzzers (load average near 20),
// where timers have been seen firing over a second late under -race. Exact
// timing is asserted in the synctest tests (node_test.go); here a takeover
// must never come before its interval (measured on the taking-over node's
// own clock, from the advert it last received) and the figures are logged.
const schedSlack = 2 * time.Second

// lab is two namespaces, a and b, with veth ends va (in a) and vb (in b).
type lab struct {
	a, b string
}

func newLab(t *testing.T) *lab {
	t.Helper()
	a, b := nstest.NewNetns(t, "v6ha-a"), nstest.NewNetns(t, "v6ha-b")
	for _, ns := range []nstest.Netns{a, b} {
		// The test owns this link: skip DAD so the link-locals are usable at
		// once (keepalived sends nothing from a tentative address).
		ns.NoDAD(t)
	}
	nstest.Veth(t, a, "va", b, "vb")
	a.IP(t, "link", "set", "va", "up")
	b.IP(t, "link", "set", "vb", "up")
	return &lab{a: a.Name, b: b.Name}
}

// inNetns runs f on a locked OS thread switched into the namespace, then
// switches back. Sockets opened there stay in that namespace.
func inNetns(t *testing.T, name string, f func() error) error {
	t.Helper()
	err := nstest.DoNamed(name, f)
	if errors.Is(err, nstest.ErrThreadRetired) {
		t.Fatalf("switching back from %s: %v", name, err)
	}
	return err
}

// listenIn opens a RawConn on ifname inside namespace ns, waiting (bounded)
// for a usable link-local.
func listenIn(t *testing.T, ns, ifname string) *RawConn {
	t.Helper()
	var c *RawConn
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := inNetns(t, ns, func() error {
			src, err := OwnLinkLocal(ifname)
			if err != nil {
				return err
			}
			c, err = ListenFrom(ifname, src)
			return err
		})
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("listening in %s on %s: %v", ns, ifname, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor polls cond every 10 ms until it holds or d passes.
// diag, when given, describes the state on a timeout.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool, diag ...func() string) {
	t.Helper()
	nstest.Eventually(t, d, 10*time.Millisecond, what, cond, diag...)
}

// mutableConn wraps a Conn so that a test can silence it (a crashed node)
// and see when it last sent.
type mutableConn struct {
	Conn
	mute     atomic.Bool
	lastSent atomic.Int64 // UnixNano
}

func (c *mutableConn) WriteTo(b []byte) error {
	if c.mute.Load() {
		return nil
	}
	err := c.Conn.WriteTo(b)
	if err == nil {
		c.lastSent.Store(time.Now().UnixNano())
	}
	return err
}

// roleWatch records the wall-clock time of each role change of a Node.
type roleWatch struct {
	mu      sync.Mutex
	role    Role
	changes []struct {
		role Role
		at   time.Time
	}
}

func (w *roleWatch) onRole(r Role, _ string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.role = r
	w.changes = append(w.changes, struct {
		role Role
		at   time.Time
	}{r, time.Now()})
}

func (w *roleWatch) is(r Role) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.role == r
}

// lastChange returns when the node last became r.
func (w *roleWatch) lastChange(r Role) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.changes) - 1; i >= 0; i-- {
		if w.changes[i].role == r {
			return w.changes[i].at
		}
	}
	return time.Time{}
}

type liveNode struct {
	*Node
	conn  *mutableConn
	roles *roleWatch
	stop  func()
}

func startLiveNode(t *testing.T, ns, ifname string, cfg Config) *liveNode {
	t.Helper()
	c := &mutableConn{Conn: listenIn(t, ns, ifname)}
	roles := &roleWatch{}
	n := NewNode(NodeConfig{
		Interface: ifname,
		Config:    cfg,
		Logger:    testLogger(t),
		// Do what the daemon does: hold the virtual addresses (nodad) while
		// master, and announce them from the namespace.
		OnRole: func(r Role, reason string) {
			roles.onRole(r, reason)
			if err := inNetns(t, ns, func() error { return setVirtualAddrs(ifname, cfg.Addrs, r == RoleMaster) }); err != nil {
				t.Errorf("%s: virtual addresses for %v: %v", ns, r, err)
			}
		},
		Announce: func(addrs []netip.Addr) error {
			return inNetns(t, ns, func() error { return Announce(ifname, addrs) })
		},
		Listen: func() (Conn, error) { return c, nil },
	})
	stop := nstest.RunTask(t, context.Background(), "Node", n.Run)
	return &liveNode{Node: n, conn: c, roles: roles, stop: stop}
}

// watchNAs collects the Neighbor Advertisements that arrive on ifname in
// namespace ns until the test ends.
func watchNAs(t *testing.T, ns, ifname string) func() []*ndp.NeighborAdvertisement {
	t.Helper()
	var c *ndp.Conn
	if err := inNetns(t, ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c, _, err = ndp.Listen(ifi, ndp.Unspecified)
		return err
	}); err != nil {
		t.Fatalf("listening for NDP in %s: %v", ns, err)
	}
	var (
		mu  sync.Mutex
		got []*ndp.NeighborAdvertisement
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, _, _, err := c.ReadFrom()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if na, ok := m.(*ndp.NeighborAdvertisement); ok && err == nil {
				mu.Lock()
				got = append(got, na)
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return func() []*ndp.NeighborAdvertisement {
		mu.Lock()
		defer mu.Unlock()
		return append([]*ndp.NeighborAdvertisement(nil), got...)
	}
}

// setVirtualAddrs adds (nodad) or removes the virtual addresses on ifname
// in the current namespace.
func setVirtualAddrs(ifname string, addrs []netip.Addr, add bool) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		na := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
		if add {
			err = netlink.AddrReplace(link, na)
		} else if err = netlink.AddrDel(link, na); errors.Is(err, unix.EADDRNOTAVAIL) {
			err = nil
		}
		if err != nil {
			return fmt.Errorf("%v: %w", a, err)
		}
	}
	return nil
}

func vrrpConfig(priority uint8, interval time.Duration) Config {
	return Config{
		VRID: 51, Priority: priority, AdvertInterval: interval, Preempt: true,
		Addrs: []netip.Addr{vll, lanRtr},
	}
}

func TestNodePairOnVeth(t *testing.T) {
	nstest.RequireRoot(t)
	for _, interval := range []time.Duration{100 * time.Millisecond, time.Second} {
		t.Run(fmt.Sprintf("two nodes at %v elect one master and hand over", interval), func(t *testing.T) {
			l := newLab(t)
			a := startLiveNode(t, l.a, "va", vrrpConfig(200, interval))
			b := startLiveNode(t, l.b, "vb", vrrpConfig(100, interval))
			bm := NewMachine(vrrpConfig(100, interval), nil)
			mdi, skew := bm.MasterDownInterval(), bm.SkewTime()

			waitFor(t, 3*mdi+time.Second, "a to become master", func() bool { return a.roles.is(RoleMaster) })
			waitFor(t, 3*interval+schedSlack, "b to see a's adverts", func() bool { return b.Status().AdvertsReceived >= 2 })
			if !b.roles.is(RoleBackup) || b.Status().Master != a.conn.LocalAddr() {
				t.Fatalf("b is %+v, want backup following %v", b.Status(), a.conn.LocalAddr())
			}

			nas := watchNAs(t, l.a, "va")
			var bMAC net.HardwareAddr
			if err := inNetns(t, l.b, func() error {
				ifi, err := net.InterfaceByName("vb")
				if ifi != nil {
					bMAC = ifi.HardwareAddr
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}

			// Crash: a falls silent without a priority 0 advert.
			a.conn.mute.Store(true)
			bStatus := func() string { return fmt.Sprintf("(now %v, b %+v)", time.Now(), b.Status()) }
			waitFor(t, interval+mdi+schedSlack, "b to take over from a silent a", func() bool { return b.roles.is(RoleMaster) }, bStatus)
			became := b.roles.lastChange(RoleMaster)
			took := became.Sub(b.Status().LastAdvert)
			t.Logf("interval %v: takeover %v after the last advert b received from a crashed master, %v after a last sent (Master_Down_Interval %v)",
				interval, took, became.Sub(time.Unix(0, a.conn.lastSent.Load())), mdi)
			if took < mdi || took > mdi+schedSlack {
				t.Errorf("takeover after %v, want Master_Down_Interval %v (+%v scheduling slack)", took, mdi, schedSlack)
			}

			// The new master repoints the hosts' neighbor caches (RFC 5798
			// §6.4.1): an unsolicited NA per virtual address, from its MAC.
			waitFor(t, 2*time.Second, "b's unsolicited NAs", func() bool {
				seen := map[netip.Addr]bool{}
				for _, na := range nas() {
					if na.Router && na.Override && !na.Solicited && len(na.Options) == 1 {
						if lla, ok := na.Options[0].(*ndp.LinkLayerAddress); ok && bytes.Equal(lla.Addr, bMAC) {
							seen[na.TargetAddress] = true
						}
					}
				}
				return seen[vll] && seen[lanRtr]
			})

			// Split brain: a never stopped being master. Once its adverts get
			// through again, b (lower priority) steps down at the first one.
			healed := time.Now()
			a.conn.mute.Store(false)
			waitFor(t, 2*interval+schedSlack, "b to step down", func() bool { return b.roles.is(RoleBackup) }, bStatus)
			t.Logf("interval %v: split brain resolved %v after the link healed", interval, b.roles.lastChange(RoleBackup).Sub(healed))

			// Graceful stop: priority 0, b takes over after Skew_Time.
			waitFor(t, 3*interval+schedSlack, "b to follow a again", func() bool { return b.Status().Master == a.conn.LocalAddr() }, bStatus)
			stopped := time.Now()
			a.stop()
			waitFor(t, mdi+schedSlack, "b to take over from a stopped a", func() bool { return b.roles.is(RoleMaster) }, bStatus)
			became = b.roles.lastChange(RoleMaster)
			took = became.Sub(b.Status().LastAdvert)
			t.Logf("interval %v: takeover %v after the priority 0 advert, %v after a was told to stop (Skew_Time %v)",
				interval, took, became.Sub(stopped), skew)
			if took < skew || took > skew+schedSlack {
				t.Errorf("takeover after %v, want about Skew_Time %v", took, skew)
			}
			if s := b.Status(); len(s.Errors) != 0 {
				t.Errorf("b counted errors %v, want none", s.Errors)
			}
		})
	}
}

// keepalived runs keepalived (vrrp_version 3) in namespace ns on ifname
// with its own config, pid files and a notify script that appends each
// state to a file.
type keepalived struct {
	dir   string
	cmd   *exec.Cmd
	log   *nstest.SyncBuffer
	state string // the notify file
}

func startKeepalived(t *testing.T, ns, ifname string, priority int, advertInt string) *keepalived {
	t.Helper()
	dir := t.TempDir()
	k := &keepalived{dir: dir, log: &nstest.SyncBuffer{}, state: filepath.Join(dir, "state")}
	notify := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(notify, []byte("#!/bin/sh\necho \"$3\" >> "+k.state+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`global_defs {
	router_id v6ha-test
	vrrp_version 3
	script_user root
	enable_script_security
}
vrrp_instance VI {
	state BACKUP
	interface %s
	virtual_router_id 51
	priority %d
	advert_int %s
	notify %s
	virtual_ipaddress {
		%s/64
		%s/64
	}
}
`, ifname, priority, advertInt, notify, vll, lanRtr)
	confPath := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	k.cmd = exec.Command("ip", "netns", "exec", ns, "keepalived",
		"-n", "-l", "-D", "-P", "-R", "-f", confPath,
		"-p", filepath.Join(dir, "keepalived.pid"),
		"-r", filepath.Join(dir, "vrrp.pid"),
		"-c", filepath.Join(dir, "checkers.pid"))
	k.cmd.Stdout, k.cmd.Stderr = k.log, k.log
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("starting keepalived: %v", err)
	}
	t.Cleanup(func() {
		k.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { k.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			k.cmd.Process.Kill()
			<-done
		}
		// -R: the VRRP child does not outlive its parent, but make sure.
		if pid, err := k.pid("vrrp.pid"); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("keepalived log:\n%s", k.log.String())
		}
	})
	return k
}

func (k *keepalived) pid(file string) (int, error) {
	b, err := os.ReadFile(filepath.Join(k.dir, file))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// states returns the states the notify script recorded, in order.
func (k *keepalived) states() []string {
	b, _ := os.ReadFile(k.state)
	return strings.Fields(string(b))
}

// waitState waits up to d for keepalived's notify script to report state,
// the latest of the states it recorded.
func (k *keepalived) waitState(t *testing.T, d time.Duration, state string) {
	t.Helper()
	waitFor(t, d, "keepalived to report "+state, func() bool {
		st := k.states()
		return len(st) > 0 && st[len(st)-1] == state
	})
}

// keepalivedMasterWithOurBackup starts keepalived at priority 200 and,
// once it is master, our node at 100, and waits until our node has heard
// three of keepalived's adverts.
func keepalivedMasterWithOurBackup(t *testing.T, interval time.Duration) (*keepalived, *liveNode) {
	t.Helper()
	l := newLab(t)
	k := startKeepalived(t, l.a, "va", 200, "0.1")
	// Let keepalived win its own election first; started together, our
	// node may become master before keepalived sends anything, and then
	// step down (correctly) when keepalived preempts it.
	k.waitState(t, 5*time.Second, "MASTER")
	n := startLiveNode(t, l.b, "vb", vrrpConfig(100, interval))
	waitFor(t, 5*time.Second, "keepalived adverts to reach our node", func() bool { return n.Status().AdvertsReceived >= 3 })
	return k, n
}

func TestNodeWithKeepalived(t *testing.T) {
	nstest.RequireRoot(t, "keepalived")
	const interval = 100 * time.Millisecond

	t.Run("a higher priority keepalived is master and our node follows it, then takes over when it dies", func(t *testing.T) {
		k, n := keepalivedMasterWithOurBackup(t, interval)
		s := n.Status()
		if s.Role != RoleBackup || s.AdvertsSent != 0 {
			t.Fatalf("our node: %+v, want a silent backup", s)
		}
		if len(s.Errors) != 0 {
			t.Errorf("our node counted errors %v on keepalived's adverts, want none", s.Errors)
		}

		// SIGKILL keepalived's VRRP process: no priority 0 advert.
		pid, err := k.pid("vrrp.pid")
		if err != nil {
			t.Fatalf("keepalived VRRP pid: %v", err)
		}
		lastSeen := n.Status().AdvertsReceived
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		mdi := NewMachine(vrrpConfig(100, interval), nil).MasterDownInterval()
		waitFor(t, mdi+schedSlack+time.Second, "our node to take over", func() bool { return n.roles.is(RoleMaster) })
		became := n.roles.lastChange(RoleMaster)
		took := became.Sub(n.Status().LastAdvert)
		t.Logf("keepalived killed: our node master %v after its last advert, %v after the kill (Master_Down_Interval %v, %d adverts seen)",
			took, became.Sub(killed), mdi, lastSeen)
		if took < mdi || took > mdi+schedSlack {
			t.Errorf("takeover %v after keepalived's last advert, want Master_Down_Interval %v (+%v slack)", took, mdi, schedSlack)
		}
	})

	t.Run("a keepalived master that stops gracefully hands over after our Skew_Time", func(t *testing.T) {
		k, n := keepalivedMasterWithOurBackup(t, interval)
		// SIGTERM: keepalived sends priority 0 ("sent 0 priority").
		if err := k.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		m := NewMachine(vrrpConfig(100, interval), nil)
		waitFor(t, m.MasterDownInterval()+schedSlack+time.Second, "our node to take over", func() bool { return n.roles.is(RoleMaster) })
		took := n.roles.lastChange(RoleMaster).Sub(n.Status().LastAdvert)
		t.Logf("keepalived stopped: our node master %v after its priority 0 advert (Skew_Time %v)", took, m.SkewTime())
		if took < m.SkewTime() || took > m.SkewTime()+schedSlack {
			t.Errorf("takeover %v after the priority 0 advert, want Skew_Time %v (+%v slack)", took, m.SkewTime(), schedSlack)
		}
	})

	t.Run("a lower priority keepalived stays backup behind our master", func(t *testing.T) {
		l := newLab(t)
		n := startLiveNode(t, l.b, "vb", vrrpConfig(200, interval))
		waitFor(t, 2*time.Second+schedSlack, "our node to become master", func() bool { return n.roles.is(RoleMaster) })
		k := startKeepalived(t, l.a, "va", 100, "0.1")
		k.waitState(t, 5*time.Second, "BACKUP")
		// Give keepalived several of its Master_Down_Intervals to go wrong.
		before := n.Status().AdvertsReceived
		time.Sleep(time.Second)
		if st := k.states(); slices.Contains(st, "MASTER") {
			t.Errorf("keepalived states %v: it became master behind a higher priority master", st)
		}
		if s := n.Status(); s.Role != RoleMaster || s.AdvertsReceived != before {
			t.Errorf("our node %+v: want master, and no adverts from a backup keepalived", s)
		}
		klog := k.log.String()
		if !strings.Contains(klog, "Entering BACKUP STATE") {
			t.Errorf("keepalived log does not say it entered BACKUP")
		}
		for _, complaint := range []string{"checksum", "ip number count", "address list", "interval mismatch"} {
			if strings.Contains(strings.ToLower(klog), complaint) {
				t.Errorf("keepalived complains about our adverts (%q)", complaint)
			}
		}

		// Our graceful stop hands over to keepalived after its Skew_Time.
		n.stop()
		k.waitState(t, 2*time.Second+schedSlack, "MASTER")
	})
}

// testLogger logs through t when V6HA_DEBUG is set, else discards.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("V6HA_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestSyncOverLink(t *testing.T) {
	nstest.RequireRoot(t)
	l := newLab(t)
	listen := func(ns, ifname string) *SyncConn {
		var c *SyncConn
		if err := inNetns(t, ns, func() (err error) { c, err = ListenSync(ifname); return err }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	master, backup := listen(l.a, "va"), listen(l.b, "vb")

	t.Run("the backup opens what the master sealed, once", func(t *testing.T) {
		seq := uint64(time.Now().UnixNano())
		// The first datagrams can go out while the link-local is still being
		// set up; resend until one arrives, as the daemon does with every
		// lease change and periodically.
		got := make(chan []byte, 1)
		go func() {
			buf := make([]byte, 65536)
			for {
				n, _, err := backup.Receive(buf)
				if errors.Is(err, ErrSyncOffLink) {
					continue
				}
				if err != nil {
					return
				}
				got <- append([]byte(nil), buf[:n]...)
				return
			}
		}()
		msg := SealSync(syncKey, seq, []byte(leaseJSON))
		var received []byte
		waitFor(t, 5*time.Second, "the sync datagram to arrive", func() bool {
			select {
			case received = <-got:
				return true
			default:
				if err := master.Send(msg); err != nil {
					t.Logf("send: %v", err)
				}
				return false
			}
		})
		gotSeq, payload, err := OpenSync(syncKey, received, seq-1)
		if err != nil || gotSeq != seq || string(payload) != leaseJSON {
			t.Fatalf("OpenSync = %d, %q, %v; want %d, the lease", gotSeq, payload, err, seq)
		}
		if _, _, err := OpenSync(syncKey, received, gotSeq); !errors.Is(err, ErrSyncReplay) {
			t.Errorf("opening it again: %v, want a replay error", err)
		}
	})
}

func TestOwnLinkLocal(t *testing.T) {
	nstest.RequireRoot(t)
	l := newLab(t)
	var kernelLL netip.Addr
	waitFor(t, 5*time.Second, "the kernel's link-local on va", func() bool {
		err := inNetns(t, l.a, func() (err error) { kernelLL, err = OwnLinkLocal("va"); return err })
		return err == nil
	})
	nstest.Run(t, "ip", "-n", l.a, "addr", "add", "fe80::1/64", "dev", "va", "nodad")
	nstest.Run(t, "ip", "-n", l.a, "addr", "add", "fe80::5/64", "dev", "va")
	tests := []struct {
		name    string
		exclude []netip.Addr
		want    []netip.Addr // any of these
	}{
		{"a virtual link-local added with nodad is passed over", nil, []netip.Addr{kernelLL, netip.MustParseAddr("fe80::5")}},
		{"excluded addresses are never chosen", []netip.Addr{kernelLL, netip.MustParseAddr("fe80::5")}, []netip.Addr{vll}},
		{"only the kernel's address is left when the others are excluded", []netip.Addr{vll, netip.MustParseAddr("fe80::5")}, []netip.Addr{kernelLL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got netip.Addr
			if err := inNetns(t, l.a, func() (err error) { got, err = OwnLinkLocal("va", tt.exclude...); return err }); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(tt.want, got) {
				t.Errorf("OwnLinkLocal = %v, want one of %v", got, tt.want)
			}
		})
	}
	t.Run("a link whose only link-local is tentative has none yet", func(t *testing.T) {
		nstest.Run(t, "ip", "netns", "exec", l.b, "sysctl", "-qw", "net.ipv6.conf.vb.accept_dad=1", "net.ipv6.conf.vb.dad_transmits=3")
		nstest.Run(t, "ip", "-n", l.b, "addr", "flush", "dev", "vb", "scope", "link")
		nstest.Run(t, "ip", "-n", l.b, "addr", "add", "fe80::77/64", "dev", "vb")
		err := inNetns(t, l.b, func() error { _, err := OwnLinkLocal("vb"); return err })
		if !errors.Is(err, ErrNoLinkLocal) {
			t.Errorf("OwnLinkLocal = %v, want ErrNoLinkLocal while fe80::77 is tentative", err)
		}
	})
}
