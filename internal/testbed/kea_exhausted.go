package testbed

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
)

// OtherDUID is the DUID of the client that holds the only prefix of an
// exhausted Kea (RestartKeaExhausted): a DUID-LL that is not the router's.
const OtherDUID = "00:03:00:01:02:00:5e:00:99:99"

// keaLeaseHeader is the memfile header of Kea 2.2's DHCPv6 lease file.
const keaLeaseHeader = "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context"

// RestartKeaExhausted restarts the DHCPv6 server with a pool of one
// delegated prefix, the first of the current pool, that its lease file
// says is bound to another client (OtherDUID) for the whole valid
// lifetime: Kea then has no prefix for anybody else and answers an IA_PD
// with status NoPrefixAvail. It returns that prefix. RestartKea with the
// old pool and deleteLeases makes Kea delegate again.
func (l *Lab) RestartKeaExhausted(ctx context.Context) (netip.Prefix, error) {
	if err := l.StopKea(); err != nil {
		return netip.Prefix{}, err
	}
	l.mu.Lock()
	taken := netip.PrefixFrom(l.Pool.Addr(), l.opts.Delegated).Masked()
	l.mu.Unlock()
	for _, f := range []string{l.leaseFile(), l.leaseFile() + ".2"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return netip.Prefix{}, fmt.Errorf("lab: %w", err)
		}
	}
	valid := int(l.opts.Valid / time.Second)
	lease := fmt.Sprintf("%s,%s,%d,%d,1,%d,2,1,%d,0,0,,,0,\n", taken.Addr(), OtherDUID, valid,
		time.Now().Unix()+int64(valid), int(l.opts.Preferred/time.Second), taken.Bits())
	if err := os.WriteFile(l.leaseFile(), []byte(keaLeaseHeader+"\n"+lease), 0o644); err != nil {
		return netip.Prefix{}, fmt.Errorf("lab: %w", err)
	}
	if err := l.startKea(ctx, taken); err != nil {
		return netip.Prefix{}, err
	}
	l.logf("kea-dhcp6's only prefix %s is bound to %s: it answers NoPrefixAvail", taken, OtherDUID)
	return taken, nil
}

// KeaLog is the running (or last) Kea's log so far.
func (l *Lab) KeaLog() string {
	l.mu.Lock()
	p := l.kea
	l.mu.Unlock()
	if p == nil {
		return ""
	}
	return p.Log()
}

// KeaConf is the path of the configuration Kea was last started with.
func (l *Lab) KeaConf() string { return l.path("kea-dhcp6.json") }
