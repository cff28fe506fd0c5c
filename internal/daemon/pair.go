package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/ha"
	"github.com/v6edge/v6edge/internal/netif"
	"github.com/v6edge/v6edge/internal/plan"
)

// pair is the HA part of the daemon beyond the VRRP protocol: the VRRP node
// and the lease-sync receiver are drivers (they report roles and the
// master's lease), the shared WAN MAC and the lease sent to the backup are
// applied from the plan by the loop.
type pair struct {
	d    *Daemon
	cfg  configs.HA
	wan  string
	node VRRP // nil with mode = "external"
	conn SyncConn
	key  []byte
	// resigned: the node stopped as master and sent priority 0. Written by
	// the node's callback, read by stop after every task has ended.
	resigned atomic.Bool
	// master mirrors the loop's role for the receiver: a master ignores
	// lease datagrams (its own looped back, or a split brain resolving)
	// without moving the replay counter past the peer's clock.
	master atomic.Bool
}

func newPair(d *Daemon, cfg *configs.Config, virtual []netip.Addr) (*pair, error) {
	h := *cfg.HA
	key := []byte(h.SyncKey)
	if len(key) == 0 {
		// Without a configured key the sync is only protected against
		// accidents (another VRID's pair), not against attackers on the LAN.
		key = []byte(fmt.Sprintf("v6edge-vrid-%d", h.VRID))
	}
	conn, err := d.opts.Drivers.ListenSync(h.Interface)
	if err != nil {
		return nil, fmt.Errorf("HA lease sync on %s: %w", h.Interface, err)
	}
	p := &pair{d: d, cfg: h, wan: cfg.WANs[0].Interface, conn: conn, key: key}
	if h.Mode == "vrrp" {
		var last ha.Role
		p.node = d.opts.Drivers.NewVRRP(ha.NodeConfig{
			Interface: h.Interface,
			Config: ha.Config{VRID: h.VRID, Priority: h.Priority, AdvertInterval: h.AdvertInterval,
				Preempt: h.Preempt, PreemptDelay: h.PreemptDelay, Addrs: virtual},
			Logger: d.log.With("part", "vrrp"),
			// Called from the node's goroutine, one call at a time.
			OnRole: func(r ha.Role, why string) {
				if why == ha.ReasonShutdown {
					p.resigned.Store(last == ha.RoleMaster)
				}
				last = r
				d.post(roleEvent{role: haRole(r), why: why})
			},
		})
	}
	return p, nil
}

func haRole(r ha.Role) plan.Role {
	if r == ha.RoleMaster {
		return plan.Master
	}
	return plan.Backup
}

// tasks are the pair's drivers.
func (p *pair) tasks() []Task {
	ts := []Task{&syncReceiver{p: p}, &ticker{name: "HA lease sync", every: p.d.opts.SyncInterval, post: p.d.post, e: syncTick{}}}
	if p.node != nil {
		ts = append(ts, p.node)
	}
	return ts
}

// applyWAN makes the WAN match the role: the master holds the shared MAC and
// the link-local derived from it, the backup wears its own. Idempotent.
func (p *pair) applyWAN(h *plan.HA) {
	mac := p.d.k.SharedMAC
	if mac == nil || h == nil {
		return
	}
	if !h.HoldWANMAC {
		if err := mac.Give(); err != nil {
			p.d.log.Error("HA: giving back the shared WAN MAC", "iface", p.wan, "err", err)
		}
		return
	}
	took, err := mac.Hold()
	if err != nil {
		p.d.log.Error("HA: holding the shared WAN MAC", "iface", p.wan, "err", err)
		return
	}
	if took {
		// Tell the upstream (and the WAN segment's switches) at once that
		// the shared MAC and its link-local now live here (RFC 4861 §7.2.6);
		// the VRRP node does the same for the LAN addresses.
		ll, announce := mac.LinkLocal(), p.d.opts.Drivers.Announce
		go func() {
			if err := announce(p.wan, []netip.Addr{ll}); err != nil {
				p.d.log.Warn("HA: announcing the WAN link-local", "iface", p.wan, "err", err)
			}
		}()
	}
}

