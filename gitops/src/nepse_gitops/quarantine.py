"""`nepse-gitops quarantine`: add an image tag or model version to the list the chart refuses.

The list lives in environments/quarantine.yaml, which every environment's render receives as
its last value file (Argo CD's ApplicationSet and this tool alike). A version still running
somewhere cannot be quarantined: roll it back there first, otherwise that environment would
stop rendering and Argo CD could not sync it any more.
"""

from __future__ import annotations

import datetime as dt

from ruamel.yaml.comments import CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from .change import Landed, land
from .context import Context
from .environments import QUARANTINE_FILE, list_environments, load_environment
from .errors import GitopsError, UsageError
from .gitrepo import CommitMessage
from .state import Quarantine, env_state
from .yamldoc import MISSING, Change, YamlDoc


def quarantine(
    ctx: Context, image_tag: str | None, model_version: str | None, reason: str | None
) -> Landed:
    if bool(image_tag) == bool(model_version):
        raise UsageError("quarantine takes exactly one of --image-tag or --model-version")
    key, value, label = (
        ("imageTags", image_tag, "imageTag")
        if image_tag
        else ("modelVersions", model_version, "modelVersion")
    )
    assert value is not None
    path = ctx.root / QUARANTINE_FILE
    doc = YamlDoc.load(path, QUARANTINE_FILE.as_posix())
    section = doc.get(("quarantine",))
    if not isinstance(section, dict):
        raise GitopsError(f"{QUARANTINE_FILE}: expected a `quarantine:` mapping")
    items = section.get(key)
    if items is None:
        items = CommentedSeq()
        section[key] = items
    if not isinstance(items, CommentedSeq):
        raise GitopsError(f"{QUARANTINE_FILE}: quarantine.{key} must be a list")
    if value in [str(i) for i in items]:
        raise GitopsError(f"nothing to do: {label} {value!r} is already quarantined")

    entry = Quarantine(image_tags=(value,)) if image_tag else Quarantine(model_versions=(value,))
    envs = [load_environment(ctx.root, name) for name in list_environments(ctx.root)]
    running = [
        f"{env.name} (slot {slot}: {version})"
        for env in envs
        for slot, version in env_state(env).slots_in_use().items()
        if entry.blocks(version)
    ]
    if running:
        raise GitopsError(
            f"refusing to quarantine {label} {value!r}: it still runs in "
            f"{', '.join(running)}. Roll it back there first (`nepse-gitops rollback --env ENV`),"
            " or that environment would stop rendering and could not be synced"
        )

    if getattr(items, "fa", None) is not None and items.fa.flow_style():
        items.fa.set_block_style()
    items.append(DoubleQuotedScalarString(value))
    # One line: a newline in a reason (a user's, or a controller's message) would end the
    # comment and write the rest into the list as YAML.
    one_line = " ".join(reason.split()) if reason else ""
    note = f"{dt.date.today().isoformat()}: {one_line}" if one_line else dt.date.today().isoformat()
    items.yaml_add_eol_comment(note, len(items) - 1)
    doc.changes.append(_change(key, value))

    message = CommitMessage(
        f"quarantine: {label} {value}",
        (
            f"Add {label} {value!r} to {QUARANTINE_FILE}: the chart refuses to render any "
            "environment whose slots use it, so it cannot be promoted or rolled back to."
            + (f"\n\nReason: {reason}" if reason else "")
        ),
        [("Nepse-Env", "all"), ("Nepse-Action", "quarantine"), (f"Nepse-{_trailer(label)}", value)],
    )
    return land(ctx, [doc], envs, message, f"quarantine {value}")


def _trailer(label: str) -> str:
    return "Image-Tag" if label == "imageTag" else "Model-Version"


def _change(key: str, value: str) -> Change:
    return Change(("quarantine", key), MISSING, value)
