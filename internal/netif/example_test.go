package netif_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"

	"github.com/v6edge/v6edge/internal/netif"
	"github.com/vishvananda/netlink"
)

// The daemon runs in its own namespace and uses a plain handle.
func ExampleTracker() {
	h, err := netlink.NewHandle()
	if err != nil {
		return
	}
	defer h.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	changed := make(chan struct{}, 1)
	tr := netif.NewTracker(h, log, netif.TrackerOptions{
		HealLinkLocal: true,
		StateDir:      "/var/lib/v6edge",
		OnChange: func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		},
	})
	tr.Set([]netif.Want{
		{Interface: "lan0", Prefix: netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::1/64")},
		{Interface: "lan0", Prefix: netip.MustParsePrefix("fe80::1/64"), NoDAD: true}, // HA master only
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tr.Run(ctx)
	for _, s := range tr.Status() {
		fmt.Println(s.Interface, s.Address, s.State)
	}
}

func ExampleRoutes_SetUnreachable() {
	f := netif.NewFakeHandle("lan0")
	r := netif.NewRoutes(f, slog.New(slog.DiscardHandler))
	for range 2 { // idempotent
		r.SetUnreachable([]netip.Prefix{
			netip.MustParsePrefix("fd00:aaaa:bbbb:cc00::/56"),
			netip.MustParsePrefix("2001:db8:100::/56"),
		})
	}
	for _, rt := range f.Routes() {
		fmt.Println(rt.Dst, rt.Type, rt.Protocol)
	}
	// Output:
	// fd00:aaaa:bbbb:cc00::/56 7 118
	// 2001:db8:100::/56 7 118
}
