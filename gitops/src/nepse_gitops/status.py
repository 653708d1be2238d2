"""`nepse-gitops status`: per environment, what it serves, the release's step, since when, and
the next move with the reason it has not happened yet. Read from git alone (no metrics)."""

from __future__ import annotations

import time
from typing import Any

from .advance import iso
from .context import Printer
from .durations import format_duration
from .environments import Environment
from .gitrepo import GitRepo
from .release_progress import progress
from .state import env_state


def status_of(repo: GitRepo, env: Environment, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    state = env_state(env)
    prog = progress(repo, env, state)
    slot, served = state.served()
    candidate = state.candidate()
    if not prog.in_flight:
        why = "no release in flight"
    elif prog.due is not None and now < prog.due:
        why = f"the step holds until {iso(prog.due)} ({format_duration(prog.due - now)} left)"
    elif prog.judged:
        why = "due now: the next `advance` asks the gate"
    else:
        why = "due now: the next `advance` makes it"
    summary = f"{env.name}: {state.strategy}, serves {served} ({slot})"
    if candidate:
        summary += f", candidate {candidate[0]}={candidate[1]}"
        if state.strategy == "canary":
            summary += f" at weight {state.canary_weight}"
        if state.strategy == "shadow":
            summary += f" mirrored {state.shadow_percent:g}%"
    return {
        "env": env.name,
        "summary": summary,
        "strategy": state.strategy,
        "serves": {"slot": slot, "version": str(served)},
        "candidate": ({"slot": candidate[0], "version": str(candidate[1])} if candidate else None),
        "phase": prog.phase,
        "step": prog.step,
        "since": iso(prog.since),
        "due": iso(prog.due) if prog.in_flight else None,
        "next": {"move": prog.next_move, "detail": prog.next_detail, "why": why},
    }


def print_status(report: dict[str, Any], out: Printer) -> None:
    out(report["summary"])
    nxt = report["next"]
    if nxt["move"] == "none":
        return
    out(f"  step:  {report['step']}")
    if report["since"]:
        out(f"  since: {report['since']}")
    out(f"  next:  {nxt['detail']}")
    out(f"  why:   {nxt['why']}")
