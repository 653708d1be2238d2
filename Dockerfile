# Container image of the NEPSE predictor service (`nepse-predictor serve` on port 8000).
#
#   docker build --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt -t nepse-predictor .
#   podman build --format docker --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt \
#       -t nepse-predictor .
#   docker run --rm -p 127.0.0.1:8000:8000 -v "$PWD/models:/models:ro" \
#       -e NEPSE_MODEL_DIR=/models/<version> nepse-predictor
#
# Build arguments:
#   BASE_IMAGE  an image that has Python >= 3.11, or Debian's apt to install python3 (3.11 on
#               bookworm); default python:3.11-slim-bookworm. The build runs on it; the runtime
#               image is `FROM scratch` with only the files of it that the server needs.
#   BACKENDS    onnx (default): ONNX Runtime only, from requirements/service.txt.
#               onnx,xgboost: adds the XGBoost fallback (NEPSE_BACKEND=xgboost) from
#               requirements/service-xgboost.txt; XGBoost brings SciPy, a larger image.
#   BAKE_MODEL  0 (default): no model in the image; mount a model folder on /models.
#               1: train the default model on the bundled sample data during the build and
#               put it in /models/<version>, with /models/current pointing at it.
#   MODEL_VERSION  version name of the baked model (default: the trainer's <date>-<hash>).
#   VERSION, REVISION, CREATED, SOURCE  values of the OCI labels.
# Build secret `cacert` (optional): a CA bundle for pip, for networks whose proxy inspects
# TLS. It is mounted only while pip runs and never stored in a layer.
# Podman needs `--format docker` to keep the HEALTHCHECK (the OCI image format has none).
#
# At run time the server runs as uid/gid 10001 (not root) and writes nothing outside /tmp: it
# runs with a read-only root filesystem and a tmpfs on /tmp. Settings are NEPSE_* environment
# variables (see service/src/nepse_predictor/config.py). The image holds the Python
# interpreter and its libraries, the virtual environment and the service: no shell, no package
# manager (debug with `python3 -c ...`, or an ephemeral debug container). TLS clients
# (fetch-model over https, rediss://) trust the CA bundle in SSL_CERT_FILE: mount another
# bundle and point SSL_CERT_FILE at it to trust a private CA.

ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG BAKE_MODEL=0
ARG BACKENDS=onnx

# --- python: the base image plus a Python interpreter -------------------------------------
FROM ${BASE_IMAGE} AS python
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Debian's security archive moves patch versions, so packages are not pinned to one.
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 \
        && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log; \
    fi \
    && python3 -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 needed, base has " + sys.version'

# --- deps: a virtual environment with the pinned runtime dependencies --------------------
FROM python AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PIP_ROOT_USER_ACTION=ignore
# binutils (readelf, strip) for slim_venv.py; ca-certificates for the runtime image's CA
# bundle; python3-venv where the base's Python is Debian's (it has no ensurepip without it).
# The service's venv has no pip or setuptools: a separate build-tools venv installs into it.
# hadolint ignore=DL3008
RUN venv_package="" \
    && if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then venv_package=python3-venv; fi \
    && apt-get update \
    && apt-get install -y --no-install-recommends binutils ca-certificates \
        ${venv_package:+"$venv_package"} \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv --without-pip /opt/venv \
    && python3 -m venv /opt/build-tools

# Dependencies first: this layer is rebuilt only when a lock file or BACKENDS changes. The
# lock's local entries (./service, -e lines) are dropped; the package itself is installed by
# the builder stage.
ARG SETUPTOOLS_VERSION=80.9.0
COPY requirements/service.txt requirements/service-xgboost.txt /tmp/requirements/
ARG BACKENDS
RUN --mount=type=secret,id=cacert \
    case "${BACKENDS}" in \
        onnx) lock=service.txt ;; \
        onnx,xgboost) lock=service-xgboost.txt ;; \
        *) echo "BACKENDS=${BACKENDS}: must be onnx (the default) or onnx,xgboost" >&2; exit 1 ;; \
    esac \
    && if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
    && sed -E -e '/^[[:space:]]*(#|$)/d' -e '/^[[:space:]]*(-e[[:space:]]|\.{1,2}\/)/d' \
        "/tmp/requirements/${lock}" >/tmp/requirements/runtime.txt \
    && /opt/build-tools/bin/pip --python /opt/venv/bin/python install --no-deps \
        -r /tmp/requirements/runtime.txt \
    && /opt/build-tools/bin/pip --python /opt/venv/bin/python check \
    && /opt/build-tools/bin/pip install "setuptools==${SETUPTOOLS_VERSION}"

# --- venv: the dependencies as the runtime image gets them ----------------------------------
# Test suites, type stubs and C headers removed, large binaries stripped, and ONNX Runtime's
# C-API library dropped: the Python binding (onnxruntime_pybind11_state) links the runtime in
# and never loads libonnxruntime.so. slim_venv.py refuses to drop anything that something left
# still needs, then imports every package to prove it.
FROM deps AS venv
COPY scripts/container/slim_venv.py /tmp/slim_venv.py
RUN python3 /tmp/slim_venv.py /opt/venv \
        --drop 'onnxruntime/capi/libonnxruntime.so*' \
        --drop numpy/_core/include

