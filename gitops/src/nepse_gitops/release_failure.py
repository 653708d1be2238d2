"""After a failed release is rolled back: the quarantine commit that keeps it from coming back.

Shared by `advance` (a failed gate) and its Argo Rollouts path (an aborted Rollout).
"""

from __future__ import annotations

from pathlib import Path

from .change import Delivery, Printer
from .errors import GitopsError
from .gitrepo import Annotation
from .quarantine import quarantine
from .state import Version


def quarantine_target(candidate: Version, stable: Version) -> tuple[str, str] | None:
    """What made the candidate different: its model version, else its image tag."""
    if candidate.model_version and candidate.model_version != stable.model_version:
        return "modelVersion", candidate.model_version
    if candidate.image_tag and candidate.image_tag != stable.image_tag:
        return "imageTag", candidate.image_tag
    return None


def quarantine_failed(
    root: Path,
    env_name: str,
    target: tuple[str, str],
    reason: str,
    why: str,
    out: Printer,
    helm: str | None = None,
) -> tuple[str | None, str]:
    """Land the quarantine of ``target`` (from quarantine_target); ``why`` says who found the
    failure. Returns the commit (None when it could not be made) and the reason, which then
    says why the version is not quarantined: the rollback stands either way."""
    kind, value = target
    try:
        landed = quarantine(
            root,
            value if kind == "imageTag" else None,
            value if kind == "modelVersion" else None,
            reason,
            Delivery(),
            False,
            out,
            helm,
            annotation=Annotation(
                f"Quarantined by nepse-gitops advance: {why}.", [("Nepse-Failed-In", env_name)]
            ),
        )
    except GitopsError as exc:
        out(f"the rollback stands, but {kind} {value} is not quarantined: {exc}")
        return None, f"{reason}; not quarantined: {exc}"
    return landed.sha, reason
