"""`nepse-gitops promote`: move the version one environment serves into the next one.

Where the version lands depends on the target's `promotion.strategy` (its policy.yaml):

- rolling:   slots.stable (the whole release is this one commit)
- canary:    rollout.strategy becomes canary in release.yaml, the version goes into
             slots.canary with rollout.canary.weight 0 (only requests with the canary header
             reach it until `set-weight`); `finish` makes it stable and ends the canary phase
- blueGreen: the idle colour's slot (users see it after `flip`)

Refusals (nothing is written): the source does not serve that version, the version is
quarantined, the target already runs it or has a release in flight, the target is in a shadow
phase, the work tree is dirty, or the target does not render and validate with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .change import Landed
from .context import Context
from .environments import Environment, load_environment
from .errors import GitopsError, UsageError
from .gitrepo import CommitMessage
from .policy import promotion_strategy
from .release_edit import land_release, set_slot
from .state import EnvState, Version, env_state


@dataclass
class PromoteRequest:
    to_env: str
    from_env: str | None = None
    image_tag: str | None = None
    model_version: str | None = None
    model_sha256: str | None = None


def resolve_version(root: Path, req: PromoteRequest) -> tuple[Version, str]:
    """The version to promote and a phrase saying where it comes from."""
    if req.from_env is None:
        if not req.image_tag or not req.model_version:
            raise UsageError(
                "promote needs --from ENV, or --image-tag and --model-version "
                "(a new build entering the first environment)"
            )
        version = Version(req.image_tag, req.model_version, req.model_sha256 or "")
        return version, "the release pipeline"

    source = load_environment(root, req.from_env)
    state = env_state(source)
    slot, served = state.served()
    if served.empty:
        raise GitopsError(f"{source.name} serves nothing: its slot {slot} is empty")
    wanted_tag = req.image_tag or served.image_tag
    wanted_model = req.model_version or served.model_version
    if wanted_tag != served.image_tag or wanted_model != served.model_version:
        where = ""
        for other, version in state.slots_in_use().items():
            if other != slot and (
                version.image_tag == wanted_tag and version.model_version == wanted_model
            ):
                where = (
                    f"; {wanted_tag}/{wanted_model} sits in its {other} slot, which does not "
                    "serve users' traffic"
                )
        raise GitopsError(
            f"refusing to promote {wanted_tag}/{wanted_model} from {source.name}: "
            f"{source.name} does not run it as its served version (it serves {served} "
            f"in slot {slot}){where}"
        )
    if req.model_sha256 and served.model_sha256 and req.model_sha256 != served.model_sha256:
        raise GitopsError(
            f"refusing to promote: --model-sha256 {req.model_sha256} differs from the checksum "
            f"{source.name} pins for {served.model_version} ({served.model_sha256})"
        )
    phrase = f"{source.name} (slot {slot})"
    return served, phrase


def plan(root: Path, req: PromoteRequest) -> tuple[Environment, Version, str, str, CommitMessage]:
    target = load_environment(root, req.to_env)
    if req.from_env == req.to_env:
        raise UsageError("--from and --to name the same environment")
    version, source_phrase = resolve_version(root, req)
    state = env_state(target)

    state.refuse_quarantined(version, f"promote {version}")
    if state.strategy == "shadow":
        raise GitopsError(
            f"refusing to promote into {target.name}: it is in a shadow phase "
            f"(shadow={state.slots['shadow']}); run `nepse-gitops shadow stop --env "
            f"{target.name}` first"
        )
    in_flight = state.candidate()
    if in_flight:
        slot, current = in_flight
        raise GitopsError(
            f"refusing to promote into {target.name}: a release is in flight there "
            f"({slot}={current}); finish it (`nepse-gitops finish --env {target.name}`) or "
            f"roll it back (`nepse-gitops rollback --env {target.name} --release`) first"
        )
    served_slot, served = state.served()
    if served.same(version):
        raise GitopsError(
            f"nothing to promote: {target.name} already serves {version} in slot {served_slot}"
        )
    how = promotion_strategy(target)
    slot = {"rolling": "stable", "canary": "canary", "blueGreen": state.idle_colour}[how]
    return target, version, slot, source_phrase, _message(target, version, slot, req, how, state)


def _message(
    target: Environment,
    version: Version,
    slot: str,
    req: PromoteRequest,
    how: str,
    state: EnvState,
) -> CommitMessage:
    origin = req.from_env or "build"
    subject = f"promote({target.name}): {slot}={version} from {origin}"
    lines = [
        f"Put image {version.image_tag} with model {version.model_version} into {target.name}'s "
        f"{slot} slot ({how} release)."
    ]
    if how == "canary":
        lines.append(
            f"{target.name} switches to the canary strategy; the canary starts at weight 0: only "
            "requests with the canary header reach it until `nepse-gitops set-weight` moves "
            "traffic, and `nepse-gitops finish` makes it stable."
        )
    elif how == "blueGreen":
        lines.append(
            f"The {slot} colour is idle: users keep {state.active_colour} until "
            "`nepse-gitops flip`."
        )
    else:
        lines.append("The rolling update replaces the running version.")
    lines.append(
        f"Rendered and validated with helm before this commit (namespace {target.namespace})."
    )
    trailers = [
        ("Nepse-Env", target.name),
        ("Nepse-Action", "promote"),
        ("Nepse-From", origin),
        ("Nepse-Slot", slot),
        ("Nepse-Image-Tag", version.image_tag),
        ("Nepse-Model-Version", version.model_version),
    ]
    return CommitMessage(subject, "\n".join(lines), trailers)


def default_branch(env: str, version: Version) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{version.image_tag}-{version.model_version}")
    return f"promote/{env}/{safe}"


def promote(ctx: Context, req: PromoteRequest) -> Landed:
    target, version, slot, source_phrase, message = plan(ctx.root, req)
    doc = target.release_doc()
    if slot == "canary":
        doc.set(("rollout", "strategy"), "canary")
    set_slot(doc, slot, version)
    if slot == "canary":
        doc.set(("rollout", "canary", "weight"), 0)
    ctx.out(f"promoting {version} from {source_phrase} into {target.name} slot {slot}")
    return land_release(ctx, target, doc, message, f"promote into {target.name}")
