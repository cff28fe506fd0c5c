#!/usr/bin/env bash
# Builds dist/v6edge_<version>_<arch>.deb from bin/v6edge: binary, systemd unit,
# example config, man pages, changelog, copyright, maintainer scripts. Used by
# `make deb`. VERSION defaults to packaging/version.sh (git describe --tags).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${VERSION:-$(packaging/version.sh)}
version=${version#v}
# Debian versions must start with a digit; anything else (a bare hash, "dev")
# sorts below every real version.
[[ $version =~ ^[0-9] ]] || version="0.0.0+${version//[^A-Za-z0-9.+~]/.}"
dpkg --validate-version "$version" 2>/dev/null || { echo "mkdeb.sh: $version is not a Debian version" >&2; exit 1; }
arch=$(dpkg --print-architecture)
# The changelog's date: SOURCE_DATE_EPOCH, else the commit's, so a rebuild
# of the same commit is byte for byte the same package.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
umask 022
install -D -m 0755 "${BIN:-bin/v6edge}" "$root/usr/sbin/v6edge"
install -D -m 0644 configs/v6edge.service "$root/lib/systemd/system/v6edge.service"
install -D -m 0644 configs/examples/reference.toml "$root/usr/share/doc/v6edge/examples/reference.toml"
install -D -m 0644 configs/examples/minimal.toml "$root/etc/v6edge/v6edge.toml"
for ex in ha multihome; do
	install -D -m 0644 "configs/examples/$ex.toml" "$root/usr/share/doc/v6edge/examples/$ex.toml"
done
install -D -m 0644 README.md "$root/usr/share/doc/v6edge/README.md"
install -D -m 0644 packaging/debian/copyright "$root/usr/share/doc/v6edge/copyright"
# A native package: its changelog is changelog.gz.
cat > "$root/usr/share/doc/v6edge/changelog" <<CHANGES
v6edge ($version) unstable; urgency=medium

  * Build from git; see its log for the changes.

 -- v6edge developers <v6edge@example.org>  $(LC_ALL=C date -u -R -d "@$epoch")
CHANGES
gzip -9n "$root/usr/share/doc/v6edge/changelog"
mkdir -p "$root/usr/share/man/man8" "$root/usr/share/man/man5"
gzip -9n < packaging/man/v6edge.8 > "$root/usr/share/man/man8/v6edge.8.gz"
gzip -9n < packaging/man/v6edge.toml.5 > "$root/usr/share/man/man5/v6edge.toml.5.gz"
chmod 0644 "$root"/usr/share/man/man*/*.gz
mkdir -p "$root/DEBIAN"
for s in postinst prerm postrm; do
	install -m 0755 "packaging/debian/$s" "$root/DEBIAN/$s"
done
# The daemon speaks netlink to nftables itself; nft and conntrack are for
# the operator looking at what it did.
cat > "$root/DEBIAN/control" <<CTRL
Package: v6edge
Version: $version
Architecture: $arch
Maintainer: v6edge developers <v6edge@example.org>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Section: net
Priority: optional
Recommends: nftables, conntrack
Homepage: https://github.com/v6edge/v6edge
Description: IPv6 edge router daemon
 DHCPv6 prefix delegation client, Router Advertisements, NPTv6-style NETMAP
 between a stable ULA prefix and the delegated prefix, and a VRRPv3
 active/standby pair, in one daemon.
CTRL
echo /etc/v6edge/v6edge.toml > "$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs md5sum) > "$root/DEBIAN/md5sums"
find "$root" -exec touch -h -d "@$epoch" {} +
mkdir -p "${OUT:-dist}"
out="${OUT:-dist}/v6edge_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
