package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/dhcp6pd"
	"github.com/v6edge/v6edge/ha"
	"github.com/v6edge/v6edge/internal/plan"
)

// pair is what the daemon does for an HA pair beyond the VRRP protocol
// itself: it moves the shared WAN MAC (and the link-local derived from it)
// to the master, announces the floating addresses, and keeps the backup's
// copy of the lease current so a takeover installs NAT at once.
type pair struct {
	d    *daemon
	cfg  *configs.HA
	node *ha.Node // nil with mode = "external"
	// resigned: the node stopped as master and sent priority 0.
	resigned atomic.Bool

	mu       sync.Mutex
	wan      string
	ownMAC   net.HardwareAddr // the WAN's MAC before we touched it, restored on backup
	holding  bool             // we currently hold the WAN MAC
	lastSeq  uint64
	syncConn *ha.SyncConn
	syncKey  []byte
}

func newPair(d *daemon) *pair {
	cfg := d.cfg.HA
	key := []byte(cfg.SyncKey)
	if len(key) == 0 {
		// Without a configured key the sync is only protected against
		// accidents (another VRID's pair), not against attackers on the LAN.
		key = []byte(fmt.Sprintf("v6edge-vrid-%d", cfg.VRID))
	}
	p := &pair{d: d, cfg: cfg, wan: d.cfg.WANs[0].Interface, syncKey: key,
		lastSeq: uint64(time.Now().Add(-time.Minute).UnixNano())}
	if cfg.Mode == "vrrp" {
		// Built here, before any goroutine runs, so status can read it.
		p.node = ha.NewNode(ha.NodeConfig{
			Interface: cfg.Interface,
			Config: ha.Config{VRID: cfg.VRID, Priority: cfg.Priority, AdvertInterval: cfg.AdvertInterval,
				Preempt: cfg.Preempt, PreemptDelay: cfg.PreemptDelay, Addrs: virtualAddrs(d.cfg)},
			Logger: d.log.With("part", "vrrp"),
			OnRole: func(r ha.Role, why string) {
				if why == ha.ReasonShutdown {
					// Stopped as master: a priority 0 advert went out.
					d.mu.Lock()
					p.resigned.Store(d.role == plan.Master)
					d.mu.Unlock()
				}
				d.setRole(haRole(r), why)
			},
		})
	}
	// Read once, before any goroutine can move the MAC: the backup gives
	// this one back.
	if link, err := d.nl.LinkByName(p.wan); err == nil {
		p.ownMAC = slices.Clone(link.Attrs().HardwareAddr)
	}
	return p
}

// virtualAddrs lists the VRRP addresses in advert order (RFC 5798 §5.2.9):
// the virtual link-local, then each LAN's router address that does not
// depend on a lease. A keepalived peer lists the same ones.
func virtualAddrs(cfg *configs.Config) []netip.Addr {
	addrs := []netip.Addr{cfg.HA.VirtualLinkLocal}
	des := plan.Compute(plan.Input{Config: cfg, Role: plan.Master})
	for _, a := range des.Addresses {
		if a.Prefix.Addr() != cfg.HA.VirtualLinkLocal && !slices.Contains(addrs, a.Prefix.Addr()) {
			addrs = append(addrs, a.Prefix.Addr())
		}
	}
	return addrs
}

func haRole(r ha.Role) plan.Role {
	switch r {
	case ha.RoleMaster:
		return plan.Master
	default:
		return plan.Backup
	}
}

// run starts the VRRP node (mode vrrp) and the lease sync until ctx ends.
func (p *pair) run(ctx context.Context) error {
	if err := p.openSync(); err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		p.syncConn.Close() // ends Receive
	}()
	errc := make(chan error, 2)
	go func() { errc <- p.receiveSync(ctx) }()
	go func() { p.sendSyncLoop(ctx); errc <- nil }()
	if p.node != nil {
		if err := p.node.Run(ctx); err != nil {
			return err
		}
		if p.resigned.Load() {
			p.handOver()
		}
	} else {
		<-ctx.Done()
	}
	// Whatever happens next, a stopped node must not keep the shared MAC
	// nor the floating LAN addresses: the event loop has ended and will not
	// apply the backup role, and a kernel left holding fe80::1 would answer
	// neighbor solicitations for it beside the new master.
	p.releaseWAN()
	p.releaseLAN()
	<-errc
	<-errc
	return nil
}

// handOverMargin is how long past one advert interval a resigning master
// keeps forwarding: the backup's own pass that installs the addresses and
// takes the WAN MAC, on a loaded machine.
const handOverMargin = 250 * time.Millisecond

