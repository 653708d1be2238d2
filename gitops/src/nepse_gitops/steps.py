"""The steps of a release, one commit each, so that each can be reverted on its own.

- `set-weight --env E --weight W`   canary strategy: share of traffic the canary gets
- `flip --env E`                    blueGreen: the idle colour becomes the active one
- `shadow start --env E ...`        mirror traffic to a version that never answers users
- `shadow stop --env E`             end the shadow phase, back to the environment's strategy
- `finish --env E`                  the candidate becomes stable and the release ends
"""

from __future__ import annotations

from .change import Landed
from .context import Context
from .environments import load_environment
from .errors import GitopsError, UsageError
from .gitrepo import CommitMessage
from .promote import PromoteRequest, resolve_version
from .release_edit import clear_slot, land_release, release_trailers, set_slot
from .rollback import flipped_since_promote
from .state import env_state
from .values import base_strategy


def set_weight(ctx: Context, env_name: str, weight: int) -> Landed:
    env = load_environment(ctx.root, env_name)
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
        f"Send {weight}% of {env.name}'s traffic to the canary {version} "
        f"(stable {state.slots['stable']} keeps {100 - weight}%).",
        [*release_trailers(env, "set-weight", version), ("Nepse-Weight", str(weight))],
    )
    return land_release(ctx, env, doc, message, f"set-weight in {env.name}")


def flip(ctx: Context, env_name: str) -> Landed:
    env = load_environment(ctx.root, env_name)
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
    state.refuse_quarantined(state.slots[idle], f"flip {env.name} to {idle}", name_file=False)
    doc = env.release_doc()
    doc.set(("rollout", "blueGreen", "activeColor"), idle)
    message = CommitMessage(
        f"flip({env.name}): active colour {state.active_colour} -> {idle}",
        f"Users move from {state.active_colour} ({state.slots[state.active_colour]}) to "
        f"{idle} ({state.slots[idle]}); {state.active_colour} stays up as the instant way "
        "back until `nepse-gitops finish`.",
        [*release_trailers(env, "flip", state.slots[idle]), ("Nepse-Active-Colour", idle)],
    )
    return land_release(ctx, env, doc, message, f"flip {env.name}")


def shadow_start(ctx: Context, env_name: str, percent: float, req: PromoteRequest) -> Landed:
    env = load_environment(ctx.root, env_name)
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
    in_flight = state.candidate()
    if in_flight:
        slot, current = in_flight
        raise GitopsError(
            f"refusing to start a shadow in {env.name}: a release is in flight ({slot}={current})"
        )
    version, phrase = resolve_version(ctx.root, req)
    state.refuse_quarantined(version, f"shadow {version}")
    doc = env.release_doc()
    doc.set(("rollout", "strategy"), "shadow")
    doc.set(("rollout", "shadow", "percent"), percent)
    set_slot(doc, "shadow", version)
    message = CommitMessage(
        f"shadow({env.name}): start {version} at {percent}%",
        f"Mirror {percent}% of {env.name}'s requests to {version} from {phrase}. Its answers "
        f"are compared and discarded; users keep getting {state.slots['stable']}.",
        [*release_trailers(env, "shadow-start", version), ("Nepse-Percent", str(percent))],
    )
    return land_release(ctx, env, doc, message, f"start a shadow in {env.name}")


def shadow_stop(ctx: Context, env_name: str) -> Landed:
    env = load_environment(ctx.root, env_name)
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
    clear_slot(doc, "shadow")
    message = CommitMessage(
        f"shadow({env.name}): stop {shadow}",
        f"End the shadow phase of {shadow}; {env.name} returns to its {base} strategy.",
        release_trailers(env, "shadow-stop", shadow),
    )
    return land_release(ctx, env, doc, message, f"stop the shadow in {env.name}")


def finish(ctx: Context, env_name: str) -> Landed:
    env = load_environment(ctx.root, env_name)
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
        set_slot(doc, "stable", version)
        clear_slot(doc, "canary")
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
        if not flipped_since_promote(ctx.repo, env.name):
            raise GitopsError(
                f"refusing to finish {env.name}: the candidate on {idle} has not been flipped "
                f"to yet; run `nepse-gitops flip --env {env.name}` first (or roll it back)"
            )
        version = state.slots[state.active_colour]
        previous = state.slots[idle]
        set_slot(doc, idle, version)
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
        f"finish({env.name}): {slot}={version}", text, release_trailers(env, "finish", version)
    )
    return land_release(ctx, env, doc, message, f"finish in {env.name}")
