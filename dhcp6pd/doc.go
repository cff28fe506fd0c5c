// Package dhcp6pd is an RFC 8415 DHCPv6 prefix-delegation client.
//
// It has three layers:
//
//   - Machine, the pure protocol: it takes received bytes, timer fires and
//     operator requests together with the current time, and returns Actions
//     (bytes to send, "the lease changed"). It owns no socket and no clock,
//     so every retransmission schedule can be tested to the millisecond.
//   - Client, the driver: it binds a Machine to a UDP socket (Conn), a clock
//     and the lease store, and publishes a Snapshot on every change.
//   - The lease store (SaveLease, LoadLease) and DUID helpers, so a restart
//     Rebinds the saved lease instead of Soliciting a new prefix.
//
// The IA_PD is what the client lives for. An IA_NA (the router's own WAN
// address, RFC 7084 WAA-4) is asked for beside it only when
// Config.RequestAddress says so; in "try" mode a server that gives no
// address, or that ignores a Solicit holding both IAs, still delegates.
package dhcp6pd
