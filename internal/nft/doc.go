// Package nft is what v6edge's two nftables engines share: nat (`table ip6 v6edge`) and
// uplink's Marks (`table ip6 v6edge-policy`). Each engine owns one table and renders its
// rules itself; this package only talks to the kernel and keeps the table there.
//
//   - Open: a lasting netlink connection, in a given network namespace, with a receive
//     buffer large enough for the kernel's echo of a batch of hundreds of rules
//     (google/nftables asks for NLM_F_ECHO; the default buffer fails with ENOBUFS).
//   - Monitor: one signal per nftables transaction, by anyone. The monitor is unfiltered on
//     purpose: google/nftables v0.3.0 hands events over at each generation message, which
//     a monitor narrowed to tables, chains or rules drops as well.
//   - Drift: what differs between the kernel's table and what its owner installed — a
//     chain missing or with another type, hook, priority or policy; rules missing, foreign
//     or changed (by handle when the owner knows them, else by position; compared by
//     expression count).
//   - Keeper: the drift watch. Its owner gives it one function that compares and restores
//     under the owner's lock; Keeper runs it after every transaction (once a burst has
//     settled) and every 30 intervals as a backstop, or every interval without change
//     events, and counts and logs the restores. `nft flush ruleset` or `nft delete table`
//     thus gets the table back within milliseconds.
package nft
