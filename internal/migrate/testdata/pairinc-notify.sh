#!/bin/sh
# keepalived notify script: the master owns the shared wan0 MAC, the PD
# client with its NETMAP hook, and radvd on the LAN.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
D=/etc/pairinc
exec >>"$D/notify.log" 2>&1
echo "$(date +%s.%N) notify $1"
stopd() {
	[ -f "$D/$1.pid" ] && kill "$(cat "$D/$1.pid")" 2>/dev/null
	rm -f "$D/$1.pid"
}
setmac() {
	[ "$(cat /sys/class/net/wan0/address)" = "$1" ] && return 0
	ip link set wan0 down && ip link set wan0 address "$1" && ip link set wan0 up
}
case "$1" in
master)
	setmac 02:00:5e:00:01:33
	stopd dhcpcd
	stopd radvd
	setsid unshare -m --propagation private sh -c 'mount --bind "$1" /var/lib/dhcpcd && mount --bind "$2" /run && exec dhcpcd -f "$3" -6 -B wan0' \
		sh "$D/dhcpcd-db" "$D/dhcpcd-run" "$D/dhcpcd.conf" >>"$D/dhcpcd.log" 2>&1 </dev/null &
	echo $! >"$D/dhcpcd.pid"
	setsid radvd -n -m stderr -C "$D/radvd.conf" -p "$D/radvd-own.pid" >>"$D/radvd.log" 2>&1 </dev/null &
	echo $! >"$D/radvd.pid"
	;;
backup|fault)
	stopd radvd
	stopd dhcpcd
	nft delete table ip6 incumbent 2>/dev/null
	setmac 02:00:5e:00:02:01
	;;
esac
echo "$(date +%s.%N) notify $1 done"
