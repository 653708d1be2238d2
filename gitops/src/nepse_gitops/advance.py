"""`nepse-gitops advance --env ENV`: take the release in flight one step along its plan.

Each run reads where the release stands from git (release_progress.py) and, once the step's
pause is over, the candidate's metrics (the gate), and does exactly one of:

- nothing: no release in flight, the pause is not over, the candidate has answered too few
  requests to judge (inconclusive), or Prometheus holds no series of a candidate pod yet in a
  step younger than the gate's window (its pods may be starting; after the window, an error);
- one commit to the next step: the next canary weight, the flip, `shadow stop` of a shadow
  that passed (the next run promotes its version), or that promotion;
- `finish` after the last step;
- the rollback of the whole release, then a quarantine commit for the failed version, both
  with the gate's reason (and the candidate's logged predictions voided with --redis-url).

With rollout.engine=argoRollouts the controller walks the steps instead, and each run only
keeps git the record of what it decided (rollout_engine.py).

Safe to run concurrently: a second run in the same checkout waits for no one (it reports
`busy`), and with --push a run that finds the remote branch moved, before or at the push,
leaves everything as it was (`moved`). `--dry-run` says what it would do; `-o json` prints
one JSON object for CI.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import gate as gate_mod
from .context import Context, Delivery, Printer
from .durations import format_duration, parse_duration, promql_duration
from .environments import Environment, load_environment
from .errors import CandidateUnscraped, GitopsError
from .gate_config import GateConfig, load_gate_config
from .gate_evaluation import report
from .gate_metrics_prometheus import PrometheusSource
from .gitrepo import Annotation, GitRepo
from .promote import PromoteRequest, promote
from .release_failure import quarantine_target, undo_failed_release
from .release_progress import PROMOTE_NEXT, Progress, progress
from .rollout_engine import Kube, follow
from .state import env_state
from .steps import finish, flip, set_weight, shadow_stop
from .void_mark import DEFAULT_STREAM

EXIT_OK, EXIT_ROLLED_BACK, EXIT_ERROR = 0, 1, 2

RESULTS = ("idle", "waiting", "advanced", "finished", "rolled-back", "moved", "busy")


@dataclass
class AdvanceRequest:
    env: str
    prometheus: str | None = None
    push: bool = False
    remote: str = "origin"
    redis_url: str | None = None
    prediction_stream: str = DEFAULT_STREAM
    kube: Kube = field(default_factory=Kube)


@dataclass
class Outcome:
    """What one run found and did; `-o json` prints it as it is."""

    env: str
    result: str  # one of RESULTS
    phase: str
    step: str
    reason: str
    action: str = "none"  # the move made (or, with --dry-run, that would be made)
    since: str | None = None
    due: str | None = None
    commits: list[str] = field(default_factory=list)
    gate: dict[str, Any] | None = None
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        return EXIT_ROLLED_BACK if self.result == "rolled-back" else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def iso(seconds: int | float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def advance_lock(repo: GitRepo) -> Iterator[bool]:
    """An exclusive lock per checkout; yields False at once when another run holds it."""
    git_dir = Path(repo.run("rev-parse", "--absolute-git-dir").strip())
    with (git_dir / "nepse-advance.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def advance(ctx: Context, req: AdvanceRequest) -> Outcome:
    """One run: see the module's docstring. ``req.push`` pushes the branch this checkout is on
    (fast-forward only); the commands it runs commit on that branch."""
    repo, out = ctx.repo, ctx.out
    env = load_environment(ctx.root, req.env)
    with advance_lock(repo) as locked:
        if not locked:
            return Outcome(env.name, "busy", "", "", "another `advance` runs in this checkout")
        start = repo.head()
        branch = repo.current_branch()
        if req.push:
            if not branch:
                raise GitopsError("cannot push from a detached HEAD: check out the branch first")
            tip = repo.fetch(req.remote, branch)
            if tip != start:
                return Outcome(
                    env.name,
                    "moved",
                    "",
                    "",
                    f"{req.remote}/{branch} is at {tip[:12]}, this checkout at {start[:12]}: "
                    "nothing done; the next run starts from the new tip",
                )
        if not ctx.dry_run:
            repo.require_clean(f"advance {env.name}")
        here = replace(ctx, delivery=Delivery(), annotation=None)
        outcome = _decide_and_act(here, repo, env, req)
        if outcome.commits and req.push and not ctx.dry_run:
            assert branch is not None
            if not repo.push_fast_forward(req.remote, branch):
                repo.run("reset", "--quiet", "--hard", start)
                return Outcome(
                    env.name,
                    "moved",
                    outcome.phase,
                    outcome.step,
                    f"{req.remote}/{branch} moved while this run decided; its commits are "
                    "dropped and nothing is changed",
                )
            out(f"pushed {branch} to {req.remote}")
        return outcome


def _decide_and_act(ctx: Context, repo: GitRepo, env: Environment, req: AdvanceRequest) -> Outcome:
    if env_state(env).engine == "argoRollouts":
        decision = follow(ctx, env, req.kube)
        return Outcome(
            env.name,
            decision.result,
            "argoRollouts",
            "",
            decision.reason,
            action=decision.action,
            commits=decision.commits,
            dry_run=ctx.dry_run,
        )
    prog = progress(repo, env)
    base: dict[str, Any] = {
        "env": env.name,
        "phase": prog.phase,
        "step": prog.step,
        "since": iso(prog.since),
        "due": iso(prog.due),
        "dry_run": ctx.dry_run,
    }
    if not prog.in_flight:
        return Outcome(result="idle", reason=prog.next_detail, **base)
    now = time.time()
    if prog.due is not None and now < prog.due:
        left = format_duration(prog.due - now)
        return Outcome(
            result="waiting",
            reason=f"the step holds until {iso(prog.due)} ({left} left); then: {prog.next_detail}",
            **base,
        )
    judgement = None
    if prog.next_move != "promote":
        cfg = load_gate_config(env, prog.gate_overrides, prog.gate_where)
        try:
            judgement = _judge(ctx, env, cfg, req, prog, now)
        except CandidateUnscraped as exc:
            young = _young_step(cfg, prog, now)
            if young is None:
                raise
            return Outcome(result="waiting", reason=f"{young}: {exc}", **base)
        report(judgement.result, ctx.out)
        base["gate"] = judgement.to_json()
        result = judgement.result
        if not result.inconclusive and not result.passed:
            return _roll_back(ctx, judgement, req, base)
        if result.inconclusive and prog.judged:
            return Outcome(result="waiting", reason=f"inconclusive: {result.inconclusive}", **base)
    if judgement is None:
        verdict = "passed before the shadow was stopped"
    elif judgement.result.passed:
        verdict = "passed"
    else:
        verdict = "had too little traffic to judge, which this step does not need"
    note = Annotation(
        f"nepse-gitops advance: {prog.step}; the gate {verdict}.",
        [
            ("Nepse-Advance", prog.next_move),
            ("Nepse-Gate", "passed" if judgement and judgement.result.passed else "not needed"),
        ],
    )
    landed = _move(replace(ctx, annotation=note), env, prog)
    done = "finished" if prog.next_move == "finish" else "advanced"
    return Outcome(
        result=done,
        action=prog.next_move,
        reason=prog.next_detail,
        commits=[landed] if landed else [],
        **base,
    )


def _young_step(cfg: GateConfig, prog: Progress, now: float) -> str | None:
    """Why a candidate not scraped yet is no error: its step is younger than the gate's window
    (its pods may be starting, or their first scrape still due). None once the window is over."""
    if prog.since is None:
        return None
    window = parse_duration(cfg.prometheus_window, "window")
    age = now - prog.since
    if age >= window:
        return None
    return (
        f"the step is {format_duration(age)} old; a candidate still not scraped after the "
        f"gate's window ({format_duration(window)}) is an error"
    )


def _judge(
    ctx: Context,
    env: Environment,
    cfg: GateConfig,
    req: AdvanceRequest,
    prog: Progress,
    now: float,
) -> gate_mod.Judgement:
    if prog.since is not None:
        # Judge the step's own traffic: no further back than when it was reached.
        window = min(parse_duration(cfg.prometheus_window, "window"), now - prog.since)
        cfg = replace(cfg, prometheus_window=promql_duration(window))
    url = req.prometheus or cfg.prometheus_url
    source = PrometheusSource(url) if url else None
    return gate_mod.judge(ctx.root, env, cfg, source)


def _move(ctx: Context, env: Environment, prog: Progress) -> str | None:
    """Make the step's move; ``ctx.annotation`` says why, and gains the move's own trailers."""
    note = ctx.annotation
    assert note is not None
    if prog.next_move == "set-weight":
        assert prog.weight is not None and prog.next_step is not None
        note.trailers.append(("Nepse-Step", prog.next_step))
        landed = set_weight(ctx, env.name, prog.weight)
    elif prog.next_move == "flip":
        landed = flip(ctx, env.name)
    elif prog.next_move == "finish":
        landed = finish(ctx, env.name)
    elif prog.next_move == "shadow-stop":
        shadow = env_state(env).slots["shadow"]
        note.trailers += [(PROMOTE_NEXT, "promote"), ("Nepse-Model-Sha256", shadow.model_sha256)]
        landed = shadow_stop(ctx, env.name)
    elif prog.next_move == "promote":
        assert prog.version is not None
        v = prog.version
        request = PromoteRequest(env.name, None, v.image_tag, v.model_version, v.model_sha256)
        landed = promote(ctx, request)
    else:
        raise AssertionError(prog.next_move)
    return landed.sha


def _roll_back(
    ctx: Context, judgement: gate_mod.Judgement, req: AdvanceRequest, base: dict[str, Any]
) -> Outcome:
    reason = judgement.failure_reason()
    version = judgement.candidate_version
    stable = judgement.state.slots[judgement.tracks["stable"]]
    target = quarantine_target(version, stable)
    void_log = (req.redis_url, req.prediction_stream)
    commits, reason = undo_failed_release(
        ctx,
        judgement.env.name,
        reason,
        target,
        f"the gate failed in {judgement.env.name}",
        lambda here: gate_mod.roll_back_failed(here, judgement, void_log),
    )
    return Outcome(result="rolled-back", action="rollback", reason=reason, commits=commits, **base)


def describe(outcome: Outcome, out: Printer) -> None:
    out(f"advance {outcome.env}: {outcome.result}: {outcome.reason}")
    if outcome.step:
        since = f" since {outcome.since}" if outcome.since else ""
        out(f"  step: {outcome.step}{since}")
    for sha in outcome.commits:
        out(f"  commit {sha[:12]}")
