#!/usr/bin/env bash
# Run make targets at the same time, each with its output in a file of its own, then print
# each one's output in turn; fail if any of them failed. For tiers that mostly wait (on a
# control plane, on release pauses) and so can share the cores.
#
# Usage: scripts/side-by-side.sh TARGET...
set -euo pipefail
(($# > 0)) || { echo "usage: $0 TARGET..." >&2; exit 2; }

targets=("$@")
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pids=()
for target in "$@"; do
  "${MAKE:-make}" --no-print-directory "$target" >"$logs/$target.log" 2>&1 &
  pids+=("$!")
done

failed=()
for i in "${!pids[@]}"; do
  if ! wait "${pids[i]}"; then failed+=("${targets[i]}"); fi
done
for target in "$@"; do
  echo "==> make $target (side by side with the others of: $*)"
  cat "$logs/$target.log"
done
if ((${#failed[@]})); then
  echo "side-by-side: failed: ${failed[*]}" >&2
  exit 1
fi
