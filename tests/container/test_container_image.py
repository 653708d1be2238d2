"""The service image, built and run for real with podman on the locally made Debian base."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from containerkit import (
    BAKED_IMAGE,
    NON_ROOT_UID,
    REPO_ROOT,
    SIZE_GOAL_MB,
    START_TO_READY_CEILING_S,
    STOP_GRACE_SECONDS,
    XGBOOST_SIZE_CEILING_MB,
    http,
    image_config,
    image_size_mb,
    record,
    run,
    started,
    wait_until,
)

from testkit.net import free_port

pytestmark = [pytest.mark.container]

# How a production runtime starts it: read-only root filesystem with only /tmp writable
# (podman would otherwise add tmpfs mounts of its own on /tmp, /var/tmp and /run), no
# capabilities, no privilege escalation.
HARDENED = (
    "--read-only",
    "--read-only-tmpfs=false",
    "--tmpfs",
    "/tmp:rw,size=64m,mode=1777",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
)


def mount_models(models_dir: Path) -> tuple[str, ...]:
    return ("-v", f"{models_dir}:/models:ro")


def run_python(image: str, code: str) -> str:
    """Run Python code in a throwaway container of `image`; returns its stdout."""
    return run(["podman", "run", "--rm", "--entrypoint", "python3", image, "-c", code]).stdout


def one_row(model_dir: Path) -> dict:
    features = json.loads((model_dir / "metadata.json").read_text())["features"]
    return {"features": {name: 0.01 * (i + 1) for i, name in enumerate(features)}}


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = REPO_ROOT / ".venv" / "bin" / "hadolint"
    if not hadolint.exists():
        pytest.fail("hadolint not found in .venv: install requirements/dev.txt", pytrace=False)
    for path in ("Dockerfile", "scripts/container/redis/Containerfile"):
        result = run([str(hadolint), path], check=False)
        assert result.returncode == 0, f"hadolint {path}:\n{result.stdout}{result.stderr}"


@pytest.mark.slow
def test_image_builds_on_the_local_base_with_labels_healthcheck_and_no_model(
    service_image: str,
) -> None:
    config = image_config(service_image)
    labels = config["Config"]["Labels"]
    for key in ("title", "version", "revision", "created", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), f"label image.{key} missing"
    assert labels["org.opencontainers.image.base.name"] == "localhost/nepse-base:bookworm"
    assert config["Config"]["User"] == f"{NON_ROOT_UID}:{NON_ROOT_UID}"
    health = config.get("Healthcheck") or {}
    assert "/ready" in " ".join(health.get("Test", [])), f"no /ready HEALTHCHECK: {health}"
    assert config["Config"]["Entrypoint"] == ["nepse-predictor"]
    # Models are not baked in unless BAKE_MODEL=1 asks.
    listing = run_python(service_image, "import os; print(os.listdir('/models'))")
    assert listing.strip() == "[]", f"/models is not empty: {listing}"
    size = image_size_mb(service_image)
    print(f"image {service_image}: {size:.1f} MB (goal <= {SIZE_GOAL_MB:.0f} MB)")
    assert size <= SIZE_GOAL_MB, f"image is {size:.1f} MB, over the {SIZE_GOAL_MB:.0f} MB goal"


@pytest.mark.slow
def test_xgboost_variant_builds_with_the_fallback_and_stays_under_its_ceiling(
    service_image: str, xgboost_image: str
) -> None:
    size = image_size_mb(xgboost_image)
    default = image_size_mb(service_image)
    print(
        f"image {xgboost_image} (BACKENDS=onnx,xgboost): {size:.1f} MB, "
        f"{size - default:+.1f} MB over the default image"
    )
    assert size <= XGBOOST_SIZE_CEILING_MB, (
        f"image is {size:.1f} MB, over its {XGBOOST_SIZE_CEILING_MB:.0f} MB ceiling"
    )
    description = image_config(xgboost_image)["Config"]["Labels"][
        "org.opencontainers.image.description"
    ]
    assert "onnx,xgboost" in description, description
    versions = run_python(
        xgboost_image,
        "import xgboost, onnxruntime; print(xgboost.__version__, onnxruntime.__version__)",
    )
    assert len(versions.split()) == 2, versions


@pytest.mark.slow
def test_runtime_image_holds_the_runtime_and_nothing_to_build_or_install_with(
    service_image: str,
) -> None:
    # No pip or setuptools in the service's environment, no shell, no package manager; the
    # test suites, type stubs and ONNX Runtime's unused C-API library are gone; the CA bundle
    # is there for TLS clients; the Debian packages that supplied files are recorded for
    # security scanners.
    code = """
