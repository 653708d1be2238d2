"""Where an environment's release stands, read from git alone: the phase, the step, when the
step was reached, how long it must hold, and what comes after it.

The step is what the environment files say (the canary weight, the colour, the shadow); when
it was reached is when the newest commit of the environment's release still in effect landed
on the branch (its trailers name the environment and the action; a merge that brought it in
counts from the merge). `status` prints this; `advance` acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .environments import ENVIRONMENTS_DIR, Environment
from .gitrepo import RELEASE_ACTIONS, GitRepo, LoggedCommit
from .policy import promotion_strategy
from .release_plan import ReleasePlan, load_release_plan
from .rollback import flipped_since_promote
from .state import EnvState, Version, env_state

# Trailer of the `shadow stop` that `advance` commits when the shadow passed: the next run
# promotes the shadowed version the way the environment promotes.
PROMOTE_NEXT = "Nepse-Next"


@dataclass
class Progress:
    """One environment's release: what it is doing and what the next move is."""

    env: str
    phase: str  # idle | canary | shadow | blueGreen-preview | blueGreen-flipped | shadow-passed
    step: str
    next_move: str  # set-weight | finish | flip | shadow-stop | promote | none
    next_detail: str
    since: int | None = None  # Unix seconds the step was reached
    pause: float = 0.0  # seconds the step holds before the gate may pass it
    gate_overrides: dict[str, Any] = field(default_factory=dict)
    gate_where: str = ""
    weight: int | None = None  # with next_move set-weight: the weight to set
    next_step: str | None = None  # with next_move set-weight: "N/M" of the plan's steps
    version: Version | None = None  # with next_move promote: the version to promote
    judged: bool = True  # whether the gate decides the move (False: no traffic to judge yet)

    @property
    def due(self) -> int | None:
        return None if self.since is None else self.since + round(self.pause)

    @property
    def in_flight(self) -> bool:
        return self.next_move != "none"


def release_commits(repo: GitRepo, env: str) -> list[LoggedCommit]:
    """The environment's release and rollback commits still in effect, newest first."""
    commits = repo.log([ENVIRONMENTS_DIR.as_posix()])
    reverted: set[str] = set()
    for commit in commits:
        reverted.update(commit.reverted_shas())
    actions = (*RELEASE_ACTIONS, "rollback")
    return [c for c in commits if c.env == env and c.action in actions and c.sha not in reverted]


def progress(repo: GitRepo, env: Environment, state: EnvState | None = None) -> Progress:
    state = state or env_state(env)
    plan = load_release_plan(env)
    commits = release_commits(repo, env.name)
    since = repo.landed_at(commits[0].sha) if commits else None
    candidate = state.candidate()
    if state.strategy == "canary" and candidate:
        return _canary(env, state, plan, since)
    if state.strategy == "shadow" and candidate:
        version = candidate[1]
        return Progress(
            env.name,
            "shadow",
            f"shadow {version} mirrored {state.shadow_percent:g}%",
            "shadow-stop",
            f"stop the shadow and promote {version} as the environment promotes",
            since,
            plan.shadow.duration,
            gate_where=f"{env.rel(env.policy_path)}: release.shadow",
        )
    if state.strategy == "blueGreen" and candidate:
        idle, version = candidate
        if not flipped_since_promote(repo, env.name):
            return Progress(
                env.name,
                "blueGreen-preview",
                f"{version} on the idle colour {idle}, preview traffic only",
                "flip",
                f"flip users from {state.active_colour} to {idle}",
                since,
                plan.blue_green.bake_before_flip,
            )
        return Progress(
            env.name,
            "blueGreen-flipped",
            f"{state.slots[state.active_colour]} active on {state.active_colour}, "
            f"{version} kept on {idle} as the way back",
            "finish",
            f"finish: {idle} takes {state.slots[state.active_colour]} too",
            since,
            plan.blue_green.bake_before_finish,
        )
    passed = _passed_shadow(commits)
    if passed is not None:
        return Progress(
            env.name,
            "shadow-passed",
            f"the shadow of {passed} passed and was stopped",
            "promote",
            f"promote {passed} into {env.name} ({promotion_strategy(env)} release)",
            since,
            version=passed,
            judged=False,
        )
    slot, served = state.served()
    return Progress(
        env.name,
        "idle",
        f"{state.strategy}, serves {served} ({slot}); no release in flight",
        "none",
        "nothing: promote a version to start a release",
        since,
    )


def _canary(env: Environment, state: EnvState, plan: ReleasePlan, since: int | None) -> Progress:
    weights = plan.canary.weights
    weight = state.canary_weight
    version = state.slots["canary"]
    steps = plan.canary.steps
    where = env.rel(env.policy_path)
    later = [w for w in weights if w > weight]
    if weight == 0:
        # Promoted: only the canary header reaches it, so nothing holds the first step back.
        return Progress(
            env.name,
            "canary",
            f"canary {version} at weight 0 (promoted, before step 1 of {len(steps)})",
            "set-weight",
            f"weight {weights[0]} (step 1 of {len(steps)})",
            since,
            weight=weights[0],
            next_step=f"1/{len(steps)}",
            judged=False,
        )
    below = [i for i, w in enumerate(weights) if w <= weight]
    index = below[-1] if below else 0
    step = steps[index]
    label = (
        f"step {index + 1} of {len(steps)}"
        if weight == step.weight
        else f"between the plan's steps, held like step {index + 1}"
    )
    held = Progress(
        env.name,
        "canary",
        f"canary {version} at weight {weight} ({label})",
        "finish",
        f"finish: {version} becomes stable",
        since,
        step.pause,
        gate_overrides=step.gate,
        gate_where=f"{where}: release.canary.steps[{index}].gate",
    )
    if later:
        nxt = weights.index(later[0])
        return replace(
            held,
            next_move="set-weight",
            next_detail=f"weight {later[0]} (step {nxt + 1} of {len(steps)})",
            weight=later[0],
            next_step=f"{nxt + 1}/{len(steps)}",
        )
    return held


def _passed_shadow(commits: list[LoggedCommit]) -> Version | None:
    """The version of a shadow that `advance` stopped because it passed, unless a release or
    rollback commit came after that stop."""
    if not commits or commits[0].action != "shadow-stop":
        return None
    stop = commits[0]
    if stop.trailer(PROMOTE_NEXT) != "promote":
        return None
    return Version(
        stop.trailer("Nepse-Image-Tag") or "",
        stop.trailer("Nepse-Model-Version") or "",
        stop.trailer("Nepse-Model-Sha256") or "",
    )
