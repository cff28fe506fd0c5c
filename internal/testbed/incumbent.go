package testbed

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"
)

// DefaultInternal is the ULA prefix the demo and the incumbent map to the
// delegated prefix, and DefaultLANSubnet the /64 of it on lan0.
var (
	DefaultInternal  = netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/56")
	DefaultLANSubnet = netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::/64")
)

// StartDhcpcd runs dhcpcd 9 in the router namespace with the configuration
// text conf and extra arguments (e.g. "-6", "-B", "wan0").
//
// dhcpcd keeps its DUID, leases, pid file and control socket in the
// host-wide /var/lib/dhcpcd and /run/dhcpcd. So that no lab touches them and
// labs do not see each other's dhcpcd, it runs in a private mount namespace
// with lab directories bind-mounted over both. The DUID file is thus fresh
// in every lab: a `duid ll` line in conf gives a DUID-LL from the WAN MAC.
func (l *Lab) StartDhcpcd(ctx context.Context, name, conf string, args ...string) (*Proc, error) {
	db, rundir := l.path(name+"-db"), l.path(name+"-run")
	for _, d := range []string{db, rundir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	confPath := l.path(name + ".conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	script := `mount --bind "$1" /var/lib/dhcpcd && mount --bind "$2" /run && shift 2 && exec dhcpcd "$@"`
	cmd := append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", db, rundir, "-f", confPath}, args...)
	return l.Start(ctx, l.Router, name, cmd...)
}

// incumbentHook is the dhcpcd hook script of the incumbent setup: on every
// new or renewed delegation it rewrites an nftables table with the same
// NETMAP pair v6edge installs, the way operators script it today (one `nft
// -f -` per event; the delete and the add are one transaction).
const incumbentHook = `#!/bin/sh
# dhcpcd hook: map INTERNAL to the delegated prefix with nftables NETMAP.
env > "$0.$reason.env"
case "$reason" in
BOUND6|REBIND6|RENEW6|REBOOT6) ;;
*) exit 0 ;;
esac
p="$new_dhcp6_ia_pd1_prefix1"
len="$new_dhcp6_ia_pd1_prefix1_length"
[ -n "$p" ] && [ -n "$len" ] || exit 0
nft -f - <<NFT
table ip6 incumbent
delete table ip6 incumbent
table ip6 incumbent {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "WAN" ip6 daddr $p/$len dnat ip6 prefix to INTERNAL
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "WAN" ip6 saddr INTERNAL snat ip6 prefix to $p/$len
	}
}
NFT
`

// Incumbent is the dhcpcd + hook + radvd setup v6edge replaces.
type Incumbent struct {
	Dhcpcd, Radvd *Proc

	// DhcpcdConf, Hook and RadvdConf are the paths of the files it runs
	// (what `v6edge import` reads).
	DhcpcdConf, Hook, RadvdConf string

	lab        *Lab
	name, conf string // dhcpcd's name (its db and run directories) and configuration text
}

// Ctl runs `dhcpcd <args> wan0` against the running dhcpcd, e.g. "-6", "-N"
// to renew now. It must see the same private /var/lib/dhcpcd and /run as
// the daemon to find its control socket; dhcpcd started with -6 listens on a
// per-family socket, so without "-6" the command finds no daemon and starts
// a second one.
func (i *Incumbent) Ctl(ctx context.Context, args ...string) (string, error) {
	l := i.lab
	script := `mount --bind "$1" /var/lib/dhcpcd && mount --bind "$2" /run && shift 2 && exec dhcpcd "$@"`
	cmd := append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
		l.path(i.name + "-db"), l.path(i.name + "-run"), "-f", l.path(i.name + ".conf")}, args...)
	return l.Exec(ctx, l.Router, append(cmd, WANIface)...)
}

// RestartDhcpcd stops dhcpcd (SIGTERM, which neither releases the lease nor
// runs the hook's NAT part) and starts it again on the same database
// directory, as after a reboot of the router: it finds its saved lease. It
// returns when the new process was started.
func (i *Incumbent) RestartDhcpcd(ctx context.Context) (time.Time, error) {
	if err := i.Dhcpcd.Stop(); err != nil {
		return time.Time{}, err
	}
	start := time.Now()
	d, err := i.lab.StartDhcpcd(ctx, i.name, i.conf, "-6", "-B", WANIface)
	if err != nil {
		return time.Time{}, err
	}
	i.Dhcpcd = d
	return start, nil
}

