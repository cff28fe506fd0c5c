package dhcp6srv_test

import (
	"context"
	"log/slog"
	"net/netip"
	"os"

	"github.com/v6edge/v6edge/dhcp6srv"
)

// A LAN in stateful mode with downstream prefix delegation, the way the
// daemon wires it: Pool is the LAN's /64, PDPool the delegated prefix,
// LifetimeCap the end of the upstream lease, OnPD installs the routes.
func Example() {
	cfg := dhcp6srv.Config{
		Interface: "lan0",
		DNS:       []netip.Addr{netip.MustParseAddr("fd00:aaaa:bbbb:cc01::1")},
		Domains:   []string{"lan.example"},
		Pool:      netip.MustParsePrefix("fd00:aaaa:bbbb:cc01::/64"),
		PDPool:    netip.MustParsePrefix("2001:db8:100::/56"),
		PDLength:  60,
		PDExclude: []netip.Prefix{netip.MustParsePrefix("2001:db8:100:1::/64")}, // the LAN's own /64
		StateDir:  "/var/lib/v6edge",
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, nil)),
		OnPD: func(d []dhcp6srv.Delegation) {
			// for each d: route d.Prefix via d.Via dev d.Interface
		},
	}
	srv := dhcp6srv.NewServer(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // an example does not serve; a daemon runs it under its errgroup
	_ = srv.Run(ctx)
}
