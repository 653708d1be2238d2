# shellcheck shell=bash
# Certificates of the real cluster, made with openssl into $PKI; source it after common.sh.
# One CA signs the serving certificates and every client identity; the front-proxy CA signs
# only the identity the aggregation layer proxies with (what metrics-server trusts request
# headers from); the service-account key pair signs tokens. Keys never leave $PKI (mode 0700).
# Certificate keys are ECDSA P-256: sixteen RSA keys took 4-5 s of the start on two cores.
KEY_ALGORITHM=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)

# ca NAME CN: a self-signed CA key and certificate.
ca() {
  openssl req -x509 -new "${KEY_ALGORITHM[@]}" -nodes -days 30 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$PKI/$1.key" -out "$PKI/$1.crt" 2>/dev/null
}

# cert NAME SUBJECT [SAN] [CA]: a key and a certificate signed by CA (default: the cluster CA).
cert() {
  local name=$1 subject=$2 san=${3:-} signer=${4:-ca} ext
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    if [[ -n $san ]]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$san"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$ext"
  openssl req -new "${KEY_ALGORITHM[@]}" -nodes -subj "$subject" \
    -keyout "$PKI/$name.key" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$signer.crt" -CAkey "$PKI/$signer.key" \
    -CAcreateserial -days 30 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

make_pki() {
  mkdir -p "$PKI"
  chmod 0700 "$PKI"
  ca ca nepse-real-cluster-ca
  ca front-proxy-ca nepse-real-cluster-front-proxy-ca
  cert apiserver "/CN=kube-apiserver" \
    "IP:$HOST_IP,IP:127.0.0.1,IP:$KUBERNETES_SERVICE_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  cert admin "/O=system:masters/CN=nepse-admin"
  cert controller-manager "/CN=system:kube-controller-manager"
  cert scheduler "/CN=system:kube-scheduler"
  cert kube-proxy "/CN=system:kube-proxy"
  cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  cert kubelet-serving "/CN=$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
  cert coredns "/CN=nepse:coredns"
  cert front-proxy-client "/CN=front-proxy-client" "" front-proxy-ca
  # metrics-server serves on the host end of the veth; the aggregator checks the Service name.
  cert metrics-server-serving "/CN=metrics-server" \
    "IP:$HOST_IP,DNS:metrics-server.kube-system.svc"
  # One identity towards the API server (RBAC in metrics-api.sh) and the kubelet (any
  # certificate of the cluster CA; its authorization is AlwaysAllow).
  cert metrics-server "/CN=nepse:metrics-server"
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}

# kubeconfig FILE CERT_NAME: a kubeconfig for one identity of $PKI against the API server.
kubeconfig() {
  local file=$1 name=$2
  cat >"$file" <<YAML
apiVersion: v1
kind: Config
clusters:
  - name: nepse-real
    cluster:
      server: https://$HOST_IP:$APISERVER_PORT
      certificate-authority: $PKI/ca.crt
users:
  - name: $name
    user:
      client-certificate: $PKI/$name.crt
      client-key: $PKI/$name.key
contexts:
  - name: nepse-real
    context: {cluster: nepse-real, user: $name}
current-context: nepse-real
YAML
}
