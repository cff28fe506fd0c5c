package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/dhcp6pd"
	"github.com/v6edge/v6edge/ha"
	"github.com/v6edge/v6edge/internal/netif"
	"github.com/v6edge/v6edge/internal/plan"
)

const standaloneTOML = `
[wan]
interface = "wan0"
[nat]
internal_prefix = "fd00:aaaa:bbbb:cc00::/56"
[[lan]]
interface = "lan0"
subnet = 1
`

// haTOML is standaloneTOML with a floating LAN address and a pair; %s is
// ha.mode.
const haTOML = standaloneTOML + `address = "fd00:aaaa:bbbb:cc01::1/64"
[ha]
mode = "%s"
vrid = 51
interface = "lan0"
advert_interval = "100ms"
virtual_link_local = "fe80::1"
wan_mac = "02:00:5e:00:01:33"
sync_key = "test-key"
`

// harness runs a Daemon on fakes until the test ends.
type harness struct {
	t    *testing.T
	w    *world
	d    *Daemon
	path string
	done chan error
	stop context.CancelFunc
	once sync.Once
}

func start(t *testing.T, toml string, setup ...func(*world)) *harness {
	t.Helper()
	dir, err := os.MkdirTemp("", "v6d")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	toml += fmt.Sprintf("\n[control]\nsocket = %q\nstate_dir = %q\n", filepath.Join(dir, "s.sock"), filepath.Join(dir, "state"))
	path := filepath.Join(dir, "v6edge.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var wans []string
	for _, w := range cfg.WANs {
		wans = append(wans, w.Interface)
	}
	for _, l := range cfg.LANs {
		wans = append(wans, l.Interface)
	}
	w := newWorld(wans...)
	for i, name := range wans {
		link, _ := w.links.LinkByName(name)
		_ = w.links.LinkSetHardwareAddr(link, net.HardwareAddr{0x52, 0x54, 0, 0, 0, byte(i + 1)})
	}
	for _, f := range setup {
		f(w)
	}
	d, err := New(Options{Path: path, Config: cfg, Kernel: w.kernel, Drivers: w.drivers(), Notify: w.notify,
		SyncInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, w: w, d: d, path: path, done: make(chan error, 1), stop: cancel}
	go func() { h.done <- d.Run(ctx) }()
	t.Cleanup(func() { h.shutdown() })
	h.eventually("the loop's first pass", func() bool {
		w.nat.mu.Lock()
		defer w.nat.mu.Unlock()
		return w.nat.sets > 0
	})
	return h
}

// shutdown stops the daemon and waits for Run; idempotent.
func (h *harness) shutdown() {
	h.t.Helper()
	h.once.Do(func() {
		h.stop()
		select {
		case err := <-h.done:
			if err != nil {
				h.t.Errorf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			h.t.Fatal("Run did not end within 10 s of cancel")
		}
	})
}

// eventually polls cond for up to 5 s.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *harness) client(iface string) *fakeClient {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	return h.w.clients[iface]
}

func bound(prefix string, acquired time.Time) dhcp6pd.Snapshot {
	return dhcp6pd.Snapshot{State: dhcp6pd.StateBound, Lease: &dhcp6pd.Lease{
		IAID: 1, ServerID: []byte{0, 3, 0, 1, 1, 2, 3, 4, 5, 6}, T1: time.Hour, T2: 2 * time.Hour, Acquired: acquired, Hint: 56,
		Prefixes: []dhcp6pd.Prefix{{Prefix: netip.MustParsePrefix(prefix), Preferred: 2 * time.Hour, Valid: 4 * time.Hour}},
	}}
}

func natExternal(h *harness) netip.Prefix {
	r := h.w.nat.ruleset()
	if len(r.Uplinks) == 0 {
		return netip.Prefix{}
	}
	return r.Uplinks[0].External
}

func TestLeaseFlowsToNATAndRA(t *testing.T) {
	h := start(t, standaloneTOML)
	if got := natExternal(h); got.IsValid() {
		t.Fatalf("NAT maps onto %v before any lease", got)
	}
	h.client("wan0").publish(bound("2001:db8:100::/56", time.Now()))
	h.eventually("NAT onto the delegated prefix", func() bool { return natExternal(h) == netip.MustParsePrefix("2001:db8:100::/56") })
	if _, n := h.client("wan0").lastStandby(); n != 0 {
		t.Errorf("a standalone client was told about standby %d times: it would replace its lease with the one it was handed", n)
	}

	ad := h.w.ads["lan0"]
	if got := ad.config().Prefixes; len(got) != 1 || got[0].Prefix != netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::/64") {
		t.Errorf("RA prefixes %+v, want the LAN's ULA /64", got)
	}
	wantAddr := netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::1/64")
	found := false
	for _, a := range h.w.addrs.current() {
		if a.Interface == "lan0" && a.Prefix == wantAddr && !a.NoDAD {
			found = true
		}
	}
	if !found {
		t.Errorf("addresses %+v lack %v with DAD on lan0", h.w.addrs.current(), wantAddr)
	}
	st := h.d.Status()
	if st.WAN.Prefix != "2001:db8:100::/56" || st.WAN.State != "bound" || st.NAT.External != "2001:db8:100::/56" {
		t.Errorf("status WAN %+v NAT %+v", st.WAN, st.NAT)
	}

	// A renumbering moves the NAT and is counted.
	h.client("wan0").publish(bound("2001:db8:200::/56", time.Now()))
	h.eventually("NAT onto the new prefix", func() bool { return natExternal(h) == netip.MustParsePrefix("2001:db8:200::/56") })
	h.eventually("the renumbering counted", func() bool { return h.d.Status().WAN.PrefixChanges == 1 })

	// Expiry withdraws the mapping.
	h.client("wan0").publish(dhcp6pd.Snapshot{State: dhcp6pd.StateExpired})
	h.eventually("NAT withdrawn", func() bool { return !natExternal(h).IsValid() })
}

func TestReadyOnlyAfterEveryTask(t *testing.T) {
	h := start(t, standaloneTOML, func(w *world) { w.adReady = make(chan struct{}) })
	time.Sleep(50 * time.Millisecond)
	if h.d.ready.Load() {
		t.Fatal("READY=1 before the advertiser was ready")
	}
	close(h.w.adReady)
	h.eventually("READY=1", func() bool { return h.d.ready.Load() })
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	if !slices.ContainsFunc(h.w.notified, func(s string) bool { return strings.HasPrefix(s, "READY=1") }) {
		t.Errorf("systemd told %q, want READY=1", h.w.notified)
	}
}

func TestHARolesThroughThePlan(t *testing.T) {
	h := start(t, fmt.Sprintf(haTOML, "vrrp"))
	c := h.client("wan0")
	if last, n := c.lastStandby(); n == 0 || !last.standby {
		t.Fatalf("a starting HA node's client is not in standby (%d calls, last %+v)", n, last)
	}
	floating := func() bool {
		for _, a := range h.w.addrs.current() {
			if a.NoDAD {
				return true
			}
		}
		return false
	}
	if floating() || h.w.mac.held() {
		t.Fatal("a backup holds floating addresses or the shared MAC")
	}
	if got := h.w.vrrp.cfg.Config.Addrs; !slices.Equal(got, []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1")}) {
		t.Errorf("VRRP addresses %v", got)
	}

	// The master's lease reaches this backup over the sync channel.
	acquired := time.Now().Add(-time.Minute)
	snap := bound("2001:db8:100::/56", acquired)
	payload, _ := ha.EncodeLease(syncFromLease("wan0", snap.Lease), time.Now())
	h.w.sync.in <- ha.SealSync([]byte("test-key"), uint64(time.Now().UnixNano()), payload)
	h.eventually("the backup keeps the NAT mapping ready", func() bool { return natExternal(h) == netip.MustParsePrefix("2001:db8:100::/56") })
	h.eventually("the client holds the synced lease", func() bool {
		last, _ := c.lastStandby()
		return last.standby && last.lease != nil && last.lease.Prefixes[0].Prefix == netip.MustParsePrefix("2001:db8:100::/56")
	})
	// A datagram sealed with another key is refused.
	bad := ha.SealSync([]byte("other"), uint64(time.Now().UnixNano()), payload)
	h.w.sync.in <- bad

	// Elected master: the MAC moves before addresses are applied, the client
	// may talk, the floating addresses go on without DAD, and the lease goes
	// out to the peer.
	before := len(h.w.callsSnapshot())
	h.w.vrrp.cfg.OnRole(ha.RoleMaster, "master down")
	h.eventually("master", func() bool { return h.w.mac.held() && floating() })
	calls := h.w.callsSnapshot()[before:]
	if i, j := slices.Index(calls, "mac.Hold"), slices.Index(calls, "addrs.Set"); i < 0 || j < 0 || i > j {
		t.Errorf("calls %v: want mac.Hold before addrs.Set", calls)
	}
	h.eventually("the client leaves standby with the lease", func() bool {
		last, _ := c.lastStandby()
		return !last.standby && last.lease != nil
	})
	h.eventually("the lease sent to the backup", func() bool { return h.w.sync.lastSent() != nil })
	seq, p, err := ha.OpenSync([]byte("test-key"), h.w.sync.lastSent(), 0)
	if err != nil || seq == 0 {
		t.Fatalf("sent sync does not open: %v", err)
	}
	if l, err := ha.DecodeLease(p, time.Now()); err != nil || l.Prefixes[0].Prefix != netip.MustParsePrefix("2001:db8:100::/56") {
		t.Errorf("sent lease %+v, %v", l, err)
	}
	if st := h.d.Status(); st.HA.Role != "master" || st.HA.Transitions != 1 {
		t.Errorf("status HA %+v", st.HA)
	}

	// Release is refused in a pair.
	if err := h.d.Release(); err == nil || !strings.Contains(err.Error(), "renumber the peer") {
		t.Errorf("Release in a pair = %v", err)
	}
	// Roles come from VRRP, not from the socket.
	if err := h.d.SetRole("backup"); err == nil {
		t.Error("SetRole accepted with mode vrrp")
	}

	// Stopping as master: the node resigns, the floating addresses and the
	// MAC are given up after the hand-over hold.
	t0 := time.Now()
	h.shutdown()
	if took := time.Since(t0); took < 100*time.Millisecond {
		t.Errorf("a resigning master stopped after %v, before one advert interval", took)
	}
	if h.w.mac.held() {
		t.Error("the shared MAC is still held after stop")
	}
	if len(h.w.addrs.released) == 0 || slices.ContainsFunc(h.w.addrs.current(), func(w netif.Want) bool { return w.NoDAD }) {
		t.Errorf("floating addresses not released: released %v, left %v", h.w.addrs.released, h.w.addrs.current())
	}
}

func TestExternalRoleAndLinkUpRebinds(t *testing.T) {
	h := start(t, fmt.Sprintf(haTOML, "external"))
	if err := h.d.SetRole("master"); err != nil {
		t.Fatal(err)
	}
	h.eventually("master by `v6edge ha master`", func() bool { return h.w.mac.held() })
	c := h.client("wan0")
	if c.linkUps != 0 {
		t.Fatalf("LinkChanged(up) at start: %d", c.linkUps)
	}
	h.w.links.SetCarrier("wan0", false)
	h.eventually("the loop saw the WAN go down", func() bool {
		up, seen := false, false
		_ = h.d.request(func(d *Daemon) error { up, seen = d.st.linkUp["wan0"]; return nil })
		return seen && !up
	})
	h.w.links.SetCarrier("wan0", true)
	h.eventually("a Rebind after the WAN came back", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.linkUps == 1
	})
	if err := h.d.SetRole("backup"); err != nil {
		t.Fatal(err)
	}
	h.eventually("backup gives the MAC back", func() bool { return !h.w.mac.held() })
	if st := h.d.Status(); st.HA.Role != string(plan.Backup) || !strings.Contains(st.HA.Reason, "v6edge ha backup") {
		t.Errorf("status HA %+v", st.HA)
	}
}