import glob, importlib.util, json, os, ssl, sysconfig
site = sysconfig.get_path("purelib")
print(json.dumps({
    "pip": importlib.util.find_spec("pip") is not None,
    "setuptools": importlib.util.find_spec("setuptools") is not None,
    "xgboost": importlib.util.find_spec("xgboost") is not None,
    "shells": [p for p in ("/bin/sh", "/bin/bash", "/usr/bin/dash") if os.path.lexists(p)],
    "apt": [p for p in ("/usr/bin/apt-get", "/usr/bin/dpkg") if os.path.lexists(p)],
    "libonnxruntime": glob.glob(site + "/onnxruntime/capi/libonnxruntime.so*"),
    "tests": glob.glob(site + "/*/**/tests", recursive=True),
    "stubs": len(glob.glob(site + "/**/*.pyi", recursive=True)),
    "ca": ssl.create_default_context().cert_store_stats()["x509_ca"],
    "packages": sorted(os.listdir("/var/lib/dpkg/status.d")),
}))
"""
    found = json.loads(run_python(service_image, code))
    tmp_mode = run_python(service_image, "import os; print(oct(os.stat('/tmp').st_mode & 0o7777))")
    assert tmp_mode.strip() == "0o1777", f"/tmp has mode {tmp_mode.strip()}"
    assert found["pip"] is False and found["setuptools"] is False, found
    assert found["xgboost"] is False, "the default image has XGBoost (BACKENDS=onnx)"
    assert found["shells"] == [] and found["apt"] == [], found
    assert found["libonnxruntime"] == [] and found["tests"] == [] and found["stubs"] == 0, found
    assert found["ca"] > 50, f"only {found['ca']} CA certificates"
    assert {"libc6", "python3.11-minimal", "libssl3"} <= set(found["packages"]), found


@pytest.mark.slow
def test_warm_rebuild_takes_every_layer_from_the_cache(service_image: str) -> None:
    from containerkit import MEASUREMENTS

    warm = MEASUREMENTS["service image build (warm)"]
    cached, steps = warm.split("(")[1].split(" ")[0].split("/")
    assert cached == steps, f"a rebuild with nothing changed rebuilt layers: {warm}"


@pytest.mark.slow
def test_code_change_reuses_the_dependency_layer(service_image: str, tmp_path: Path) -> None:
    # A copy of the build context whose service code differs by one comment line.
    context = tmp_path / "context"
    for rel in (
        "Dockerfile",
        ".dockerignore",
        "requirements/service.txt",
        "requirements/service-xgboost.txt",
        "requirements/dev.txt",
        "scripts/container/slim_venv.py",
        "scripts/container/make_rootfs.py",
        "service/pyproject.toml",
        "service/setup.py",
    ):
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, context / rel)
    shutil.copytree(
        REPO_ROOT / "service" / "src",
        context / "service" / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.so"),
    )
    init = context / "service" / "src" / "nepse_predictor" / "__init__.py"
    init.write_text(init.read_text() + f"\n# cache probe {time.time()}\n")
    tag = "localhost/nepse-predictor:test-cache-probe"
    start = time.monotonic()
    result = run(
        [
            "podman",
            "build",
            "--format",
            "docker",
            "--layers",
            "--force-rm",
            "--secret",
            "id=cacert,src=/etc/ssl/certs/ca-certificates.crt",
            "--build-arg",
            "BASE_IMAGE=localhost/nepse-base:bookworm",
            "-t",
            tag,
            str(context),
        ],
        timeout=600,
    )
    seconds = time.monotonic() - start
    try:
        # The stages that make the dependencies ran from the cache. (A RUN step's cache line
        # follows it; a COPY --from step's may not, as podman builds the stage it names in
        # between, so those are checked on the layers below.)
        lines = result.stdout.splitlines()
        for marker in (
            "-r /tmp/requirements/runtime.txt",
            "RUN python3 /tmp/slim_venv.py",
            "RUN python3 /tmp/make_rootfs.py",
        ):
            step = next(i for i, line in enumerate(lines) if marker in line)
            assert lines[step + 1].startswith("--> Using cache"), (
                "a dependency step was run again after a code-only change:\n"
                + "\n".join(lines[step : step + 5])
            )
        # The image shares its system and venv layers with the one built before (the same
        # digests: the same bytes, nothing to push or pull again); only the app layer differs.
        before = image_config(service_image)["RootFS"]["Layers"]
        after = image_config(tag)["RootFS"]["Layers"]
        assert after[:2] == before[:2], "the system or venv layer changed with a code change"
        assert after[2] != before[2], "the application layer did not change with the code"
        record("service image build (code change)", f"{seconds:.1f} s")
    finally:
        run(["podman", "rmi", "--force", tag], check=False)


@pytest.mark.slow
def test_container_runs_as_non_root_read_only_and_answers_a_prediction(
    service_image: str, models_dir: Path, trained_model: Path
) -> None:
    port = free_port()
    version = trained_model.name
    with started(
        service_image,
        *HARDENED,
        *mount_models(models_dir),
        port=port,
        env={"NEPSE_MODEL_DIR": f"/models/{version}", "NEPSE_TRACK": "canary"},
    ) as container:
        ready_after = container.wait_ready(timeout=60)
        assert container.healthcheck(), "podman healthcheck run: unhealthy while /ready is 200"
        record("container start to ready", f"{ready_after:.2f} s (podman run -> /ready 200)")

        assert container.python("import os; print(os.getuid())").strip() == str(NON_ROOT_UID)
        # The server process itself (pid 1) is not root either.
        status = container.python("print(open('/proc/1/status').read())")
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1] == str(NON_ROOT_UID), uid_line

        status, headers, body = http(
            "POST",
            container.url + "/v1/predict",
            one_row(trained_model),
            headers={"X-Request-Id": "container-test-1"},
        )
        assert status == 200, body
        answer = json.loads(body)
        assert answer["model_version"] == version
        assert 0.0 <= answer["predictions"][0]["probability"] <= 1.0
        assert headers["x-model-version"] == version
        assert headers["x-track"] == "canary"
        assert headers["x-request-id"] == "container-test-1"

        # Nothing was written to the container's own filesystem (the engine's own mount
        # points for /etc/hosts, /etc/resolv.conf and /run/.containerenv aside).
        engine = {
            "/etc",
            "/etc/hosts",
            "/etc/hostname",
            "/etc/resolv.conf",
            "/run",
            "/run/.containerenv",
        }
        lines = run(["podman", "diff", container.cid]).stdout.splitlines()
        changes = [line for line in lines if line.split()[-1] not in engine]
        assert changes == [], f"files changed outside the tmpfs: {changes}"

        code, seconds = container.stop()
        assert code == 0, f"exit code {code} after SIGTERM; logs:\n{container.logs()[-2000:]}"
        assert seconds < STOP_GRACE_SECONDS
        record("container stop on SIGTERM", f"{seconds:.2f} s, exit code {code}")


# What the server imports between process start and ready, then a check that each of those
# modules was loaded from a current compiled .pyc next to its source (none compiled at start).
BYTECODE_PROBE = """
import importlib.util, json, os, struct, sys, time
start = time.perf_counter()
import nepse_predictor.server, nepse_predictor.app, onnxruntime, numpy, uvloop, httptools
import redis.asyncio
seconds = time.perf_counter() - start
stale, missing, current = [], [], 0
for module in list(sys.modules.values()):
    source = getattr(module, "__file__", None) or ""
    if not source.endswith(".py"):
        continue
    cached = importlib.util.cache_from_source(source)
    if not os.path.exists(cached):
        missing.append(source)
        continue
    with open(cached, "rb") as handle:
        header = handle.read(16)
    flags = struct.unpack("<I", header[4:8])[0]
    if flags == 0:  # timestamp-based: the source's mtime and size must match
        mtime, size = struct.unpack("<II", header[8:16])
        info = os.stat(source)
        if (int(info.st_mtime) & 0xFFFFFFFF, info.st_size & 0xFFFFFFFF) != (mtime, size):
            stale.append(source)
            continue
    current += 1