// sendLease tells the backup the lease, while master.
func (p *pair) sendLease(st *loopState) {
	snap := st.snaps[p.wan]
	if st.role != plan.Master || snap.Lease == nil {
		return
	}
	now := p.d.now()
	payload, err := ha.EncodeLease(syncFromLease(p.wan, snap.Lease), now)
	if err != nil {
		return
	}
	if err := p.conn.Send(ha.SealSync(p.key, uint64(now.UnixNano()), payload)); err != nil {
		p.d.log.Debug("HA: sending lease sync", "err", err)
	}
}

// handOverMargin is how long past one advert interval a resigning master
// keeps forwarding: the backup's own pass that installs the addresses and
// takes the WAN MAC, on a loaded machine.
const handOverMargin = 250 * time.Millisecond

// stop runs after every task has ended. A master that resigned (its
// priority 0 advert, RFC 5798 §6.4.2) keeps its kernel state for one advert
// interval and handOverMargin: the backup takes over after its Skew_Time,
// and until its unsolicited NAs have moved the hosts and the upstream, this
// node's kernel still forwards and translates. Make before break: a graceful
// stop loses no traffic. Then it gives up the shared MAC and the floating
// addresses: a kernel left holding fe80::1 would answer neighbor
// solicitations for it beside the new master.
func (p *pair) stop() {
	if p.resigned.Load() {
		hold := p.cfg.AdvertInterval + handOverMargin
		p.d.log.Info("HA: resigned; forwarding on while the backup takes over", "hold", hold)
		time.Sleep(hold) // every task has ended; bounded by the interval
	}
	if mac := p.d.k.SharedMAC; mac != nil {
		if err := mac.Give(); err != nil {
			p.d.log.Error("HA: giving back the shared WAN MAC", "iface", p.wan, "err", err)
		}
	}
	if err := p.d.k.Addresses.Release(func(w netif.Want) bool { return w.NoDAD }); err != nil {
		p.d.log.Warn("HA: removing the floating addresses on stop", "err", err)
	}
	_ = p.conn.Close()
}

// syncReceiver reads the master's sealed lease datagrams and reports each
// valid one; it keeps the replay counter, nothing else.
type syncReceiver struct {
	p       *pair
	lastSeq uint64
}

func (r *syncReceiver) String() string { return "HA lease sync receiver" }

func (r *syncReceiver) Run(ctx context.Context) error {
	p := r.p
	r.lastSeq = uint64(p.d.now().Add(-time.Minute).UnixNano())
	stop := context.AfterFunc(ctx, func() { _ = p.conn.Close() }) // ends Receive
	defer stop()
	buf := make([]byte, 64<<10)
	for {
		n, _, err := p.conn.Receive(buf)
		if err == nil && p.master.Load() {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ha.ErrSyncOffLink) {
				continue
			}
			p.d.log.Warn("HA: lease sync socket", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		seq, payload, err := ha.OpenSync(p.key, buf[:n], r.lastSeq)
		if err != nil {
			p.d.log.Debug("HA: lease sync refused", "err", err)
			continue
		}
		r.lastSeq = seq
		l, err := ha.DecodeLease(payload, p.d.now())
		if err != nil {
			p.d.log.Warn("HA: lease sync refused", "err", err)
			continue
		}
		p.d.post(peerLeaseEvent{lease: l})
	}
}

// ticker posts e every interval.
type ticker struct {
	name  string
	every time.Duration
	post  func(event)
	e     event
}

func (t *ticker) String() string { return t.name }

func (t *ticker) Run(ctx context.Context) error {
	tk := time.NewTicker(t.every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
			t.post(t.e)
		}
	}
}
