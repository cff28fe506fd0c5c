// Package uplink is v6edge's multihoming: the health of each uplink and the policy routing
// that sends new LAN flows by the preferred healthy uplink while every flow's packets keep
// leaving by the uplink that carries it (upstreams drop foreign sources, BCP 38).
//
// # Health
//
// Health is a pure machine per uplink, fed with link state, lease usability and probe
// results and asked with the current time. A fault (link down, lease expired, Misses
// probes missed in a row) counts at once; recovery must hold for HoldDown without a new
// fault before the uplink is healthy again, so a flapping link does not move new flows
// back and forth. Deadline says when a hold-down ends so the daemon can recompute then.
// Prober is the driver of the probes: ICMPv6 echo to the uplink's check target, through
// that uplink (see Prober for the socket and the source address).
//
// # Policy routing
//
// How a packet finds its uplink (priorities 30000-30099 belong to v6edge, see Render):
//
//		30000: from all lookup main suppress_prefixlength 0
//		30010: from all fwmark 0x76650001 lookup 1000      (one per uplink i: 30010+i)
//		30011: from all fwmark 0x76650002 lookup 1001
//		30090: from fd00:aaaa:bbbb:cc00::/56 lookup 1000   (the active uplink's table)
//		table 1000: default via <gateway learned on wan0> dev wan0
//		table 1001: default via <gateway learned on wan1> dev wan1
//
//	  - Traffic of the router itself, LAN to LAN and LAN to router: main routes it more
//	    specifically than by a default route (local table, the LAN /64s, the WPD-5
//	    unreachable routes), so rule 30000 keeps it in main. Only what main would send
//	    by a default route continues to the uplink rules; everything unmarked and not
//	    from the internal prefix then reaches main again at 32766.
//	  - Replies to inbound flows: nat marks a flow that arrives on WAN i with ct mark M_i
//	    (prerouting). Marks (our own `table ip6 v6edge-policy`, since nat renders no
//	    such rule) copies the ct mark to the packet mark of every packet arriving on a
//	    LAN (`iifname "lan0" meta mark set ct mark`, filter prerouting at mangle
//	    priority, after conntrack), so the reply matches rule 30010+i and leaves by WAN i
//	    with conntrack's reverse translation into prefix i.
//	  - New flows from the LANs carry no mark and match rule 30090, which points at the
//	    active uplink: the one marked Preferred if healthy and with a known gateway, else
//	    the first healthy one in order (Policy.Active). Marks' postrouting rule
//	    (`oifname "wan0" ct mark 0x00000000 ct mark set 0x76650001`) then ties the new
//	    flow to the uplink it left by, so established flows keep their uplink when the
//	    active one changes (a failover, or the return after the hold-down).
//	  - Failover rewrites rule 30090 only (the new rule is added before the old one is
//	    deleted). The flows of the failed uplink are pinned to it by mark and
//	    translation; FlushUplink deletes their conntrack entries so the next packet
//	    opens a new flow by the new uplink.
//
// An uplink without a known gateway gets no route in its table; lookups there fall
// through to the next rule, and it is never made active.
//
// The daemon's part (see Example): a Health per uplink fed by link events, lease
// snapshots and its Prober; on each event build the Policy (Healthy from Health,
// Gateway from netif.DefaultRouter, Preferred for the configured first choice), call
// Router.Set, then FlushUplink for every mark Failed returns; wake up at the earliest
// Health.Deadline. While an uplink's link is down, Router defers its route (the kernel
// refuses it and deleted the old one); the Set after the link returns puts it back.
//
// Router applies Render through netlink (rules with protocol 118 and priorities
// 30000-30099, default routes with protocol 118 in the uplink tables), idempotently:
// it reads the kernel on each Set and sends only the difference, so a second Set with
// the same Policy sends nothing. Marks rebuilds its table in one nftables batch when its
// rules change and sends nothing otherwise; Marks.Watch (internal/nft's Keeper, as for
// nat's table) rebuilds it after every nftables transaction that removed or changed it,
// e.g. `nft flush ruleset`, and counts the restores.
//
// Measured in the namespace lab (integration_test.go: two upstreams with BCP 38 filters,
// kernel 6.18, a loaded 2-CPU VM): from `ip link set wan0 down` to the first answered new
// flow through the other uplink, with Set and FlushUplink run right after the fault,
// median 17-23 ms and at most 32 ms over 10 runs (the daemon adds its netlink event
// latency). A silent check target (1 s interval, 3 misses, 0.5 s timeout) is noticed
// after 2.5-3.5 s; measured 3.5 s when the upstream went silent just after an answer.
package uplink
