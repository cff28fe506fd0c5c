// Package testbed builds a throw-away IPv6 network out of Linux network
// namespaces: an upstream with a real DHCPv6-PD server (Kea) and a Router
// Advertisement sender (radvd), the router namespace in which v6edge (or the
// incumbent dhcpcd + hook + radvd) runs, and one or more LAN hosts whose
// kernels do SLAAC.
//
//	[upstream] up0 ── veth ── wan0 [router] lan0 ── veth ── eth0 [host]
//
// Options.Hosts puts several hosts on one LAN (a bridge), and
// Options.Routers builds an HA pair: the routers share a bridged upstream
// link and a LAN switch namespace.
//
// It is test and demo tooling, not daemon code, and no part of the v6edge
// binary: it shells out to ip, nft, kea-dhcp6, radvd, dhcpcd, tcpdump,
// rdisc6 and ping. cmd/v6edge-lab (`v6edge-lab demo`, `v6edge-lab bench`)
// uses it to show a newcomer the whole data path and to compare v6edge with
// the incumbent, and the system tests in integration/ use it as their test
// bed. Every namespace name carries a random suffix so labs can run in
// parallel, every peer keeps its files in the lab's own directory, and
// Close removes everything the lab created, even after a half-built New.
package testbed
