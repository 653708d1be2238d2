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
    SIZE_CEILING_MB,
    SIZE_GOAL_MB,
    STOP_GRACE_SECONDS,
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
    listing = run(["podman", "run", "--rm", "--entrypoint", "ls", service_image, "-A", "/models"])
    assert listing.stdout.strip() == "", f"/models is not empty: {listing.stdout}"
    size = image_size_mb(service_image)
    print(f"image {service_image}: {size:.1f} MB (goal <= {SIZE_GOAL_MB:.0f} MB)")
    assert size <= SIZE_CEILING_MB, f"image grew to {size:.1f} MB (ceiling {SIZE_CEILING_MB} MB)"


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
        "requirements/dev.txt",
        "scripts/container/slim_venv.py",
        "service/pyproject.toml",
    ):
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, context / rel)
    shutil.copytree(
        REPO_ROOT / "service" / "src",
        context / "service" / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
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
        lines = result.stdout.splitlines()
        for marker in ("pip install --no-deps -r", "COPY --from=deps /opt/venv /opt/venv"):
            step = next(i for i, line in enumerate(lines) if marker in line)
            assert lines[step + 1].startswith("--> Using cache"), (
                "a dependency layer was rebuilt after a code-only change:\n"
                + "\n".join(lines[step : step + 5])
            )
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

        assert container.exec("id", "-u").strip() == str(NON_ROOT_UID)
        # The server process itself (pid 1) is not root either.
        status = container.exec("cat", "/proc/1/status")
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


@pytest.mark.slow
def test_xgboost_backend_in_the_image_gives_the_same_answer(
    service_image: str, models_dir: Path, trained_model: Path
) -> None:
    # The slimmed virtual environment (stripped binaries, no test suites) still runs both
    # backends, and they agree.
    row = one_row(trained_model)
    answers = {}
    for backend in ("onnx", "xgboost"):
        port = free_port()
        with started(
            service_image,
            *HARDENED,
            *mount_models(models_dir),
            port=port,
            env={"NEPSE_MODEL_DIR": f"/models/{trained_model.name}", "NEPSE_BACKEND": backend},
        ) as container:
            container.wait_ready(timeout=60)
            status, _, body = http("POST", container.url + "/v1/predict", row)
            assert status == 200, f"{backend}: {body!r}"
            answers[backend] = json.loads(body)["predictions"][0]["probability"]
    assert abs(answers["onnx"] - answers["xgboost"]) <= 1e-5, answers


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

    def client(url: str) -> None:
        while not halt.is_set():
            request = urllib.request.Request(
                url, data=payload, method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                    outcome = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                outcome = f"HTTP {exc.code}"
            except ConnectionRefusedError:
                outcome = "refused"  # after the listener closed: never accepted, not lost
            except OSError as exc:
                reason = getattr(exc, "reason", exc)
                outcome = "refused" if isinstance(reason, ConnectionRefusedError) else repr(exc)
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
        start = time.monotonic()
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
        current = container.exec("readlink", "/models/current").strip()
        metadata = json.loads(container.exec("cat", f"/models/{current}/metadata.json"))
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
