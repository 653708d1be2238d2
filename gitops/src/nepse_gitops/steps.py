"""The steps of a release, one commit each, so that each can be reverted on its own.

- `set-weight --env E --weight W`   canary strategy: share of traffic the canary gets
- `flip --env E`                    blueGreen: the idle colour becomes the active one
- `shadow start --env E ...`        mirror traffic to a version that never answers users
- `shadow stop --env E`             end the shadow phase, back to the environment's strategy
- `finish --env E`                  the candidate becomes stable and the release ends
"""

from __future__ import annotations

from pathlib import Path

from .change import Delivery, Landed, Printer, land
from .environments import Environment, load_environment
from .errors import GitopsError, UsageError
from .gitrepo import Annotation, CommitMessage, GitRepo
from .promote import PromoteRequest, resolve_version
from .rollback import flipped_since_promote
from .state import Version, env_state, iter_slot_keys
from .values import base_strategy

EMPTY = Version("", "", "")


def _trailers(env: Environment, action: str, version: Version | None = None) -> list:
    trailers = [("Nepse-Env", env.name), ("Nepse-Action", action)]
    if version is not None and not version.empty:
        trailers += [
            ("Nepse-Image-Tag", version.image_tag),
            ("Nepse-Model-Version", version.model_version),
        ]
    return trailers


def _body(env: Environment, text: str, doc) -> str:
    changes = "\n".join(f"  {c.describe()}" for c in doc.changes)
    return f"{text}\n\nChanged in {env.rel(env.release_path)}:\n{changes}"


def _land(root, env, doc, message, delivery, dry_run, out, what, helm, annotation) -> Landed:
    return land(
        GitRepo(root),
        [doc],
        [env],
        message,
        delivery,
        dry_run,
        out,
        what,
        helm=helm,
        annotation=annotation,
    )


def set_weight(
    root: Path,
    env_name: str,
    weight: int,
    delivery: Delivery,
    dry_run: bool,
    out: Printer,
    helm: str | None = None,
    annotation: Annotation | None = None,
) -> Landed:
    env = load_environment(root, env_name)
    state = env_state(env)
    if not 0 <= weight <= 100:
        raise UsageError(f"--weight must be between 0 and 100, got {weight}")
    if state.strategy != "canary":
        raise GitopsError(
            f"refusing to set a canary weight in {env.name}: no canary is running there "
            f"(rollout.strategy is {state.strategy!r}); promote a version into {env.name} first"
        )
    candidate = state.candidate()
    assert candidate is not None
    if weight == state.canary_weight:
        raise GitopsError(f"nothing to change: {env.name}'s canary weight is already {weight}")
    doc = env.release_doc()
    doc.set(("rollout", "canary", "weight"), weight)
    _, version = candidate
    message = CommitMessage(
        f"step({env.name}): canary weight {state.canary_weight} -> {weight}",
        _body(
            env,
            f"Send {weight}% of {env.name}'s traffic to the canary {version} "
            f"(stable {state.slots['stable']} keeps {100 - weight}%).",
            doc,
        ),
        [*_trailers(env, "set-weight", version), ("Nepse-Weight", str(weight))],
    )
    return _land(
        root,
        env,
        doc,
        message,
        delivery,
        dry_run,
        out,
        f"set-weight in {env.name}",
        helm,
        annotation,
    )


def flip(
    root: Path,
    env_name: str,
    delivery: Delivery,
    dry_run: bool,
    out: Printer,
    helm: str | None = None,
    annotation: Annotation | None = None,
) -> Landed:
    env = load_environment(root, env_name)
    state = env_state(env)
    if state.strategy != "blueGreen":
        raise GitopsError(
            f"refusing to flip {env.name}: its rollout.strategy is {state.strategy!r}, "
            "not 'blueGreen'"
        )
    idle = state.idle_colour
    if state.slots[idle].empty:
        raise GitopsError(
            f"refusing to flip {env.name}: the idle colour {idle} is empty, so users would "
            "reach no pods; promote a version into it first"
        )
    blocked = state.quarantined(state.slots[idle])
    if blocked:
        raise GitopsError(
            f"refusing to flip {env.name} to {idle}: {' and '.join(blocked)} is quarantined"
        )
    doc = env.release_doc()
    doc.set(("rollout", "blueGreen", "activeColor"), idle)
    message = CommitMessage(
        f"flip({env.name}): active colour {state.active_colour} -> {idle}",
        _body(
            env,
            f"Users move from {state.active_colour} ({state.slots[state.active_colour]}) to "
            f"{idle} ({state.slots[idle]}); {state.active_colour} stays up as the instant way "
            "back until `nepse-gitops finish`.",
            doc,
        ),
        [*_trailers(env, "flip", state.slots[idle]), ("Nepse-Active-Colour", idle)],
    )
    return _land(
        root, env, doc, message, delivery, dry_run, out, f"flip {env.name}", helm, annotation
    )


