#!/bin/sh
# dhcpcd hook: map fd00:aaaa:bbbb:cc00::/56 to the delegated prefix with nftables NETMAP.
env > "$0.$reason.env"
case "$reason" in
BOUND6|REBIND6|RENEW6|REBOOT6) ;;
*) exit 0 ;;
esac
p="$new_dhcp6_ia_pd1_prefix1"
len="$new_dhcp6_ia_pd1_prefix1_length"
[ -n "$p" ] && [ -n "$len" ] || exit 0
nft -f - <<NFT
table ip6 incumbent
delete table ip6 incumbent
table ip6 incumbent {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wan0" ip6 daddr $p/$len dnat ip6 prefix to fd00:aaaa:bbbb:cc00::/56
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" ip6 saddr fd00:aaaa:bbbb:cc00::/56 snat ip6 prefix to $p/$len
	}
}
NFT
