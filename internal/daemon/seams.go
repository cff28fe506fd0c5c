package daemon

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/dhcp6pd"
	"github.com/v6edge/v6edge/dhcp6srv"
	"github.com/v6edge/v6edge/ha"
	"github.com/v6edge/v6edge/internal/hook"
	"github.com/v6edge/v6edge/internal/netif"
	"github.com/v6edge/v6edge/internal/uplink"
	"github.com/v6edge/v6edge/nat"
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

// Addresses owns the router's addresses (*netif.Tracker).
type Addresses interface {
	Task
	Set(wants []netif.Want)
	Status() []netif.AddrStatus
	Problems() []string
	DADFailures() uint64
	// Release removes the addresses it added that match, now.
	Release(match func(netif.Want) bool) error
}

// Routes owns the routes v6edge installs (*netif.Routes).
type Routes interface {
	SetUnreachable(prefixes []netip.Prefix) error
	SetRoutes(routes []netif.Route) error
}

// NAT owns table ip6 v6edge (*nat.Table).
type NAT interface {
	Set(r nat.Ruleset) error
	Status() nat.Status
	Remove() error
}

// Policy owns the multihoming policy routing (*uplink.Router).
type Policy interface {
	Set(p uplink.Policy) error
}

// SharedMAC owns the pair's shared WAN MAC (*netif.SharedMAC).
type SharedMAC interface {
	Hold() (took bool, err error)
	Give() error
	LinkLocal() netip.Addr
}

// Links reads links (a netif.Handle does).
type Links interface {
	LinkByName(name string) (netlink.Link, error)
}

// Kernel is every piece of kernel state the daemon applies, each with one
// owner. Nil Policy: one uplink. Nil SharedMAC: no ha.wan_mac.
type Kernel struct {
	Links     Links
	Addresses Addresses
	Routes    Routes
	NAT       NAT
	Policy    Policy
	SharedMAC SharedMAC
	// Watcher delivers link events (one subscription shared with the
	// Tracker).
	Watcher netif.Watcher
	// Prepare switches on forwarding and accept_ra=2 on the WANs.
	Prepare func() error
	// DefaultRouter is the WAN's default router as the kernel learned it.
	DefaultRouter func(iface string) (netip.Addr, bool)
	// FlushFlows drops the conntrack entries of a failed uplink's mark.
	FlushFlows func(mark uint32) (int, error)
	// Tasks are the kernel owners' own long-running parts (event
	// subscriptions, drift watches).
	Tasks []Task
	// Close releases handles after every task has ended.
	Close func()
}

// KernelFunc builds the Kernel for cfg; changed must be called (without
// blocking) whenever an owner's status changed by itself.
type KernelFunc func(cfg *configs.Config, log *slog.Logger, changed func()) (*Kernel, error)

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
