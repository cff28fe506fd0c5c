package dhcp6srv

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/v6edge/v6edge/internal/testbed"
)

// dhcpcdClient runs dhcpcd 9 as a LAN host in the client namespace.
// dhcpcd keeps its DUID and leases in the host-wide /var/lib/dhcpcd and
// its pid file and control socket in /run; it runs in a private mount
// namespace with directories of this test bind-mounted over both, so
// nothing of the host is read or written. /etc/resolv.conf is covered by
// /etc/netns/<ns>/resolv.conf (ip netns exec mounts it) and `nohook
// resolv.conf` on top.
type dhcpcdClient struct {
	ns, dir, db, run, conf string
	events                 string // the hook writes <reason>.env here
}

func newDhcpcdClient(t *testing.T, ns string, confBody string) *dhcpcdClient {
	t.Helper()
	dir := t.TempDir()
	c := &dhcpcdClient{ns: ns, dir: dir, db: filepath.Join(dir, "db"), run: filepath.Join(dir, "run"),
		conf: filepath.Join(dir, "dhcpcd.conf"), events: filepath.Join(dir, "events")}
	for _, d := range []string{c.db, c.run, c.events} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat("/etc/netns"); err != nil {
		// Ours to create, so ours to remove (only when empty: others may
		// have added their own namespaces meanwhile).
		t.Cleanup(func() { os.Remove("/etc/netns") })
	}
	etc := filepath.Join("/etc/netns", ns)
	if _, err := os.Stat(etc); err == nil {
		t.Fatalf("%s exists already; not touching it", etc)
	}
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("# v6edge dhcp6srv test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hook := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\nenv > \""+c.events+"/$reason.env\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := "duid ll\nipv6only\nnoipv6rs\nnohook resolv.conf\nscript " + hook + "\nallowinterfaces eth0\n" +
		"option dhcp6_name_servers, dhcp6_domain_search\n" + confBody
	if err := os.WriteFile(c.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *dhcpcdClient) command(args ...string) []string {
	script := `mount --bind "$1" /var/lib/dhcpcd && mount --bind "$2" /run && shift 2 && exec dhcpcd "$@"`
	return append([]string{"ip", "netns", "exec", c.ns, "unshare", "-m", "--propagation", "private",
		"sh", "-c", script, "sh", c.db, c.run, "-f", c.conf}, args...)
}

// start runs dhcpcd in the foreground (-B) for DHCPv6 only on eth0.
func (c *dhcpcdClient) start(t *testing.T, name string, extra ...string) *peer {
	t.Helper()
	p := startPeer(t, c.dir, name, nil, c.command(append(append([]string{"-6", "-B", "-d"}, extra...), "eth0")...)...)
	t.Cleanup(func() { c.exit(t, p) })
	return p
}

// exit asks dhcpcd to exit (dhcpcd -x) and then stops the process group:
// its privilege-separation helpers outlive a kill of the main process.
func (c *dhcpcdClient) exit(t *testing.T, p *peer) {
	if p.exited() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// -6 as at start: without it dhcpcd finds no daemon to stop and starts a
	// second one instead.
	args := c.command("-6", "-x", "eth0")
	_ = execCtx(ctx, args...).Run()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	p.stop()
}

// event waits for the hook to report reason and returns its environment.
func (c *dhcpcdClient) event(t *testing.T, p *peer, reason string, d time.Duration) map[string]string {
	t.Helper()
	path := filepath.Join(c.events, reason+".env")
	waitFor(t, d, "dhcpcd event "+reason, func() bool {
		if p.exited() {
			t.Fatalf("dhcpcd exited early:\n%s", p.logText())
		}
		_, err := os.Stat(path)
		return err == nil
	})
	// The hook may still be writing: wait until the file ends with the
	// variables dhcpcd always sets last-ish, by re-reading until stable.
	var env map[string]string
	waitFor(t, 2*time.Second, "a complete "+reason+" event", func() bool {
		env = readEnv(t, path)
		return env["reason"] == reason
	})
	return env
}

func readEnv(t *testing.T, path string) map[string]string {
	env, err := testbed.ReadHookEnv(path)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestAgainstDhcpcd(t *testing.T) {
	requireRoot(t, "dhcpcd", "unshare")
	lan := newLANPair(t)
	state := t.TempDir()
	rec := &pdRecorder{}
	cfg := Config{
		Interface:  "lan0",
		ServerDUID: serverDUID,
		DNS:        []netip.Addr{netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1")},
		Domains:    []string{"lan.example"},
		Pool:       lanPool,
		PoolStart:  netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1000"),
		PoolEnd:    netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1fff"),
		PDPool:     pdPoolA,
		PDLength:   60,
		StateDir:   state,
		OnPD:       rec.OnPD,
		Listen:     listenIn(lan.router, "lan0"),
	}
	stopServer := runServer(t, NewServer(cfg))

	t.Run("a stateless client gets DNS servers and the search list", func(t *testing.T) {
		c := newDhcpcdClient(t, lan.client, "")
		p := c.start(t, "dhcpcd-inform", "--inform6")
		env := c.event(t, p, "INFORM6", 20*time.Second)
		if got := env["new_dhcp6_name_servers"]; got != "fd00:aaaa:bbbb:cc01::1" {
			t.Errorf("dhcpcd got name servers %q, want fd00:aaaa:bbbb:cc01::1", got)
		}
		if got := env["new_dhcp6_domain_search"]; got != "lan.example" {
			t.Errorf("dhcpcd got domain search %q, want lan.example", got)
		}
		c.exit(t, p)
	})

	statefulConf := "interface eth0\n\tia_na 1\n\tia_pd 2 nosuch0/0/60\n"
	c := newDhcpcdClient(t, lan.client, statefulConf)
	var addr, prefix string
	t.Run("a stateful client gets an address from the range and a /60", func(t *testing.T) {
		p := c.start(t, "dhcpcd-stateful")
		env := c.event(t, p, "BOUND6", 20*time.Second)
		addr, prefix = env["new_dhcp6_ia_na1_ia_addr1"], env["new_dhcp6_ia_pd1_prefix1"]+"/"+env["new_dhcp6_ia_pd1_prefix1_length"]
		a, err := netip.ParseAddr(addr)
		if err != nil || a.Less(cfg.PoolStart) || cfg.PoolEnd.Less(a) {
			t.Fatalf("dhcpcd got address %q, want one in %s-%s; env %v", addr, cfg.PoolStart, cfg.PoolEnd, env)
		}
		pfx, err := netip.ParsePrefix(prefix)
		if err != nil || pfx.Bits() != 60 || !pdPoolA.Contains(pfx.Addr()) {
			t.Fatalf("dhcpcd got prefix %q, want a /60 of %s", prefix, pdPoolA)
		}
		if got := env["new_dhcp6_name_servers"]; got != "fd00:aaaa:bbbb:cc01::1" {
			t.Errorf("stateful reply carried name servers %q, want fd00:aaaa:bbbb:cc01::1", got)
		}
		waitFor(t, 10*time.Second, "the address on eth0", func() bool {
			return strings.Contains(run(t, "ip", "-n", lan.client, "-6", "addr", "show", "dev", "eth0"), addr+"/128")
		})
		waitFor(t, 5*time.Second, "OnPD with the delegation", func() bool {
			d := rec.last()
			return len(d) == 1 && d[0].Prefix == pfx && d[0].Via.IsLinkLocalUnicast() && d[0].Interface == "lan0"
		})
		c.exit(t, p)
	})
	if t.Failed() {
		return
	}

	t.Run("a restarted server hands the same leases back", func(t *testing.T) {
		if err := stopServer(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		// The new server gives out a different range: only the restored
		// binding can explain getting the old address back (the hashed
		// first choice would now fall in ::2000-::2fff).
		cfg2 := cfg
		cfg2.PoolStart, cfg2.PoolEnd = netip.MustParseAddr("fd00:aaaa:bbbb:cc01::2000"), netip.MustParseAddr("fd00:aaaa:bbbb:cc01::2fff")
		runServer(t, NewServer(cfg2))
		// The client forgets its lease (keeping its DUID) and Solicits.
		leases, _ := filepath.Glob(filepath.Join(c.db, "*.lease6"))
		for _, l := range leases {
			os.Remove(l)
		}
		os.Remove(filepath.Join(c.events, "BOUND6.env"))
		p := c.start(t, "dhcpcd-again")
		env := c.event(t, p, "BOUND6", 20*time.Second)
		got := env["new_dhcp6_ia_na1_ia_addr1"]
		gotPrefix := env["new_dhcp6_ia_pd1_prefix1"] + "/" + env["new_dhcp6_ia_pd1_prefix1_length"]
		if got != addr || gotPrefix != prefix {
			t.Errorf("after the restart dhcpcd got %s and %s, want %s and %s", got, gotPrefix, addr, prefix)
		}
		c.exit(t, p)
	})
}
