#!/usr/bin/env bash
# Remove what the container scripts and tests leave in podman's storage: the predictor
# images (localhost/nepse-predictor:*) and the build layers no tag uses any more. The base
# and Redis images are kept (they are the slow ones to make) unless --all is given.
#
# Usage: clean.sh [--all]
set -euo pipefail
# shellcheck source=scripts/container/env.sh
. "$(dirname "$0")/env.sh"
nepse_require podman

all=0
case "${1:-}" in
    --all) all=1 ;;
    "") ;;
    *) die "unknown argument '$1' (expected --all or nothing)" ;;
esac

mapfile -t images < <(podman images --format '{{.Repository}}:{{.Tag}}' \
    | grep -E '^localhost/nepse-predictor:' || true)
if [ "$all" -eq 1 ]; then
    images+=("$NEPSE_REDIS_IMAGE" "$NEPSE_BASE_IMAGE")
fi
for image in "${images[@]}"; do
    if podman image exists "$image"; then
        podman rmi --force "$image" >/dev/null
        log "removed $image"
    fi
done
podman image prune --force >/dev/null
log "removed untagged build layers"
