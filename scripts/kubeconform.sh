#!/usr/bin/env bash
# Validates Kubernetes manifests offline with kubeconform, against the schemas that
# scripts/install-tools.sh generated in .tools/schemas (built-in kinds of the pinned Kubernetes
# version, and the CRDs of Istio, Gateway API, Knative, Prometheus Operator, Argo CD and Argo
# Rollouts). Strict: unknown fields and duplicate keys fail. Never downloads anything.
#
# Usage: scripts/kubeconform.sh [KUBECONFORM_FLAG...] FILE_OR_DIR...   ("-" reads stdin)
#   helm template charts/nepse-predictor | scripts/kubeconform.sh -
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${NEPSE_TOOLS_DIR:-$ROOT/.tools}
SCHEMAS=$TOOLS/schemas
KUBECONFORM=$TOOLS/bin/kubeconform

if [[ ! -x $KUBECONFORM || ! -f $SCHEMAS/kubernetes-version ]]; then
  echo "kubeconform.sh: kubeconform or its schemas are missing under $TOOLS;" \
    "run scripts/install-tools.sh first" >&2
  exit 2
fi
if (($# == 0)); then
  echo "usage: scripts/kubeconform.sh [KUBECONFORM_FLAG...] FILE_OR_DIR... ('-' for stdin)" >&2
  exit 2
fi

exec "$KUBECONFORM" \
  -strict \
  -summary \
  -kubernetes-version "$(<"$SCHEMAS/kubernetes-version")" \
  -schema-location "$SCHEMAS/kubernetes/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
  -schema-location "$SCHEMAS/crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}{{ .StrictSuffix }}.json" \
  "$@"
