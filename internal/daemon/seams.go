package daemon

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/v6edge/v6edge/dhcp6pd"
	"github.com/v6edge/v6edge/dhcp6srv"
	"github.com/v6edge/v6edge/ha"
	"github.com/v6edge/v6edge/internal/hook"
	"github.com/v6edge/v6edge/ra"
)

// Task is a long-running part: Run until ctx ends, nil on cancellation.
type Task interface {
	Run(ctx context.Context) error
	String() string
}

// readier is a Task that says when it is serving; READY=1 waits for all.
type readier interface {
	Ready() <-chan struct{}
}

// Client is a WAN's DHCPv6-PD client (*dhcp6pd.Client).
type Client interface {
	Task
	Snapshot() dhcp6pd.Snapshot
	SetStandby(standby bool, lease *dhcp6pd.Lease)
	Renew()
	Release()
	LinkChanged(up bool)
}

// Advertiser sends one LAN's Router Advertisements (*ra.Advertiser).
type Advertiser interface {
	Task
	readier
	Update(ra.Config)
	Status() ra.Status
}

// LANServer is one LAN's DHCPv6 server (*dhcp6srv.Server).
type LANServer interface {
	Run(ctx context.Context) error
	Update(dhcp6srv.Config)
	Stats() dhcp6srv.Stats
}

// VRRP is the pair's VRRPv3 node (*ha.Node).
type VRRP interface {
	Task
	readier
	Status() ha.Status
}

// SyncConn carries the sealed lease-sync datagrams (*ha.SyncConn).
type SyncConn interface {
	Send(msg []byte) error
	Receive(b []byte) (n int, src netip.Addr, err error)
	Close() error
}

// HookRunner runs a WAN's dhcpcd-compatible script (*hook.Runner).
type HookRunner interface {
	Fire(ctx context.Context, e hook.Event)
}

// Drivers builds the parts that talk to the wire. Every field is required;
// Linux() returns the real ones.
type Drivers struct {
	NewClient     func(dhcp6pd.Config) Client
	ListenDHCP    func(ctx context.Context, iface string, from netip.Addr) (dhcp6pd.Conn, error)
	NewAdvertiser func(ra.Config, *slog.Logger) Advertiser
	NewServer     func(dhcp6srv.Config) LANServer
	NewVRRP       func(ha.NodeConfig) VRRP
	ListenSync    func(iface string) (SyncConn, error)
	// NewProber probes an uplink's check address; result is called from
	// its goroutine.
	NewProber func(iface string, target netip.Addr, source func() netip.Addr, mark uint32, log *slog.Logger, result func(ok bool)) Task
	// SolicitRouter makes the kernel learn the WAN default route now.
	SolicitRouter func(ctx context.Context, iface string)
	NewHook       func(path, iface string, log *slog.Logger) HookRunner
	// Announce sends unsolicited NAs for addrs on iface.
	Announce func(iface string, addrs []netip.Addr) error
}
