"""compose.yaml and the Swarm stack: validated by docker-compose and the docker CLI, and the
compose stack brought up for real through podman's Docker API with locally built images."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml
from containerkit import (
    REPO_ROOT,
    STOP_GRACE_SECONDS,
    HealthTicker,
    http,
    metric_value,
    record,
    require_tools,
    run,
    tool_env,
    wait_until,
)

from testkit.net import free_port

pytestmark = [pytest.mark.container]

COMPOSE_FILE = REPO_ROOT / "compose.yaml"
STACK_FILE = REPO_ROOT / "deploy" / "swarm" / "stack.yaml"


def compose_env(**values: str) -> dict[str, str]:
    env = tool_env(**values)
    for key in ("NEPSE_MODEL_VERSION", "NEPSE_IMAGE", "DOCKER_HOST"):
        if key not in values:
            env.pop(key, None)
    return env


def compose_config(**values: str) -> dict:
    require_tools("docker-compose")
    result = run(["docker-compose", "-f", str(COMPOSE_FILE), "config"], env=compose_env(**values))
    return yaml.safe_load(result.stdout)


def stack_config(path: Path = STACK_FILE, **values: str) -> dict:
    require_tools("docker")
    result = run(["docker", "stack", "config", "-c", str(path)], env=compose_env(**values))
    return yaml.safe_load(result.stdout)


def test_compose_file_defines_predictor_and_redis_with_healthchecks_and_model_mount() -> None:
    config = compose_config(NEPSE_MODEL_VERSION="2026.11.26-abc1234")
    predictor, redis = config["services"]["predictor"], config["services"]["redis"]
    env = predictor["environment"]
    assert env["NEPSE_MODEL_DIR"] == "/models/2026.11.26-abc1234"
    assert env["NEPSE_REDIS_URL"] == "redis://redis:6379/0"
    assert predictor["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/ready" in " ".join(predictor["healthcheck"]["test"])
    assert redis["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    mount = next(v for v in predictor["volumes"] if v["target"] == "/models")
    assert mount["type"] == "bind" and mount["read_only"] is True
    assert mount["source"] == str(REPO_ROOT / "models")
    assert predictor["read_only"] is True and predictor["tmpfs"] == ["/tmp"]
    assert predictor["cap_drop"] == ["ALL"]
    assert predictor["ports"][0].startswith("127.0.0.1:8000:8000")


def test_compose_without_a_model_version_fails_naming_the_variable() -> None:
    require_tools("docker-compose")
    result = run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "config"], env=compose_env(), check=False
    )
    assert result.returncode != 0
    assert "set NEPSE_MODEL_VERSION" in result.stderr, result.stderr


def test_swarm_stack_has_replicas_rolling_updates_and_restart_policy() -> None:
    config = stack_config(
        NEPSE_IMAGE="registry.example/nepse-predictor:0.1.0", NEPSE_MODEL_VERSION="v1"
    )
    deploy = config["services"]["predictor"]["deploy"]
    assert deploy["replicas"] == 3
    assert deploy["update_config"]["parallelism"] == 1
    assert deploy["update_config"]["order"] == "start-first"
    assert deploy["update_config"]["failure_action"] == "rollback"
    assert deploy["restart_policy"]["condition"] == "on-failure"
    assert config["services"]["predictor"]["image"] == "registry.example/nepse-predictor:0.1.0"
    assert config["services"]["predictor"]["environment"]["NEPSE_MODEL_DIR"] == "/models/v1"
    assert config["networks"]["nepse-net"]["driver"] == "overlay"


def test_swarm_stack_without_an_image_fails_naming_the_variable() -> None:
    require_tools("docker")
    result = run(
        ["docker", "stack", "config", "-c", str(STACK_FILE)],
        env=compose_env(NEPSE_MODEL_VERSION="v1"),
        check=False,
    )
    assert result.returncode != 0
    assert "set NEPSE_IMAGE" in result.stderr, result.stderr


def test_swarm_stack_config_rejects_a_bad_value(tmp_path: Path) -> None:
    # The validation is real: a replica count that is not a number is refused.
    broken = yaml.safe_load(STACK_FILE.read_text())
    broken["services"]["predictor"]["deploy"]["replicas"] = "three"
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(broken))
    require_tools("docker")
    result = run(
        ["docker", "stack", "config", "-c", str(path)],
        env=compose_env(NEPSE_IMAGE="r.example/x:1", NEPSE_MODEL_VERSION="v1"),
        check=False,
    )
    assert result.returncode != 0
    assert "replicas" in result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_compose_stack_serves_predictions_with_the_redis_cache(
    service_image: str,
    redis_image: str,
    models_dir: Path,
    trained_model: Path,
    docker_host: str,
    tmp_path: Path,
) -> None:
    project = f"nepsetest{os.getpid()}"
    port = free_port()
    env = compose_env(
        DOCKER_HOST=docker_host,
        NEPSE_IMAGE=service_image,
        NEPSE_REDIS_IMAGE=redis_image,
        NEPSE_MODELS_DIR=str(models_dir),
        NEPSE_MODEL_VERSION=trained_model.name,
        NEPSE_PUBLISH_PORT=str(port),
        NEPSE_TRACK="blue",
    )
    compose = ["docker-compose", "-p", project, "-f", str(COMPOSE_FILE)]
    url = f"http://127.0.0.1:{port}"
    ticker = HealthTicker(project)
    ticker.start()
    start = time.monotonic()
    try:
        run([*compose, "up", "-d", "--no-build"], env=env, timeout=300)
        wait_until(lambda: http("GET", url + "/ready")[0] == 200, 120, "compose /ready")
        record("compose up to ready", f"{time.monotonic() - start:.1f} s")

        features = json.loads((trained_model / "metadata.json").read_text())["features"]
        row = {"features": {name: 0.02 * (i + 1) for i, name in enumerate(features)}}

        def hits() -> float:
            text = http("GET", url + "/metrics")[2].decode()
            return metric_value(text, "nepse_cache_events_total", {"event": "hit"})

        before = hits()
        status, headers, first = http("POST", url + "/v1/predict", row)
        assert status == 200, first
        assert headers["x-track"] == "blue"
        assert headers["x-model-version"] == trained_model.name

        # The cache write is asynchronous: repeat the same request until it is served from
        # Redis (bounded), then check that the answer did not change.
        def second_is_a_hit() -> bool:
            status, _, again = http("POST", url + "/v1/predict", row)
            assert status == 200, again
            same = json.loads(again)["predictions"] == json.loads(first)["predictions"]
            assert same, (first, again)
            return hits() > before

        wait_until(second_is_a_hit, 10, "a cache hit for a repeated request", interval=0.2)

        # Redis really holds the entries: the prediction log stream exists.
        redis_id = run([*compose, "ps", "-q", "redis"], env=env).stdout.strip()
        length = run(
            ["podman", "exec", redis_id, "redis-cli", "XLEN", "nepse:predictions"]
        ).stdout.strip()
        assert int(length) >= 2, f"prediction log has {length} entries"
        assert run(["podman", "exec", redis_id, "id", "-u"]).stdout.strip() == "999"

        # The log and its void markers outlive the stack: down (containers removed, volume
        # kept) and up again, with a mark made by the image's own CLI in between.
        predictor_id = run([*compose, "ps", "-q", "predictor"], env=env).stdout.strip()
        mark = ["nepse-predictor", "predictions", "mark", "--model-version", "v0-test"]
        run(["podman", "exec", predictor_id, *mark, "--reason", "restart test"])
        log_before = run(
            ["podman", "exec", redis_id, "redis-cli", "XRANGE", "nepse:predictions", "-", "+"]
        )
        restart_started = time.monotonic()
        run([*compose, "down", "--timeout", "30"], env=env, timeout=180)
        run([*compose, "up", "-d", "--no-build"], env=env, timeout=300)
        wait_until(lambda: http("GET", url + "/ready")[0] == 200, 120, "compose /ready again")
        record("compose down and up to ready", f"{time.monotonic() - restart_started:.1f} s")
        redis_id = run([*compose, "ps", "-q", "redis"], env=env).stdout.strip()
        predictor_id = run([*compose, "ps", "-q", "predictor"], env=env).stdout.strip()
        log_after = run(
            ["podman", "exec", redis_id, "redis-cli", "XRANGE", "nepse:predictions", "-", "+"]
        )
        assert log_after.stdout == log_before.stdout and log_after.stdout.strip()
        marks = run(
            [
                "podman",
                "exec",
                predictor_id,
                "nepse-predictor",
                "predictions",
                "marks",
                "-o",
                "json",
            ]
        )
        [marker] = json.loads(marks.stdout)["marks"]
        assert marker["model_version"] == "v0-test" and marker["reason"] == "restart test"
        aof = run(["podman", "exec", redis_id, "redis-cli", "CONFIG", "GET", "appendonly"])
        assert aof.stdout.split() == ["appendonly", "yes"]

        run(["podman", "stop", "--time", str(STOP_GRACE_SECONDS), predictor_id], timeout=90)
        code = run(["podman", "inspect", "--format", "{{.State.ExitCode}}", predictor_id])
        assert code.stdout.strip() == "0", f"predictor exit code {code.stdout.strip()}"
    except BaseException:
        logs = run([*compose, "logs", "--no-color", "--tail", "60"], env=env, check=False)
        print(logs.stdout[-6000:], logs.stderr[-2000:])
        raise
    finally:
        ticker.stop()
        run([*compose, "down", "--volumes", "--timeout", "10"], env=env, timeout=180, check=False)
        shutil.rmtree(tmp_path, ignore_errors=True)
