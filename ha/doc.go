// Package ha keeps two v6edge routers in an active/standby pair with VRRP
// version 3 for IPv6 (RFC 5798), interoperable with keepalived
// (vrrp_version 3).
//
// The package has three layers:
//
//   - packet.go: the VRRPv3 advertisement on the wire (Advert, ParseAdvert),
//     checksummed over the IPv6 pseudo-header.
//   - vrrp.go: the pure state machine of RFC 5798 §6.4 (Machine). It takes the
//     time and received adverts as inputs and returns Events (adverts to send,
//     role changes); it never reads a clock or touches a socket.
//   - conn.go and node.go: the driver. Listen opens a raw IPv6 socket for
//     protocol 112 on one interface; Node binds a Machine to that socket and a
//     real clock and reports role changes through a callback.
//
// sync.go adds the lease-sync message (SealSync, OpenSync): the master tells
// the backup which prefix it holds, authenticated with HMAC-SHA256, so that a
// takeover can install the NAT mapping without waiting for DHCPv6.
package ha
