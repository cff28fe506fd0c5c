// Package hook runs an operator's script on lease events with the
// environment dhcpcd gives its hooks (reason, interface,
// new_dhcp6_ia_pd1_prefix1, new_dhcp6_ia_pd1_prefix1_length, old_..., ...),
// so scripts written for dhcpcd keep working after the move to v6edge.
//
// Scripts run one at a time per Runner, in event order, each with a timeout:
// a hanging script is killed and never stalls the daemon.
package hook
