"""What start-up costs: the path from `serve` to ready imports neither FastAPI nor pydantic,
and the FastAPI application built later answers exactly the routes the metrics know."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nepse_predictor.api import build_api, route_templates
from nepse_predictor.app import create_app
from nepse_predictor.config import Settings
from nepse_predictor.paths import ROUTE_TEMPLATES


def test_start_up_imports_neither_fastapi_nor_pydantic(trained_model: Path) -> None:
    code = (
        "import sys, asyncio\n"
        "from nepse_predictor.app import create_app\n"
        "from nepse_predictor.config import Settings\n"
        "from nepse_predictor.server import uvicorn_config\n"
        f"config = uvicorn_config(Settings.from_environment(model_dir={str(trained_model)!r}))\n"
        "asyncio.run(config.app.state.start())\n"
        "assert config.app.state.model is not None\n"
        "print([m for m in ('fastapi', 'pydantic', 'starlette') if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_route_labels_are_exactly_the_applications_routes() -> None:
    api = build_api(create_app(Settings()).state)
    assert sorted(route_templates(api)) == sorted(ROUTE_TEMPLATES)


def test_routes_the_hot_path_does_not_answer_are_served_by_fastapi(start_server) -> None:
    server = start_server(None)
    for path, status in (("/v2", 200), ("/docs", 200), ("/openapi.json", 200), ("/nope", 404)):
        answer = server.client.get(path)
        assert answer.status_code == status, path
        assert answer.headers["x-request-id"]
    assert server.client.get("/nope").json() == {"error": "no route for GET /nope"}
