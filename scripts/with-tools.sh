#!/usr/bin/env bash
# Runs one command with the environment of scripts/tools-env.sh:
#   scripts/with-tools.sh helm3 unittest charts/nepse-predictor
set -euo pipefail
# shellcheck source=scripts/tools-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/tools-env.sh"
if (($# == 0)); then
  echo "usage: scripts/with-tools.sh COMMAND [ARG...]" >&2
  exit 2
fi
exec "$@"
