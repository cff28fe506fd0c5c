package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Demo builds a lab, runs v6edge in it (v: the binary and the demo config,
// configs/examples/demo.toml) and shows a newcomer, step by step, what
// happens: the delegated prefix, the Router Advertisement the LAN host
// receives, the address it configures, that its ping reaches "the
// internet" from inside the delegated prefix, the NAT rules and the
// daemon's status. Interrupting (ctx, SIGINT, SIGTERM)
// removes the lab; so does returning.
func Demo(ctx context.Context, out io.Writer, v V6edge) error {
	return DemoWith(ctx, out, v, Options{})
}

// DemoWith is Demo with lab options, e.g. Keep to leave the lab directory
// (every peer's config and log) for a look afterwards. Name defaults to
// "v6demo", and Log is the demo's own output.
func DemoWith(ctx context.Context, out io.Writer, v V6edge, o Options) (err error) {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	defer func() {
		// Whatever step an interrupt broke, report the interrupt.
		if cerr := ctx.Err(); err != nil && cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
	}()
	w := &demoWriter{w: out}

	w.heading("1. Building the lab")
	w.say("Three network namespaces stand in for three machines:")
	w.say("  upstream: the ISP. Kea hands out /56 prefixes by DHCPv6-PD, radvd announces the default route.")
	w.say("  router:   this box. v6edge runs here, wan0 faces the ISP, lan0 the LAN.")
	w.say("  host:     a LAN client. Its kernel configures itself from v6edge's Router Advertisements (SLAAC).")
	if o.Name == "" {
		o.Name = "v6demo"
	}
	o.Log = indent{w, "  | "}
	l, err := New(ctx, o)
	if err != nil {
		return fmt.Errorf("building the lab: %w", err)
	}
	defer func() {
		w.heading("Cleaning up")
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("removing the lab: %w", cerr))
			return
		}
		if o.Keep {
			w.say("Namespaces and processes removed; configs and logs kept in %s.", l.Dir)
			return
		}
		w.say("Namespaces, processes and files removed.")
	}()
	host := l.Hosts[0]

	w.heading("2. Starting v6edge in the router namespace")
	d, err := l.RunDaemon(ctx, v.Bin, v.Config)
	if err != nil {
		return err
	}
	w.say("config: %s", d.Config)
	w.say("log:    %s", d.LogPath)
	doc, err := d.WaitStatus(ctx, 30*time.Second, "a delegated prefix in v6edge's status", func(doc map[string]any) bool {
		return GetString(doc, "wan", "prefix") != ""
	})
	if err != nil {
		w.say("v6edge log (last lines):\n%s", lastLines(d.Log(), 20))
		return err
	}
	deleg, err := netip.ParsePrefix(GetString(doc, "wan", "prefix"))
	if err != nil {
		return fmt.Errorf("status wan.prefix: %w", err)
	}

	w.heading("3. The prefix the ISP delegated")
	w.say("v6edge asked Kea for a /56 and got %s (DUID %s).", deleg, GetString(doc, "wan", "duid"))
	w.say("The LAN itself keeps a stable ULA prefix, %s; NAT maps it 1:1 onto %s.", DefaultInternal, deleg)

	// v6edge names itself the LAN's default router only once it has a way
	// out — the lease and the upstream's default route (RFC 7084 G-4) — in
	// its next RA after both arrived: wait for the host to take it.
	err = l.WaitFor(ctx, 15*time.Second, "the host's default route via the router", func() (bool, error) {
		out, err := l.Exec(ctx, host, "ip", "-6", "route", "show", "default")
		return strings.Contains(out, "dev "+HostIface), err
	})
	if err != nil {
		return err
	}

	w.heading("4. What the LAN host hears: rdisc6 on the host")
	ra, _ := l.Exec(ctx, host, "rdisc6", "-1", "-w", "2000", HostIface)
	w.block(ra)

	w.heading("5. The host's addresses")
	addr, err := l.WaitHostSLAAC(ctx, host, DefaultLANSubnet, 30*time.Second)
	if err != nil {
		return err
	}
	out1, _ := l.Exec(ctx, host, "ip", "-6", "addr", "show", "dev", HostIface)
	w.block(out1)
	out2, _ := l.Exec(ctx, host, "ip", "-6", "route", "show")
	w.block(out2)
	w.say("The kernel formed %s from the advertised /64 by itself.", addr)

	w.heading("6. Reaching the internet")
	w.say("The host pings %s; tcpdump on the ISP side (up0) shows which source arrives.", InternetAddr)
	c, err := l.Capture(ctx, l.Upstream, UpstreamIface, "icmp6 and ip6[40] == 128")
	if err != nil {
		return err
	}
	ping, perr := l.Exec(ctx, host, "ping", "-c", "3", "-i", "0.2", "-W", "2", InternetAddr.String())
	pkts, cerr := c.Stop()
	w.block(ping)
	if perr != nil {
		return fmt.Errorf("ping from the host: %w", perr)
	}
	if cerr != nil {
		return cerr
	}
	var seen netip.Addr
	for _, p := range pkts {
		w.say("  upstream saw: %s -> %s", p.Src, p.Dst)
		if p.Dst == InternetAddr {
			seen = p.Src
		}
	}
	if !deleg.Contains(seen) {
		return fmt.Errorf("the upstream saw source %v, not an address in %s", seen, deleg)
	}
	w.say("The host sent from %s; the ISP saw %s, inside the delegated %s.", addr, seen, deleg)
	w.say("")
	w.say("And back: the ISP pings %s, which NAT maps to the host's %s.", seen, addr)
	back, err := l.Exec(ctx, l.Upstream, "ping", "-c", "2", "-i", "0.2", "-W", "2", seen.String())
	w.block(back)
	if err != nil {
		return fmt.Errorf("ping from the upstream to %s: %w", seen, err)
	}

	w.heading("7. The NAT rules v6edge installed (nft list table ip6 v6edge)")
	nft, _ := l.Exec(ctx, l.Router, "nft", "list", "table", "ip6", "v6edge")
	w.block(nft)

	w.heading("8. v6edge status")
	st, _, _ := d.Ctl(ctx, "status")
	w.block(st)
	if err := ctx.Err(); err != nil {
		return err
	}
	w.heading("Done")
	w.say("Prefix delegated, RA served, host configured, traffic mapped both ways.")
	return nil
}

