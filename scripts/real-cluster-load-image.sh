#!/usr/bin/env bash
# Loads images from podman's store into the real node's containerd (no registry):
#   scripts/real-cluster-load-image.sh localhost/nepse-predictor:dev [IMAGE...]
# Pods then use them by that exact name with imagePullPolicy Never or IfNotPresent.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/real-cluster/common.sh
. "$here/real-cluster/common.sh"
# shellcheck source=scripts/real-cluster/configs.sh
. "$here/real-cluster/configs.sh"
# shellcheck source=scripts/real-cluster/images.sh
. "$here/real-cluster/images.sh"
# shellcheck source=scripts/container/env.sh
. "$here/container/env.sh"

(($# > 0)) || die "usage: $0 IMAGE... (images in podman's store)"
[[ -S $CONTAINERD_SOCK ]] || die "the real node is not up (no $CONTAINERD_SOCK): run 'make real-cluster-up'"
load_images "$@"
