// Package ha keeps two v6edge routers in an active/standby pair with VRRP
// version 3 for IPv6 (RFC 5798), interoperable with keepalived
// (vrrp_version 3).
//
// # Layers
//
//   - packet.go: the VRRPv3 advertisement on the wire (Advert, ParseAdvert),
//     checksummed over the IPv6 pseudo-header. Our bytes are identical to
//     keepalived 2.2.7's for the same advert (testdata holds a capture).
//   - vrrp.go: the pure state machine of RFC 5798 §6.4 (Machine). It takes the
//     time and received adverts as inputs and returns Events (adverts to send,
//     role changes) and a Deadline; it never reads a clock or touches a socket.
//   - conn.go and node.go: the driver. Listen opens a raw IPv6 socket for
//     protocol 112 on one interface, sending from the interface's own
//     link-local (never the virtual one) with hop limit 255; Node binds a
//     Machine to it and the clock, drops off-link and malformed adverts
//     (counted by kind in Status.Errors), and reports role changes through
//     NodeConfig.OnRole.
//   - sync.go and syncconn.go: the lease-sync message. The master seals its
//     lease (an opaque payload, JSON in the daemon) with HMAC-SHA256 and a
//     sequence number (SealSync) and multicasts it over UDP to
//     [ff02::6:6%iface]:5798 with hop limit 255 (SyncConn); the backup
//     refuses off-link datagrams, forgeries and replays (OpenSync), so a
//     takeover can install NAT and RAs for the same prefix at once.
//
// # Timing
//
// Skew_Time = (256 - Priority) × Master_Adver_Interval / 256 and
// Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time, where a
// backup learns Master_Adver_Interval from the master's adverts. At 100 ms
// and priority 100 a crashed master is replaced after 360.9375 ms, one that
// stops gracefully (priority 0 advert) after 60.9375 ms.
//
// # What the caller does
//
// Node changes no kernel state. On RoleMaster the daemon adds the virtual
// addresses (nodad: both nodes may be master for a moment, RFC 5798
// §6.4.1 unsolicited NAs are its job too), takes the WAN MAC and sends RAs
// from the virtual link-local; on RoleBackup it removes them. Preemption
// delay (Config.PreemptDelay) follows keepalived's preempt_delay.
//
// # A keepalived peer
//
// keepalived interoperates with a configuration like
//
//	global_defs { vrrp_version 3 }
//	vrrp_instance lan {
//		interface lan0
//		virtual_router_id 51
//		priority 100
//		advert_int 0.1
//		virtual_ipaddress {
//			fe80::1/64
//			fd00:aaaa:bbbb:cc01::1/64
//		}
//	}
//
// It must list the same addresses in the same order as Config.Addrs:
// keepalived drops adverts whose address list differs from its own. It
// sends nothing while its link-local is still tentative.
package ha
