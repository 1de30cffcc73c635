#!/bin/sh
# Build the Debian 12 (bookworm) base image of the container install with debootstrap, from Debian's
# mirror: no container registry is needed (air-gapped sites keep a mirror, not Docker Hub).
#
#   sudo compose/build-base.sh [IMAGE]        IMAGE defaults to forge-debian:12
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), DOCKER_HOST (the engine to import
# into), FORGE_BASE_CACHE (a directory: the root file system's tarball is kept there and imported again on
# the next run instead of bootstrapping anew; delete it to take the mirror's newest packages).
#
# The image is Debian's minbase variant with the settings of Debian's own container images: no
# recommended packages, no documentation or man pages, no package lists or downloaded packages kept.
set -eu

image=${1:-forge-debian:12}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${FORGE_BASE_CACHE:-}
tarball=${cache:+$cache/debian-bookworm-minbase.tar}

if [ -n "$tarball" ] && [ -s "$tarball" ]; then
    echo "importing $tarball as $image (delete it to bootstrap anew)"
    docker import --change 'CMD ["/bin/bash"]' "$tarball" "$image" >/dev/null
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "build-base.sh: debootstrap needs root (run it with sudo)" >&2
    exit 1
fi
command -v debootstrap >/dev/null || { echo "build-base.sh: install debootstrap (apt-get install debootstrap)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
debootstrap --variant=minbase bookworm "$root" "$mirror"

cat > "$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} bookworm-security main
SOURCES
cat > "$root/etc/apt/apt.conf.d/docker-slim" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT
cat > "$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
DPKG
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/man/* "$root"/usr/share/info/*
find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
find "$root/usr/share/locale" -mindepth 1 -delete 2>/dev/null || true
rm -f "$root"/var/log/*.log "$root"/var/log/apt/* "$root/etc/hostname" "$root/etc/resolv.conf"

out=${tarball:-$work/rootfs.tar}
[ -n "$cache" ] && mkdir -p "$cache"
tar --numeric-owner --xattrs -C "$root" -cf "$out.part" .
mv "$out.part" "$out"
docker import --change 'CMD ["/bin/bash"]' "$out" "$image" >/dev/null
echo "built $image"