print(json.dumps({"seconds": seconds, "current": current, "stale": stale, "missing": missing}))
"""


@pytest.mark.slow
def test_server_is_ready_soon_after_its_process_starts_from_compiled_bytecode(
    service_image: str, models_dir: Path, trained_model: Path
) -> None:
    port = free_port()
    with started(
        service_image,
        *HARDENED,
        *mount_models(models_dir),
        port=port,
        env={"NEPSE_MODEL_DIR": f"/models/{trained_model.name}"},
    ) as container:
        container.wait_ready(timeout=60)
        start_to_ready = container.ready_at - container.started_at()
        record("process start to ready (in container)", f"{start_to_ready:.2f} s")
        probe = json.loads(container.python(BYTECODE_PROBE))
    record(
        "serving imports (in container)",
        f"{probe['seconds']:.2f} s, {probe['current']} modules from current .pyc",
    )
    assert probe["missing"] == [] and probe["stale"] == [], (
        f"modules without a current .pyc: missing {probe['missing'][:10]}, "
        f"stale {probe['stale'][:10]}"
    )
    assert probe["current"] > 300, probe
    assert 0 < start_to_ready <= START_TO_READY_CEILING_S, (
        f"{start_to_ready:.2f} s from process start to ready (ceiling {START_TO_READY_CEILING_S} s)"
    )


@pytest.mark.slow
def test_default_image_asked_for_the_xgboost_backend_is_live_not_ready_and_says_why(
    service_image: str, models_dir: Path, trained_model: Path
) -> None:
    # BACKENDS=onnx leaves XGBoost out: NEPSE_BACKEND=xgboost must fail readiness with a log
    # line that names the way to get it, never crash or serve.
    port = free_port()
    with started(
        service_image,
        *HARDENED,
        *mount_models(models_dir),
        port=port,
        env={"NEPSE_MODEL_DIR": f"/models/{trained_model.name}", "NEPSE_BACKEND": "xgboost"},
    ) as container:
        wait_until(
            lambda: http("GET", container.url + "/health")[0] == 200, 60, "/health answers 200"
        )
        status, _, body = http("GET", container.url + "/ready")
        assert status == 503, body
        assert not container.healthcheck(), "healthy without the backend it was asked for"
        assert container.running()
        logs = container.logs()
        assert "xgboost" in logs, logs[-2000:]
        assert "BACKENDS=onnx,xgboost" in logs, (
            "the log does not say how to get the XGBoost backend:\n" + logs[-2000:]
        )


@pytest.mark.slow
def test_xgboost_backend_in_the_xgboost_image_gives_the_same_answer(
    xgboost_image: str, models_dir: Path, trained_model: Path
) -> None:
    # The slimmed virtual environment (stripped binaries, no test suites) of the image built
    # with BACKENDS=onnx,xgboost runs both backends, and they agree.
    row = one_row(trained_model)
    answers = {}
    for backend in ("auto", "onnx", "xgboost"):
        port = free_port()
        with started(
            xgboost_image,
            *HARDENED,
            *mount_models(models_dir),
            port=port,
            env={"NEPSE_MODEL_DIR": f"/models/{trained_model.name}", "NEPSE_BACKEND": backend},
        ) as container:
            container.wait_ready(timeout=60)
            status, _, body = http("POST", container.url + "/v1/predict", row)
            assert status == 200, f"{backend}: {body!r}"
            answers[backend] = json.loads(body)["predictions"][0]["probability"]
            if backend == "auto":  # the image's wheel was built with the compiled trees
                _, _, ready = http("GET", container.url + "/ready")
                assert json.loads(ready)["backend"] == "trees", ready
    assert abs(answers["onnx"] - answers["xgboost"]) <= 1e-5, answers
    assert abs(answers["auto"] - answers["xgboost"]) <= 1e-5, answers


@pytest.mark.slow
def test_sigterm_drains_requests_in_flight_and_exits_zero(
    service_image: str, models_dir: Path, trained_model: Path
) -> None:
    features = json.loads((trained_model / "metadata.json").read_text())["features"]
    batch = {"instances": [{name: 0.001 * i for name in features} for i in range(5000)]}
    payload = json.dumps(batch).encode()
    port = free_port()
    outcomes: list[str] = []
    lock = threading.Lock()
    halt = threading.Event()
    sigterm_sent_at = [float("inf")]

    def client(url: str) -> None:
        while not halt.is_set():
            request = urllib.request.Request(
                url, data=payload, method="POST", headers={"Content-Type": "application/json"}
            )
            sent_at = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                    outcome = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                outcome = f"HTTP {exc.code}"
            except OSError as exc:
                reason = getattr(exc, "reason", exc)
                # A connection opened after SIGTERM meets a closing listener: refused, or reset
                # from the accept queue. The server never took it, so nothing was lost; in a
                # cluster the endpoint is already gone by then.
                after_sigterm = sent_at >= sigterm_sent_at[0]
                if isinstance(reason, ConnectionRefusedError) or (
                    after_sigterm and isinstance(reason, ConnectionResetError)
                ):
                    outcome = "refused"
                else:
                    outcome = repr(exc)
            with lock:
                outcomes.append(outcome)
            if outcome == "refused":
                return

    with started(
        service_image,
        *HARDENED,
        *mount_models(models_dir),
        port=port,
        env={"NEPSE_MODEL_DIR": f"/models/{trained_model.name}"},
    ) as container:
        container.wait_ready(timeout=60)
        threads = [
            threading.Thread(target=client, args=(container.url + "/v1/predict",)) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        wait_until(lambda: len(outcomes) >= 8, 30, "8 batch predictions before SIGTERM")
        start = sigterm_sent_at[0] = time.monotonic()
        run(["podman", "kill", "--signal", "TERM", container.cid])
        code = int(run(["podman", "wait", container.cid], timeout=STOP_GRACE_SECONDS + 10).stdout)
        seconds = time.monotonic() - start
        halt.set()
        for thread in threads:
            thread.join(timeout=30)
        logs = container.logs()
    lost = [o for o in outcomes if o not in ("HTTP 200", "refused")]
    assert code == 0, f"exit code {code} after SIGTERM; logs:\n{logs[-2000:]}"
    assert seconds < STOP_GRACE_SECONDS
    assert not lost, f"requests lost or failed during shutdown: {lost}"
    record("drain on SIGTERM under load", f"{seconds:.2f} s, {len(outcomes)} requests, 0 lost")


@pytest.mark.slow
def test_without_a_model_the_container_is_live_but_not_healthy(service_image: str) -> None:
    port = free_port()
    with started(service_image, *HARDENED, port=port) as container:
        wait_until(
            lambda: http("GET", container.url + "/health")[0] == 200, 60, "/health answers 200"
        )
        status, _, body = http("GET", container.url + "/ready")
        assert status == 503, body
        assert not container.healthcheck(), "healthy with no model"
        assert container.running()
        assert "/models/current" in container.logs(), "the log does not name the missing model"


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_bake_model_build_arg_puts_a_verified_model_in_the_image(base_image: str) -> None:
    start = time.monotonic()
    run(
        [str(REPO_ROOT / "scripts/container/build-image.sh"), "--tag", BAKED_IMAGE, "--bake-model"],
        timeout=1400,
    )
    record("baked-model image build", f"{time.monotonic() - start:.1f} s")
    record("baked-model image size", f"{image_size_mb(BAKED_IMAGE):.1f} MB")
    port = free_port()
    with started(BAKED_IMAGE, *HARDENED, port=port) as container:
        container.wait_ready(timeout=60)
        current = container.python("import os; print(os.readlink('/models/current'))").strip()
        metadata = json.loads(
            container.python(f"print(open('/models/{current}/metadata.json').read())")
        )
        status, headers, body = http(
            "POST",
            container.url + "/v1/predict",
            {"features": {name: 0.0 for name in metadata["features"]}},
        )
        assert status == 200, body
        assert headers["x-model-version"] == metadata["version"] == current


@pytest.mark.slow
def test_bake_model_build_arg_other_than_0_or_1_fails_naming_it(service_image: str) -> None:
    result = run(
        [
            str(REPO_ROOT / "scripts/container/build-image.sh"),
            "--tag",
            "localhost/nepse-predictor:test-bad-arg",
            "--",
            "--build-arg",
            "BAKE_MODEL=yes",
        ],
        check=False,
        timeout=600,
    )
    assert result.returncode != 0
    assert "BAKE_MODEL=yes: must be 0 (no model) or 1 (train one)" in result.stdout + result.stderr


@pytest.mark.slow
def test_backends_build_arg_other_than_onnx_or_onnx_xgboost_fails_naming_it(
    service_image: str,
) -> None:
    result = run(
        [
            str(REPO_ROOT / "scripts/container/build-image.sh"),
            "--tag",
            "localhost/nepse-predictor:test-bad-arg",
            "--backends",
            "xgboost",
        ],
        check=False,
        timeout=600,
    )
    assert result.returncode != 0
    assert "BACKENDS=xgboost: must be onnx (the default) or onnx,xgboost" in (
        result.stdout + result.stderr
    )
