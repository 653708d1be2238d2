#!/usr/bin/env bash
# Build the local Redis image ($NEPSE_REDIS_IMAGE) from Debian's redis-server on the local
# base image. Builds the base image first if it is missing.
#
# Usage: build-redis.sh [--force]
#   --force   rebuild even if the image already exists
set -euo pipefail
# shellcheck source=scripts/container/env.sh
. "$(dirname "$0")/env.sh"

nepse_require podman
keep_existing_image "$NEPSE_REDIS_IMAGE" "$@"
"$NEPSE_REPO_ROOT/scripts/container/build-base.sh"

podman build --quiet --format docker --layers \
    --build-arg "BASE_IMAGE=$NEPSE_BASE_IMAGE" \
    -f "$NEPSE_REPO_ROOT/scripts/container/redis/Containerfile" \
    -t "$NEPSE_REDIS_IMAGE" \
    "$NEPSE_REPO_ROOT/scripts/container/redis" >/dev/null
log "built $NEPSE_REDIS_IMAGE"
