package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PairIncOptions configures one node of the incumbent HA pair: keepalived
// (VRRPv3) whose notify scripts move the shared WAN MAC and start or stop
// dhcpcd (with the NETMAP hook) and radvd, the way operators script it.
type PairIncOptions struct {
	VRID     int
	Priority int
	Advert   time.Duration // keepalived advert_int; VRRPv3 takes fractions of a second
	// SharedMAC is the WAN MAC the master takes, so that dhcpcd's DUID-LL
	// (and thus Kea's binding) is the same on either node. OwnMAC is the
	// node's own WAN MAC, restored when it is backup.
	SharedMAC, OwnMAC net.HardwareAddr
	// VirtualAddrs are keepalived's virtual_ipaddress entries on lan0,
	// e.g. "fe80::1/64".
	VirtualAddrs []string
	// RASource, when valid, is radvd's AdvRASrcAddress: the address it
	// sends RAs from once lan0 holds it (the virtual link-local).
	RASource netip.Addr
}

func pairIncRASrc(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return fmt.Sprintf("\tAdvRASrcAddress {\n\t\t%s;\n\t};\n", a)
}

// PairIncNode is one running node of the incumbent HA pair.
type PairIncNode struct {
	Keepalived *Proc
	NS         string // the router namespace
	Dir        string // the node's files: configs, pid files, logs
}

// pairIncNotify is the notify script keepalived runs with "master",
// "backup" or "fault". dhcpcd runs in a private mount namespace over the
// node's own /var/lib/dhcpcd and /run (see StartDhcpcd) and both daemons
// are started in a session of their own, so keepalived's exit leaves them
// running as it would on a real box; their pids go to files in DIR.
const pairIncNotify = `#!/bin/sh
# keepalived notify script: the master owns the shared WAN MAC, the PD
# client with its NETMAP hook, and radvd on the LAN.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
D=DIR
exec >>"$D/notify.log" 2>&1
echo "$(date +%s.%N) notify $1"
stopd() {
	[ -f "$D/$1.pid" ] && kill "$(cat "$D/$1.pid")" 2>/dev/null
	rm -f "$D/$1.pid"
}
setmac() {
	[ "$(cat /sys/class/net/WAN/address)" = "$1" ] && return 0
	ip link set WAN down && ip link set WAN address "$1" && ip link set WAN up
}
case "$1" in
master)
	setmac SHARED
	stopd dhcpcd
	stopd radvd
	setsid unshare -m --propagation private sh -c 'mount --bind "$1" /var/lib/dhcpcd && mount --bind "$2" /run && exec dhcpcd -f "$3" -6 -B WAN' \
		sh "$D/dhcpcd-db" "$D/dhcpcd-run" "$D/dhcpcd.conf" >>"$D/dhcpcd.log" 2>&1 </dev/null &
	echo $! >"$D/dhcpcd.pid"
	setsid radvd -n -m stderr -C "$D/radvd.conf" -p "$D/radvd-own.pid" >>"$D/radvd.log" 2>&1 </dev/null &
	echo $! >"$D/radvd.pid"
	;;
backup|fault)
	stopd radvd
	stopd dhcpcd
	nft delete table ip6 incumbent 2>/dev/null
	setmac OWN
	;;
esac
echo "$(date +%s.%N) notify $1 done"
`

