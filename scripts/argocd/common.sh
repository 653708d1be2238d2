# shellcheck shell=bash disable=SC2034  # the settings are read by the scripts sourcing this
# Settings shared by scripts/argocd-up.sh and scripts/argocd-down.sh; source it.
#
# Argo CD runs as local processes of the one multicall binary built by
# scripts/install-tools.sh (step argocd): the repo-server, the application controller, the
# ApplicationSet controller and argocd-server (for the CLI), with a redis-server and a git
# daemon serving a clone of this repository, all on 127.0.0.1, against the local cluster.

NEPSE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=${NEPSE_TOOLS_DIR:-$NEPSE_ROOT/.tools}
BIN=$TOOLS/bin
STATE=${NEPSE_ARGOCD_DIR:-$TOOLS/argocd}
INSTALL=$TOOLS/argocd-install
NAMESPACE=argocd

LOGS=$STATE/logs
PIDS=$STATE/pids
ENV_FILE=$STATE/env
GIT_ROOT=$STATE/git
REPO_NAME=nepse-predictor.git
# One name per role: the multicall binary picks its role from argv[0].
ROLE_DIR=$STATE/roles
ROLES=(argocd-server argocd-applicationset-controller argocd-application-controller
  argocd-repo-server)

REAL_CLUSTER_KUBECONFIG=${NEPSE_REAL_CLUSTER_DIR:-$TOOLS/real-cluster}/kubeconfig
KWOK_CLUSTER_KUBECONFIG=${NEPSE_CLUSTER_DIR:-$TOOLS/cluster}/kubeconfig

# shellcheck source=scripts/lib/processes.sh
. "$NEPSE_ROOT/scripts/lib/processes.sh"
# shellcheck source=scripts/lib/cluster.sh
. "$NEPSE_ROOT/scripts/lib/cluster.sh"
