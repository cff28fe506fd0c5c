// Package netif is v6edge's seam to the kernel's view of links: the
// addresses v6edge puts on them (and what Duplicate Address Detection made
// of each one), the routes it owns, and the per-interface IPv6 sysctls.
//
// Everything talks to the kernel through a [Handle], the narrow subset of a
// *netlink.Handle that v6edge uses, so tests can hand in a [FakeHandle] or a
// netlink handle opened in a network namespace (netlink.NewHandleAt) without
// moving the whole process. Sysctls go through [Sysctls]: [ProcSys] writes
// /proc/sys/net/ipv6/conf/<if>/<key> in the caller's namespace, or in another
// one when its Namespace is set (the thread is switched only while the file
// is opened and written).
//
// The [Tracker] keeps a set of wanted addresses on the kernel. It watches
// netlink address and link events (no polling), adds missing addresses with
// DAD unless they float between HA nodes (nodad), removes an address whose
// DAD failed (so no dadfailed leftover and no prefix route stay behind) and
// retries it with exponential backoff, and reports every address's state,
// including the link-locals of the interfaces it manages. A link-local that
// failed DAD is the signature of a cloned VM; with HealLinkLocal the Tracker
// gives the interface a fresh stable_secret and regenerates the link-local.
//
// Kernel behaviour this package relies on (measured on 6.18 in a netns):
//   - A static address whose DAD fails stays on the interface flagged
//     "dadfailed tentative" and keeps its on-link prefix route, so the /64
//     still points at the link; only deleting the address removes the route.
//   - With keep_addr_on_down=0 (the default) a link going down flushes the
//     static IPv6 addresses; the Tracker puts them back (tentative until the
//     link is up again, then DAD runs).
//   - Without carrier DAD does not run and an address stays tentative for
//     ever: reported as "stuck tentative" after StuckAfter.
//   - accept_dad=2 and a duplicated MAC-based link-local make the kernel set
//     disable_ipv6=1 and drop every address: reported, not healed (the MAC
//     itself is duplicated on the segment; that needs a human).
//
// [Routes] owns routes marked with v6edge's routing protocol number
// ([RouteProtocol]), notably the RFC 7084 WPD-5 unreachable routes for the
// internal and the delegated prefix.
package netif