// handOver keeps the kernel state of a master that resigned (its priority
// 0 advert, RFC 5798 §6.4.2) for one advert interval and handOverMargin:
// the backup takes over after its Skew_Time, which is shorter than our
// advert interval, and until its unsolicited NAs have moved the hosts and
// the upstream, this node's kernel still forwards and translates. Make
// before break: a graceful stop loses no traffic.
func (p *pair) handOver() {
	hold := p.cfg.AdvertInterval + handOverMargin
	p.d.log.Info("HA: resigned; forwarding on while the backup takes over", "hold", hold)
	<-time.After(hold) // ctx has ended already; bounded by the interval
}

// apply makes the WAN match the role: the master holds the shared MAC and
// the link-local derived from it (without DAD: the old master may still hold
// it for a moment), the backup returns to its own MAC. Idempotent.
func (p *pair) apply(role plan.Role) {
	if role == plan.Master {
		p.takeWAN()
	} else {
		p.releaseWAN()
	}
}

func (p *pair) takeWAN() {
	mac := p.cfg.WANMAC
	if mac == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	nl := p.d.nl
	link, err := nl.LinkByName(p.wan)
	if err != nil {
		p.d.log.Error("HA: WAN link", "iface", p.wan, "err", err)
		return
	}
	if link.Attrs().HardwareAddr.String() != mac.String() {
		if err := nl.LinkSetHardwareAddr(link, mac); err != nil {
			p.d.log.Error("HA: taking over the WAN MAC", "iface", p.wan, "mac", mac, "err", err)
			return
		}
	}
	ll := eui64LinkLocal(mac)
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ll.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
	if err := nl.AddrReplace(link, addr); err != nil {
		p.d.log.Error("HA: adding the WAN link-local of the shared MAC", "iface", p.wan, "addr", ll, "err", err)
	}
	if !p.holding {
		p.holding = true
		p.d.log.Info("HA: holding the shared WAN MAC", "iface", p.wan, "mac", mac, "link_local", ll)
		// Tell the upstream (and the WAN segment's switches) at once that
		// the shared MAC and its link-local now live here (RFC 4861 §7.2.6);
		// the VRRP node does the same for the LAN addresses.
		go func() {
			if err := ha.Announce(p.wan, []netip.Addr{ll}); err != nil {
				p.d.log.Warn("HA: announcing the WAN link-local", "iface", p.wan, "err", err)
			}
		}()
	}
}

func (p *pair) releaseWAN() {
	mac := p.cfg.WANMAC
	if mac == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	nl := p.d.nl
	link, err := nl.LinkByName(p.wan)
	if err != nil {
		return
	}
	ll := eui64LinkLocal(mac)
	_ = nl.AddrDel(link, &netlink.Addr{IPNet: &net.IPNet{IP: ll.AsSlice(), Mask: net.CIDRMask(64, 128)}})
	// SLAAC addresses the upstream's RAs made from the shared MAC (RFC 4862
	// §5.5.3) belong to the pair too: left here they would collide with
	// the new master's.
	iid := ll.As16()
	if addrs, err := nl.AddrList(link, netlink.FAMILY_V6); err == nil {
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && [8]byte(ip.AsSlice()[8:]) == [8]byte(iid[8:]) {
				_ = nl.AddrDel(link, &a)
			}
		}
	}
	if p.ownMAC != nil && link.Attrs().HardwareAddr.String() != p.ownMAC.String() {
		if err := nl.LinkSetHardwareAddr(link, p.ownMAC); err != nil {
			p.d.log.Error("HA: giving back the shared WAN MAC", "iface", p.wan, "err", err)
		}
	}
	if p.holding {
		p.holding = false
		p.d.log.Info("HA: released the shared WAN MAC", "iface", p.wan)
	}
}

// releaseLAN removes the floating LAN addresses (those a master holds and a
// backup does not) when the node stops.
func (p *pair) releaseLAN() {
	cfg := p.d.config()
	master := plan.Compute(plan.Input{Config: cfg, Role: plan.Master})
	backup := plan.Compute(plan.Input{Config: cfg, Role: plan.Backup})
	for _, a := range master.Addresses {
		if slices.Contains(backup.Addresses, a) {
			continue
		}
		link, err := p.d.nl.LinkByName(a.Interface)
		if err != nil {
			continue
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(a.Prefix.Bits(), 128)}}
		if err := p.d.nl.AddrDel(link, addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			p.d.log.Warn("HA: removing a floating address on stop", "iface", a.Interface, "prefix", a.Prefix, "err", err)
		}
	}
}

// eui64LinkLocal is the modified EUI-64 link-local of mac (RFC 4291 App. A):
// the universal/local bit flips.
func eui64LinkLocal(mac net.HardwareAddr) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}

