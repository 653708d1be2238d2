#!/usr/bin/env bash
# Install the container tool chain from Debian's packages: podman, buildah, runc (crun fails
# here), debootstrap for the local base image, netavark/aardvark-dns for container networks
# with name resolution, and docker-compose (v1, Python) to drive podman's Docker API.
# The docker CLI (for `docker stack config`) is used when present; it is not installed here.
# Idempotent: installs only what is missing. Needs root.
set -euo pipefail

packages=(
    podman buildah runc conmon catatonit
    netavark aardvark-dns iptables slirp4netns uidmap fuse-overlayfs
    debootstrap
    docker-compose
)

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-tools.sh: container tools already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-tools.sh: error: installing ${missing[*]} needs root" >&2
    exit 1
fi

echo "install-tools.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends keeps crun and docker.io out: podman runs with runc here and
# docker-compose talks to podman's API socket.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