def shadow_start(
    root: Path,
    env_name: str,
    percent: float,
    req: PromoteRequest,
    delivery: Delivery,
    dry_run: bool,
    out: Printer,
    helm: str | None = None,
    annotation: Annotation | None = None,
) -> Landed:
    env = load_environment(root, env_name)
    state = env_state(env)
    if not 0 < percent <= 100:
        raise UsageError(f"--percent must be above 0 and at most 100, got {percent}")
    if state.strategy == "shadow":
        raise GitopsError(
            f"refusing to start a shadow in {env.name}: one is running "
            f"(shadow={state.slots['shadow']}); stop it first"
        )
    if state.strategy == "blueGreen":
        raise GitopsError(
            f"refusing to start a shadow in {env.name}: blueGreen already runs the next version "
            "on the idle colour without users; test it there"
        )
    if state.candidate():
        slot, version = state.candidate()
        raise GitopsError(
            f"refusing to start a shadow in {env.name}: a release is in flight ({slot}={version})"
        )
    version, phrase = resolve_version(root, req)
    blocked = state.quarantined(version)
    if blocked:
        raise GitopsError(
            f"refusing to shadow {version}: {' and '.join(blocked)} is quarantined in "
            "environments/quarantine.yaml"
        )
    doc = env.release_doc()
    doc.set(("rollout", "strategy"), "shadow")
    doc.set(("rollout", "shadow", "percent"), percent)
    fields = version.fields()
    for keys in iter_slot_keys("shadow"):
        doc.set(keys, fields[keys[-1]])
    message = CommitMessage(
        f"shadow({env.name}): start {version} at {percent}%",
        _body(
            env,
            f"Mirror {percent}% of {env.name}'s requests to {version} from {phrase}. Its answers "
            f"are compared and discarded; users keep getting {state.slots['stable']}.",
            doc,
        ),
        [*_trailers(env, "shadow-start", version), ("Nepse-Percent", str(percent))],
    )
    return _land(
        root,
        env,
        doc,
        message,
        delivery,
        dry_run,
        out,
        f"start a shadow in {env.name}",
        helm,
        annotation,
    )


def shadow_stop(
    root: Path,
    env_name: str,
    delivery: Delivery,
    dry_run: bool,
    out: Printer,
    helm: str | None = None,
    annotation: Annotation | None = None,
) -> Landed:
    env = load_environment(root, env_name)
    state = env_state(env)
    if state.strategy != "shadow":
        raise GitopsError(f"refusing to stop a shadow in {env.name}: none is running")
    doc = env.release_doc()
    shadow = state.slots["shadow"]
    base = base_strategy(env)
    if base == "shadow":
        raise GitopsError(
            f"{env.rel(env.values_path)} sets rollout.strategy to shadow; a shadow phase "
            "is started and stopped in release.yaml, the environment's own strategy must differ"
        )
    doc.delete(("rollout", "strategy"))
    for keys in iter_slot_keys("shadow"):
        doc.set(keys, "")
    message = CommitMessage(
        f"shadow({env.name}): stop {shadow}",
        _body(
            env,
            f"End the shadow phase of {shadow}; {env.name} returns to its {base} strategy.",
            doc,
        ),
        _trailers(env, "shadow-stop", shadow),
    )
    return _land(
        root,
        env,
        doc,
        message,
        delivery,
        dry_run,
        out,
        f"stop the shadow in {env.name}",
        helm,
        annotation,
    )


def finish(
    root: Path,
    env_name: str,
    delivery: Delivery,
    dry_run: bool,
    out: Printer,
    helm: str | None = None,
    annotation: Annotation | None = None,
) -> Landed:
    env = load_environment(root, env_name)
    state = env_state(env)
    doc = env.release_doc()
    if state.strategy == "canary":
        version = state.slots["canary"]
        previous = state.slots["stable"]
        base = base_strategy(env)
        if base == "canary":
            raise GitopsError(
                f"refusing to finish in {env.name}: {env.rel(env.values_path)} sets "
                "rollout.strategy canary, so the canary slot can never be emptied; make the "
                "environment's strategy rolling and let promotions switch to canary"
            )
        fields = version.fields()
        for keys in iter_slot_keys("stable"):
            doc.set(keys, fields[keys[-1]])
        for keys in iter_slot_keys("canary"):
            doc.set(keys, "")
        doc.set(("rollout", "canary", "weight"), 0)
        doc.delete(("rollout", "strategy"))
        text = (
            f"The canary {version} becomes {env.name}'s stable version (was {previous}); "
            f"the canary slot is emptied and {env.name} returns to its {base} strategy."
        )
        slot = "stable"
    elif state.strategy == "blueGreen":
        idle = state.idle_colour
        if state.candidate() is None:
            raise GitopsError(
                f"nothing to finish in {env.name}: both colours run {state.slots[idle]}"
            )
        if not flipped_since_promote(GitRepo(root), env.name):
            raise GitopsError(
                f"refusing to finish {env.name}: the candidate on {idle} has not been flipped "
                f"to yet; run `nepse-gitops flip --env {env.name}` first (or roll it back)"
            )
        version = state.slots[state.active_colour]
        previous = state.slots[idle]
        fields = version.fields()
        for keys in iter_slot_keys(idle):
            doc.set(keys, fields[keys[-1]])
        text = (
            f"{version} on {state.active_colour} is {env.name}'s version now; {idle} is "
            f"updated from {previous} to the same version, which ends the instant way back "
            "and leaves it ready for the next promotion."
        )
        slot = state.active_colour
    elif state.strategy == "shadow":
        raise GitopsError(
            f"refusing to finish in {env.name}: a shadow never answered users, so it cannot "
            f"become stable; stop it (`nepse-gitops shadow stop --env {env.name}`) and promote "
            "the version as a canary"
        )
    else:
        raise GitopsError(
            f"nothing to finish in {env.name}: the rolling strategy has no candidate; "
            "a promotion there is complete in one commit"
        )
    message = CommitMessage(
        f"finish({env.name}): {slot}={version}",
        _body(env, text, doc),
        _trailers(env, "finish", version),
    )
    return _land(
        root, env, doc, message, delivery, dry_run, out, f"finish in {env.name}", helm, annotation
    )
