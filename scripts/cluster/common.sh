# shellcheck shell=bash disable=SC2034  # the settings are read by the scripts sourcing this
# Settings and helpers shared by scripts/cluster-up.sh and scripts/cluster-down.sh (the kwok
# cluster); source it. The environment variables are described in scripts/cluster-up.sh.

NEPSE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=${NEPSE_TOOLS_DIR:-$NEPSE_ROOT/.tools}
BIN=$TOOLS/bin
STATE=${NEPSE_CLUSTER_DIR:-$TOOLS/cluster}
NAME=${NEPSE_CLUSTER_NAME:-nepse}
KUBECONFIG_PATH=$STATE/kubeconfig
export KWOK_WORKDIR=$STATE/kwok
# kwokctl's folder of this cluster: its pid files, logs and copied binaries.
CLUSTER=$KWOK_WORKDIR/clusters/$NAME

# shellcheck source=scripts/lib/log.sh
. "$NEPSE_ROOT/scripts/lib/log.sh"
# shellcheck source=scripts/lib/cluster.sh
. "$NEPSE_ROOT/scripts/lib/cluster.sh"

kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
