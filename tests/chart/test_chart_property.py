"""Every value the schema accepts renders manifests a real API server accepts, or is refused by
templates/validate.yaml with a message naming the value.

Values are drawn from values.schema.json (values_strategy), rendered with Helm 4 for the oldest
Kubernetes the chart supports, and applied with `kubectl apply --server-side --dry-run=server`
to a local kube-apiserver that has the CRDs of Istio, the Gateway API, Knative and the
Prometheus Operator installed, so CRD schemas and CEL rules judge the custom resources too.

Bounded: NEPSE_PROPERTY_EXAMPLES examples (default 60) from a fixed NEPSE_PROPERTY_SEED, so a
run is repeatable; raise the count or change the seed to explore further. A failure is reported
as drawn; NEPSE_PROPERTY_SHRINK=1 lets Hypothesis shrink it (each step renders and applies,
so that takes minutes).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from chartkit import CHART, KUBE_VERSION, run, tool
from hypothesis import HealthCheck, Phase, given, seed, settings
from values_strategy import chart_values

from testkit.cluster import Cluster

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("NEPSE_PROPERTY_EXAMPLES", "60"))
SEED = int(os.environ.get("NEPSE_PROPERTY_SEED", "12"))
PHASES = [Phase.explicit, Phase.generate] + (
    [Phase.shrink] if os.environ.get("NEPSE_PROPERTY_SHRINK") == "1" else []
)
REFUSED = "nepse-predictor: invalid values:"


def _render(values: dict[str, Any], namespace: str, workdir: Path) -> tuple[bool, str]:
    values_file = workdir / "values.json"
    values_file.write_text(json.dumps(values))
    result = run(
        [
            tool("helm4"),
            "template",
            "nepse-predictor",
            CHART,
            "--namespace",
            namespace,
            "--kube-version",
            KUBE_VERSION,
            "-f",
            values_file,
        ],
        timeout=60,
    )
    return result.returncode == 0, result.stdout if result.returncode == 0 else result.stderr


# Hypothesis describes the whole schema walk in a failure report; that repr is long, not wrong.
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_schema_valid_values_render_manifests_the_api_server_accepts(
    api_server: Cluster, dry_run_namespace: str, capsys: pytest.CaptureFixture
) -> None:
    outcomes: Counter[str] = Counter()
    workdir = Path(tempfile.mkdtemp(prefix="nepse-property-"))

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=PHASES,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(values=chart_values())
    def check(values: dict[str, Any]) -> None:
        rendered, output = _render(values, dry_run_namespace, workdir)
        if not rendered:
            assert REFUSED in output, (
                f"schema-valid values broke the templates instead of being refused by "
                f"validate.yaml:\n{output}\nvalues: {json.dumps(values)}"
            )
            outcomes["refused by validate.yaml"] += 1
            return
        applied = api_server.kubectl(
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=nepse-property",
            "-n",
            dry_run_namespace,
            "-f",
            "-",
            input=output,
            check=False,
            timeout=60,
        )
        assert applied.returncode == 0, (
            f"the API server refused what schema-valid values rendered:\n{applied.stderr}\n"
            f"values: {json.dumps(values)}"
        )
        outcomes["accepted by the API server"] += 1

    check()
    with capsys.disabled():
        print(f"\n[property] {EXAMPLES} examples (seed {SEED}): {dict(outcomes)}")
    assert outcomes["accepted by the API server"] >= EXAMPLES // 8, (
        f"too few drawings rendered to test the API server: {dict(outcomes)}"
    )


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_each_environment_with_the_autopilot_on_is_accepted_by_the_api_server(
    api_server: Cluster, dry_run_namespace: str, env: str
) -> None:
    """The CronJob of the release autopilot (charts/.../tests/values/autopilot.yaml) beside
    everything the environment renders: the API server validates the CronJob's schedule,
    Secret references, security context and resources for real."""
    folder = CHART.parent.parent / "environments" / env
    rendered = run(
        [
            tool("helm4"),
            "template",
            "nepse-predictor",
            CHART,
            "--namespace",
            dry_run_namespace,
            "--kube-version",
            KUBE_VERSION,
            "-f",
            folder / "values.yaml",
            "-f",
            folder / "release.yaml",
            "-f",
            CHART / "tests/values/autopilot.yaml",
            "--set",
            f"autopilot.environment={env}",
        ],
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: CronJob" in rendered.stdout
    applied = api_server.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=nepse-autopilot",
        "-n",
        dry_run_namespace,
        "-f",
        "-",
        input=rendered.stdout,
        check=False,
        timeout=60,
    )
    assert applied.returncode == 0, applied.stderr
    assert "cronjob.batch/nepse-predictor-autopilot serverside-applied (server dry run)" in (
        applied.stdout
    )
