# shellcheck shell=bash
# Helpers for the scripts that start a cluster or run on one; source it after setting BIN
# (the folder of the pinned tools) and, for reuse_or_clear, KUBECONFIG_PATH and STATE.
#
# cluster_answers KUBECONFIG  true when KUBECONFIG exists and its API server is ready
# reuse_or_clear WHAT DOWN    at the start of an up script: when the cluster of
#                             $KUBECONFIG_PATH answers, says "WHAT is already up", prints the
#                             path and exits 0; when an earlier start left $STATE behind,
#                             removes it with the script DOWN (its output on stderr)

cluster_answers() {
  [[ -f $1 ]] && "$BIN/kubectl" --kubeconfig "$1" get --raw /readyz >/dev/null 2>&1
}

reuse_or_clear() {
  local what=$1 down=$2
  if cluster_answers "$KUBECONFIG_PATH"; then
    log "$what is already up"
    echo "$KUBECONFIG_PATH"
    exit 0
  fi
  if [[ -e $STATE ]]; then
    log "removing what is left of an earlier cluster in $STATE"
    "$down" >&2
  fi
  return 0
}
