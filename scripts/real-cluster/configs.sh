# shellcheck shell=bash
# Configuration files of the node processes; source it after common.sh.

PAUSE_IMAGE=localhost/nepse-pause:1

write_containerd_config() {
  local d=$NODE_DIR/containerd
  mkdir -p "$d/root" "$d/state" "$NODE_DIR/runc" "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam"
  cat >"$d/config.toml" <<TOML
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # The VM lacks CAP_SYS_RESOURCE: without this every sandbox fails writing oom_score_adj.
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$NODE_DIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni/net.d"
TOML
}

# write_cni_config POD_SUBNET: the bridge network of the node's pods (the podCIDR the
# controller manager gave the node).
write_cni_config() {
  cat >"$NODE_DIR/cni/net.d/10-nepse.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "nepse-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$1"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$NODE_DIR/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}

write_kubelet_config() {
  local d=$NODE_DIR/kubelet
  mkdir -p "$d/root" "$d/pod-logs" "$d/volume-plugins" "$d/pki"
  kubeconfig "$d/kubeconfig" kubelet
  cat >"$d/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroups are v1 here and PID 1 is not systemd.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: AlwaysAllow
clusterDomain: $CLUSTER_DOMAIN
clusterDNS: [$CLUSTER_DNS_IP]
resolvConf: ""
podLogsDir: $d/pod-logs
rotateCertificates: false
serializeImagePulls: false
# A test must never evict its pods or delete its images on a busy disk.
evictionHard:
  memory.available: 1Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
shutdownGracePeriod: 0s
YAML
}

write_kube_proxy_config() {
  local d=$NODE_DIR/kube-proxy
  mkdir -p "$d"
  kubeconfig "$d/kubeconfig" kube-proxy
  cat >"$d/config.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $d/kubeconfig
hostnameOverride: $NODE_NAME
mode: nftables
clusterCIDR: $POD_CIDR
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Zero keeps kube-proxy off the global conntrack sysctls.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
YAML
}

write_coredns_config() {
  local d=$NODE_DIR/coredns
  mkdir -p "$d"
  kubeconfig "$d/kubeconfig" coredns
  cat >"$d/Corefile" <<COREFILE
.:53 {
    bind $CLUSTER_DNS_IP
    errors
    health 127.0.0.1:8080
    ready 127.0.0.1:8181
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $d/kubeconfig nepse-real
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
    loop
}
COREFILE
}

# What CoreDNS's identity may read (the kubernetes plugin's list and watch).
coredns_rbac() {
  cat <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: nepse:coredns
rules:
  - apiGroups: [""]
    resources: [endpoints, services, pods, namespaces]
    verbs: [list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
YAML
  role_binding nepse:coredns nepse:coredns nepse:coredns
}
