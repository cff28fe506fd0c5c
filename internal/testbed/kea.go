package testbed

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// keaConfig renders Kea's configuration for one pool. Every path points into
// dir: the lease file, and the data directory where Kea would otherwise
// persist its server DUID host-wide.
func keaConfig(dir, leaseFile string, pool netip.Prefix, o Options) ([]byte, error) {
	secs := func(d time.Duration) int { return int(d / time.Second) }
	subnet := map[string]any{
		"id":        1,
		"subnet":    UpstreamAddr.Masked().String(),
		"interface": UpstreamIface,
		"pd-pools": []any{map[string]any{
			"prefix":        pool.Addr().String(),
			"prefix-len":    pool.Bits(),
			"delegated-len": o.Delegated,
		}},
		// rapid-commit is a subnet-level key in Kea 2.2.
		"rapid-commit": o.RapidCommit,
	}
	if o.Preference > 0 {
		// Kea sends an option the client did not request only with always-send.
		subnet["option-data"] = []any{map[string]any{"name": "preference", "data": fmt.Sprint(o.Preference), "always-send": true}}
	}
	if err := keaISP(subnet, o); err != nil {
		return nil, err
	}
	cfg := map[string]any{"Dhcp6": map[string]any{
		"interfaces-config": map[string]any{"interfaces": []string{UpstreamIface}},
		"data-directory":    dir,
		"server-id":         map[string]any{"type": "LL", "persist": false},
		"lease-database": map[string]any{
			"type": "memfile", "persist": true, "name": leaseFile, "lfc-interval": 0,
		},
		"renew-timer":        secs(o.T1),
		"rebind-timer":       secs(o.T2),
		"preferred-lifetime": secs(o.Preferred),
		"valid-lifetime":     secs(o.Valid),
		"subnet6":            []any{subnet},
		"loggers": []any{map[string]any{
			"name":           "kea-dhcp6",
			"severity":       "INFO",
			"output_options": []any{map[string]any{"output": "stdout"}},
		}},
	}}
	return json.MarshalIndent(cfg, "", "  ")
}

func (l *Lab) leaseFile() string { return l.path("kea-leases6.csv") }

func (l *Lab) startKea(ctx context.Context, pool netip.Prefix) error {
	conf, err := keaConfig(l.Dir, l.leaseFile(), pool, l.opts)
	if err != nil {
		return fmt.Errorf("lab: kea config: %w", err)
	}
	l.keaConf = l.path("kea-dhcp6.json")
	if err := os.WriteFile(l.keaConf, conf, 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := l.routePool(ctx, pool); err != nil {
		return err
	}
	// Kea keeps its pid and lock files in /run/kea unless told otherwise; a
	// second Kea would then refuse to start ("already running").
	env := []string{"KEA_PIDFILE_DIR=" + l.Dir, "KEA_LOCKFILE_DIR=" + l.Dir}
	p, err := l.startEnv(ctx, l.Upstream, "kea-dhcp6", env, "kea-dhcp6", "-c", l.keaConf)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.kea = p
	l.Pool = pool
	l.mu.Unlock()
	// Listening means a socket on port 547 in the upstream namespace.
	err = l.waitServing547(ctx, l.Upstream, p, "kea-dhcp6", "kea-dhcp6", 5)
	if err != nil {
		return err
	}
	l.logf("kea-dhcp6 delegates /%d prefixes from %s on %s", l.opts.Delegated, pool, UpstreamIface)
	return nil
}

// StopKea stops the DHCPv6 server; the lease file stays.
func (l *Lab) StopKea() error {
	l.mu.Lock()
	p := l.kea
	l.kea = nil
	l.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Stop()
}

// RestartKea restarts the DHCPv6 server delegating from pool, for
// renumbering tests. With deleteLeases the lease file is removed first, so
// the server has forgotten the old binding. The upstream routes pool to the
// router as well.
func (l *Lab) RestartKea(ctx context.Context, pool netip.Prefix, deleteLeases bool) error {
	if err := l.StopKea(); err != nil {
		return err
	}
	if deleteLeases {
		for _, f := range []string{l.leaseFile(), l.leaseFile() + ".2"} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("lab: %w", err)
			}
		}
	}
	return l.startKea(ctx, pool)
}

// KeaLease is one current binding from Kea's memfile lease database.
type KeaLease struct {
	Type      string       // "IA_NA", "IA_TA" or "IA_PD"
	Prefix    netip.Prefix // the delegated prefix (an address is a /128)
	DUID      string       // client DUID, colon-separated hex
	IAID      uint32
	Valid     time.Duration
	Preferred time.Duration
	Expire    time.Time
	State     int // 0 default, 1 declined, 2 expired-reclaimed
}

