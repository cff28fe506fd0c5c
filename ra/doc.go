// Package ra sends IPv6 Router Advertisements on one LAN interface
// (RFC 4861 §6.2, RFC 8106 DNS options, RFC 4191 route information and
// RFC 9096 renumbering hygiene).
//
// The package is split the way the rest of v6edge is:
//
//   - Build turns a Config, the current time and the list of deprecated
//     prefixes into an *ndp.RouterAdvertisement. It is pure: lifetimes are
//     clamped to the lease caps at the given instant, so they count down from
//     one RA to the next and jump back up when a Renew moves the caps.
//   - Schedule decides when RAs go out: unsolicited ones at random intervals,
//     the initial and renumbering bursts, and delayed answers to Router
//     Solicitations with the multicast rate limit. It takes `now` and a
//     *rand.Rand and never reads a clock.
//   - History remembers the /64s that were advertised and then disappeared, so
//     they keep being announced with a preferred lifetime of 0 (RFC 9096 §3.5)
//     even across a restart of the daemon.
//   - Advertiser is the thin driver that binds those to an ICMPv6 socket
//     (github.com/mdlayher/ndp) and a clock. Update hands it new contents
//     from any goroutine; Run serves until its context is cancelled.
//
// Choices where the RFCs leave room:
//
//   - Answers to a Router Solicitation from a specified source are unicast
//     to that host (RFC 4861 §6.2.6 MAY, RFC 7772 SHOULD), still after the
//     mandatory random 0–500 ms delay. An RS from the unspecified address
//     gets a multicast answer no closer than 3 s to the previous one.
//   - RDNSS/DNSSL lifetimes are 3 × MaxInterval (RFC 8106 §5.1), not tied to
//     the router lifetime: a router that is not a default router may still
//     be the resolver. Servers and domains removed by Update, and all of
//     them in the final RA, are announced with lifetime 0.
//   - A /64 that leaves Config.Prefixes is announced with preferred
//     lifetime 0 and a valid lifetime counting down from min(what hosts
//     were last told, 2 h) until it reaches 0, starting with a burst of
//     three RAs 3 s apart. The list survives restarts in
//     StateDir/ra-<iface>.json.
//   - RAs from other routers are checked against ours (RFC 4861 §6.2.7);
//     differences are logged once and listed in Status.Problems.
package ra
