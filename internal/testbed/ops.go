package testbed

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// OpsRunDaemon is RunDaemon with extra lines for the [control] table (for
// example `metrics = "[::1]:9430"`), which RunDaemon's WithControl would
// otherwise drop along with the rest of the config's [control] table.
func (l *Lab) OpsRunDaemon(ctx context.Context, bin, configTOML, controlExtra string) (*Daemon, error) {
	d, err := l.newDaemon(l.Router, bin, fmt.Sprintf("v6edge-ops-%d", l.next()))
	if err != nil {
		return nil, err
	}
	if err := d.OpsWriteConfig(configTOML, controlExtra); err != nil {
		return nil, err
	}
	return l.OpsRestartDaemon(ctx, d)
}

// OpsWriteConfig rewrites the daemon's config file with configTOML, keeping
// its socket and state_dir; controlExtra lines go into [control]. A running
// daemon reads it at the next SIGHUP or start.
func (d *Daemon) OpsWriteConfig(configTOML, controlExtra string) error {
	text := WithControl(configTOML, d.Socket, d.StateDir)
	if controlExtra != "" {
		// WithControl puts [control] last, so appended keys belong to it.
		text += strings.TrimRight(controlExtra, "\n") + "\n"
	}
	if err := os.WriteFile(d.Config, []byte(text), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// OpsRestartDaemon starts v6edge again with d's config file, socket and
// state_dir, as after a crash or a reboot of the router: the new daemon
// finds the old one's lease, DUID and LAN leases. d itself should have
// exited (Stop or Kill) before.
func (l *Lab) OpsRestartDaemon(ctx context.Context, d *Daemon) (*Daemon, error) {
	name := fmt.Sprintf("v6edge-ops-run-%d", l.next())
	p, err := l.Start(ctx, d.NS, name, d.Bin, "run", "-config", d.Config, "-log-level", "debug")
	if err != nil {
		return nil, err
	}
	nd := *d
	nd.Proc = p
	return &nd, nil
}

// OpsDhcpcd is dhcpcd 9 running as a DHCPv6 client on eth0 of a LAN host.
// Its hook script writes <reason>.env with the whole environment of each
// event into Events and appends the reason to Events/reasons.
type OpsDhcpcd struct {
	*Proc
	Events string

	lab        *Lab
	host       string
	db, rundir string
	conf       string
}

// OpsStartDhcpcd runs dhcpcd in the LAN host namespace host, DHCPv6 only on
// eth0, in the foreground. confBody is appended to a base configuration
// (DUID-LL, IPv6 only, no resolv.conf hook, our hook script, requests for
// DNS servers and search domains).
//
// dhcpcd keeps its DUID, leases, pid file and control socket in the
// host-wide /var/lib/dhcpcd and /run: it runs in a private mount namespace
// with lab directories bind-mounted over both, and `ip netns exec` covers
// /etc/resolv.conf with the namespace's own file (and `nohook resolv.conf`
// keeps dhcpcd off it anyway). Calling it again with the same name reuses
// the DUID and the saved leases, as a restarted host would.
func (l *Lab) OpsStartDhcpcd(ctx context.Context, host, name, confBody string, args ...string) (*OpsDhcpcd, error) {
	c := &OpsDhcpcd{
		lab: l, host: host,
		db: l.path(name + "-db"), rundir: l.path(name + "-run"),
		conf: l.path(name + ".conf"), Events: l.path(name + "-events"),
	}
	for _, dir := range []string{c.db, c.rundir, c.Events} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	hook := l.path(name + "-hook.sh")
	script := fmt.Sprintf("#!/bin/sh\nenv > %q/\"$reason.env.tmp\" && mv %q/\"$reason.env.tmp\" %q/\"$reason.env\"\necho \"$reason\" >> %q/reasons\n",
		c.Events, c.Events, c.Events, c.Events)
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	conf := "duid ll\nipv6only\nnohook resolv.conf\nscript " + hook + "\nallowinterfaces " + HostIface + "\n" +
		"option dhcp6_name_servers, dhcp6_domain_search\n" + confBody
	if err := os.WriteFile(c.conf, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	full := append(append([]string{"-6", "-B", "-d"}, args...), HostIface)
	p, err := l.Start(ctx, host, fmt.Sprintf("%s-%d", name, l.next()), c.command(full...)...)
	if err != nil {
		return nil, err
	}
	c.Proc = p
	return c, nil
}

func (c *OpsDhcpcd) command(args ...string) []string {
	script := `mount --bind "$1" /var/lib/dhcpcd && mount --bind "$2" /run && shift 2 && exec dhcpcd "$@"`
	return append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", c.db, c.rundir, "-f", c.conf}, args...)
}

// Ctl runs `dhcpcd <args> eth0` against the running dhcpcd, e.g. "-6",
// "-N" to renew. dhcpcd started with -6 listens on a per-family control
// socket: without "-6" the command finds no daemon and starts a new one.
func (c *OpsDhcpcd) Ctl(ctx context.Context, args ...string) (string, error) {
	return c.lab.Exec(ctx, c.host, c.command(append(args, HostIface)...)...)
}

// Exit asks dhcpcd to exit (without releasing its leases) and then stops
// the process group: its privilege-separation helpers outlive a kill of the
// main process.
func (c *OpsDhcpcd) Exit() error {
	if !c.exited() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = c.Ctl(ctx, "-6", "-x")
		_ = c.Wait(5 * time.Second)
	}
	return c.Stop()
}

// Reasons lists the hook events seen so far, oldest first.
func (c *OpsDhcpcd) Reasons() []string {
	b, err := os.ReadFile(filepath.Join(c.Events, "reasons"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// Event returns the environment of the last event with this reason, or nil
// if there was none yet.
func (c *OpsDhcpcd) Event(reason string) map[string]string {
	env, err := ReadHookEnv(filepath.Join(c.Events, reason+".env"))
	if err != nil {
		return nil
	}
	return env
}

// ReadHookEnv reads the environment a dhcpcd hook script saved with `env`
// (NAME=value lines) into a map, single quotes trimmed from the values.
func ReadHookEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = strings.Trim(v, "'")
		}
	}
	return env, nil
}

// OpsScrape fetches url from inside the namespace ns with curl (or wget)
// and returns the body.
func (l *Lab) OpsScrape(ctx context.Context, ns, url string) (string, error) {
	if _, err := exec.LookPath("curl"); err == nil {
		return l.Exec(ctx, ns, "curl", "-sSf", "--max-time", "5", url)
	}
	return l.Exec(ctx, ns, "wget", "-q", "-T", "5", "-O", "-", url)
}
