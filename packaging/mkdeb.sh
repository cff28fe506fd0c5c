#!/usr/bin/env bash
# Builds dist/v6edge_<version>_<arch>.deb from bin/v6edge: binary, systemd unit,
# example config, man pages. Used by `make deb`.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${VERSION:-0.0.0}
version=${version#v}
# Debian versions must start with a digit.
[[ $version =~ ^[0-9] ]] || version="0.0.0+${version//[^A-Za-z0-9.+~]/.}"
arch=$(dpkg --print-architecture)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
install -D -m 0755 "${BIN:-bin/v6edge}" "$root/usr/sbin/v6edge"
install -D -m 0644 configs/v6edge.service "$root/lib/systemd/system/v6edge.service"
install -D -m 0644 configs/examples/reference.toml "$root/usr/share/doc/v6edge/examples/reference.toml"
install -D -m 0644 configs/examples/minimal.toml "$root/etc/v6edge/v6edge.toml"
for ex in ha multihome; do
	install -D -m 0644 "configs/examples/$ex.toml" "$root/usr/share/doc/v6edge/examples/$ex.toml"
done
install -D -m 0644 README.md "$root/usr/share/doc/v6edge/README.md"
mkdir -p "$root/usr/share/man/man8" "$root/usr/share/man/man5"
gzip -9n < packaging/man/v6edge.8 > "$root/usr/share/man/man8/v6edge.8.gz"
gzip -9n < packaging/man/v6edge.toml.5 > "$root/usr/share/man/man5/v6edge.toml.5.gz"
mkdir -p "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CTRL
Package: v6edge
Version: $version
Architecture: $arch
Maintainer: v6edge developers <v6edge@example.org>
Section: net
Priority: optional
Depends: nftables
Recommends: conntrack
Description: IPv6 edge router daemon
 DHCPv6 prefix delegation client, Router Advertisements, NPTv6-style NETMAP
 between a stable ULA prefix and the delegated prefix, and a VRRPv3
 active/standby pair, in one daemon.
CTRL
echo /etc/v6edge/v6edge.toml > "$root/DEBIAN/conffiles"
mkdir -p "${OUT:-dist}"
out="${OUT:-dist}/v6edge_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$out" >/dev/null
echo "$out"
