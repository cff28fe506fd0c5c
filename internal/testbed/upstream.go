package testbed

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// AltDHCPDBinary is ISC dhcpd (Debian package isc-dhcp-server), the second
// DHCPv6-PD server the lab can run in place of Kea: it picks its timers
// differently (T1 and T2 of 0 unless told otherwise, RFC 8415 §21.21), so a
// client that only ever met Kea meets other choices here.
const AltDHCPDBinary = "/usr/sbin/dhcpd"

// AltDHCPDOptions configures ISC dhcpd in DHCPv6 mode.
type AltDHCPDOptions struct {
	// First and Last bound the delegated prefixes, as in dhcpd's
	// `prefix6 first last /Delegated;`. Default 2001:db8:100:: to
	// 2001:db8:1ff::, inside the lab's default pool.
	First, Last netip.Addr
	Delegated   int // delegated length, default 56

	// Valid is dhcpd's default-lease-time (the valid lifetime it grants),
	// Preferred its preferred-lifetime; zero leaves dhcpd's own defaults
	// (43200 s valid, 5/8 of it preferred).
	Valid, Preferred time.Duration
	// T1 and T2 set the renewal and rebinding options; zero leaves them
	// out, and dhcpd then sends T1 = T2 = 0 ("client's choice").
	T1, T2 time.Duration
	// RapidCommit lets dhcpd answer a Solicit that carries Rapid Commit
	// with a Reply at once (RFC 8415 §18.3.1).
	RapidCommit bool
	// Taken are prefixes already bound to another client when dhcpd
	// starts (written into its lease file), e.g. the whole range to make
	// it answer NoPrefixAvail.
	Taken []netip.Prefix
}

func (o AltDHCPDOptions) withDefaults() AltDHCPDOptions {
	if !o.First.IsValid() {
		o.First = netip.MustParseAddr("2001:db8:100::")
	}
	if !o.Last.IsValid() {
		o.Last = netip.MustParseAddr("2001:db8:1ff::")
	}
	if o.Delegated == 0 {
		o.Delegated = 56
	}
	return o
}

// AltDHCPDConfig renders dhcpd's configuration for the upstream link.
func AltDHCPDConfig(o AltDHCPDOptions) string {
	o = o.withDefaults()
	secs := func(d time.Duration) int64 { return int64(d / time.Second) }
	var b strings.Builder
	b.WriteString("# v6edge lab: ISC dhcpd -6 as the upstream's DHCPv6-PD server\n")
	b.WriteString("authoritative;\n")
	if o.Valid > 0 {
		fmt.Fprintf(&b, "default-lease-time %d;\nmax-lease-time %d;\n", secs(o.Valid), secs(o.Valid))
	}
	if o.Preferred > 0 {
		fmt.Fprintf(&b, "preferred-lifetime %d;\n", secs(o.Preferred))
	}
	if o.T1 > 0 {
		fmt.Fprintf(&b, "option dhcp-renewal-time %d;\n", secs(o.T1))
	}
	if o.T2 > 0 {
		fmt.Fprintf(&b, "option dhcp-rebinding-time %d;\n", secs(o.T2))
	}
	if o.RapidCommit {
		b.WriteString("option dhcp6.rapid-commit;\n")
	}
	fmt.Fprintf(&b, "subnet6 %s {\n\tprefix6 %s %s /%d;\n}\n", UpstreamAddr.Masked(), o.First, o.Last, o.Delegated)
	return b.String()
}

// AltCovering is the shortest prefix holding every delegated prefix from
// First to Last: what the upstream routes to the router.
func AltCovering(o AltDHCPDOptions) netip.Prefix {
	o = o.withDefaults()
	a, b := o.First.As16(), o.Last.As16()
	bits := 0
	for i := range 16 {
		x := a[i] ^ b[i]
		if x == 0 {
			bits += 8
			continue
		}
		for x&0x80 == 0 {
			bits++
			x <<= 1
		}
		break
	}
	p, _ := o.First.Prefix(min(bits, o.Delegated))
	return p
}

// AltDHCPD is ISC dhcpd running on the upstream link. Every file it writes
// (config, lease database with its server DUID, pid file) is in the lab
// directory; it never touches /var/lib/dhcp or /run.
type AltDHCPD struct {
	*Proc
	Conf, Leases, PidFile string
}

