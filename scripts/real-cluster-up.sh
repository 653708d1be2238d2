#!/usr/bin/env bash
# Starts a Kubernetes cluster with one real node: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and metrics-server on the host; containerd (Debian's,
# with runc and the CNI plugins), the kubelet, kube-proxy and CoreDNS inside a network
# namespace made here (see scripts/real-cluster/common.sh for the layout). Pods run for real:
# probes, Services through kube-proxy, in-cluster DNS, resource metrics for HPAs and `kubectl
# top`. Images come from podman's store, never from a registry: the pause and router images
# are made and loaded here, others with scripts/real-cluster-load-image.sh.
#
# Needs root (network namespaces, cgroups, mounts). Prints progress on stderr and the
# kubeconfig path as the last line on stdout:
#   export KUBECONFIG=$(scripts/real-cluster-up.sh)
# Running it again while the cluster is up only prints the path; scripts/real-cluster-down.sh
# removes everything, also after a failed start.
#
# Environment: NEPSE_REAL_CLUSTER_DIR (state folder, default .tools/real-cluster),
# NEPSE_NODE_NAME, NEPSE_NODE_NETNS, NEPSE_NODE_HOST_IP, NEPSE_NODE_IP, NEPSE_POD_CIDR,
# NEPSE_SERVICE_CIDR (defaults in scripts/real-cluster/common.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/real-cluster/common.sh
. "$here/real-cluster/common.sh"
# shellcheck source=scripts/real-cluster/pki.sh
. "$here/real-cluster/pki.sh"
# shellcheck source=scripts/real-cluster/configs.sh
. "$here/real-cluster/configs.sh"
# shellcheck source=scripts/real-cluster/images.sh
. "$here/real-cluster/images.sh"
# shellcheck source=scripts/real-cluster/metrics-api.sh
. "$here/real-cluster/metrics-api.sh"
# shellcheck source=scripts/container/env.sh
. "$here/container/env.sh"

((EUID == 0)) || die "the real node needs root (network namespaces, cgroups, mounts)"
for tool in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy \
  coredns metrics-server nepse-pause kubectl; do
  [[ -x $BIN/$tool ]] || die "$BIN/$tool is missing: run 'make tools' first"
done
for tool in containerd containerd-shim-runc-v2 runc ctr nsenter ip nft openssl podman; do
  command -v "$tool" >/dev/null || die "'$tool' is missing: run 'make tools' first"
done
[[ -x /usr/lib/cni/bridge ]] || die "the CNI plugins are missing: run 'make tools' first"

reuse_or_clear "the real cluster" "$here/real-cluster-down.sh"
if ip netns list 2>/dev/null | grep -qw "$NETNS"; then
  die "network namespace $NETNS exists but $STATE does not: it is not ours to reuse or remove"
fi

# Anything that fails from here leaves state that real-cluster-down.sh removes.
trap 'log "start failed: logs in $LOGS; scripts/real-cluster-down.sh removes what was made"' ERR
mkdir -p "$STATE" "$LOGS" "$PIDS" "$RECORD" "$NODE_DIR"

log "recording the host paths and sysctls the node touches"
for path in "${HOST_PATHS[@]}"; do
  [[ -e $path ]] && echo "$path"
done >"$RECORD/host-paths-present"
for key in "${SYSCTLS[@]}"; do
  echo "$key=$(sysctl -n "$key")"
done >"$RECORD/sysctls"

log "network namespace $NETNS: $HOST_VETH $HOST_IP <-> $NODE_VETH $NODE_IP"
ip netns add "$NETNS"
ip link add "$HOST_VETH" type veth peer name "$NODE_VETH"
ip link set "$NODE_VETH" netns "$NETNS"
ip addr add "$HOST_IP/$LINK_PREFIX" dev "$HOST_VETH"
ip link set "$HOST_VETH" up
in_node ip link set lo up
in_node ip addr add "$NODE_IP/$LINK_PREFIX" dev "$NODE_VETH"
in_node ip link set "$NODE_VETH" up
in_node ip route add default via "$HOST_IP"
ip route add "$POD_CIDR" via "$NODE_IP" dev "$HOST_VETH"
ip route add "$SERVICE_CIDR" via "$NODE_IP" dev "$HOST_VETH"
# Per-namespace settings: forwarding between the veth and the pod bridge, and bridged pod
# traffic through nftables so a pod reaching a Service backed by a pod on the same bridge
# gets its answer translated back.
in_node sysctl -q -w net.ipv4.ip_forward=1
modprobe br_netfilter 2>/dev/null || true
in_node sysctl -q -w net.bridge.bridge-nf-call-iptables=1 ||
  die "net.bridge.bridge-nf-call-iptables cannot be set in $NETNS (br_netfilter missing?)"

log "certificates and kubeconfigs"
make_pki
kubeconfig "$KUBECONFIG_PATH" admin
kubeconfig "$STATE/controller-manager.kubeconfig" controller-manager
kubeconfig "$STATE/scheduler.kubeconfig" scheduler
kubeconfig "$STATE/metrics-server.kubeconfig" metrics-server

etcd_port=$(free_port)
etcd_peer_port=$(free_port)
log "etcd on 127.0.0.1:$etcd_port"
spawn etcd "$BIN/etcd" --name nepse --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" \
  --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "nepse=http://127.0.0.1:$etcd_peer_port" \
  --listen-metrics-urls "" --unsafe-no-fsync --log-level warn