// Stop stops both daemons.
func (i *Incumbent) Stop() error {
	e1 := i.Dhcpcd.Stop()
	e2 := i.Radvd.Stop()
	if e1 != nil {
		return e1
	}
	return e2
}

// prepareIncumbent sets what the incumbent setup needs in the router
// namespace (forwarding, accept_ra=2 on the WAN, the router's LAN address,
// which radvd does not add itself) and writes its NETMAP hook as name in
// the lab's directory, returning the hook's path.
func (l *Lab) prepareIncumbent(ctx context.Context, name string) (string, error) {
	for k, v := range map[string]string{
		"net.ipv6.conf.all.forwarding":             "1",
		"net.ipv6.conf." + WANIface + ".accept_ra": "2",
	} {
		if err := l.Sysctl(ctx, l.Router, k, v); err != nil {
			return "", err
		}
	}
	lanAddr := netip.PrefixFrom(DefaultLANSubnet.Addr().Next(), 64)
	if _, err := l.Exec(ctx, l.Router, "ip", "addr", "replace", lanAddr.String(), "dev", LANIface, "nodad"); err != nil {
		return "", err
	}
	hook := l.path(name)
	script := strings.NewReplacer("INTERNAL", DefaultInternal.String(), "WAN", WANIface).Replace(incumbentHook)
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	return hook, nil
}

// RunIncumbent starts, in the router namespace, what an operator runs today
// instead of v6edge: dhcpcd as PD client with a hook script that installs the
// NETMAP rules with nft, and radvd advertising the ULA /64 on lan0. It sets
// the sysctls such a setup needs (forwarding, accept_ra=2 on the WAN) and
// the router's LAN address, which radvd does not add itself.
func (l *Lab) RunIncumbent(ctx context.Context) (*Incumbent, error) {
	n := l.next()
	hook, err := l.prepareIncumbent(ctx, fmt.Sprintf("incumbent-hook-%d.sh", n))
	if err != nil {
		return nil, err
	}
	conf := incumbentDhcpcdConf("incumbent: dhcpcd as a DHCPv6-PD client only", hook, l.opts.RapidCommit, l.opts.Delegated)
	radvdConf := l.path(fmt.Sprintf("incumbent-radvd-%d.conf", n))
	if err := os.WriteFile(radvdConf, []byte(incumbentRadvdConf("")), 0o644); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	name := fmt.Sprintf("incumbent-dhcpcd-%d", n)
	d, err := l.StartDhcpcd(ctx, name, conf, "-6", "-B", WANIface)
	if err != nil {
		return nil, err
	}
	r, err := l.Start(ctx, l.Router, fmt.Sprintf("incumbent-radvd-%d", n), "radvd", "-n", "-m", "stderr", "-C", radvdConf,
		"-p", l.path(fmt.Sprintf("incumbent-radvd-%d.pid", n)))
	if err != nil {
		_ = d.Stop()
		return nil, err
	}
	return &Incumbent{Dhcpcd: d, Radvd: r, DhcpcdConf: l.path(name + ".conf"), Hook: hook, RadvdConf: radvdConf,
		lab: l, name: name, conf: conf}, nil
}

// incumbentDhcpcdConf is the incumbent's dhcpcd.conf, headed by the
// comment title: a DHCPv6-PD client only on WANIface with a DUID-LL,
// asking for a /delegated (with Rapid Commit when rapidCommit), and hook
// as its script.
func incumbentDhcpcdConf(title, hook string, rapidCommit bool, delegated int) string {
	rapid := ""
	if rapidCommit {
		rapid = "option rapid_commit\n"
	}
	return fmt.Sprintf(`# %s
duid ll
%sipv6only
noipv6rs
nohook resolv.conf
script %s
allowinterfaces %s
interface %s
	ia_pd 1/::/%d nosuch0/0/%d
`, title, rapid, hook, WANIface, WANIface, delegated, delegated)
}

// incumbentRadvdConf is the incumbent's radvd.conf: DefaultLANSubnet on
// LANIface, with extra (lines ending in a newline) at the end of the
// interface block.
func incumbentRadvdConf(extra string) string {
	return fmt.Sprintf(`interface %s {
	AdvSendAdvert on;
	MinRtrAdvInterval 200;
	MaxRtrAdvInterval 600;
	prefix %s {
		AdvOnLink on;
		AdvAutonomous on;
	};
%s};
`, LANIface, DefaultLANSubnet, extra)
}