// TestReloadRacesControlAndClientRestarts: the config is replaced on the
// loop while the control socket's commands and the clients' socket reopens
// run on other goroutines. Under -race, any read of the config outside the
// loop is a failure.
func TestReloadRacesControlAndClientRestarts(t *testing.T) {
	h := start(t, standaloneTOML, func(w *world) {})
	c := h.client("wan0")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 25 {
				switch (i + j) % 4 {
				case 0:
					if err := h.d.Reload(); err != nil {
						t.Errorf("Reload: %v", err)
					}
				case 1:
					_ = h.d.Release()
				case 2:
					_ = h.d.SetRole("master")
				case 3:
					_ = h.d.Renew()
					if conn, err := c.cfg.Listen(context.Background()); err == nil {
						_ = conn.Close()
					}
				}
				_ = h.d.Status()
			}
		}()
	}
	// Meanwhile the file changes under the reloads, as an editor saves it
	// (a new file renamed into place).
	orig, _ := os.ReadFile(h.path)
	for i := range 10 {
		data := strings.Replace(string(orig), "subnet = 1", fmt.Sprintf("subnet = 1\ndns = [\"fd00:aaaa:bbbb:cc01::%d\"]", i+1), 1)
		tmp := h.path + ".new"
		if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, h.path); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	c.mu.Lock()
	releases, renews := c.releases, c.renews
	c.mu.Unlock()
	if releases == 0 || renews == 0 {
		t.Errorf("releases %d, renews %d: the commands did not reach the client", releases, renews)
	}
	if err := h.d.Reload(); err != nil {
		t.Fatalf("final reload: %v", err)
	}
	h.eventually("the reloaded DNS in the RA", func() bool { return len(h.w.ads["lan0"].config().RDNSS) > 0 })
}
