#!/usr/bin/env bash
# Create .venv with the pinned dependencies and both command-line tools (nepse-predictor,
# nepse-gitops) installed in editable mode. Safe to re-run: it only syncs what changed.
#
# The interpreter: PYTHON when set; else the system's /usr/bin/python3 when it is 3.11 or newer
# and can build a venv with a C extension (Debian's is built with profile-guided and link-time
# optimisation, like the image's python:3.11-slim, and serves about a fifth faster than an
# unoptimised build such as pyenv's default); else python3 on PATH. An existing .venv is kept
# unless PYTHON names another interpreter than the one it was made from, or its own no longer
# runs.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
usable='import ensurepip, os, sys, sysconfig, venv
sys.exit(sys.version_info < (3, 11)
         or not os.path.exists(os.path.join(sysconfig.get_path("include"), "Python.h")))'
real_executable='import os, sys; print(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))'

asked=${PYTHON:-}
if [[ -z $asked ]]; then
  PYTHON=python3
  if [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c "$usable" 2>/dev/null; then
    PYTHON=/usr/bin/python3
  fi
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: $PYTHON is $("$PYTHON" --version 2>&1); Python 3.11 or newer is needed" >&2
  exit 1
fi
chosen=$("$PYTHON" -c "$real_executable")
if [[ -e .venv ]]; then
  if ! current=$(.venv/bin/python -c "$real_executable" 2>/dev/null); then
    echo "setup: .venv's interpreter no longer runs: making .venv again"
    rm -rf .venv
  elif [[ $current != "$chosen" && -n $asked ]]; then
    echo "setup: .venv was made from $current, PYTHON is $chosen: making .venv again"
    rm -rf .venv
  elif [[ $current != "$chosen" ]]; then
    echo "setup: keeping .venv on $current (the default is $chosen: rm -rf .venv to move to it)"
  fi
fi
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $("$PYTHON" --version) ($chosen)"
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