// AltStartDHCPD starts ISC dhcpd -6 on up0 in the upstream namespace and
// returns once it listens on port 547. Stop the lab's Kea first
// (l.StopKea): both cannot own the port. The lab stops dhcpd at Close.
func AltStartDHCPD(ctx context.Context, l *Lab, o AltDHCPDOptions) (*AltDHCPD, error) {
	if _, err := exec.LookPath(AltDHCPDBinary); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	n := l.next()
	s := &AltDHCPD{
		Conf:    l.path(fmt.Sprintf("dhcpd6-%d.conf", n)),
		Leases:  l.path(fmt.Sprintf("dhcpd6-%d.leases", n)),
		PidFile: l.path(fmt.Sprintf("dhcpd6-%d.pid", n)),
	}
	// The upstream routes the range to the router, as for Kea's pool.
	if err := l.routePool(ctx, AltCovering(o.withDefaults())); err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.Conf, []byte(AltDHCPDConfig(o)), 0o644); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	// dhcpd refuses to start without an existing lease file.
	if err := os.WriteFile(s.Leases, []byte(altTakenLeases(o.Taken, time.Now())), 0o644); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	// -d: log to stderr, stay in the foreground (so the lab owns the
	// process); -cf/-lf/-pf keep every file in the lab directory.
	p, err := l.Start(ctx, l.Upstream, fmt.Sprintf("dhcpd6-%d", n), AltDHCPDBinary,
		"-6", "-d", "-cf", s.Conf, "-lf", s.Leases, "-pf", s.PidFile, UpstreamIface)
	if err != nil {
		return nil, err
	}
	s.Proc = p
	err = l.waitServing547(ctx, l.Upstream, p, "dhcpd -6", "dhcpd", 8)
	if err != nil {
		_ = p.Stop()
		return nil, err
	}
	o = o.withDefaults()
	l.logf("dhcpd -6 delegates /%d prefixes from %s to %s on %s", o.Delegated, o.First, o.Last, UpstreamIface)
	return s, nil
}

// altTakenLeases renders dhcpd lease-file bindings of prefixes to a client
// other than the lab's router (DUID-LL 02:00:5e:00:09:99, IAID 1), active
// for a day from now.
func altTakenLeases(taken []netip.Prefix, now time.Time) string {
	var b strings.Builder
	ends := now.Add(24 * time.Hour).UTC()
	for _, p := range taken {
		// The binding's key is the IAID in host byte order, then the DUID,
		// octal-escaped as dhcpd writes it.
		b.WriteString("ia-pd \"\\001\\000\\000\\000\\000\\003\\000\\001\\002\\000^\\000\\011\\231\" {\n")
		fmt.Fprintf(&b, "  cltt %d %s;\n", now.UTC().Weekday(), now.UTC().Format("2006/01/02 15:04:05"))
		fmt.Fprintf(&b, "  iaprefix %s {\n    binding state active;\n    preferred-life 27000;\n    max-life 43200;\n", p)
		fmt.Fprintf(&b, "    ends %d %s;\n  }\n}\n", ends.Weekday(), ends.Format("2006/01/02 15:04:05"))
	}
	return b.String()
}

// AltLease is one IA_PD prefix from dhcpd's lease database.
type AltLease struct {
	Prefix    netip.Prefix
	State     string // "active", "expired", "released", ...
	Preferred time.Duration
	Valid     time.Duration // dhcpd's max-life
}

// LeaseList reads dhcpd's lease database (see AltParseDHCPDLeases).
func (s *AltDHCPD) LeaseList() ([]AltLease, error) {
	b, err := os.ReadFile(s.Leases)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	return AltParseDHCPDLeases(string(b))
}

// AltParseDHCPDLeases extracts the iaprefix blocks of ISC dhcpd's DHCPv6
// lease file. The file is a journal: a later block for a prefix replaces an
// earlier one, so the result holds each prefix once, in its latest state.
//
//	ia-pd "..." {
//	  cltt 4 2026/11/26 16:30:00;
//	  iaprefix 2001:db8:100::/56 {
//	    binding state active;
//	    preferred-life 375;
//	    max-life 600;
//	    ends 4 2026/11/26 16:40:00;
//	  }
//	}
func AltParseDHCPDLeases(text string) ([]AltLease, error) {
	var (
		order  []netip.Prefix
		latest = map[netip.Prefix]AltLease{}
		cur    *AltLease
	)
	sc := bufio.NewScanner(strings.NewReader(text))
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(sc.Text()), ";"))
		switch {
		case len(f) == 3 && f[0] == "iaprefix" && f[2] == "{":
			p, err := netip.ParsePrefix(f[1])
			if err != nil {
				return nil, fmt.Errorf("lab: dhcpd leases line %d: %w", line, err)
			}
			cur = &AltLease{Prefix: p}
		case cur == nil:
		case len(f) == 3 && f[0] == "binding" && f[1] == "state":
			cur.State = f[2]
		case len(f) == 2 && (f[0] == "preferred-life" || f[0] == "max-life"):
			n, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("lab: dhcpd leases line %d: %s: %w", line, f[0], err)
			}
			d := time.Duration(n) * time.Second
			if f[0] == "preferred-life" {
				cur.Preferred = d
			} else {
				cur.Valid = d
			}
		case len(f) == 1 && f[0] == "}":
			if _, seen := latest[cur.Prefix]; !seen {
				order = append(order, cur.Prefix)
			}
			latest[cur.Prefix] = *cur
			cur = nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("lab: dhcpd leases: %w", err)
	}
	if cur != nil {
		return nil, fmt.Errorf("lab: dhcpd leases: iaprefix %s not closed", cur.Prefix)
	}
	out := make([]AltLease, 0, len(order))
	for _, p := range order {
		out = append(out, latest[p])
	}
	return out, nil
}
