# shellcheck shell=bash
# The resource metrics API of the real cluster (what HPAs and `kubectl top` read): in-cluster
# objects for metrics-server, which runs on the host end of the veth as the API server does.
# Source it after common.sh.

METRICS_SERVER_USER=nepse:metrics-server

# The upstream manifests' roles, bound to metrics-server's certificate identity instead of a
# service account.
metrics_server_rbac() {
  cat <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:aggregated-metrics-reader
  labels:
    rbac.authorization.k8s.io/aggregate-to-view: "true"
    rbac.authorization.k8s.io/aggregate-to-edit: "true"
    rbac.authorization.k8s.io/aggregate-to-admin: "true"
rules:
  - apiGroups: [metrics.k8s.io]
    resources: [pods, nodes]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:metrics-server
rules:
  - apiGroups: [""]
    resources: [nodes/metrics]
    verbs: [get]
  - apiGroups: [""]
    resources: [pods, nodes]
    verbs: [get, list, watch]
YAML
  role_binding system:metrics-server system:metrics-server "$METRICS_SERVER_USER"
  role_binding metrics-server:system:auth-delegator system:auth-delegator "$METRICS_SERVER_USER"
  role_binding metrics-server-auth-reader extension-apiserver-authentication-reader \
    "$METRICS_SERVER_USER" kube-system
}

# metrics_api_registration PORT: a selector-less Service whose EndpointSlice is metrics-server
# on $HOST_IP:PORT (the API server dials it directly: --enable-aggregator-routing), and the
# APIService behind which the aggregator serves metrics.k8s.io, trusting the cluster CA.
metrics_api_registration() {
  local port=$1
  cat <<YAML
apiVersion: v1
kind: Service
metadata:
  name: metrics-server
  namespace: kube-system
spec:
  ports:
    - {name: https, port: 443, protocol: TCP, targetPort: $port}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: metrics-server-host
  namespace: kube-system
  labels:
    kubernetes.io/service-name: metrics-server
    endpointslice.kubernetes.io/managed-by: nepse-real-cluster
addressType: IPv4
ports:
  - {name: https, port: $port, protocol: TCP}
endpoints:
  - addresses: [$HOST_IP]
    conditions: {ready: true}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.metrics.k8s.io
spec:
  group: metrics.k8s.io
  version: v1beta1
  service: {name: metrics-server, namespace: kube-system, port: 443}
  caBundle: $(base64 -w0 "$PKI/ca.crt")
  groupPriorityMinimum: 100
  versionPriority: 100
YAML
}
