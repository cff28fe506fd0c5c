package daemon

import (
	"log/slog"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/internal/netif"
	"github.com/v6edge/v6edge/internal/uplink"
	"github.com/v6edge/v6edge/nat"
)

// The kernel side of the seams: one owner for each piece of kernel state.

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
	// Prepare switches on IPv6 forwarding for the whole box, at start.
	Prepare func() error
	// PrepareLink configures one interface as a router's (forwarding;
	// accept_ra=2 on a WAN, so the upstream's RAs still give the default
	// route). The loop calls it whenever the interface appears, also again
	// after it was deleted and created anew.
	PrepareLink func(iface string, wan bool) error
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
