"""kubeconform with the offline schemas: good manifests pass, bad ones fail naming the field."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from testkit.cluster import TOOLS
from testkit.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "kubeconform.sh"
SAMPLES = Path(__file__).parent / "samples"
SCHEMAS = TOOLS / "schemas"


@pytest.fixture(scope="module", autouse=True)
def _installed() -> None:
    if not (TOOLS / "bin" / "kubeconform").exists() or not SCHEMAS.is_dir():
        pytest.fail("kubeconform and its schemas are not installed: run scripts/install-tools.sh")


def kubeconform(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("api_group", "schema"),
    [
        ("networking.istio.io", "virtualservice_v1"),
        ("networking.istio.io", "destinationrule_v1"),
        ("gateway.networking.k8s.io", "httproute_v1"),
        ("gateway.networking.k8s.io", "gateway_v1"),
        ("serving.knative.dev", "service_v1"),
        ("monitoring.coreos.com", "servicemonitor_v1"),
        ("monitoring.coreos.com", "prometheusrule_v1"),
        ("argoproj.io", "appproject_v1alpha1"),
        ("argoproj.io", "application_v1alpha1"),
        ("argoproj.io", "applicationset_v1alpha1"),
        ("argoproj.io", "rollout_v1alpha1"),
    ],
)
def test_a_strict_schema_exists_for_each_custom_resource_the_chart_may_render(
    api_group: str, schema: str
) -> None:
    assert (SCHEMAS / "crds" / api_group / f"{schema}-strict.json").is_file()


def test_valid_manifests_of_every_kind_pass() -> None:
    result = kubeconform(SAMPLES / "good")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Invalid: 0, Errors: 0, Skipped: 0" in result.stdout
    kinds_checked = int(result.stdout.split("Summary: ")[1].split(" resources")[0])
    assert kinds_checked == 17


def test_valid_manifests_pass_when_read_from_stdin() -> None:
    manifest = (SAMPLES / "good" / "istio.yaml").read_text()
    result = subprocess.run(
        [str(SCRIPT), "-"], input=manifest, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid: 2" in result.stdout


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (
            "deployment.yaml",
            [
                "at '/spec/replicas': got string, want null or integer",
                "at '/spec/template/spec/containers/0': additional properties "
                "'imagePullPolicyy' not allowed",
            ],
        ),
        (
            "virtualservice.yaml",
            ["at '/spec/http/0/route/0': additional properties 'wieght' not allowed"],
        ),
        (
            "httproute.yaml",
            ["at '/spec/rules/0/backendRefs/0/weight': got string, want null or integer"],
        ),
        (
            "servicemonitor.yaml",
            ["at '/spec/endpoints/0': additional properties 'scrapeEvery' not allowed"],
        ),
    ],
)
def test_invalid_manifest_fails_naming_the_field(sample: str, expected: list[str]) -> None:
    result = kubeconform(SAMPLES / "bad" / sample)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Invalid: 1" in result.stdout
    for message in expected:
        assert message in result.stdout


def test_a_kind_without_schema_is_an_error_not_a_silent_pass(tmp_path: Path) -> None:
    manifest = tmp_path / "unknown.yaml"
    manifest.write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n")
    result = kubeconform(manifest)
    assert result.returncode == 1
    assert "could not find schema for Widget" in result.stdout


def test_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    manifest = tmp_path / "dup.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\ndata: {}\n"
    )
    result = kubeconform(manifest)
    assert result.returncode == 1
    assert '"name" already set in map' in result.stdout
