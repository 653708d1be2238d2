"""The release autopilot's image (gitops/Dockerfile), built with podman and run the way the
chart's CronJob runs it: its script and environment are taken from the rendered CronJob, the
root filesystem is read-only, the user is not root. It clones a real git repository, asks a
real Prometheus, commits the release's next step and pushes it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from containerkit import NON_ROOT_UID, REPO_ROOT, SCRIPTS, record, run

from testkit.gitrepos import GIT_ENV, commit_all, copy_repository, git
from testkit.model_variants import renamed_model
from testkit.prometheus import scraped_canary

GITOPS_IMAGE = "localhost/nepse-gitops:test"
HELM = Path(os.environ.get("NEPSE_TOOLS_DIR", REPO_ROOT / ".tools")) / "bin" / "helm4"
NEPSE_GITOPS = Path(sys.executable).parent / "nepse-gitops"
AUTOPILOT_VALUES = REPO_ROOT / "charts/nepse-predictor/tests/values/autopilot.yaml"


@pytest.fixture(scope="session")
def gitops_image(base_image: str) -> str:
    result = run([str(SCRIPTS / "build-image.sh"), "--gitops", "--tag", GITOPS_IMAGE], timeout=900)
    record("gitops image build", result.stdout.strip().splitlines()[-1])
    return GITOPS_IMAGE


def _cronjob_container() -> dict:
    """prod's CronJob container as the chart renders it with the autopilot on."""
    env = REPO_ROOT / "environments/prod"
    rendered = subprocess.run(
        [
            str(HELM),
            "template",
            "nepse-predictor",
            str(REPO_ROOT / "charts/nepse-predictor"),
            "--namespace",
            "nepse-prod",
            "-f",
            str(env / "values.yaml"),
            "-f",
            str(env / "release.yaml"),
            "-f",
            str(AUTOPILOT_VALUES),
            "--show-only",
            "templates/autopilot-cronjob.yaml",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cronjob = yaml.safe_load(rendered)
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]


def _git(repo: Path, *args: str) -> str:
    # The bare repository belongs to the image's user; reading it as root is fine here.
    return git(repo, "-c", "safe.directory=*", *args)


@pytest.fixture
def remote_with_a_canary() -> Iterator[Path]:
    """A bare repository (what the CronJob clones and pushes to) whose prod has just been
    promoted: a canary at weight 0, due for its first step. Writable by the image's user."""
    root = Path(tempfile.mkdtemp(prefix="nepse-autopilot-"))
    work = copy_repository(root / "work")
    commit_all(work, "Lay out the environments")
    subprocess.run(
        [
            str(NEPSE_GITOPS),
            "--repo",
            str(work),
            "promote",
            "--from",
            "staging",
            "--to",
            "prod",
            "--no-branch",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, **GIT_ENV, "NEPSE_HELM": str(HELM)},
    )
    bare = root / "repo.git"
    _git(root, "clone", "--quiet", "--bare", str(work), str(bare))
    subprocess.run(["chown", "-R", f"{NON_ROOT_UID}:{NON_ROOT_UID}", str(bare)], check=True)
    root.chmod(0o755)
    yield bare
    shutil.rmtree(root, ignore_errors=True)


def _podman_env(container: dict, overrides: dict[str, str]) -> list[str]:
    args = []
    for item in container["env"]:
        name = item["name"]
        value = overrides.get(name, item.get("value"))
        assert value is not None, f"{name} comes from a Secret: give the test's value"
        args += ["--env", f"{name}={value}"]
    return args


def _run_cronjob(image: str, bare: Path, prometheus_url: str, *command: str):
    container = _cronjob_container()
    env = _podman_env(
        container,
        {
            "NEPSE_GIT_URL": "file:///srv/repo.git",
            "NEPSE_PROMETHEUS_URL": prometheus_url,
            "GIT_USERNAME": "autopilot",
            "GIT_PASSWORD": "token-from-the-secret",
        },
    )
    return run(
        [
            "podman",
            "run",
            "--rm",
            "--network",
            "host",
            "--read-only",
            "--user",
            f"{NON_ROOT_UID}:{NON_ROOT_UID}",
            "--tmpfs",
            "/work:rw,size=512m,mode=1777",
            "--tmpfs",
            "/tmp:rw,size=64m,mode=1777",
            "--volume",
            f"{bare}:/srv/repo.git",
            *env,
            "--entrypoint",
            container["command"][0],
            image,
            *(command or (*container["command"][1:], *container["args"])),
        ],
        timeout=180,
        check=False,
    )


@pytest.fixture
def prometheus_with_the_canary(trained_model: Path, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping prod's canary, labelled as the chart's ServiceMonitor does:
    a real server of the version staging serves (what `promote --from staging` put there)."""
    staging = yaml.safe_load((REPO_ROOT / "environments/staging/release.yaml").read_text())
    pinned = staging["slots"][staging["rollout"]["blueGreen"]["activeColor"]]
    model = renamed_model(trained_model, tmp_path / pinned["modelVersion"], pinned["modelVersion"])
    with scraped_canary(model, tmp_path) as url:
        yield url


def test_the_cronjob_advances_the_release_and_pushes_its_commit(
    gitops_image: str, remote_with_a_canary: Path, prometheus_with_the_canary: str
) -> None:
    result = _run_cronjob(gitops_image, remote_with_a_canary, prometheus_with_the_canary)

    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout)
    assert (outcome["result"], outcome["action"]) == ("advanced", "set-weight")
    subjects = _git(remote_with_a_canary, "log", "--format=%s", "-2").splitlines()
    assert subjects[0] == "step(prod): canary weight 0 -> 5"
    assert subjects[1].startswith("promote(prod): canary=")
    author = _git(remote_with_a_canary, "log", "-1", "--format=%an <%ae>").strip()
    assert author == "nepse-gitops autopilot <autopilot@nepse-predictor.invalid>"


def test_git_asks_the_cronjobs_helper_for_the_secrets_credentials(gitops_image: str) -> None:
    result = _run_cronjob(
        gitops_image,
        Path(tempfile.gettempdir()),
        "",
        "-c",
        "printf 'protocol=https\\nhost=git.example.com\\n\\n' | git credential fill",
    )
    assert result.returncode == 0, result.stderr
    assert "username=autopilot\n" in result.stdout
    assert "password=token-from-the-secret\n" in result.stdout
