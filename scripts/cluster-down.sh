#!/usr/bin/env bash
# Stops the local control plane started by scripts/cluster-up.sh and deletes its state folder.
# Safe to run when the cluster is only partly started, already gone or was never created.
# Uses the same NEPSE_CLUSTER_DIR / NEPSE_CLUSTER_NAME as scripts/cluster-up.sh.
set -euo pipefail

# shellcheck source=scripts/cluster/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster/common.sh"

if [[ ! -e $STATE ]]; then
  log "nothing to remove in $STATE"
  exit 0
fi

# Processes of this cluster: only pids from its pid files whose executable is one of our
# binaries, so a recycled pid is never hit.
ours() { # PID -> true while PID runs one of our binaries
  local exe
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}
  case $exe in
    "$BIN"/* | "$CLUSTER"/*) return 0 ;;
    *) return 1 ;;
  esac
}
pids=()
if [[ -d $CLUSTER/pids ]]; then
  for pidfile in "$CLUSTER"/pids/*.pid; do
    [[ -f $pidfile ]] || continue
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] && ours "$pid" && pids+=("$pid")
  done
fi

if [[ -x $BIN/kwokctl && -d $CLUSTER ]]; then
  args=()
  [[ -f $STATE/kwokctl.yaml ]] && args=(--config "$STATE/kwokctl.yaml")
  if ! "$BIN/kwokctl" "${args[@]}" --name "$NAME" delete cluster \
    --kubeconfig "$KUBECONFIG_PATH" >"$STATE/kwokctl-delete.log" 2>&1; then
    log "kwokctl delete cluster failed; stopping the processes from their pid files"
    tail -n 5 "$STATE/kwokctl-delete.log" >&2 || true
  fi
fi

# kwokctl only signals the processes; wait for them to exit (graceful shutdown takes a few
# seconds), then make sure.
if ((${#pids[@]})); then
  for pid in "${pids[@]}"; do
    if ours "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for _ in $(seq 150); do
    alive=0
    for pid in "${pids[@]}"; do ours "$pid" && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    if ours "$pid"; then
      log "killing $(basename "$(readlink "/proc/$pid/exe")") (pid $pid): it did not stop in 15s"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
fi

rm -rf "$STATE"
log "removed $STATE"
