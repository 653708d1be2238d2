#!/usr/bin/env bash
# Create .venv with the pinned dependencies and both command-line tools (nepse-predictor,
# nepse-gitops) installed in editable mode. Safe to re-run: it only syncs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.8

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: $PYTHON is $("$PYTHON" --version 2>&1); Python 3.11 or newer is needed" >&2
  exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
if [[ "$(.venv/bin/uv --version 2>/dev/null)" != "uv $UV_VERSION"* ]]; then
  echo "setup: installing uv $UV_VERSION into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
echo "setup: syncing Python dependencies from requirements/dev.txt"
# Compiled bytecode, as pip leaves it in the image: without it every process start compiles
# each module it imports again (PYTHONDONTWRITEBYTECODE keeps it from being cached), which
# doubles the time to import FastAPI.
# The service is rebuilt every time: its compiled tree evaluator (service/src/nepse_predictor/
# _trees.c) is built by the package's install, not read from a cache.
VIRTUAL_ENV=$PWD/.venv .venv/bin/uv pip sync --quiet --compile-bytecode \
    --reinstall-package nepse-predictor requirements/dev.txt
.venv/bin/python -m compileall -q service/src gitops/src >/dev/null
touch .venv/.installed
echo "setup: ready (.venv/bin/nepse-predictor, .venv/bin/nepse-gitops)"