# --- rootfs: the interpreter and the system files the runtime image holds -----------------
FROM venv AS rootfs
COPY scripts/container/make_rootfs.py /tmp/make_rootfs.py
RUN python3 /tmp/make_rootfs.py --venv /opt/venv --out /rootfs --user nepse:10001 \
        --ca-bundle /etc/ssl/certs/ca-certificates.crt

# --- builder: the service package as a wheel, staged under /out/app -------------------------
# Staged with `pip install --root` (the files land at /out/app/opt/venv/...), so that the
# runtime image copies the dependencies and the package in separate layers: a code change
# leaves the large dependency layer as it is.
FROM deps AS builder
# A C compiler (and Python's headers where the base's Python came without them) for the
# package's compiled tree evaluator; only this stage has them.
# hadolint ignore=DL3008
RUN headers="" \
    && if ! python3 -c 'import os, sysconfig, sys; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then headers=python3-dev; fi \
    && apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev ${headers:+"$headers"} \
    && rm -rf /var/lib/apt/lists/*
COPY service/pyproject.toml service/setup.py /src/service/
COPY service/src /src/service/src
RUN /opt/build-tools/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels \
        /src/service \
    && /opt/build-tools/bin/pip --python /opt/venv/bin/python install --no-deps \
        --root /out/app /tmp/wheels/*.whl

# --- model: what goes into /models (BAKE_MODEL=1: a model trained during the build) -------
FROM builder AS model
ARG BAKE_MODEL
ARG MODEL_VERSION=""
COPY requirements/dev.txt /tmp/requirements/dev.txt
# The training extras are pinned by the development lock and installed only in this stage
# (into the unslimmed venv), which the runtime image copies nothing from but /out/models.
RUN --mount=type=secret,id=cacert \
    install -d /out/models \
    && case "${BAKE_MODEL}" in \
        0) exit 0 ;; \
        1) ;; \
        *) echo "BAKE_MODEL=${BAKE_MODEL}: must be 0 (no model) or 1 (train one)" >&2; exit 1 ;; \
    esac \
    && if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
    && sed -E -e '/^[[:space:]]*(#|$)/d' -e '/^[[:space:]]*(-e[[:space:]]|\.{1,2}\/)/d' \
        /tmp/requirements/dev.txt >/tmp/requirements/constraints.txt \
    && /opt/build-tools/bin/pip --python /opt/venv/bin/python install \
        -c /tmp/requirements/constraints.txt "$(echo /tmp/wheels/*.whl)[train]" \
    && /opt/venv/bin/nepse-predictor train --out /out/models --no-joblib \
        ${MODEL_VERSION:+--version "$MODEL_VERSION"} \
    && model_dir=$(find /out/models -mindepth 1 -maxdepth 1 -type d) \
    && /opt/venv/bin/nepse-predictor verify-model "$model_dir" \
    && ln -s "$(basename "$model_dir")" /out/models/current

# --- runtime ------------------------------------------------------------------------------
FROM scratch AS runtime
COPY --from=rootfs /rootfs/ /
COPY --from=venv /opt/venv /opt/venv
COPY --from=builder /out/app/ /
COPY --from=model /out/models/ /models/

ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    HOME=/tmp \
    TMPDIR=/tmp \
    NEPSE_HOST=0.0.0.0 \
    NEPSE_PORT=8000 \
    NEPSE_MODEL_DIR=/models/current
# The assembled image works: the serving stack and the chosen backends import, and TLS has its
# CA bundle (no shell here, so the check is Python's; BACKENDS reaches it as an environment
# variable). Importing ONNX Runtime writes state under $HOME and $TMPDIR: they point at a
# temporary folder that the check removes, so nothing of it ends up in the image.
ARG BACKENDS
RUN ["python3", "-c", "import os, shutil, tempfile\nscratch = tempfile.mkdtemp()\nos.environ.update(HOME=scratch, TMPDIR=scratch)\ntry:\n    import importlib, ssl\n    for name in ['nepse_predictor.cli', 'nepse_predictor.app', 'nepse_predictor.server', 'nepse_predictor._trees', 'onnxruntime', 'uvloop', 'httptools', 'redis.asyncio'] + (['xgboost'] if 'xgboost' in os.environ['BACKENDS'] else []):\n        importlib.import_module(name)\n    assert ssl.create_default_context().cert_store_stats()['x509_ca'] > 0, 'no CA certificates'\nfinally:\n    shutil.rmtree(scratch)\n"]
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000
# Healthy = ready: a verified model is loaded (GET /ready answers 200).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('NEPSE_PORT', '8000'), timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["nepse-predictor"]
CMD ["serve"]

# Labels last: their values change on every commit and must not invalidate the layers above.
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE=""
LABEL org.opencontainers.image.title="nepse-predictor" \
      org.opencontainers.image.description="NEPSE next-day direction model server (FastAPI; backends: ${BACKENDS})" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
