"""`advance` for an environment whose chart values set rollout.engine=argoRollouts.

There the rollouts controller walks the steps and judges the analysis; git still pins what runs.
When the controller aborts a Rollout, the cluster is back on the previous version but git still
holds the failed one, and the next sync would try it again. Each run reads the Rollout (with
kubectl) and keeps git the record:

- aborted on the version git pins: the rollback of the whole release, then a quarantine commit
  for the failed version, both carrying the controller's message;
- fully promoted to the version git pins while a release is in flight: `finish` (the version's
  slot becomes stable; the Rollout's pod template, and so its pods, stay as they are);
- anything else (stepping, paused, not synced yet): nothing, with the controller's step.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, replace
from typing import Any

from .context import Context, Delivery
from .environments import Environment
from .errors import GitopsError
from .gitrepo import Annotation
from .release_failure import quarantine_target, undo_failed_release
from .rollback import flipped_since_promote, rollback
from .state import EnvState, Version, env_state
from .steps import finish

# The ApplicationSet's release name, which is also the chart's resource name prefix.
ROLLOUT_NAME = "nepse-predictor"
IMAGE_TAG = "nepse-predictor/image-tag"
MODEL_VERSION = "nepse-predictor/model-version"


@dataclass
class Kube:
    """How to reach the cluster: a kubectl binary and, optionally, a kubeconfig and context."""

    kubectl: str = "kubectl"
    kubeconfig: str | None = None
    context: str | None = None

    def get_json(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        cmd = [self.kubectl]
        if self.kubeconfig:
            cmd += ["--kubeconfig", self.kubeconfig]
        if self.context:
            cmd += ["--context", self.context]
        cmd += ["-n", namespace, "get", kind, name, "-o", "json", "--ignore-not-found"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GitopsError(f"cannot run {' '.join(cmd)}: {exc}") from exc
        if done.returncode != 0:
            raise GitopsError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
        return json.loads(done.stdout) if done.stdout.strip() else None


@dataclass
class RolloutView:
    """What the controller reports about one Rollout."""

    version: Version
    phase: str
    aborted: bool
    promoted: bool
    step: str
    message: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> RolloutView:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        notes = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
        steps = ((spec.get("strategy") or {}).get("canary") or {}).get("steps")
        step = ""
        if steps:
            step = f"{status.get('currentStepIndex', 0)}/{len(steps)}"
        generation = (obj.get("metadata") or {}).get("generation")
        synced = generation is not None and str(status.get("observedGeneration")) == str(generation)
        return cls(
            version=Version(notes.get(IMAGE_TAG, ""), notes.get(MODEL_VERSION, "")),
            phase=str(status.get("phase") or "Unknown"),
            aborted=bool(status.get("abort")),
            promoted=synced
            and status.get("phase") == "Healthy"
            and bool(status.get("stableRS"))
            and status.get("stableRS") == status.get("currentPodHash"),
            step=step,
            message=str(status.get("message") or ""),
        )


def same_version(a: Version, b: Version) -> bool:
    return (a.image_tag, a.model_version) == (b.image_tag, b.model_version)


@dataclass
class Decision:
    result: str  # one of advance.RESULTS
    action: str
    reason: str
    commits: list[str]


def follow(ctx: Context, env: Environment, kube: Kube) -> Decision:
    """What the Rollout says about the release in flight, and the commit that records it."""
    state = env_state(env)
    slot = state.rollout_slot()
    pinned = state.slots[slot]
    obj = kube.get_json(env.namespace, "rollouts.argoproj.io", ROLLOUT_NAME)
    if obj is None:
        return Decision(
            "waiting", "none", f"no Rollout {ROLLOUT_NAME} in {env.namespace} yet (not synced)", []
        )
    view = RolloutView.of(obj)
    if not same_version(view.version, pinned):
        return Decision(
            "waiting",
            "none",
            f"the Rollout carries {view.version}, git pins {pinned} (slots.{slot}): "
            "waiting for the sync",
            [],
        )
    if view.aborted:
        return _roll_back(ctx, env, state, slot, view)
    in_flight = state.candidate() is not None
    if not in_flight:
        return Decision("idle", "none", f"no release in flight; the Rollout is {view.phase}", [])
    if view.promoted and in_flight and _finishable(ctx, env, state, slot):
        return _finish(ctx, env, view)
    where = f"step {view.step}, " if view.step else ""
    detail = f": {view.message}" if view.message else ""
    return Decision(
        "waiting", "none", f"the rollouts controller is at {where}{view.phase}{detail}", []
    )


def _finishable(ctx: Context, env: Environment, state: EnvState, slot: str) -> bool:
    if state.strategy == "canary":
        return slot == "canary"
    if state.strategy == "blueGreen":
        return flipped_since_promote(ctx.repo, env.name)
    return False


def _kept_version(state: EnvState) -> Version:
    """What the controller went back to: stable, or the colour that was active before."""
    if state.strategy == "blueGreen":
        return state.slots[state.idle_colour]
    return state.slots["stable"]


def _roll_back(
    ctx: Context, env: Environment, state: EnvState, slot: str, view: RolloutView
) -> Decision:
    failed = state.slots[slot]
    reason = f"Argo Rollouts aborted {failed} in {env.name}: {view.message or view.phase}"
    target = quarantine_target(failed, _kept_version(state))
    commits, reason = undo_failed_release(
        ctx,
        env.name,
        reason,
        target,
        f"Argo Rollouts aborted it in {env.name}",
        lambda here: rollback(here, env.name, True, reason),
    )
    return Decision("rolled-back", "rollback", reason, commits)


def _finish(ctx: Context, env: Environment, view: RolloutView) -> Decision:
    note = Annotation(
        f"nepse-gitops advance: Argo Rollouts promoted {view.version} in {env.name}.",
        [("Nepse-Advance", "finish"), ("Nepse-Gate", "argo-rollouts")],
    )
    landed = finish(replace(ctx, delivery=Delivery(), annotation=note), env.name)
    reason = f"the rollouts controller promoted {view.version} fully"
    return Decision("finished", "finish", reason, [landed.sha] if landed.sha else [])