// KeaLeases reads Kea's lease file. The file is a journal: a later line for
// the same lease replaces an earlier one, and a valid lifetime of 0 marks a
// released or deleted lease, which is left out.
func (l *Lab) KeaLeases() ([]KeaLease, error) {
	b, err := os.ReadFile(l.leaseFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	return ParseKeaLeases(b)
}

// ParseKeaLeases parses Kea's DHCPv6 memfile CSV (columns found by the
// header, so newer Kea versions with more columns parse too).
func ParseKeaLeases(data []byte) ([]KeaLease, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lab: kea leases header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	for _, need := range []string{"address", "duid", "valid_lifetime", "expire", "lease_type", "iaid", "prefix_len"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("lab: kea leases: no column %q", need)
		}
	}
	type key struct {
		typ  string
		addr netip.Addr
	}
	var order []key
	latest := map[key]KeaLease{}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("lab: kea leases line %d: %w", line, err)
		}
		field := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return rec[i]
			}
			return ""
		}
		lease, err := parseKeaLease(field)
		if err != nil {
			return nil, fmt.Errorf("lab: kea leases line %d: %w", line, err)
		}
		k := key{lease.Type, lease.Prefix.Addr()}
		if _, seen := latest[k]; !seen {
			order = append(order, k)
		}
		latest[k] = lease
	}
	var out []KeaLease
	for _, k := range order {
		if lease := latest[k]; lease.Valid > 0 {
			out = append(out, lease)
		}
	}
	return out, nil
}

func parseKeaLease(field func(string) string) (KeaLease, error) {
	addr, err := netip.ParseAddr(field("address"))
	if err != nil {
		return KeaLease{}, fmt.Errorf("address: %w", err)
	}
	plen, err := strconv.Atoi(field("prefix_len"))
	if err != nil {
		return KeaLease{}, fmt.Errorf("prefix_len: %w", err)
	}
	prefix, err := addr.Prefix(plen)
	if err != nil || prefix.Addr() != addr {
		return KeaLease{}, fmt.Errorf("prefix %s/%d is not a prefix", addr, plen)
	}
	valid, err := strconv.ParseUint(field("valid_lifetime"), 10, 32)
	if err != nil {
		return KeaLease{}, fmt.Errorf("valid_lifetime: %w", err)
	}
	expire, err := strconv.ParseInt(field("expire"), 10, 64)
	if err != nil {
		return KeaLease{}, fmt.Errorf("expire: %w", err)
	}
	iaid, err := strconv.ParseUint(field("iaid"), 10, 32)
	if err != nil {
		return KeaLease{}, fmt.Errorf("iaid: %w", err)
	}
	typ, err := strconv.Atoi(field("lease_type"))
	if err != nil {
		return KeaLease{}, fmt.Errorf("lease_type: %w", err)
	}
	names := map[int]string{0: "IA_NA", 1: "IA_TA", 2: "IA_PD"}
	name, ok := names[typ]
	if !ok {
		return KeaLease{}, fmt.Errorf("lease_type %d unknown", typ)
	}
	l := KeaLease{
		Type:   name,
		Prefix: prefix,
		DUID:   field("duid"),
		IAID:   uint32(iaid),
		Valid:  time.Duration(valid) * time.Second,
		Expire: time.Unix(expire, 0),
	}
	// Optional columns.
	if p, err := strconv.ParseUint(field("pref_lifetime"), 10, 32); err == nil {
		l.Preferred = time.Duration(p) * time.Second
	}
	if s, err := strconv.Atoi(field("state")); err == nil {
		l.State = s
	}
	return l, nil
}

// radvdConfig advertises the upstream link's /64 and a default route, as an
// ISP's access router does. The intervals are radvd's minimum so a router
// that starts listening late learns its default route within 4 s.
func radvdConfig() string {
	return fmt.Sprintf(`interface %s {
	AdvSendAdvert on;
	MinRtrAdvInterval 3;
	MaxRtrAdvInterval 4;
	AdvDefaultLifetime 1800;
	prefix %s {
		AdvOnLink on;
		AdvAutonomous on;
	};
};
`, UpstreamIface, UpstreamAddr.Masked())
}

func (l *Lab) startUpstream(ctx context.Context) error {
	if err := l.startKea(ctx, l.Pool); err != nil {
		return err
	}
	conf := l.path("radvd-upstream.conf")
	if err := os.WriteFile(conf, []byte(radvdConfig()), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	p, err := l.Start(ctx, l.Upstream, "radvd-upstream", "radvd", "-n", "-m", "stderr", "-d", "1",
		"-C", conf, "-p", l.path("radvd-upstream.pid"))
	if err != nil {
		return err
	}
	// radvd checks its config and exits at once if it dislikes it.
	if err := p.Wait(200 * time.Millisecond); p.exited() {
		return fmt.Errorf("lab: radvd on %s exited (%v): %s", UpstreamIface, err, lastLines(p.Log(), 5))
	}
	l.logf("radvd advertises %s and a default route on %s", UpstreamAddr.Masked(), UpstreamIface)
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// waitServing547 waits up to 10 s until the DHCPv6 server p (what, in the
// wait's description) has a socket on UDP port 547 in ns. If p exits first
// it fails at once, with the last logLines lines of p's log under name.
func (l *Lab) waitServing547(ctx context.Context, ns string, p *Proc, what, name string, logLines int) error {
	return l.WaitFor(ctx, 10*time.Second, what+" to listen on port 547", func() (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("%s exited: %s", name, lastLines(p.Log(), logLines))
		}
		out, err := l.Exec(ctx, ns, "ss", "-Hlun", "sport = :547")
		return err == nil && strings.TrimSpace(out) != "", err
	})
}
