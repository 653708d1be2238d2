#!/usr/bin/env bash
# Make the local Debian base image without any registry:
#   debootstrap --variant=minbase  ->  trimmed root filesystem  ->  tar  ->  podman import
# The result ($NEPSE_BASE_IMAGE, default localhost/nepse-base:bookworm) is the FROM of the
# service image (build argument BASE_IMAGE) and of the local Redis image.
#
# Usage: build-base.sh [--force]
#   --force   rebuild even if the image already exists (otherwise an existing image is kept)
# Needs root (debootstrap) and the tools from install-tools.sh.
set -euo pipefail
# shellcheck source=scripts/container/env.sh
. "$(dirname "$0")/env.sh"

nepse_require podman debootstrap tar awk
keep_existing_image "$NEPSE_BASE_IMAGE" "$@"
[ "$(id -u)" -eq 0 ] || die "debootstrap needs root"

start=$(date +%s.%N)
mkdir -p "$NEPSE_CONTAINER_CACHE"
workdir=$(mktemp -d "$NEPSE_CONTAINER_CACHE/base.XXXXXX")
rootfs="$workdir/rootfs"
cleanup() { rm -rf "$workdir"; }
trap cleanup EXIT

log "debootstrap --variant=minbase $NEPSE_DEBIAN_SUITE from $NEPSE_DEBIAN_MIRROR"
debootstrap --variant=minbase "$NEPSE_DEBIAN_SUITE" "$rootfs" "$NEPSE_DEBIAN_MIRROR" \
    >"$workdir/debootstrap.log" 2>&1 \
    || { tail -n 30 "$workdir/debootstrap.log" >&2; die "debootstrap failed"; }

# Package sources: the release, its updates and the security archive.
security_mirror="${NEPSE_DEBIAN_SECURITY_MIRROR:-${NEPSE_DEBIAN_MIRROR%/debian}/debian-security}"
cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $NEPSE_DEBIAN_MIRROR $NEPSE_DEBIAN_SUITE main
deb $NEPSE_DEBIAN_MIRROR $NEPSE_DEBIAN_SUITE-updates main
deb $security_mirror $NEPSE_DEBIAN_SUITE-security main
SOURCES

# Keep later package installs small, as Debian's own container images do: no package
# caches, no documentation, manual pages or translations.
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
APT
cat >"$rootfs/etc/apt/apt.conf.d/docker-no-languages" <<'APT'
Acquire::Languages "none";
APT
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-excludes" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
DPKG

# Trim what debootstrap left behind.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/var/tmp/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian/*
find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
# Machine-specific files a container gets from its engine.
: >"$rootfs/etc/hostname"
: >"$rootfs/etc/resolv.conf"
rm -f "$rootfs/etc/machine-id" "$rootfs/var/lib/dbus/machine-id"

log "importing as $NEPSE_BASE_IMAGE"
tar --numeric-owner --xattrs -C "$rootfs" -cf "$workdir/rootfs.tar" .
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
podman import \
    --change 'CMD ["/bin/bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.opencontainers.image.title=nepse-base" \
    --change "LABEL org.opencontainers.image.description=Debian $NEPSE_DEBIAN_SUITE minbase made with debootstrap" \
    --change "LABEL org.opencontainers.image.created=$created" \
    --quiet --message "debootstrap --variant=minbase $NEPSE_DEBIAN_SUITE" \
    "$workdir/rootfs.tar" "$NEPSE_BASE_IMAGE" >/dev/null

end=$(date +%s.%N)
size=$(podman image inspect --format '{{.Size}}' "$NEPSE_BASE_IMAGE")
awk -v img="$NEPSE_BASE_IMAGE" -v s="$start" -v e="$end" -v b="$size" \
    'BEGIN { printf "build-base.sh: built %s in %.1f s, %.1f MB\n", img, e - s, b / 1e6 }'