// WaitHostSLAAC waits until the host has a usable (not tentative, not
// deprecated) address in subnet and returns it.
func (l *Lab) WaitHostSLAAC(ctx context.Context, host string, subnet netip.Prefix, timeout time.Duration) (netip.Addr, error) {
	var got netip.Addr
	err := l.WaitFor(ctx, timeout, "a SLAAC address in "+subnet.String()+" on "+host, func() (bool, error) {
		addrs, err := l.HostAddrs(ctx, host, subnet)
		for _, a := range addrs {
			if !a.Tentative && !a.Deprecated && !a.DADFailed {
				got = a.Prefix.Addr()
				return true, nil
			}
		}
		return false, err
	})
	return got, err
}

// WaitWANDefaultRoute waits until the router has a default route via a
// link-local on wan0, learned from the upstream's RAs.
func (l *Lab) WaitWANDefaultRoute(ctx context.Context, timeout time.Duration) error {
	return l.WaitFor(ctx, timeout, "a default route on wan0", func() (bool, error) {
		out, err := l.Exec(ctx, l.Router, "ip", "-6", "route", "show", "default")
		return strings.Contains(out, "via fe80::") && strings.Contains(out, "dev wan0"), err
	})
}

// MapAddr returns addr with its first to.Bits() bits taken from to, as a
// NETMAP from from to to translates it. It returns the zero Addr if addr is
// not in from or the prefixes differ in length.
func MapAddr(addr netip.Addr, from, to netip.Prefix) netip.Addr {
	if !from.Contains(addr) || from.Bits() != to.Bits() || !to.Addr().Is6() {
		return netip.Addr{}
	}
	a, p := addr.As16(), to.Masked().Addr().As16()
	for i := range 16 {
		bits := to.Bits() - 8*i
		switch {
		case bits >= 8:
			a[i] = p[i]
		case bits > 0:
			mask := byte(0xff << (8 - bits))
			a[i] = p[i]&mask | a[i]&^mask
		}
	}
	return netip.AddrFrom16(a)
}

type demoWriter struct{ w io.Writer }

func (d *demoWriter) heading(s string) {
	fmt.Fprintf(d.w, "\n=== %s %s\n", s, strings.Repeat("=", max(0, 70-len(s))))
}

func (d *demoWriter) say(format string, args ...any) { fmt.Fprintf(d.w, format+"\n", args...) }

func (d *demoWriter) block(s string) {
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		fmt.Fprintf(d.w, "    %s\n", line)
	}
}

// indent prefixes every line written through it.
type indent struct {
	d      *demoWriter
	prefix string
}

func (i indent) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		fmt.Fprintf(i.d.w, "%s%s\n", i.prefix, line)
	}
	return len(p), nil
}