// PairIncStart starts keepalived on router i (0-based) of an HA lab with
// the notify script above. The node starts as BACKUP (keepalived runs
// notify_backup at once) and becomes master by election.
func (l *Lab) PairIncStart(ctx context.Context, i int, o PairIncOptions) (*PairIncNode, error) {
	if i < 0 || i >= len(l.Routers) {
		return nil, fmt.Errorf("lab: no router %d", i+1)
	}
	ns := l.Routers[i]
	dir := l.path(fmt.Sprintf("pairinc-%d-rt%d", l.next(), i+1))
	for _, d := range []string{dir, filepath.Join(dir, "dhcpcd-db"), filepath.Join(dir, "dhcpcd-run")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	for k, v := range map[string]string{
		"net.ipv6.conf.all.forwarding":             "1",
		"net.ipv6.conf." + WANIface + ".accept_ra": "2",
	} {
		if err := l.Sysctl(ctx, ns, k, v); err != nil {
			return nil, err
		}
	}
	files := pairIncFiles(dir, o, l.opts.Delegated)
	for name, text := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(name, []byte(text), mode); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	pid := func(s string) string { return filepath.Join(dir, "keepalived-"+s+".pid") }
	// -n: foreground (the lab owns the process); -l -D: detailed log to
	// the console, which is the lab's log file.
	k, err := l.Start(ctx, ns, fmt.Sprintf("pairinc-keepalived-rt%d", i+1), "keepalived", "-n", "-l", "-D",
		"-f", filepath.Join(dir, "keepalived.conf"), "-p", pid("main"), "-r", pid("vrrp"), "-c", pid("check"))
	if err != nil {
		return nil, err
	}
	return &PairIncNode{Keepalived: k, NS: ns, Dir: dir}, nil
}

// pairIncFiles are the files of a node in dir, by path: dhcpcd.conf, the
// NETMAP hook, radvd.conf, keepalived.conf and its notify script.
func pairIncFiles(dir string, o PairIncOptions, delegated int) map[string]string {
	hook := filepath.Join(dir, "dhcpcd-hook.sh")
	return map[string]string{
		hook: strings.NewReplacer("INTERNAL", DefaultInternal.String(), "WAN", WANIface).Replace(incumbentHook),
		filepath.Join(dir, "notify.sh"): strings.NewReplacer("DIR", dir, "WAN", WANIface,
			"SHARED", o.SharedMAC.String(), "OWN", o.OwnMAC.String()).Replace(pairIncNotify),
		filepath.Join(dir, "dhcpcd.conf"): incumbentDhcpcdConf("incumbent HA: dhcpcd as a DHCPv6-PD client only, DUID-LL from the shared MAC",
			hook, false, delegated),
		// radvd sends from "the first link-local address" of lan0 unless
		// AdvRASrcAddress (radvd 2.19) lists acceptable sources: with the
		// virtual fe80::1 listed, both nodes are the same router to the
		// hosts. Without it the source is whichever link-local the kernel
		// lists first, usually but not always keepalived's fe80::1.
		filepath.Join(dir, "radvd.conf"):      incumbentRadvdConf(pairIncRASrc(o.RASource)),
		filepath.Join(dir, "keepalived.conf"): pairIncKeepalivedConf(o, filepath.Join(dir, "notify.sh")),
	}
}

func pairIncKeepalivedConf(o PairIncOptions, notify string) string {
	k := KeepalivedConf{RouterID: "pairinc", ScriptUser: "root", VRID: o.VRID, Priority: o.Priority, Advert: o.Advert, Notify: notify}
	for _, a := range o.VirtualAddrs {
		k.VirtualIPs = append(k.VirtualIPs, fmt.Sprintf("%s dev %s", a, LANIface))
	}
	return k.String()
}

// KeepalivedConf is a keepalived 2.2 config with one VRRPv3 instance on
// LANIface that starts as BACKUP.
type KeepalivedConf struct {
	RouterID   string
	ScriptUser string // global_defs script_user, when set
	VRID       int
	Priority   int
	Advert     time.Duration
	VirtualIPs []string // the virtual_ipaddress lines
	Notify     string   // when set: notify_master runs "Notify master", and so on
}

func (k KeepalivedConf) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n\tvrrp_version 3\n\trouter_id %s\n", k.RouterID)
	if k.ScriptUser != "" {
		fmt.Fprintf(&b, "\tscript_user %s\n", k.ScriptUser)
	}
	fmt.Fprintf(&b, "}\nvrrp_instance lan {\n\tstate BACKUP\n\tinterface %s\n\tvirtual_router_id %d\n\tpriority %d\n\tadvert_int %s\n\tvirtual_ipaddress {\n",
		LANIface, k.VRID, k.Priority, strconv.FormatFloat(k.Advert.Seconds(), 'f', -1, 64))
	for _, ip := range k.VirtualIPs {
		fmt.Fprintf(&b, "\t\t%s\n", ip)
	}
	b.WriteString("\t}\n")
	if k.Notify != "" {
		for _, state := range []string{"master", "backup", "fault"} {
			fmt.Fprintf(&b, "\tnotify_%s \"%s %s\"\n", state, k.Notify, state)
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// Log is the node's notify, dhcpcd and radvd logs, for a failed test.
func (n *PairIncNode) Log() string {
	var b strings.Builder
	for _, f := range []string{"notify.log", "dhcpcd.log", "radvd.log"} {
		data, _ := os.ReadFile(filepath.Join(n.Dir, f))
		fmt.Fprintf(&b, "--- %s\n%s", f, lastLines(string(data), 30))
	}
	return b.String()
}

// Running reports whether the node's dhcpcd and radvd (started by the
// master notify script) are running.
func (n *PairIncNode) Running() bool {
	for _, d := range []string{"dhcpcd", "radvd"} {
		pid, err := n.pid(d)
		if err != nil || syscall.Kill(pid, 0) != nil {
			return false
		}
	}
	return true
}

func (n *PairIncNode) pid(daemon string) (int, error) {
	data, err := os.ReadFile(filepath.Join(n.Dir, daemon+".pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// MasterAt is when the node's notify script last ran for "master"
// (false when it never did): keepalived's MASTER transition as the
// operator's script saw it.
func (n *PairIncNode) MasterAt() (time.Time, bool) {
	data, err := os.ReadFile(filepath.Join(n.Dir, "notify.log"))
	if err != nil {
		return time.Time{}, false
	}
	var at time.Time
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[1] != "notify" || f[2] != "master" {
			continue
		}
		if sec, err := strconv.ParseFloat(f[0], 64); err == nil {
			at = time.Unix(0, int64(sec*1e9))
		}
	}
	return at, !at.IsZero()
}

// BoundAt is when dhcpcd last ran the hook for a new lease (BOUND6), which
// installs the NETMAP pair; false when it never did.
func (n *PairIncNode) BoundAt() (time.Time, bool) {
	fi, err := os.Stat(filepath.Join(n.Dir, "dhcpcd-hook.sh.BOUND6.env"))
	if err != nil {
		return time.Time{}, false
	}
	return fi.ModTime(), true
}

// Kill makes the node die as in a power cut: keepalived, dhcpcd and radvd
// are killed (no priority 0 advert, no final RA, no Release) and both
// links go down.
func (n *PairIncNode) Kill(ctx context.Context, l *Lab) error {
	errs := []error{n.Keepalived.Kill()}
	for _, d := range []string{"dhcpcd", "radvd"} {
		if pid, err := n.pid(d); err == nil {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("lab: kill %s: %w", d, err))
			}
		}
	}
	for _, ifc := range []string{WANIface, LANIface} {
		if _, err := l.Exec(ctx, n.NS, "ip", "link", "set", ifc, "down"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
