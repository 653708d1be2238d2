# shellcheck shell=bash disable=SC2034  # the settings are read by the scripts sourcing this
# Settings and helpers shared by scripts/real-cluster-up.sh and real-cluster-down.sh; source it.
#
# The real cluster: etcd, kube-apiserver, kube-controller-manager and kube-scheduler run on
# the host (etcd on loopback, the API server on the host end of a veth pair); containerd,
# kubelet, kube-proxy and CoreDNS run inside the network namespace $NEPSE_NODE_NETNS, whose
# bridge, pod veths and nftables rules disappear with it. The host routes the pod and Service
# ranges into the namespace, so nothing outside loopback and that namespace is addressed.

NEPSE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=${NEPSE_TOOLS_DIR:-$NEPSE_ROOT/.tools}
BIN=$TOOLS/bin
STATE=${NEPSE_REAL_CLUSTER_DIR:-$TOOLS/real-cluster}

NODE_NAME=${NEPSE_NODE_NAME:-nepse-node}
NETNS=${NEPSE_NODE_NETNS:-nepse-node}
HOST_VETH=nepse-h0
NODE_VETH=nepse-n0
HOST_IP=${NEPSE_NODE_HOST_IP:-10.231.0.1}
NODE_IP=${NEPSE_NODE_IP:-10.231.0.2}
LINK_PREFIX=30
POD_CIDR=${NEPSE_POD_CIDR:-10.232.0.0/16}
NODE_POD_CIDR_MASK=24
SERVICE_CIDR=${NEPSE_SERVICE_CIDR:-10.233.0.0/24}
KUBERNETES_SERVICE_IP=${SERVICE_CIDR%.*/*}.1
CLUSTER_DNS_IP=$NODE_IP
CLUSTER_DOMAIN=cluster.local
APISERVER_PORT=6443

PKI=$STATE/pki
LOGS=$STATE/logs
PIDS=$STATE/pids
RECORD=$STATE/record
NODE_DIR=$STATE/node
CONTAINERD_SOCK=$NODE_DIR/containerd/containerd.sock
KUBECONFIG_PATH=$STATE/kubeconfig
# Paths the kubelet and containerd create whatever their root folders say; removed at
# teardown only when they did not exist before the cluster came up.
HOST_PATHS=(/var/lib/kubelet /var/lib/kubelet/device-plugins /var/log/containers
  /var/log/pods /run/containerd /run/containerd/s /run/netns)
# The kubelet rewrites these at start; they are written back once the node is Ready.
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)

START=${START:-$SECONDS}
log() { printf '[%s %3ds] %s\n' "$(basename "$0" .sh)" "$((SECONDS - START))" "$*" >&2; }
die() { printf '%s: error: %s\n' "$(basename "$0" .sh)" "$*" >&2; exit 1; }

in_node() { nsenter --net="/run/netns/$NETNS" "$@"; }
kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# The cgroup hierarchies (v1 controllers and the unified one) the kubelet makes kubepods in.
cgroup_roots() {
  local d
  for d in /sys/fs/cgroup/*/; do
    [[ -e $d/cgroup.procs ]] && echo "${d%/}"
  done
  return 0
}

# spawn NAME [--node] CMD...: CMD in the background (inside the node's network namespace with
# --node), output in $LOGS/NAME.log, PID in $PIDS/NAME.pid; teardown kills only these PIDs.
# Neither setsid (the shell is not a group leader) nor nsenter (network namespace only)
# forks, so the recorded PID is CMD's own.
spawn() {
  local name=$1; shift
  local enter=()
  if [[ $1 == --node ]]; then enter=(nsenter "--net=/run/netns/$NETNS"); shift; fi
  setsid "${enter[@]}" "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo "$! $1" >"$PIDS/$name.pid"
}

# wait_until SECONDS CMD...: polls CMD every 0.25 s until it succeeds; fails after SECONDS.
wait_until() {
  local seconds=$1; shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.25
  done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The recorded PID of NAME when that process is still the one we started.
live_pid() {
  local file=$PIDS/$1.pid pid exe
  [[ -f $file ]] || return 1
  read -r pid exe <"$file"
  [[ -n $pid && -e /proc/$pid ]] || return 1
  [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$(readlink -f "$exe" 2>/dev/null)" ]] || return 1
  echo "$pid"
}
