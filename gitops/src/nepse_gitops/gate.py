"""`nepse-gitops gate`: compare the candidate track with the stable track and act on the result.

Metrics come from the service's own ``/metrics`` endpoints (gate_metrics_scrape.py) or from a
Prometheus HTTP API (gate_metrics_prometheus.py); thresholds live in the ``gate:`` section of
``environments/<env>/policy.yaml`` (gate_config.py); the checks are in gate_evaluation.py.

Before judging, the gate refuses (exit 2) a track whose metrics come from another model than
its slot pins (``nepse_model_info``), and, from Prometheus, a candidate track of which no pod
is scraped under ``gate.prometheus.selector`` and ``trackLabel`` within the window (no
``nepse_model_ready`` series, which every server exposes from its start): a wrong selector is
an error, never a candidate that seems idle.

Exit codes: 0 pass, 1 fail (the release in flight is rolled back with one commit unless
``--no-rollback``), 2 error (metrics unreachable, bad configuration, or the rollback was made
but voiding the candidate's logged predictions failed), 3 inconclusive (the candidate has
served fewer than ``minRequests`` requests).

On a rollback the candidate's model version is voided in the prediction log (see
void_mark.py): run with ``--redis-url``, printed for someone to run without it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .context import Context
from .environments import Environment, load_environment
from .errors import GateConfigError, GitopsError, MetricsError
from .gate_config import GateConfig, load_gate_config
from .gate_evaluation import GateResult, evaluate, report
from .gate_metrics import MetricsSource, TrackMetrics

# tests/chart reads histogram_quantile from here, where it was before gate_metrics.py held it.
from .gate_metrics import histogram_quantile as histogram_quantile
from .gate_metrics_prometheus import PrometheusSource
from .gitrepo import GitRepo
from .rollback import flipped_since_promote, rollback
from .state import EnvState, Version, env_state
from .void_mark import DEFAULT_STREAM, VoidRequest, print_void_command, void_predictions

EXIT_PASS, EXIT_FAIL, EXIT_ERROR, EXIT_INCONCLUSIVE = 0, 1, 2, 3
# The verdict of each exit code, as `gate -o json` names it in `result`.
VERDICTS = {
    EXIT_PASS: "pass",
    EXIT_FAIL: "fail",
    EXIT_ERROR: "error",
    EXIT_INCONCLUSIVE: "inconclusive",
}


def tracks_for(root: Path, state: EnvState) -> dict[str, str]:
    """Which track is judged (candidate) against which (stable).

    In blueGreen the candidate is the idle colour before the flip and the active colour after
    it (then judged against the previous version, still running on the idle colour).
    """
    candidate = state.candidate()
    if candidate is None:
        raise GateConfigError(
            f"nothing to gate in {state.name}: no release is in flight "
            f"(strategy {state.strategy}, slots in use: "
            f"{', '.join(f'{k}={v}' for k, v in state.slots_in_use().items()) or 'none'})"
        )
    stable_slot, _ = state.served()
    if state.strategy == "blueGreen" and flipped_since_promote(GitRepo(root), state.name):
        return {"stable": state.idle_colour, "candidate": state.active_colour}
    return {"stable": stable_slot, "candidate": candidate[0]}


@dataclass
class Judgement:
    """What the gate found for the release in flight of one environment."""

    env: Environment
    state: EnvState
    tracks: dict[str, str]
    result: GateResult

    @property
    def candidate_version(self) -> Version:
        return self.state.slots[self.tracks["candidate"]]

    def to_json(self) -> dict[str, Any]:
        """What was judged: the keys of the gate's JSON document after env, result, reason
        and rollback (`advance -o json` carries it as its `gate`)."""
        result = self.result
        return {
            "candidate": result.candidate.track,
            "candidateVersion": str(self.candidate_version),
            "stable": result.stable.track,
            "candidateRequests": result.candidate.requests,
            "stableRequests": result.stable.requests,
            "inconclusive": result.inconclusive,
            "passed": result.passed,
            "checks": [
                {
                    "name": c.name,
                    "value": c.value,
                    "limit": c.limit,
                    "passed": c.passed,
                    "detail": c.detail,
                }
                for c in result.checks
            ],
        }

    def failure_reason(self) -> str:
        checks = "; ".join(
            f"{c.name} {'n/a' if c.value is None else f'{c.value:.4g}'} beyond {c.limit:g}"
            for c in self.result.failures
        )
        return f"gate failed for {self.candidate_version} ({self.tracks['candidate']}): {checks}"


def metrics_source(cfg: GateConfig, env: Environment) -> PrometheusSource:
    if not cfg.prometheus_url:
        raise GateConfigError(
            "no metrics source: pass --stable-url and --candidate-url (the service's "
            "/metrics), --prometheus URL, or set gate.prometheus.url in "
            f"{env.rel(env.policy_path)}"
        )
    return PrometheusSource(cfg.prometheus_url)


def judge(
    root: Path,
    env: Environment,
    cfg: GateConfig,
    source: MetricsSource | None,
) -> Judgement:
    state = env_state(env)
    tracks = tracks_for(root, state)
    source = source or metrics_source(cfg, env)
    metrics = source.collect(cfg, tracks)
    _check_versions(state, tracks, metrics, source.hint)
    result = evaluate(env.name, cfg, metrics["stable"], metrics["candidate"])
    return Judgement(env, state, tracks, result)


def roll_back_failed(
    ctx: Context,
    judgement: Judgement,
    void_log: tuple[str | None, str] = (None, DEFAULT_STREAM),
) -> str:
    """Commit the rollback of the whole release in flight, then void the candidate's logged
    predictions (or print how); returns the rollback commit."""
    env, reason = judgement.env, judgement.failure_reason()
    try:
        sha = rollback(replace(ctx, dry_run=False), env.name, release=True, reason=reason)
    except GitopsError as exc:
        raise GitopsError(
            f"the gate failed, but the rollback commit could not be made: {exc}"
        ) from exc
    assert sha is not None
    void = _void_request(judgement, void_log)
    if void is not None:
        try:
            void_predictions(void, ctx.out)
        except GitopsError as exc:
            raise GitopsError(f"the gate failed and {env.name} is rolled back, but {exc}") from exc
    return sha


def _void_request(judgement: Judgement, void_log: tuple[str | None, str]) -> VoidRequest | None:
    model_version = judgement.candidate_version.model_version
    if not model_version:
        return None
    reason = f"nepse-gitops gate {judgement.env.name}: {judgement.failure_reason()}"
    return VoidRequest(model_version, reason, *void_log)


def run_gate(
    ctx: Context,
    env_name: str,
    source: MetricsSource | None,
    rollback_on_fail: bool,
    void_log: tuple[str | None, str] = (None, DEFAULT_STREAM),
) -> GateRun:
    """`void_log`: the prediction log's Redis URL (None: print the mark) and stream."""
    out = ctx.out
    env = load_environment(ctx.root, env_name)
    judgement = judge(ctx.root, env, load_gate_config(env), source)
    result = judgement.result
    report(result, out)
    if result.inconclusive:
        return GateRun(EXIT_INCONCLUSIVE, judgement)
    if result.passed:
        out(f"gate passed for {env.name}")
        return GateRun(EXIT_PASS, judgement)
    out(judgement.failure_reason())
    if not rollback_on_fail:
        void = _void_request(judgement, void_log)
        if void is not None:
            out("if it is rolled back:")
            print_void_command(void, out)
        return GateRun(EXIT_FAIL, judgement)
    sha = roll_back_failed(ctx, judgement, void_log)
    return GateRun(EXIT_FAIL, judgement, sha)


