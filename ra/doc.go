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
package ra
