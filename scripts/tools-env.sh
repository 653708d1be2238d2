# shellcheck shell=sh
# Source this file to use the tools that scripts/install-tools.sh put in .tools/:
#   . scripts/tools-env.sh
# It puts .tools/bin and .venv/bin first on PATH (helm = helm 4, helm3, helm4, kubectl, ct,
# kubeconform, helm-docs, actionlint, kwokctl, ...), keeps Helm's plugin, data, cache and
# config folders inside .tools, and exports the paths other scripts and tests use.
# Works from sh (e.g. a Makefile recipe run from the repository root), bash and zsh;
# scripts/with-tools.sh runs one command with this environment.

if [ -n "${BASH_VERSION:-}" ]; then
  eval '_nepse_env_file=${BASH_SOURCE[0]}'
elif [ -n "${ZSH_VERSION:-}" ]; then
  eval '_nepse_env_file=${(%):-%x}'
elif [ -f scripts/tools-env.sh ]; then
  _nepse_env_file=scripts/tools-env.sh
else
  echo "tools-env.sh: source it from the repository root, or from bash or zsh" >&2
  return 1
fi
NEPSE_ROOT=$(cd "$(dirname "$_nepse_env_file")/.." && pwd)
unset _nepse_env_file
NEPSE_TOOLS=${NEPSE_TOOLS_DIR:-$NEPSE_ROOT/.tools}
export NEPSE_ROOT NEPSE_TOOLS

case ":$PATH:" in
  *":$NEPSE_TOOLS/bin:"*) ;;
  *) PATH="$NEPSE_TOOLS/bin:$NEPSE_ROOT/.venv/bin:$PATH" ;;
esac
export PATH

export HELM_PLUGINS="$NEPSE_TOOLS/helm/plugins"
export HELM_DATA_HOME="$NEPSE_TOOLS/helm/data"
export HELM_CONFIG_HOME="$NEPSE_TOOLS/helm/config"
export HELM_CACHE_HOME="$NEPSE_TOOLS/helm/cache"

export HELM3="$NEPSE_TOOLS/bin/helm3"
export HELM4="$NEPSE_TOOLS/bin/helm4"
export KUBECTL="$NEPSE_TOOLS/bin/kubectl"
export KUBECONFORM="$NEPSE_ROOT/scripts/kubeconform.sh"
export NEPSE_CRDS_DIR="$NEPSE_TOOLS/crds"
