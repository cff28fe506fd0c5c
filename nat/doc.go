// Package nat maps v6edge's internal ULA prefix onto delegated prefixes, NPTv6 style, with
// nftables NETMAP ("snat/dnat ip6 prefix to") in a table of its own, `table ip6 v6edge`.
// It never touches another table and never flushes the ruleset.
//
// The desired mapping is a Ruleset value. Render turns it into rules, purely, so the whole
// table can be checked against golden files (Format prints them as `nft list` does). The
// table has two NAT base chains at the standard priorities and one regular chain:
//
//	prerouting  (dstnat, -100)  per uplink: [ct mark set M] · inbound dnat · jump hairpin
//	postrouting (srcnat, 100)   per uplink: outbound snat; once: hairpin snat
//	hairpin                     per LAN: dnat back to the internal prefix
//
// Hairpin: a LAN host dialling another LAN host's external address jumps to the hairpin
// chain, which maps the destination back (NETMAP keeps the host bits, so one rule per LAN
// serves every uplink and survives renumbering). In postrouting, a connection from internal
// to internal whose destination was translated ("ct status dnat") gets its source mapped to
// an external address too, so the peer answers through the router, where conntrack undoes
// both translations, even when both hosts share a link. No packet mark is used.
//
// Table makes the kernel match a Ruleset. An equal Ruleset sends nothing. A change rewrites
// only the uplinks whose rules differ: their new rules are inserted at the head of the
// chains in one batch (from then on old and new rules both translate every new connection,
// the new ones first), the handles are read back, and the old rules are deleted by handle in
// a second batch. There is never a moment without a mapping. The first creation, a restore
// after drift, and a start over a table a previous run left behind are one batch each
// (delete and recreate inside one transaction when the table exists).
//
// Measured on the 2-CPU development VM (kernel 6.18, load average 10–25 from parallel builds,
// so absolute numbers are noisy), `go test -bench . -benchtime 300x`:
//
//	                     insert-then-delete             flush-and-add (one batch)
//	                     live          whole Set        live          whole Set
//	Swap1 (1 uplink)     0.14–0.28 ms  0.36–0.55 ms     0.14–0.25 ms  0.24–0.5 ms
//	Swap256 (256 LANs)   0.26–0.31 ms  0.95–1.2 ms      6.8–8.7 ms    11–14 ms
//	SwapScript (fork/exec nft -f - with flush+add, one uplink): 13.5–41 ms
//
// "live" is until the new mapping is in force (Status.LastSwapDuration); the whole Set adds
// the handle read-back and the delete batch. Deleting rules by handle took 0.03–0.2 ms here
// (the ~13 ms seen elsewhere for batches that delete NAT rules did not show on this VM);
// insert-then-delete is kept because its live part never waits on a deletion. After the
// swap, conntrack entries of external prefixes no longer mapped are deleted (FlushConntrack),
// which at ~1000 entries takes 10–300 ms under this load; the mapping is live before.
//
// Watch (or Check) compares the kernel with what was installed — chains, their hooks, rule
// handles and expression counts — and rebuilds the table in one batch when something else
// removed or changed it, e.g. `nft flush ruleset`; internal/nft does the watching, for the
// policy marks table of internal/uplink too.
//
// Limits of google/nftables v0.3.0 that shaped the rules: it cannot read back ct keys that
// carry a direction (so no `ct original ip6 daddr`), and it writes anonymous ifname sets
// big endian, so nft would list their names as "" (so one rule per LAN instead of a set).
// Batches of hundreds of rules need a large netlink receive buffer for the kernel's
// echoes; NewTable sets 8 MiB.
package nat
