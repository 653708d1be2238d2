"""Edits to an environment's release.yaml (what a promotion or a release step moves), landed
as one commit whose message ends with the changed keys."""

from __future__ import annotations

from .change import Landed, land
from .context import Context
from .environments import Environment
from .gitrepo import CommitMessage
from .state import Version
from .yamldoc import YamlDoc

EMPTY = Version("", "", "")


def set_slot(doc: YamlDoc, slot: str, version: Version) -> None:
    """Pin ``version`` (image tag, model version and checksum) in ``slots.<slot>``."""
    for name, value in version.fields().items():
        doc.set(("slots", slot, name), value)


def clear_slot(doc: YamlDoc, slot: str) -> None:
    set_slot(doc, slot, EMPTY)


def release_trailers(
    env: Environment, action: str, version: Version | None = None
) -> list[tuple[str, str]]:
    trailers = [("Nepse-Env", env.name), ("Nepse-Action", action)]
    if version is not None and not version.empty:
        trailers += [
            ("Nepse-Image-Tag", version.image_tag),
            ("Nepse-Model-Version", version.model_version),
        ]
    return trailers


def land_release(
    ctx: Context, env: Environment, doc: YamlDoc, message: CommitMessage, what: str
) -> Landed:
    """Land ``doc`` (the environment's release.yaml), rendering ``env`` with it; the commit's
    body is ``message.body`` followed by the keys that changed."""
    changes = "\n".join(f"  {c.describe()}" for c in doc.changes)
    body = f"{message.body}\n\nChanged in {env.rel(env.release_path)}:\n{changes}"
    return land(ctx, [doc], [env], CommitMessage(message.subject, body, message.trailers), what)
