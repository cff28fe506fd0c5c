// Package daemon is v6edge's one data flow, in one place:
//
//	drivers ──events──▶ loop (owns all state) ──plan.Compute──▶ Desired ──▶ appliers
//
// Drivers (the DHCPv6 clients, the VRRP node, the HA lease sync, the uplink
// probes, the link watcher, the LAN DHCPv6 servers, the control socket and
// SIGHUP) only report: each posts a typed event to the loop's mailbox and
// never touches the daemon's state. The loop is the only goroutine that
// reads or writes that state: it folds the events in, computes the desired
// state with the pure plan.Compute, and hands each part to its applier (the
// NAT table, the address Tracker, the routes, the policy router, the shared
// WAN MAC, the advertisers, the clients' standby), which only apply. Status
// is read from an immutable view the loop publishes after every pass.
//
// The kernel and the wire sit behind the interfaces in seams.go; Linux builds
// the real ones, tests pass fakes and drive the whole wiring without root.
package daemon