@dataclass
class GateRun:
    exit_code: int
    judgement: Judgement
    rollback: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.exit_code == EXIT_FAIL:
            reason: str | None = self.judgement.failure_reason()
        else:
            reason = self.judgement.result.inconclusive
        return gate_document(
            self.judgement.env.name, VERDICTS[self.exit_code], reason, self.judgement, self.rollback
        )


# The verdict of each exit code, as `gate -o json` names it in `result`.
VERDICTS = {
    EXIT_PASS: "pass",
    EXIT_FAIL: "fail",
    EXIT_ERROR: "error",
    EXIT_INCONCLUSIVE: "inconclusive",
}


def gate_document(
    env: str,
    result: str,
    reason: str | None,
    judgement: Judgement | None = None,
    rollback: str | None = None,
) -> dict[str, Any]:
    """`gate -o json`: the same keys whatever the verdict, so CI can read any of them.

    env, result (pass | fail | inconclusive | error), reason (why it failed, was
    inconclusive or could not judge; null on a pass), rollback (the rollback commit or null),
    candidate and stable (the tracks), candidateVersion, candidateRequests, stableRequests,
    inconclusive, passed, and checks: [{name, value, limit, passed, detail}]. When the gate
    could not judge (error), what it would have judged is null and checks is empty.
    """
    judged: dict[str, Any] = {
        "candidate": None,
        "candidateVersion": None,
        "stable": None,
        "candidateRequests": None,
        "stableRequests": None,
        "inconclusive": None,
        "passed": False,
        "checks": [],
    }
    if judgement is not None:
        judged = judgement.to_json()
    return {"env": env, "result": result, "reason": reason, "rollback": rollback, **judged}


def _check_versions(
    state: EnvState, tracks: dict[str, str], metrics: dict[str, TrackMetrics], hint: str
) -> None:
    """Refuse to judge when no endpoint of a track serves the model its slot pins."""
    for role, slot in tracks.items():
        seen = metrics[role].model_versions
        expected = state.slots[slot].model_version
        if seen and expected and expected not in seen:
            raise MetricsError(
                f"the {role} metrics come from model {', '.join(sorted(seen))}, but "
                f"{state.name}'s {slot} slot pins {expected}; {hint}"
            )
