# shellcheck shell=bash disable=SC2153  # LOGS and PIDS are set by the sourcing script
# Helpers for scripts that start local servers and stop exactly what they started; source it
# after setting LOGS and PIDS (folders). It sources scripts/lib/log.sh (log, die) too.
#
# spawn NAME [--netns NS] CMD...  CMD in the background in its own session (inside network
#                                 namespace NS), output in $LOGS/NAME.log, PID in
#                                 $PIDS/NAME.pid. Neither setsid (the shell is not a group
#                                 leader) nor nsenter forks, so the recorded PID is CMD's own;
#                                 it returns once that PID runs CMD (or has already exited),
#                                 so live_pid is true from then on while CMD lives.
# live_pid NAME                   the recorded PID while it is still the process we started
# stop NAME...                    SIGTERM to each live recorded process, SIGKILL after 10 s
# wait_until SECONDS CMD...       polls CMD every 0.25 s until it succeeds
# wait_serving NAME SECONDS CMD... the same, but fails at once when NAME's process has exited
# free_port                       a free TCP port on 127.0.0.1

# shellcheck source=scripts/lib/log.sh
. "$(dirname "${BASH_SOURCE[0]}")/log.sh"

spawn() {
  local name=$1; shift
  local enter=()
  if [[ $1 == --netns ]]; then enter=(nsenter "--net=/run/netns/$2"); shift 2; fi
  setsid "${enter[@]}" "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  local pid=$! want now
  echo "$pid $1" >"$PIDS/$name.pid"
  # Until the child execs CMD, /proc/PID/exe is this shell (then setsid, then nsenter); a
  # child that has exited (or is a zombie) has no exe to read.
  want=$(readlink -f "$1")
  for _ in $(seq 200); do
    now=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
    [[ $now == "$want" ]] && return 0
    sleep 0.05
  done
}

live_pid() {
  local file=$PIDS/$1.pid pid exe
  [[ -f $file ]] || return 1
  read -r pid exe <"$file"
  [[ -n $pid && -e /proc/$pid ]] || return 1
  [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$(readlink -f "$exe" 2>/dev/null)" ]] || return 1
  echo "$pid"
}

stop() {
  local name pid pids=()
  for name in "$@"; do
    pid=$(live_pid "$name") && { kill -TERM "$pid" 2>/dev/null; pids+=("$pid"); }
  done
  local deadline=$((SECONDS + 10))
  for pid in ${pids[@]+"${pids[@]}"}; do
    while [[ -e /proc/$pid ]] && ((SECONDS < deadline)); do sleep 0.1; done
    [[ -e /proc/$pid ]] && kill -KILL "$pid" 2>/dev/null
  done
  for pid in ${pids[@]+"${pids[@]}"}; do
    while [[ -e /proc/$pid ]]; do sleep 0.05; done
  done
  return 0
}

wait_until() {
  local seconds=$1; shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.25
  done
}

wait_serving() {
  local name=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    live_pid "$name" >/dev/null || return 1
    ((SECONDS < deadline)) || return 1
    sleep 0.25
  done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
