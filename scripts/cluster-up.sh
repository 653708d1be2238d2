#!/usr/bin/env bash
# Starts a local Kubernetes control plane on loopback with the binaries from
# scripts/install-tools.sh: etcd, kube-apiserver (admission plugins and RBAC on),
# kube-controller-manager and kube-scheduler, run by `kwokctl --runtime binary`, plus kwok
# fake nodes so pods are scheduled and become Running and Ready (no containers run).
#
# Prints progress on stderr and the kubeconfig path as the last line on stdout:
#   export KUBECONFIG=$(scripts/cluster-up.sh)
# Running it again while the cluster is up only prints the path. scripts/cluster-down.sh
# removes everything, also after a failed start.
#
# Environment:
#   NEPSE_CLUSTER_DIR    state folder (default: <repo>/.tools/cluster); holds the kubeconfig,
#                        the kwokctl config, etcd data, certificates, logs and pid files
#   NEPSE_CLUSTER_NAME   kwokctl cluster name (default: nepse)
#   NEPSE_CLUSTER_NODES  number of fake nodes (default: 3)
set -euo pipefail

# shellcheck source=scripts/cluster/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster/common.sh"
NODES=${NEPSE_CLUSTER_NODES:-3}

for tool in kwokctl kwok kubectl etcd kube-apiserver kube-controller-manager kube-scheduler; do
  [[ -x $BIN/$tool ]] || die "$BIN/$tool is missing: run scripts/install-tools.sh first"
done
[[ $NODES =~ ^[1-9][0-9]*$ ]] || die "NEPSE_CLUSTER_NODES must be a positive integer, got '$NODES'"
# shellcheck source=/dev/null
. "$TOOLS/versions.env"

reuse_or_clear "cluster '$NAME'" "$NEPSE_ROOT/scripts/cluster-down.sh"

mkdir -p "$STATE"
cat >"$STATE/kwokctl.yaml" <<YAML
kind: KwokctlConfiguration
apiVersion: config.kwok.x-k8s.io/v1alpha1
options:
  runtime: binary
  kubeVersion: $KUBE_VERSION
  etcdVersion: ${ETCD_VERSION#v}
  bindAddress: 127.0.0.1
  kubeAdmission: true
  kubeAuthorization: true
  securePort: true
  kubeBinaryPrefix: $BIN
  kubeApiserverBinary: $BIN/kube-apiserver
  kubeControllerManagerBinary: $BIN/kube-controller-manager
  kubeSchedulerBinary: $BIN/kube-scheduler
  kubectlBinary: $BIN/kubectl
  etcdBinary: $BIN/etcd
  kwokControllerBinary: $BIN/kwok
  cacheDir: $STATE/cache
YAML

log "starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok ($KUBE_VERSION)"
if ! "$BIN/kwokctl" --config "$STATE/kwokctl.yaml" --name "$NAME" create cluster \
  --kubeconfig "$KUBECONFIG_PATH" --timeout 3m --wait 2m \
  --extra-args kube-controller-manager=horizontal-pod-autoscaler-sync-period=3s \
  >"$STATE/kwokctl-create.log" 2>&1; then
  tail -n 30 "$STATE/kwokctl-create.log" >&2
  for f in "$CLUSTER/logs/"*.log; do
    [[ -f $f ]] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
  done
  die "kwokctl could not start the cluster (state kept in $STATE; scripts/cluster-down.sh removes it)"
fi

log "waiting for the API server"
for _ in $(seq 120); do
  kubectl get --raw /readyz >/dev/null 2>&1 && break
  sleep 0.5
done
kubectl get --raw /readyz >/dev/null || die "the API server did not become ready"

log "creating $NODES kwok fake nodes"
# kwok's node template has no ephemeral storage; real nodes do, and pods that request some
# (the chart's predictors and router) are only scheduled on nodes that have it.
"$BIN/kwokctl" --config "$STATE/kwokctl.yaml" --name "$NAME" scale node \
  --param '.allocatable["ephemeral-storage"]="100Gi"' \
  --replicas "$NODES" >"$STATE/kwokctl-scale.log" 2>&1 ||
  { cat "$STATE/kwokctl-scale.log" >&2; die "kwokctl scale node failed"; }
kubectl wait --for=condition=Ready node --all --timeout=90s >/dev/null ||
  die "the fake nodes did not become Ready"

log "waiting for the default ServiceAccount (pods need it with admission on)"
for _ in $(seq 120); do
  kubectl -n default get serviceaccount default >/dev/null 2>&1 && break
  sleep 0.5
done
kubectl -n default get serviceaccount default >/dev/null ||
  die "the service account controller did not create default/default"

log "cluster '$NAME' is up: export KUBECONFIG=$KUBECONFIG_PATH"
echo "$KUBECONFIG_PATH"
