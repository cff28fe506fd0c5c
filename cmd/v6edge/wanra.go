package main

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"

	"github.com/v6edge/v6edge/internal/netif"
)

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
func (d *daemon) solicitRouter(ctx context.Context, iface string) {
	for i := 0; i < maxRtrSolicitations; i++ {
		if _, ok, err := netif.DefaultRouter(d.nl, iface); err == nil && ok {
			return
		}
		if err := sendRS(ctx, d.nl, iface); err != nil {
			d.log.Debug("sending router solicitation", "iface", iface, "err", err)
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
			if _, ok, err := netif.DefaultRouter(d.nl, iface); err == nil && ok {
				return
			}
		}
	}
	d.log.Warn("no router answered on the WAN; the default route will come with the upstream's next RA", "iface", iface)
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
