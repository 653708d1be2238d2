"""Render every ci values file and every environment of the chart, then run kube-score and
checkov over the manifests, skipping only the checks in tests/tooling/chart-policy-skips.yaml.

Run by `make lint` (through scripts/with-tools.sh, so helm4, kube-score and checkov come from
.tools/bin); exits non-zero on any other finding or a missing tool.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "nepse-predictor"
SKIPS = ROOT / "tests" / "tooling" / "chart-policy-skips.yaml"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion).
KUBE_VERSION = "1.34.0"
TOOLS = ("helm4", "kube-score", "checkov")
# Skip-list keys that are kube-score flags (--ignore-<key>) rather than test names.
KUBE_SCORE_FLAGS = {"container-cpu-limit", "container-memory-limit"}


def value_sets() -> dict[str, tuple[str, list[Path]]]:
    """name -> (namespace, value files) for every ci file and environment. Each gets its own
    namespace: kube-score scores all files together and matches objects by namespace and name."""
    sets = {
        f"ci-{f.name.removesuffix('-values.yaml')}": (f"nepse-ci-{f.name.split('-')[0]}", [f])
        for f in sorted((CHART / "ci").glob("*-values.yaml"))
    }
    for env in sorted(p for p in (ROOT / "environments").iterdir() if p.is_dir()):
        files = [
            env / "values.yaml",
            env / "release.yaml",
            env / "policy.yaml",
            ROOT / "environments" / "quarantine.yaml",
        ]
        sets[f"env-{env.name}"] = (f"nepse-{env.name}", files)
    return sets


def render(out: Path) -> list[Path]:
    rendered = []
    for name, (namespace, files) in value_sets().items():
        args = ["helm4", "template", "nepse-predictor", str(CHART), "--namespace", namespace]
        args += ["--kube-version", KUBE_VERSION]
        for f in files:
            args += ["-f", str(f)]
        result = subprocess.run(args, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            sys.exit(f"chart-policy: helm template failed for {name}:\n{result.stderr}")
        path = out / f"{name}.yaml"
        path.write_text(result.stdout)
        rendered.append(path)
    return rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skips", type=Path, default=SKIPS, help="skip list (YAML)")
    args = parser.parse_args(argv)
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        print(
            f"chart-policy: {', '.join(missing)} not on PATH: run "
            "`scripts/install-tools.sh kube-score checkov` (helm4: `make tools`)",
            file=sys.stderr,
        )
        return 2
    skips = yaml.safe_load(args.skips.read_text())
    with tempfile.TemporaryDirectory(prefix="nepse-chart-policy-") as tmp:
        files = render(Path(tmp))
        # kube-score knows no Rollout: those renders get the few extra skips that says.
        rollouts = [f for f in files if "\nkind: Rollout\n" in f.read_text()]
        native = [f for f in files if f not in rollouts]
        findings, failed = [], False
        for group, checks in (
            (native, skips["kube-score"]),
            (rollouts, {**skips["kube-score"], **skips["kube-score-argo-rollouts"]}),
        ):
            scored = kube_score(group, checks)
            failed |= scored.returncode != 0
            findings += [
                line
                for line in scored.stdout.splitlines()
                if line.startswith(("[CRITICAL]", "[WARNING]"))
            ]
        print(f"kube-score over {len(files)} renders: {len(findings)} findings")
        for line in findings:
            print(f"  {line}")
        checkov = ["checkov", "-d", tmp, "--framework", "kubernetes", "--quiet", "--compact"]
        checkov += ["--skip-download", "--skip-check", ",".join(skips["checkov"])]
        checked = subprocess.run(
            checkov, capture_output=True, text=True, env={**os.environ, "LOG_LEVEL": "WARNING"}
        )
        print(f"checkov over {len(files)} renders: exit {checked.returncode}")
        if checked.returncode != 0:
            print(checked.stdout[-20000:], checked.stderr[-5000:], sep="\n")
    return 1 if failed or checked.returncode != 0 else 0


def kube_score(files: list[Path], checks: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = ["kube-score", "score", "--output-format", "ci", "--exit-one-on-warning"]
    cmd += ["--kubernetes-version", f"v{KUBE_VERSION.rsplit('.', 1)[0]}"]
    for check in checks:
        cmd += [f"--ignore-{check}"] if check in KUBE_SCORE_FLAGS else ["--ignore-test", check]
    return subprocess.run([*cmd, *map(str, files)], capture_output=True, text=True)


if __name__ == "__main__":
    sys.exit(main())
