package daemon

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"

	"github.com/v6edge/v6edge/dhcp6pd"
	"github.com/v6edge/v6edge/dhcp6srv"
	"github.com/v6edge/v6edge/ha"
	"github.com/v6edge/v6edge/internal/hook"
	"github.com/v6edge/v6edge/internal/netif"
	"github.com/v6edge/v6edge/internal/uplink"
	"github.com/v6edge/v6edge/ra"
)

// LinuxDrivers are the real sockets.
func LinuxDrivers(log *slog.Logger) Drivers {
	return Drivers{
		NewClient: func(c dhcp6pd.Config) Client { return dhcp6pd.NewClient(c) },
		ListenDHCP: func(ctx context.Context, iface string, from netip.Addr) (dhcp6pd.Conn, error) {
			if from.IsValid() {
				return dhcp6pd.ListenUDPFrom(ctx, iface, from)
			}
			return dhcp6pd.ListenUDP(ctx, iface)
		},
		NewAdvertiser: func(c ra.Config, log *slog.Logger) Advertiser { return ra.NewAdvertiser(c, log) },
		NewServer:     func(c dhcp6srv.Config) LANServer { return dhcp6srv.NewServer(c) },
		NewVRRP:       func(c ha.NodeConfig) VRRP { return ha.NewNode(c) },
		ListenSync:    func(iface string) (SyncConn, error) { return ha.ListenSync(iface) },
		NewProber: func(iface string, target netip.Addr, source func() netip.Addr, mark uint32, log *slog.Logger, result func(bool)) Task {
			return uplink.NewProber(iface, target, source, mark, time.Second, log, result)
		},
		SolicitRouter: func(ctx context.Context, iface string) { solicitRouter(ctx, iface, log) },
		NewHook: func(path, iface string, log *slog.Logger) HookRunner {
			return &hook.Runner{Path: path, Log: log}
		},
		Announce: ha.Announce,
	}
}

// RFC 4861 §10 host constants for soliciting routers.
const (
	maxRtrSolicitations     = 3
	rtrSolicitationInterval = 4 * time.Second
)

// solicitRouter makes the kernel learn the WAN default route now rather than
// at the upstream's next periodic RA, which can be many minutes away. The
// kernel solicits only when a link-local finishes DAD, long before v6edge
// switched on accept_ra=2, so v6edge sends the Router Solicitations itself
// (RFC 4861 §6.3.7) and lets the kernel process the answer.
func solicitRouter(ctx context.Context, iface string, log *slog.Logger) {
	nl, err := netlink.NewHandle()
	if err != nil {
		return
	}
	defer nl.Close()
	hasRoute := func() bool {
		_, ok, err := netif.DefaultRouter(nl, iface)
		return err == nil && ok
	}
	// A WAN that appears after the start (PPPoE, a VLAN) is waited for.
	for {
		if _, err := nl.LinkByName(iface); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	for range maxRtrSolicitations {
		if hasRoute() {
			return
		}
		if err := sendRS(ctx, nl, iface); err != nil && ctx.Err() == nil {
			log.Debug("sending router solicitation", "iface", iface, "err", err)
		}
		// Poll for the route instead of sleeping the whole interval: the
		// answer usually comes within milliseconds.
		deadline := time.Now().Add(rtrSolicitationInterval)
		for time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			if hasRoute() {
				return
			}
		}
	}
	log.Warn("no router answered on the WAN; the default route will come with the upstream's next RA", "iface", iface)
}

func sendRS(ctx context.Context, h netif.Handle, iface string) error {
	if _, err := netif.WaitLinkLocal(ctx, h, iface); err != nil {
		return err
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return err
	}
	c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return err
	}
	defer c.Close()
	rs := &ndp.RouterSolicitation{Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifi.HardwareAddr}}}
	return c.WriteTo(rs, nil, netip.IPv6LinkLocalAllRouters())
}
