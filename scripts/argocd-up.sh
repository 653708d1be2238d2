#!/usr/bin/env bash
# Starts a real Argo CD on the local cluster: the repo-server, the application controller,
# the ApplicationSet controller and argocd-server (insecure, auth off, for the CLI) as local
# processes, with a redis-server and a git daemon that serves this repository's HEAD as
# `main` at git://127.0.0.1:PORT/nepse-predictor.git (pushes accepted). Everything listens on
# 127.0.0.1 except the application controller's metrics port, which always binds all
# addresses (a free port is chosen). It installs the Argo CD CRDs and base config, and the
# CRDs of every project the chart renders for, into the cluster first.
#
# The cluster: NEPSE_ARGOCD_KUBECONFIG when set, else the real node's (make real-cluster-up)
# when it answers, else the kwok cluster of make cluster-up, started here when it is not up
# (and stopped again by scripts/argocd-down.sh).
#
# Prints how to reach it on stderr, and the path of a file to source as the last line on
# stdout: it exports KUBECONFIG, ARGOCD_SERVER and ARGOCD_OPTS (for the argocd CLI) and
# NEPSE_ARGOCD_GIT_URL. Running it again while it is up only prints the path.
#
# Environment (defaults are Argo CD's own):
#   NEPSE_ARGOCD_DIR             state folder (default: <repo>/.tools/argocd)
#   NEPSE_ARGOCD_APP_RESYNC      seconds between the controller's polls of git (default 180)
#   NEPSE_ARGOCD_APPSET_REQUEUE  how often the ApplicationSet controller re-reads git
#                                (default 3m)
#   NEPSE_ARGOCD_REVISION_CACHE  how long the repo-server caches what a branch points at
#                                (default 3m)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/argocd/common.sh
. "$here/argocd/common.sh"

APP_RESYNC=${NEPSE_ARGOCD_APP_RESYNC:-180}
APPSET_REQUEUE=${NEPSE_ARGOCD_APPSET_REQUEUE:-3m}
REVISION_CACHE=${NEPSE_ARGOCD_REVISION_CACHE:-3m}
[[ $APP_RESYNC =~ ^[1-9][0-9]*$ ]] ||
  die "NEPSE_ARGOCD_APP_RESYNC must be a whole number of seconds, got '$APP_RESYNC'"
for setting in APPSET_REQUEUE REVISION_CACHE; do
  [[ ${!setting} =~ ^[1-9][0-9]*(s|m|h)$ ]] ||
    die "NEPSE_ARGOCD_$setting must be a duration such as 30s or 3m, got '${!setting}'"
done
for tool in argocd kubectl helm; do
  [[ -x $BIN/$tool ]] || die "$BIN/$tool is missing: run make tools first"
done
[[ -x $TOOLS/libexec/argocd/git-verify-wrapper.sh && -d $INSTALL/crds ]] ||
  die "the Argo CD install files are missing: run make tools first"
command -v redis-server >/dev/null || die "redis-server is missing: run make tools first"

all_up() {
  local role
  [[ -f $ENV_FILE ]] || return 1
  for role in "${ROLES[@]}" redis git-daemon; do live_pid "$role" >/dev/null || return 1; done
}
if all_up; then
  log "already up"
  echo "$ENV_FILE"
  exit 0
fi
if [[ -d $STATE ]]; then
  log "removing what a previous start left"
  "$here/argocd-down.sh"
fi
if [[ -n ${NEPSE_ARGOCD_KUBECONFIG:-} ]] && ! cluster_answers "$NEPSE_ARGOCD_KUBECONFIG"; then
  die "NEPSE_ARGOCD_KUBECONFIG=$NEPSE_ARGOCD_KUBECONFIG: the cluster does not answer"
