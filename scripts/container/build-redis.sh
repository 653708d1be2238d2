#!/usr/bin/env bash
# Build the local Redis image ($NEPSE_REDIS_IMAGE) from Debian's redis-server on the local
# base image. Builds the base image first if it is missing.
#
# Usage: build-redis.sh [--force]
#   --force   rebuild even if the image already exists
set -euo pipefail
# shellcheck source=scripts/container/env.sh
. "$(dirname "$0")/env.sh"

force=0
case "${1:-}" in
    --force) force=1 ;;
    "") ;;
    *) die "unknown argument '$1' (expected --force or nothing)" ;;
esac
nepse_require podman

if [ "$force" -eq 0 ] && podman image exists "$NEPSE_REDIS_IMAGE"; then
    log "$NEPSE_REDIS_IMAGE exists; keeping it (use --force to rebuild)"
    exit 0
fi
"$NEPSE_REPO_ROOT/scripts/container/build-base.sh"

podman build --quiet --format docker --layers \
    --build-arg "BASE_IMAGE=$NEPSE_BASE_IMAGE" \
    -f "$NEPSE_REPO_ROOT/scripts/container/redis/Containerfile" \
    -t "$NEPSE_REDIS_IMAGE" \
    "$NEPSE_REPO_ROOT/scripts/container/redis" >/dev/null
log "built $NEPSE_REDIS_IMAGE"
