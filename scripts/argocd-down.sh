#!/usr/bin/env bash
# Stops what scripts/argocd-up.sh started: the Argo CD processes, redis-server and the git
# daemon (only the recorded PIDs), and the kwok cluster when argocd-up.sh started it; then
# deletes the state folder with the served repository. What Argo CD deployed stays in a
# cluster that keeps running, as it does when Argo CD is uninstalled. Harmless when nothing
# is up.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/argocd/common.sh
. "$here/argocd/common.sh"

if [[ ! -d $STATE ]]; then
  log "nothing to stop ($STATE does not exist)"
  exit 0
fi
log "stopping Argo CD, redis-server and the git daemon"
stop "${ROLES[@]}"
stop redis git-daemon
if [[ -f $STATE/started-cluster ]]; then
  log "stopping the kwok cluster it started"
  "$NEPSE_ROOT/scripts/cluster-down.sh"
fi
rm -rf --one-file-system "$STATE"
log "stopped"
