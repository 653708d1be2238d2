#!/usr/bin/env bash
# Start or stop podman's Docker-compatible API service on a private unix socket, so that the
# docker CLI and docker-compose can drive podman:
#
#   scripts/container/podman-socket.sh start     # prints DOCKER_HOST=unix://...
#   DOCKER_HOST=unix://$PWD/.cache/container/podman.sock docker-compose up -d --no-build
#   scripts/container/podman-socket.sh stop
#
# Usage: podman-socket.sh start|stop|status
# The socket path is $NEPSE_PODMAN_SOCKET (default .cache/container/podman.sock); the
# service's pid is kept beside it (podman.pid) and its log in podman-service.log. `start` is
# idempotent; `stop` ends only the service this script started (by its recorded pid).
set -euo pipefail
# shellcheck source=scripts/container/env.sh
. "$(dirname "$0")/env.sh"

pidfile="${NEPSE_PODMAN_SOCKET%.sock}.pid"
logfile="$(dirname "$NEPSE_PODMAN_SOCKET")/podman-service.log"

running_pid() {
    local pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # The pid must still be our podman service, not a recycled number.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "system service" || return 1
    echo "$pid"
}

answers() {
    curl --silent --fail --max-time 2 --unix-socket "$NEPSE_PODMAN_SOCKET" \
        http://d/_ping >/dev/null 2>&1
}

case "${1:-}" in
    start)
        nepse_require podman curl
        if pid=$(running_pid) && answers; then
            log "already running (pid $pid)"
        else
            mkdir -p "$(dirname "$NEPSE_PODMAN_SOCKET")"
            rm -f "$NEPSE_PODMAN_SOCKET"
            setsid podman system service --time=0 "unix://$NEPSE_PODMAN_SOCKET" \
                >"$logfile" 2>&1 </dev/null &
            echo $! >"$pidfile"
            for _ in $(seq 1 100); do
                answers && break
                kill -0 "$(cat "$pidfile")" 2>/dev/null \
                    || { tail -n 20 "$logfile" >&2; die "podman system service exited"; }
                sleep 0.1
            done
            answers || die "no answer on $NEPSE_PODMAN_SOCKET after 10 s (log: $logfile)"
            log "started (pid $(cat "$pidfile"))"
        fi
        echo "DOCKER_HOST=unix://$NEPSE_PODMAN_SOCKET"
        ;;
    stop)
        if pid=$(running_pid); then
            kill -TERM "$pid"
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
            log "stopped (pid $pid)"
        else
            log "not running"
        fi
        rm -f "$pidfile" "$NEPSE_PODMAN_SOCKET"
        ;;
    status)
        if pid=$(running_pid) && answers; then
            echo "running (pid $pid) at unix://$NEPSE_PODMAN_SOCKET"
        else
            echo "not running"
            exit 1
        fi
        ;;
    *)
        die "usage: $0 start|stop|status"
        ;;
esac
