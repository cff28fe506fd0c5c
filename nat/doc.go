// Package nat maps v6edge's internal ULA prefix onto delegated prefixes, NPTv6 style, with
// nftables NETMAP ("snat/dnat ip6 prefix to") in a table of its own.
//
// The desired mapping is a Ruleset value. Render turns it into rules, purely, so the whole
// table can be checked against golden files; Table makes the kernel match a Ruleset, sends
// nothing when it already does, and swaps a changed uplink's rules without a window in which
// a packet leaves untranslated: the new rules are inserted at the head of the chains in one
// batch (both old and new rules translate every packet, the new ones win), and the old rules
// are deleted by handle in a second batch. Deleting NAT rules makes the kernel wait for an RCU
// grace period (~13 ms here), inserting does not (~0.1 ms), so the mapping is live long before
// the cleanup returns.
//
// Watch restores the table when something else removed or changed it, and FlushConntrack
// forgets flows still translated to a prefix the router no longer holds.
//
// nftables NAT chains only see the first packet of a connection: translations are bound to
// conntrack entries, which is why a renumbering must also flush the old entries.
package nat
