#!/usr/bin/env bash
# Build the service image from the repository's Dockerfile with podman, on the local Debian
# base image (built first if missing), with the host's CA bundle as the `cacert` build secret.
#
# Usage: build-image.sh [--tag IMAGE] [--backends LIST] [--bake-model] [--gitops] [--no-cache]
#                       [-- EXTRA PODMAN BUILD ARGS]
#   --tag IMAGE      image name (default $NEPSE_IMAGE = localhost/nepse-predictor:dev)
#   --backends LIST  BACKENDS build argument: onnx (default) or onnx,xgboost (adds the
#                    XGBoost fallback, NEPSE_BACKEND=xgboost)
#   --bake-model     BAKE_MODEL=1: train the default model into the image
#   --gitops         build the nepse-gitops image (gitops/Dockerfile) instead; default tag
#                    localhost/nepse-gitops:dev
#   --no-cache       build every layer again (a cold build)
# Environment: NEPSE_BASE_IMAGE (BASE_IMAGE build argument), NEPSE_CA_BUNDLE.
# Prints the build time and the image size on the last line.
set -euo pipefail
# shellcheck source=scripts/container/env.sh
. "$(dirname "$0")/env.sh"

tag="$NEPSE_IMAGE"
backends=onnx
bake=0
dockerfile=Dockerfile
tag_given=0
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --tag) [ $# -ge 2 ] || die "--tag needs an image name"; tag="$2"; tag_given=1
            shift 2 ;;
        --backends) [ $# -ge 2 ] || die "--backends needs a list (onnx or onnx,xgboost)"
            backends="$2"; shift 2 ;;
        --bake-model) bake=1; shift ;;
        --gitops) dockerfile=gitops/Dockerfile; shift ;;
        --no-cache) extra+=(--no-cache); shift ;;
        --) shift; extra+=("$@"); break ;;
        *) die "unknown argument '$1' (see the usage at the top of $0)" ;;
    esac
done

if [ "$dockerfile" != Dockerfile ] && [ "$tag_given" -eq 0 ]; then
    tag=localhost/nepse-gitops:dev
fi

nepse_require podman git awk
[ -r "$NEPSE_CA_BUNDLE" ] \
    || die "CA bundle '$NEPSE_CA_BUNDLE' is not readable (set NEPSE_CA_BUNDLE); pip needs it"
"$NEPSE_REPO_ROOT/scripts/container/build-base.sh"

revision=$(git -C "$NEPSE_REPO_ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# The commit's time, not the clock's: the same commit builds the same labels (and layers).
created=$(TZ=UTC git -C "$NEPSE_REPO_ROOT" log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ \
    2>/dev/null || echo 1970-01-01T00:00:00Z)
version=$(sed -n -E 's/^version = "([^"]+)"/\1/p' "$NEPSE_REPO_ROOT/service/pyproject.toml")
start=$(date +%s.%N)
podman build --format docker --layers --force-rm \
    --secret "id=cacert,src=$NEPSE_CA_BUNDLE" \
    --build-arg "BASE_IMAGE=$NEPSE_BASE_IMAGE" \
    --build-arg "BACKENDS=$backends" \
    --build-arg "BAKE_MODEL=$bake" \
    --build-arg "VERSION=$version" \
    --build-arg "REVISION=$revision" \
    --build-arg "CREATED=$created" \
    ${extra[@]+"${extra[@]}"} \
    -f "$NEPSE_REPO_ROOT/$dockerfile" -t "$tag" "$NEPSE_REPO_ROOT"
end=$(date +%s.%N)
size=$(podman image inspect --format '{{.Size}}' "$tag")
awk -v img="$tag" -v s="$start" -v e="$end" -v b="$size" \
    'BEGIN { printf "build-image.sh: built %s in %.1f s, %.1f MB\n", img, e - s, b / 1e6 }'