fi
mkdir -p "$LOGS" "$PIDS" "$GIT_ROOT" "$ROLE_DIR"
up=0
undo_failed_start() {
  ((up)) && return
  log "start failed; the end of each log:"
  tail -n 5 "$LOGS"/*.log >&2 2>/dev/null || true
  "$here/argocd-down.sh" || true
}
trap undo_failed_start EXIT

started_cluster=""
if [[ -n ${NEPSE_ARGOCD_KUBECONFIG:-} ]]; then
  kubeconfig=$NEPSE_ARGOCD_KUBECONFIG
elif cluster_answers "$REAL_CLUSTER_KUBECONFIG"; then
  kubeconfig=$REAL_CLUSTER_KUBECONFIG
elif cluster_answers "$KWOK_CLUSTER_KUBECONFIG"; then
  kubeconfig=$KWOK_CLUSTER_KUBECONFIG
else
  log "no cluster is up: starting the kwok cluster (scripts/cluster-up.sh)"
  kubeconfig=$("$NEPSE_ROOT/scripts/cluster-up.sh" | tail -n 1)
  started_cluster=kwok
  echo kwok >"$STATE/started-cluster"
fi
log "cluster: $kubeconfig"
kubectl() { "$BIN/kubectl" --kubeconfig "$kubeconfig" "$@"; }

log "installing the CRDs (Argo CD's and the chart's targets') and Argo CD's base config"
crd_args=(-f "$INSTALL/crds")
for dir in "$TOOLS"/crds/*/; do
  [[ $dir == */argo-cd/ ]] || crd_args+=(-f "$dir")
done
kubectl apply --server-side --force-conflicts "${crd_args[@]}" >/dev/null
# `kubectl wait` fails at once on a CRD that has no status yet ("accessor error"): wait it out.
for attempt in $(seq 60); do
  if waited=$(kubectl wait --for=condition=Established crd --all --timeout=120s 2>&1); then
    break
  fi
  [[ $waited == *"accessor error"* && $attempt -lt 60 ]] || die "CRDs not established: $waited"
  sleep 1
done
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -n "$NAMESPACE" --server-side --force-conflicts -f "$INSTALL/config" >/dev/null

log "git daemon serving $NEPSE_ROOT's HEAD as main"
bare=$GIT_ROOT/$REPO_NAME
git clone --quiet --bare --no-local "$NEPSE_ROOT" "$bare"
git -C "$bare" update-ref refs/heads/main "$(git -C "$NEPSE_ROOT" rev-parse HEAD)"
git -C "$bare" symbolic-ref HEAD refs/heads/main
git_port=$(free_port)
spawn git-daemon "$(git --exec-path)/git-daemon" --listen=127.0.0.1 --port="$git_port" \
  --base-path="$GIT_ROOT" --export-all --enable=receive-pack --reuseaddr --informative-errors
git_url=git://127.0.0.1:$git_port/$REPO_NAME
wait_serving git-daemon 20 git ls-remote "$git_url" main || die "the git daemon did not answer on $git_url"

redis_port=$(free_port)
mkdir -p "$STATE/redis"
spawn redis "$(command -v redis-server)" --bind 127.0.0.1 --port "$redis_port" --save '' \
  --appendonly no --dir "$STATE/redis" --protected-mode yes
wait_serving redis 20 redis-cli -p "$redis_port" ping || die "redis-server did not start"

# What every Argo CD process gets: the local cluster as if in it, no GPG, and private folders.
for dir in tls ssh gnupg gpg tmp home staticassets path; do mkdir -p "$STATE/$dir"; done
chmod 700 "$STATE/gnupg"
ln -sf "$BIN/helm" "$STATE/path/helm"
ln -sf "$TOOLS/libexec/argocd/git-verify-wrapper.sh" "$STATE/path/git-verify-wrapper.sh"
for role in "${ROLES[@]}"; do ln -sf "$BIN/argocd" "$ROLE_DIR/$role"; done
export KUBECONFIG=$kubeconfig ARGOCD_FAKE_IN_CLUSTER=true ARGOCD_GPG_ENABLED=false
export ARGOCD_TLS_DATA_PATH=$STATE/tls ARGOCD_SSH_DATA_PATH=$STATE/ssh
export ARGOCD_GNUPGHOME=$STATE/gnupg ARGOCD_GPG_DATA_PATH=$STATE/gpg
export TMPDIR=$STATE/tmp HOME=$STATE/home
export PATH=$STATE/path:$BIN:/usr/local/bin:/usr/bin:/bin
export ARGOCD_APPLICATIONSET_CONTROLLER_REQUEUE_AFTER=$APPSET_REQUEUE
redis=(--redis "127.0.0.1:$redis_port")
common=(--namespace "$NAMESPACE" "${redis[@]}" --loglevel info)

repo_port=$(free_port)
repo_metrics=$(free_port)
log "repo-server on 127.0.0.1:$repo_port"
spawn argocd-repo-server "$ROLE_DIR/argocd-repo-server" "${redis[@]}" --loglevel info \
  --disable-tls --client-ca-path "" \
  --address 127.0.0.1 --port "$repo_port" --metrics-address 127.0.0.1 \
  --metrics-port "$repo_metrics" --revision-cache-expiration "$REVISION_CACHE"
repo=(--repo-server "127.0.0.1:$repo_port" --repo-server-plaintext)

controller_metrics=$(free_port)
log "application controller (git polled every ${APP_RESYNC}s)"
spawn argocd-application-controller "$ROLE_DIR/argocd-application-controller" "${common[@]}" \
  "${repo[@]}" --metrics-port "$controller_metrics" --app-resync "$APP_RESYNC"

appset_metrics=$(free_port)
appset_webhook=$(free_port)
log "ApplicationSet controller (git re-read every $APPSET_REQUEUE)"
spawn argocd-applicationset-controller "$ROLE_DIR/argocd-applicationset-controller" \
  --namespace "$NAMESPACE" --loglevel info --argocd-repo-server "127.0.0.1:$repo_port" \
  --repo-server-plaintext --metrics-addr "127.0.0.1:$appset_metrics" \
  --probe-addr "127.0.0.1:$(free_port)" --webhook-addr "127.0.0.1:$appset_webhook" \
  --enable-policy-override

server_port=$(free_port)
log "argocd-server on 127.0.0.1:$server_port"
spawn argocd-server "$ROLE_DIR/argocd-server" "${common[@]}" "${repo[@]}" --insecure \
  --disable-auth --address 127.0.0.1 --port "$server_port" --metrics-address 127.0.0.1 \
  --metrics-port "$(free_port)" --staticassets "$STATE/staticassets" \
  --dex-server http://127.0.0.1:1

wait_serving argocd-repo-server 60 curl -sf "http://127.0.0.1:$repo_metrics/metrics" ||
  die "the repo-server did not start"
wait_serving argocd-application-controller 60 curl -sf "http://127.0.0.1:$controller_metrics/metrics" ||
  die "the application controller did not start"
wait_serving argocd-applicationset-controller 60 curl -sf "http://127.0.0.1:$appset_metrics/metrics" ||
  die "the ApplicationSet controller did not start"
wait_serving argocd-server 60 curl -sf "http://127.0.0.1:$server_port/healthz" ||
  die "argocd-server did not start"
# argocd-server creates the `default` AppProject at start.
wait_until 30 kubectl -n "$NAMESPACE" get appproject default || die "no default AppProject"

cat >"$ENV_FILE" <<ENV
# Written by scripts/argocd-up.sh: source it to use this Argo CD.
export KUBECONFIG=$kubeconfig
export ARGOCD_SERVER=127.0.0.1:$server_port
export ARGOCD_OPTS=--plaintext
export NEPSE_ARGOCD_GIT_URL=$git_url
export NEPSE_ARGOCD_REDIS=127.0.0.1:$redis_port
export NEPSE_ARGOCD_APPSET_WEBHOOK=http://127.0.0.1:$appset_webhook/api/webhook
export NEPSE_ARGOCD_STARTED_CLUSTER=$started_cluster
ENV
up=1
log "up in $((SECONDS - START))s; logs in $LOGS"
cat >&2 <<MSG

  Argo CD $("$BIN/argocd" version --client --short 2>/dev/null | sed -n 's/^argocd: //p') is up.
    . $ENV_FILE
    $BIN/argocd app list              # the CLI (ARGOCD_SERVER, ARGOCD_OPTS from the file)
  The repository it syncs from is $git_url (push to it). To deploy the environments:
    git clone $git_url && cd nepse-predictor
    $NEPSE_ROOT/.venv/bin/nepse-gitops init --repo-url $git_url && git push
    kubectl apply -n argocd -f argocd/bootstrap/
  Stop it with make argocd-down.

MSG
echo "$ENV_FILE"
