package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/v6edge/v6edge/dhcp6pd"
)

// lateClient stands in for a WAN's DHCPv6 client while the WAN does not
// exist yet and its DUID-LL needs the WAN's MAC: router firmware may create
// the uplink (PPPoE, a VLAN, a hot-plugged vNIC) after v6edge started. Run
// waits for the link, then builds the client and runs it; until then the
// methods are remembered (standby) or dropped (nothing to renew).
type lateClient struct {
	iface string
	// build makes the real client once the link is there; an error
	// other than a missing link is final.
	build func() (Client, error)
	poll  time.Duration

	mu      sync.Mutex
	c       Client
	standby *standbyCall
}

type standbyCall struct {
	standby bool
	lease   *dhcp6pd.Lease
}

var _ Client = (*lateClient)(nil)

func (l *lateClient) String() string { return "dhcp6pd " + l.iface + " (waiting for the link)" }

func (l *lateClient) Run(ctx context.Context) error {
	t := time.NewTicker(l.poll)
	defer t.Stop()
	for {
		c, err := l.build()
		if err == nil {
			l.mu.Lock()
			l.c = c
			if s := l.standby; s != nil {
				c.SetStandby(s.standby, s.lease)
			}
			l.mu.Unlock()
			return c.Run(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (l *lateClient) client() Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c
}

func (l *lateClient) Snapshot() dhcp6pd.Snapshot {
	if c := l.client(); c != nil {
		return c.Snapshot()
	}
	return dhcp6pd.Snapshot{State: dhcp6pd.StateInit, Problems: []string{"waiting for the interface to appear (its MAC makes the DUID-LL)"}}
}

func (l *lateClient) SetStandby(standby bool, lease *dhcp6pd.Lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c != nil {
		l.c.SetStandby(standby, lease)
		return
	}
	l.standby = &standbyCall{standby, lease.Clone()}
}

func (l *lateClient) Renew() {
	if c := l.client(); c != nil {
		c.Renew()
	}
}

func (l *lateClient) Release() {
	if c := l.client(); c != nil {
		c.Release()
	}
}

func (l *lateClient) LinkChanged(up bool) {
	if c := l.client(); c != nil {
		c.LinkChanged(up)
	}
}
