# shellcheck shell=bash disable=SC2034  # the settings are read by the scripts sourcing this
# Settings and helpers shared by scripts/real-cluster-up.sh and real-cluster-down.sh; source it.
#
# The real cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
# metrics-server run on the host (etcd on loopback, the API server and metrics-server on the
# host end of a veth pair; the aggregation layer dials metrics-server there); containerd,
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

# shellcheck source=scripts/lib/processes.sh
. "$NEPSE_ROOT/scripts/lib/processes.sh"
# shellcheck source=scripts/lib/cluster.sh
. "$NEPSE_ROOT/scripts/lib/cluster.sh"

in_node() { nsenter --net="/run/netns/$NETNS" "$@"; }
kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# role_binding NAME ROLE USER [NAMESPACE]: a YAML document (with its leading ---) that grants
# the ClusterRole ROLE to USER, a certificate identity; given NAMESPACE, the Role ROLE there.
role_binding() {
  local name=$1 role=$2 user=$3 namespace=${4:-} kind=ClusterRole
  [[ -z $namespace ]] || kind=Role
  cat <<YAML
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ${kind}Binding
metadata: {name: $name${namespace:+, namespace: $namespace}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: $kind, name: $role}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: $user}
YAML
}

# The cgroup hierarchies (v1 controllers and the unified one) the kubelet makes kubepods in.
cgroup_roots() {
  local d
  for d in /sys/fs/cgroup/*/; do
    [[ -e $d/cgroup.procs ]] && echo "${d%/}"
  done
  return 0
}
