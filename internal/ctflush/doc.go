// Package ctflush deletes selected IPv6 conntrack entries. NAT and policy marks are bound
// to a flow's conntrack entry, so after a renumbering (nat: flows translated into the old
// prefix) or an uplink failure (uplink: flows pinned to the failed uplink by their mark)
// an entry keeps its flow on a path that no longer works until it times out; deleted, the
// next packet starts a new flow on the path now in force.
//
// Delete lists the entries (the kernel filters by family and mark, since Linux 4.20; both
// are checked again here for older kernels), deletes those selected one by one (an entry
// that expired meanwhile is no error) and counts them.
package ctflush