// syncLease is the lease as the master tells it to the backup. Times are
// sent as ages so the two clocks need not agree.
type syncLease struct {
	WAN        string       `json:"wan"`
	IAID       uint32       `json:"iaid"`
	ServerID   string       `json:"server_id"`
	T1S        int64        `json:"t1_s"`
	T2S        int64        `json:"t2_s"`
	AgeMS      int64        `json:"age_ms"`
	Hint       int          `json:"hint"`
	Prefixes   []syncPrefix `json:"prefixes"`
	ServerAddr netip.Addr   `json:"server_addr,omitzero"`
}

type syncPrefix struct {
	Prefix     netip.Prefix `json:"prefix"`
	PreferredS int64        `json:"preferred_s"`
	ValidS     int64        `json:"valid_s"`
}

func encodeLease(wan string, l *dhcp6pd.Lease, now time.Time) ([]byte, error) {
	s := syncLease{WAN: wan, IAID: l.IAID, ServerID: hex.EncodeToString(l.ServerID), T1S: int64(l.T1 / time.Second),
		T2S: int64(l.T2 / time.Second), AgeMS: now.Sub(l.Acquired).Milliseconds(), Hint: l.Hint, ServerAddr: l.ServerAddr}
	for _, p := range l.Prefixes {
		s.Prefixes = append(s.Prefixes, syncPrefix{Prefix: p.Prefix, PreferredS: int64(p.Preferred / time.Second), ValidS: int64(p.Valid / time.Second)})
	}
	return json.Marshal(s)
}

func decodeLease(b []byte, now time.Time) (string, *dhcp6pd.Lease, error) {
	var s syncLease
	if err := json.Unmarshal(b, &s); err != nil {
		return "", nil, err
	}
	sid, err := hex.DecodeString(s.ServerID)
	if err != nil || len(sid) == 0 {
		return "", nil, errors.New("lease sync: bad server id")
	}
	if s.AgeMS < 0 || len(s.Prefixes) == 0 {
		return "", nil, errors.New("lease sync: no prefix or a lease from the future")
	}
	l := &dhcp6pd.Lease{IAID: s.IAID, ServerID: sid, ServerAddr: s.ServerAddr, T1: time.Duration(s.T1S) * time.Second,
		T2: time.Duration(s.T2S) * time.Second, Acquired: now.Add(-time.Duration(s.AgeMS) * time.Millisecond), Hint: s.Hint}
	for _, p := range s.Prefixes {
		if !p.Prefix.IsValid() || p.Prefix.Bits() > 64 || p.PreferredS < 0 || p.ValidS < p.PreferredS {
			return "", nil, fmt.Errorf("lease sync: bad prefix %v", p.Prefix)
		}
		l.Prefixes = append(l.Prefixes, dhcp6pd.Prefix{Prefix: p.Prefix, Preferred: time.Duration(p.PreferredS) * time.Second, Valid: time.Duration(p.ValidS) * time.Second})
	}
	return s.WAN, l, nil
}

func (p *pair) openSync() error {
	c, err := ha.ListenSync(p.cfg.Interface)
	if err != nil {
		return fmt.Errorf("HA lease sync on %s: %w", p.cfg.Interface, err)
	}
	p.syncConn = c
	return nil
}

// sendSyncLoop: while master, send the lease every second (and a backup that
// starts late catches up within a second).
func (p *pair) sendSyncLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.sendSync()
		}
	}
}

func (p *pair) sendSync() {
	p.d.mu.Lock()
	role := p.d.role
	snap := p.d.snaps[p.wan]
	p.d.mu.Unlock()
	if role != plan.Master || snap.Lease == nil {
		return
	}
	now := time.Now()
	payload, err := encodeLease(p.wan, snap.Lease, now)
	if err != nil {
		return
	}
	msg := ha.SealSync(p.syncKey, uint64(now.UnixNano()), payload)
	if err := p.syncConn.Send(msg); err != nil {
		p.d.log.Debug("HA: sending lease sync", "err", err)
	}
}

func (p *pair) receiveSync(ctx context.Context) error {
	buf := make([]byte, 64<<10)
	for {
		n, _, err := p.syncConn.Receive(buf)
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
		p.d.mu.Lock()
		role := p.d.role
		p.d.mu.Unlock()
		if role == plan.Master {
			continue // our own datagram looped back, or a split brain VRRP resolves
		}
		seq, payload, err := ha.OpenSync(p.syncKey, buf[:n], p.lastSeq)
		if err != nil {
			p.d.log.Debug("HA: lease sync refused", "err", err)
			continue
		}
		p.lastSeq = seq
		wan, lease, err := decodeLease(payload, time.Now())
		if err != nil || wan != p.wan {
			p.d.log.Warn("HA: lease sync refused", "wan", wan, "err", err)
			continue
		}
		p.d.learnLease(wan, lease)
	}
}
