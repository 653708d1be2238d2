"""kubeconform -strict on the rendered output of every ci/ values file and every environment,
against the offline Kubernetes and CRD schemas of .tools/schemas (scripts/kubeconform.sh)."""

from __future__ import annotations

import pytest
from chartkit import CI_VALUES, REPO_ROOT, TOOLS, run, template, tool

KUBECONFORM_SH = REPO_ROOT / "scripts" / "kubeconform.sh"
ENVIRONMENTS = sorted(p.parent for p in (REPO_ROOT / "environments").glob("*/values.yaml"))


@pytest.fixture(scope="module")
def kubeconform() -> list[str]:
    tool("kubeconform")
    if not (TOOLS / "schemas" / "kubernetes-version").is_file():
        pytest.fail(
            f"{TOOLS / 'schemas'} is missing: run `make tools` (scripts/install-tools.sh) to "
            "generate the offline kubeconform schemas",
            pytrace=False,
        )
    return ["bash", str(KUBECONFORM_SH)]


def _validate(kubeconform: list[str], manifests: str) -> str:
    result = run([*kubeconform, "-"], input=manifests)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Invalid: 0, Errors: 0" in output, output
    return output


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_ci_values_render_valid_manifests(helm: str, kubeconform, values_file) -> None:
    rendered = template(helm, [values_file])
    assert rendered.returncode == 0, rendered.stderr
    output = _validate(kubeconform, rendered.stdout)
    assert "Skipped: 0" in output, f"kinds without a schema:\n{output}"


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=lambda p: p.name)
def test_environments_render_valid_manifests(helm: str, kubeconform, env) -> None:
    # The value files Argo CD passes (argocd/apps/applicationset.yaml), in the same order.
    candidates = [env / "release.yaml", env.parent / "quarantine.yaml"]
    files = [env / "values.yaml"] + [f for f in candidates if f.is_file()]
    rendered = template(helm, files, namespace=f"nepse-{env.name}")
    assert rendered.returncode == 0, rendered.stderr
    _validate(kubeconform, rendered.stdout)


def test_kubeconform_rejects_an_unknown_field(kubeconform) -> None:
    """The schemas are strict: a field the API does not know fails."""
    bad = "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selektor: {a: b}}\n"
    result = run([*kubeconform, "-"], input=bad)
    assert result.returncode != 0, result.stdout
