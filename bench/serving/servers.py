"""How each compared server is started: its command line, environment and the output that
asks it for P(up)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from serving.processes import ServerSpec
from serving.settings import BENCH, MLSERVER_TEMPLATES, REPO, VENV_BIN
from serving.workload import Workload


def server_specs(work: Path, workload: Workload, mlserver: Path | None) -> dict[str, ServerSpec]:
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NEPSE_", "MLSERVER_")) and k != "MODEL_PATH"
    }
    base_env["PYTHONUNBUFFERED"] = "1"
    uvicorn = str(VENV_BIN / "uvicorn")
    uvicorn_args = [
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--no-access-log",
        "--log-level",
        "warning",
        "--app-dir",
        str(BENCH / "apps"),
    ]
    specs = {
        "ours": ServerSpec(
            "ours",
            [
                str(VENV_BIN / "nepse-predictor"),
                "serve",
                "--model-dir",
                str(workload.model_dir),
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
            ],
            {**base_env, "NEPSE_ACCESS_LOG": "false"},
            REPO,
            [{"name": "probability"}],
        ),
        "naive": ServerSpec(
            "naive",
            [uvicorn, "naive_joblib_app:app", *uvicorn_args],
            {**base_env, "MODEL_PATH": str(workload.model_dir / "model.joblib")},
            REPO,
            [{"name": "probability"}],
        ),
        "hello": ServerSpec(
            "hello", [uvicorn, "hello_app:app", *uvicorn_args], base_env, REPO, None
        ),
        "loop": ServerSpec(
            "loop",
            [str(VENV_BIN / "python"), str(BENCH / "apps" / "loop_floor.py"), "--port", "{port}"],
            base_env,
            REPO,
            None,
        ),
    }
    if mlserver is not None:
        repository = work / "mlserver"
        repository.mkdir(exist_ok=True)
        model_settings = json.loads((MLSERVER_TEMPLATES / "model-settings.json").read_text())
        model_settings["parameters"]["uri"] = str(workload.model_dir / "model.ubj")
        model_settings["parameters"]["version"] = workload.metadata["version"]
        (repository / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
        specs["mlserver"] = ServerSpec(
            "mlserver",
            [str(mlserver), "start", str(repository)],
            base_env,
            repository,
            # mlserver-xgboost loads this binary:logistic booster through XGBRegressor (its
            # first try succeeds with xgboost 3), so `predict` is P(up) and `predict_proba`
            # is refused.
            [{"name": "predict"}],
        )
    return specs


def write_mlserver_settings(spec: ServerSpec, ports: list[int], parallel_workers: int) -> None:
    """settings.json for one start: the template with this start's free ports."""
    settings = json.loads((MLSERVER_TEMPLATES / "settings.json").read_text())
    settings.update(
        http_port=ports[0],
        grpc_port=ports[1],
        metrics_port=ports[2],
        parallel_workers=parallel_workers,
        metrics_dir=str(spec.cwd / ".metrics"),
        environments_dir=str(spec.cwd / ".envs"),
    )
    (spec.cwd / "settings.json").write_text(json.dumps(settings, indent=2))
