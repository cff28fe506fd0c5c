package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/internal/netif"
	"github.com/v6edge/v6edge/internal/uplink"
	"github.com/v6edge/v6edge/nat"
)

// Linux builds the real kernel owners in the caller's network namespace.
func Linux(cfg *configs.Config, log *slog.Logger, changed func()) (*Kernel, error) {
	nl, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("opening netlink: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			nl.Close()
		}
	}()
	table, err := nat.NewTable("v6edge", log.With("part", "nat"))
	if err != nil {
		return nil, fmt.Errorf("opening nftables: %w", err)
	}
	// One link and address subscription for the Tracker and the loop.
	links := &netif.Fanout{Source: netif.NetlinkWatcher{OnError: func(err error) {
		log.Warn("netlink event subscription failed", "err", err)
	}}}
	tracker := netif.NewTracker(nl, log.With("part", "addr"), netif.TrackerOptions{
		RetryMin: cfg.DAD.RetryMin, RetryMax: cfg.DAD.RetryMax,
		HealLinkLocal: cfg.DAD.HealLinkLocal, StateDir: cfg.Control.StateDir,
		OnChange: changed, Watcher: links,
	})
	k := &Kernel{
		Links:       nl,
		Addresses:   tracker,
		Routes:      netif.NewRoutes(nl, log.With("part", "routes")),
		NAT:         table,
		Watcher:     links,
		Prepare:     func() error { return netif.SetForwardingAll(true) },
		PrepareLink: prepareLink,
		DefaultRouter: func(iface string) (netip.Addr, bool) {
			gw, ok, err := netif.DefaultRouter(nl, iface)
			return gw, ok && err == nil
		},
		FlushFlows: uplink.FlushUplink,
		Tasks:      []Task{links, &natWatch{table}, &defaultRouteWatch{changed: changed, log: log}},
		Close:      func() { nl.Close() },
	}
	if len(cfg.WANs) > 1 {
		router := uplink.NewRouter(nl, log.With("part", "uplinks"))
		marks, err := uplink.NewMarks(-1, log.With("part", "uplinks"))
		if err != nil {
			return nil, fmt.Errorf("setting up uplink policy: %w", err)
		}
		router.UseMarks(marks)
		k.Policy = router
		k.Tasks = append(k.Tasks, &marksWatch{marks})
	}
	if cfg.HA != nil && cfg.HA.WANMAC != nil {
		k.SharedMAC = netif.NewSharedMAC(nl, cfg.WANs[0].Interface, cfg.HA.WANMAC, log.With("part", "ha"))
	}
	ok = true
	return k, nil
}

// defaultRouteWatch tells the loop when an IPv6 default route comes or
// goes: whether the WANs have a default router decides the LANs' router
// lifetime (RFC 7084 G-4), and the kernel learns it from the upstream's RAs
// with no other event.
type defaultRouteWatch struct {
	changed func()
	log     *slog.Logger
}

func (w *defaultRouteWatch) String() string { return "default route watch" }

func (w *defaultRouteWatch) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		updates := make(chan netlink.RouteUpdate, 64)
		err := netlink.RouteSubscribeWithOptions(updates, ctx.Done(), netlink.RouteSubscribeOptions{
			ErrorCallback: func(err error) { w.log.Debug("route subscription", "err", err) },
		})
		if err != nil {
			return fmt.Errorf("subscribing to route events: %w", err)
		}
		for u := range updates {
			if u.Family == netlink.FAMILY_V6 && (u.Dst == nil || u.Dst.IP.IsUnspecified()) {
				w.changed()
			}
		}
		// The subscription ended: look again, then subscribe anew.
		w.changed()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// marksWatch restores table ip6 v6edge-policy when someone else changes it.
type marksWatch struct{ m *uplink.Marks }

func (w *marksWatch) String() string                { return "policy table drift watch" }
func (w *marksWatch) Run(ctx context.Context) error { return w.m.Watch(ctx, time.Second) }

// natWatch restores table ip6 v6edge when someone else changes it.
type natWatch struct{ t *nat.Table }

func (w *natWatch) String() string                { return "nat drift watch" }
func (w *natWatch) Run(ctx context.Context) error { return w.t.Watch(ctx, time.Second) }

// prepareLink switches on what a router needs on one interface:
// forwarding, and on a WAN RAs despite forwarding (accept_ra=2), so the
// default route is learned from the upstream as ISPs expect. The global
// switch (Prepare) also set every interface's "forwarding" that existed
// then; an interface created later needs its own.
func prepareLink(iface string, wan bool) error {
	var errs []error
	if wan {
		if err := netif.SetAcceptRA(iface, 2); err != nil {
			errs = append(errs, err)
		}
	}
	if err := netif.SetForwarding(iface, true); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("preparing %s: %w", iface, err)
	}
	return nil
}