wait_until 30 curl -sf "http://127.0.0.1:$etcd_port/health" ||
  die "etcd did not become healthy (see $LOGS/etcd.log)"

log "kube-apiserver on $HOST_IP:$APISERVER_PORT"
spawn kube-apiserver "$BIN/kube-apiserver" \
  --bind-address "$HOST_IP" --secure-port "$APISERVER_PORT" --advertise-address "$HOST_IP" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --client-ca-file "$PKI/ca.crt" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
  --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" \
  --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$PKI/front-proxy-client.crt" \
  --proxy-client-key-file "$PKI/front-proxy-client.key" \
  --enable-aggregator-routing=true \
  --anonymous-auth=false --profiling=false
wait_until 60 kubectl get --raw /readyz ||
  die "kube-apiserver did not become ready (see $LOGS/kube-apiserver.log)"

log "kube-controller-manager and kube-scheduler"
spawn kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false \
  --use-service-account-credentials \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --allocate-node-cidrs --cluster-cidr "$POD_CIDR" --node-cidr-mask-size "$NODE_POD_CIDR_MASK" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --horizontal-pod-autoscaler-sync-period 3s --profiling=false
spawn kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig "$STATE/scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
  --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false --profiling=false

log "containerd in $NETNS"
write_containerd_config
spawn containerd --netns "$NETNS" /usr/bin/containerd --config "$NODE_DIR/containerd/config.toml"
wait_until 30 ctr --address "$CONTAINERD_SOCK" version ||
  die "containerd did not start (see $LOGS/containerd.log)"
build_pause_image
load_images "$PAUSE_IMAGE"
router_image=$(build_router_image)
load_images "$router_image"
echo "$router_image" >"$STATE/router-image"

log "kubelet in $NETNS (node $NODE_NAME)"
write_kubelet_config
spawn kubelet --netns "$NETNS" "$BIN/kubelet" --config "$NODE_DIR/kubelet/config.yaml" \
  --kubeconfig "$NODE_DIR/kubelet/kubeconfig" --root-dir "$NODE_DIR/kubelet/root" \
  --volume-plugin-dir "$NODE_DIR/kubelet/volume-plugins" --cert-dir "$NODE_DIR/kubelet/pki" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v 1
node_cidr() { kubectl get node "$NODE_NAME" -o jsonpath='{.spec.podCIDR}' 2>/dev/null; }
has_pod_cidr() { [[ -n $(node_cidr) ]]; }
wait_until 60 has_pod_cidr ||
  die "node $NODE_NAME did not register with a podCIDR (see $LOGS/kubelet.log)"
write_cni_config "$(node_cidr)"
kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=90s >/dev/null ||
  die "node $NODE_NAME did not become Ready (see $LOGS/kubelet.log)"
while IFS= read -r setting; do sysctl -q -w "$setting"; done <"$RECORD/sysctls"

# It scrapes the kubelet on a ticker that starts with it: started once the node is Ready, its
# first scrape finds the node, and the second (one resolution later) gives CPU rates.
metrics_port=$(free_port)
log "metrics-server on $HOST_IP:$metrics_port"
{ metrics_server_rbac; echo ---; metrics_api_registration "$metrics_port"; } |
  kubectl apply -f - >/dev/null
spawn metrics-server "$BIN/metrics-server" \
  --bind-address "$HOST_IP" --secure-port "$metrics_port" \
  --tls-cert-file "$PKI/metrics-server-serving.crt" \
  --tls-private-key-file "$PKI/metrics-server-serving.key" \
  --kubeconfig "$STATE/metrics-server.kubeconfig" \
  --authentication-kubeconfig "$STATE/metrics-server.kubeconfig" \
  --authorization-kubeconfig "$STATE/metrics-server.kubeconfig" \
  --kubelet-preferred-address-types InternalIP --kubelet-certificate-authority "$PKI/ca.crt" \
  --kubelet-client-certificate "$PKI/metrics-server.crt" \
  --kubelet-client-key "$PKI/metrics-server.key" \
  --metric-resolution 15s --profiling=false

log "kube-proxy and CoreDNS in $NETNS"
write_kube_proxy_config
spawn kube-proxy --netns "$NETNS" "$BIN/kube-proxy" --config "$NODE_DIR/kube-proxy/config.yaml"
write_coredns_config
coredns_rbac | kubectl apply -f - >/dev/null
spawn coredns --netns "$NETNS" "$BIN/coredns" -conf "$NODE_DIR/coredns/Corefile"
wait_until 30 in_node busybox nslookup "kubernetes.default.svc.$CLUSTER_DOMAIN" \
  "$CLUSTER_DNS_IP" || die "CoreDNS does not answer (see $LOGS/coredns.log)"
wait_until 30 in_node curl -sk -o /dev/null "https://$KUBERNETES_SERVICE_IP" ||
  die "the kubernetes Service is not reachable through kube-proxy (see $LOGS/kube-proxy.log)"
wait_until 60 kubectl -n default get serviceaccount default ||
  die "the service account controller did not create default/default"
wait_serving metrics-server 60 kubectl get --raw /apis/metrics.k8s.io/v1beta1/nodes ||
  die "the metrics API does not answer (see $LOGS/metrics-server.log)"

trap - ERR
runtime=$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.nodeInfo.containerRuntimeVersion}')
log "up: node $NODE_NAME ($runtime), pods in $(node_cidr), Services in $SERVICE_CIDR"
log "export KUBECONFIG=$KUBECONFIG_PATH"
echo "$KUBECONFIG_PATH"
