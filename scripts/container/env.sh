# shellcheck shell=bash
# Common settings for the container scripts; source it, do not run it.
# Every value can be overridden from the environment.

NEPSE_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export NEPSE_REPO_ROOT

# podman and buildah read their engine settings (runc, ulimits) from here.
# (made absolute: podman's copier subprocess reads it from another working directory)
CONTAINERS_CONF="${CONTAINERS_CONF:-$NEPSE_REPO_ROOT/scripts/container/containers.conf}"
case "$CONTAINERS_CONF" in
    /*) ;;
    *) CONTAINERS_CONF="$PWD/$CONTAINERS_CONF" ;;
esac
export CONTAINERS_CONF

# Locally made images (no registry is needed or used).
export NEPSE_BASE_IMAGE="${NEPSE_BASE_IMAGE:-localhost/nepse-base:bookworm}"
export NEPSE_REDIS_IMAGE="${NEPSE_REDIS_IMAGE:-localhost/nepse-redis:bookworm}"
export NEPSE_IMAGE="${NEPSE_IMAGE:-localhost/nepse-predictor:dev}"

# Debian suite and mirror for the base image.
export NEPSE_DEBIAN_SUITE="${NEPSE_DEBIAN_SUITE:-bookworm}"
export NEPSE_DEBIAN_MIRROR="${NEPSE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# CA bundle handed to pip inside builds as a build secret (TLS-inspecting proxies).
export NEPSE_CA_BUNDLE="${NEPSE_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

# Scratch space for root filesystems and the Docker-API socket (git-ignored).
export NEPSE_CONTAINER_CACHE="${NEPSE_CONTAINER_CACHE:-$NEPSE_REPO_ROOT/.cache/container}"
export NEPSE_PODMAN_SOCKET="${NEPSE_PODMAN_SOCKET:-$NEPSE_CONTAINER_CACHE/podman.sock}"

# shellcheck source=scripts/lib/log.sh
. "$NEPSE_REPO_ROOT/scripts/lib/log.sh"

nepse_require() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 \
            || die "'$tool' not found; run 'make tools' (scripts/install-tools.sh)"
    done
}

# keep_existing_image IMAGE [--force]: what an image-building script does with its argument.
# Without --force, an IMAGE that exists already is kept: it says so and exits 0.
keep_existing_image() {
    local image=$1
    case "${2:-}" in
        --force) return 0 ;;
        "") ;;
        *) die "unknown argument '$2' (expected --force or nothing)" ;;
    esac
    if podman image exists "$image"; then
        log "$image exists; keeping it (use --force to rebuild)"
        exit 0
    fi
}
