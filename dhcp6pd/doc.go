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
// Only IA_PD is requested: some ISPs reject a Solicit that carries IA_NA and
// IA_PD together, and a router needs no WAN address from DHCPv6.
package dhcp6pd
