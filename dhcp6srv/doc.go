// Package dhcp6srv is the LAN-side DHCPv6 server (RFC 8415, server side)
// that keeps the promise of the Router Advertisement's M and O flags.
//
// It serves three things on one link:
//
//   - stateless configuration: Information-request is answered with DNS
//     servers (option 23), the domain search list (option 24) and the
//     information refresh time (option 32);
//   - stateful addresses (IA_NA) from a range inside the LAN's /64;
//   - downstream prefix delegation (IA_PD) to routers on the LAN, with a
//     route per delegation handed to the daemon through Config.OnPD.
//
// It has two layers:
//
//   - Handler, the pure protocol: Handle takes a received message, its
//     source address and the current time, and returns the reply bytes (or
//     nil and the reason for dropping). It owns no socket and no clock, so
//     every status and lifetime can be tested with a fake clock.
//   - Server, the driver: it binds a Handler to a UDP socket (Conn), a clock
//     and the lease file, expires leases and persists them on change.
//
// Renumbering (Update) keeps every client's interface identifier or
// delegated sub-prefix slot and moves it into the new prefix; the old
// address or prefix is returned with zero lifetimes at the client's next
// Renew or Rebind (RFC 8415 §18.3.4, §18.3.5), so hosts drop it at once
// instead of keeping a dead source address for hours.
package dhcp6srv
