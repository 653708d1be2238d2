"""Command line: `nepse-gitops <command>`. Run `nepse-gitops <command> --help` for details.

Exit codes: 0 done, 1 refused or failed (the message says why; nothing was changed, except
after a quarantine commit whose void mark failed: the message says the commit stands),
2 usage error. `gate` has its own: 0 pass, 1 fail (rolled back), 2 error, 3 inconclusive;
so has `advance`: 0 waited or stepped on as planned, 1 rolled back, 2 error.

Each command is a function that adds its flags and a `run(ctx, args)` that does it; the
parser dispatches to it with `set_defaults(func=...)`. What every command shares (repository,
log, delivery of the commit, --dry-run, helm) is one `Context` built before the run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .advance import EXIT_ERROR as EXIT_ADVANCE_ERROR
from .advance import AdvanceRequest, advance, describe
from .context import Context, Delivery, Printer
from .environments import list_environments, load_environment
from .errors import GateConfigError, GitopsError
from .gate import EXIT_ERROR as EXIT_GATE_ERROR
from .gate import gate_document, run_gate
from .gate_config import parse_window
from .gate_metrics import MetricsSource
from .gate_metrics_prometheus import PrometheusSource
from .gate_metrics_scrape import ScrapeSource
from .gitrepo import GitRepo
from .init import InitRequest, init
from .promote import PromoteRequest, default_branch, plan, promote
from .quarantine import quarantine
from .render import render_and_validate
from .rollback import rollback
from .rollout_engine import Kube
from .state import percent_value
from .status import print_status, status_of
from .steps import finish, flip, set_weight, shadow_start, shadow_stop
from .void_mark import DEFAULT_STREAM, VoidRequest, print_void_command, void_predictions

Run = Callable[[Context, argparse.Namespace], int]
Subparsers = Any  # argparse's _SubParsersAction, which it does not export


def _out(line: str) -> None:
    print(line, flush=True)


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _command(
    sub: Subparsers, name: str, summary: str, run: Run | None = None, details: str = ""
) -> argparse.ArgumentParser:
    """A subcommand whose one-line help in the command list is the first sentence of its
    description, so the two cannot disagree."""
    description = summary[0].upper() + summary[1:] + "."
    if details:
        description += " " + details
    p: argparse.ArgumentParser = sub.add_parser(name, help=summary, description=description)
    if run is not None:
        p.set_defaults(func=run)
    return p


# -- shared flags -----------------------------------------------------------------------------


def _delivery_options(p: argparse.ArgumentParser, new_branch_default: bool = False) -> None:
    g = p.add_argument_group("where the commit goes")
    if new_branch_default:
        g.add_argument("--branch", help="branch to create (default: promote/<env>/<tag>-<model>)")
        g.add_argument(
            "--no-branch",
            action="store_true",
            help="commit on the current branch instead of creating one",
        )
    else:
        g.add_argument(
            "--branch",
            help="create this branch for the commit (default: commit on the current branch)",
        )
    g.add_argument("--push", action="store_true", help="push the branch to --remote")
    g.add_argument(
        "--pr", action="store_true", help="push and open a pull request with the GitHub CLI (gh)"
    )
    g.add_argument("--remote", default="origin", help="remote to push to (default: origin)")
    g.add_argument("--base", help="pull request base branch (default: the starting branch)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the diff and the validation result; change nothing",
    )
    p.set_defaults(delivers=True)


def _delivery(args: argparse.Namespace) -> Delivery:
    if not getattr(args, "delivers", False):
        return Delivery()
    return Delivery(
        branch=args.branch, push=args.push, pull_request=args.pr, remote=args.remote, base=args.base
    )


def _version_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image-tag", help="image tag (with --model-version: a version by hand)")
    p.add_argument("--model-version", help="model version, e.g. 2026.11.26-a1b2c3d")
    p.add_argument("--model-sha256", help="sha256 of the model's checksums.sha256 manifest")


def _promote_request(env: str, args: argparse.Namespace) -> PromoteRequest:
    return PromoteRequest(env, args.from_env, args.image_tag, args.model_version, args.model_sha256)


def _void_log_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("voiding the pulled model version's logged predictions")
    g.add_argument(
        "--redis-url",
        help="the prediction log's Redis: run `nepse-predictor predictions mark` there "
        "(default: print that command)",
    )
    g.add_argument(
        "--prediction-stream",
        default=DEFAULT_STREAM,
        help=f"the prediction log's stream (default {DEFAULT_STREAM})",
    )


def _output_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="json: one JSON document on stdout (the log goes to stderr)",
    )


def _env_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", required=True, help="environment")


# -- the commands -----------------------------------------------------------------------------


def _add_promote(sub: Subparsers) -> None:
    p = _command(sub, "promote", "copy the version one environment serves into another", _promote)
    p.add_argument("--to", dest="to_env", required=True, help="target environment")
    p.add_argument("--from", dest="from_env", help="source environment (its served version)")
    _version_options(p)
    _delivery_options(p, new_branch_default=True)


def _promote(ctx: Context, args: argparse.Namespace) -> int:
    req = _promote_request(args.to_env, args)
    branch = None
    if not args.no_branch:
        branch = args.branch
        if branch is None:
            _, version, *_ = plan(ctx.root, req)
            branch = default_branch(args.to_env, version)
    promote(replace(ctx, delivery=replace(ctx.delivery, branch=branch or None)), req)
    return 0


def _add_set_weight(sub: Subparsers) -> None:
    p = _command(sub, "set-weight", "canary: set the share of traffic the canary gets", _set_weight)
    _env_option(p)
    p.add_argument("--weight", type=int, required=True, help="0-100")
    _delivery_options(p)


def _set_weight(ctx: Context, args: argparse.Namespace) -> int:
    set_weight(ctx, args.env, args.weight)
    return 0


def _add_env_step(
    sub: Subparsers, name: str, summary: str, step: Callable[[Context, str], object]
) -> None:
    """A release step that needs only the environment: flip, finish, shadow stop."""

    def run(ctx: Context, args: argparse.Namespace) -> int:
        step(ctx, args.env)
        return 0

    p = _command(sub, name, summary, run)
    _env_option(p)
    _delivery_options(p)


def _add_flip(sub: Subparsers) -> None:
    _add_env_step(sub, "flip", "blueGreen: make the idle colour the active one", flip)


def _add_finish(sub: Subparsers) -> None:
    _add_env_step(sub, "finish", "the candidate becomes stable; the release ends", finish)


def _add_shadow(sub: Subparsers) -> None:
    p = _command(sub, "shadow", "start or stop mirroring traffic to a version")
    shadow_sub = p.add_subparsers(dest="shadow_command", required=True, metavar="start|stop")
    s = _command(
        shadow_sub, "start", "mirror traffic to a version (never answers users)", _shadow_start
    )
    _env_option(s)
    s.add_argument("--from", dest="from_env", help="shadow the version this environment serves")
    _version_options(s)
    s.add_argument(
        "--percent", type=percent_value, default=100, help="share of requests mirrored (0-100]"
    )
    _delivery_options(s)
    _add_env_step(shadow_sub, "stop", "end the shadow phase", shadow_stop)


def _shadow_start(ctx: Context, args: argparse.Namespace) -> int:
    shadow_start(ctx, args.env, args.percent, _promote_request(args.env, args))
    return 0


def _add_rollback(sub: Subparsers) -> None:
    p = _command(
        sub, "rollback", "git revert the last promotion or step of an environment", _rollback
    )
    _env_option(p)
    p.add_argument(
        "--release",
        action="store_true",
        help="undo the whole release in flight (back to its promotion) in one commit",
    )
    p.add_argument("--reason", help="why; recorded in the commit message")
    _delivery_options(p)


def _rollback(ctx: Context, args: argparse.Namespace) -> int:
    rollback(ctx, args.env, args.release, args.reason)
    return 0


def _add_quarantine(sub: Subparsers) -> None:
    p = _command(
        sub, "quarantine", "add a version to the list the chart refuses to render", _quarantine
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--image-tag")
    g.add_argument("--model-version")
    p.add_argument("--reason", help="why; kept as a comment beside the entry")
    _void_log_options(p)
    _delivery_options(p)


def _quarantine(ctx: Context, args: argparse.Namespace) -> int:
    quarantine(ctx, args.image_tag, args.model_version, args.reason)
    out = ctx.out
    if args.image_tag:
        out(
            "predictions are logged by model version: void those this image served with "
            "`nepse-predictor predictions mark --model-version V --reason TEXT`"
        )
        return 0
    reason = f"quarantined: {args.reason}" if args.reason else "quarantined"
    request = VoidRequest(args.model_version, reason, args.redis_url, args.prediction_stream)
    if ctx.dry_run:
        out("dry run: nothing is marked; after the quarantine commit this would follow:")
        print_void_command(request, out)
        return 0
    try:
        void_predictions(request, out)
    except GitopsError as exc:
        raise GitopsError(f"the quarantine is committed, but {exc}") from exc
    return 0


def _add_gate(sub: Subparsers) -> None:
    p = _command(
        sub,
        "gate",
        "compare candidate and stable metrics; roll back on failure",
        _gate,
        details="Exit codes: 0 pass, 1 fail (rolled back unless --no-rollback), 2 error, "
        "3 inconclusive.",
    )
    _env_option(p)
    p.add_argument(
        "--stable-url",
        action="append",
        default=[],
        help="a stable pod's /metrics URL (repeat for several pods)",
    )
    p.add_argument(
        "--candidate-url",
        action="append",
        default=[],
        help="a candidate pod's /metrics URL (repeat for several pods)",
    )
    p.add_argument("--prometheus", help="Prometheus base URL (instead of /metrics URLs)")
    p.add_argument(
        "--window",
        default="0",
        help="with /metrics URLs: scrape twice this far apart and judge the "
        "difference (e.g. 60s); 0 judges the counters since the processes started",
    )
    p.add_argument(
        "--no-rollback",
        action="store_true",
        help="report a failure without committing the rollback",
    )
    _output_option(p)
    _void_log_options(p)
    _delivery_options(p)


def _gate_source(args: argparse.Namespace) -> MetricsSource | None:
    if args.stable_url or args.candidate_url:
        if not (args.stable_url and args.candidate_url):
            raise GateConfigError(
                "--stable-url and --candidate-url go together (one or more of each)"
            )
        if args.prometheus:
            raise GateConfigError("choose /metrics URLs or --prometheus, not both")
        return ScrapeSource(
            {"stable": args.stable_url, "candidate": args.candidate_url},
            window_seconds=parse_window(args.window),
        )
    if args.prometheus:
        return PrometheusSource(args.prometheus)
    return None


def _gate(ctx: Context, args: argparse.Namespace) -> int:
    try:
        run = run_gate(
            ctx,
            args.env,
            _gate_source(args),
            not (args.no_rollback or ctx.dry_run),
            void_log=(args.redis_url, args.prediction_stream),
        )
    except GitopsError as exc:
        if args.output == "json":
            _out(json.dumps(gate_document(args.env, "error", str(exc)), indent=2))
        _err(f"nepse-gitops gate: error: {exc}")
        return EXIT_GATE_ERROR
    if args.output == "json":
        _out(json.dumps(run.to_json(), indent=2))
    return run.exit_code


def _add_init(sub: Subparsers) -> None:
    p = _command(
        sub, "init", "point a copy of this repository at its own git URL (one commit)", _init
    )
    p.add_argument("--repo-url", required=True, help="the git URL Argo CD clones this copy from")
    p.add_argument("--image-repository", help="every environment's image.repository")
    p.add_argument("--model-url-base", help="every environment's model.url.base")
    _delivery_options(p)


def _init(ctx: Context, args: argparse.Namespace) -> int:
    init(ctx, InitRequest(args.repo_url, args.image_repository, args.model_url_base))
    return 0


def _add_render(sub: Subparsers) -> None:
    p = _command(sub, "render", "render environments with helm and validate them", _render)
    p.add_argument("--env", action="append", help="environment (default: all)")
    p.add_argument("--quiet", action="store_true", help="validate only; print no manifests")


def _render(ctx: Context, args: argparse.Namespace) -> int:
    for name in args.env or list_environments(ctx.root):
        rendered = render_and_validate(load_environment(ctx.root, name), helm=ctx.helm)
        if not args.quiet:
            ctx.out(f"# environment {name}: {' '.join(rendered.command[1:])}")
            ctx.out(rendered.text.rstrip("\n"))
        else:
            ctx.out(f"{name}: {len(rendered.docs)} manifests render and validate")
    return 0


def _add_advance(sub: Subparsers) -> None:
    p = _command(
        sub,
        "advance",
        "take the release in flight one step along the plan in policy.yaml (or roll it back)",
        _advance,
        details="Exit codes: 0 waited or stepped on as planned, 1 rolled back, 2 error.",
    )
    _env_option(p)
    p.add_argument("--prometheus", help="Prometheus base URL (default: gate.prometheus.url)")
    p.add_argument("--push", action="store_true", help="push the commit to --remote")
    p.add_argument("--remote", default="origin", help="remote to push to (default: origin)")
    p.add_argument("--dry-run", action="store_true", help="say what would be done; change nothing")
    kube = p.add_argument_group(
        "the cluster (rollout.engine=argoRollouts only: the run reads the Rollout there)"
    )
    kube.add_argument("--kubectl", default="kubectl", help="kubectl binary (default: kubectl)")
    kube.add_argument("--kubeconfig", help="kubeconfig file (default: kubectl's own)")
    kube.add_argument("--context", help="kubeconfig context (default: the current one)")
    _output_option(p)
    _void_log_options(p)


def _advance(ctx: Context, args: argparse.Namespace) -> int:
    request = AdvanceRequest(
        args.env,
        prometheus=args.prometheus,
        push=args.push,
        remote=args.remote,
        redis_url=args.redis_url,
        prediction_stream=args.prediction_stream,
        kube=Kube(args.kubectl, args.kubeconfig, args.context),
    )
    try:
        outcome = advance(ctx, request)
    except GitopsError as exc:
        if args.output == "json":
            _out(json.dumps({"env": args.env, "result": "error", "reason": str(exc)}))
        _err(f"nepse-gitops advance: error: {exc}")
        return EXIT_ADVANCE_ERROR
    if args.output == "json":
        _out(json.dumps(outcome.to_json(), indent=2))
    else:
        describe(outcome, _out)
    return outcome.exit_code


def _add_status(sub: Subparsers) -> None:
    p = _command(sub, "status", "show each environment's release: step, since, next move", _status)
    p.add_argument("--env", action="append", help="environment (default: all)")
    _output_option(p)


def _status(ctx: Context, args: argparse.Namespace) -> int:
    repo = GitRepo(ctx.root)
    reports = [
        status_of(repo, load_environment(ctx.root, name))
        for name in args.env or list_environments(ctx.root)
    ]
    if args.output == "json":
        _out(json.dumps(reports, indent=2))
    else:
        for report in reports:
            print_status(report, _out)
    return 0


COMMANDS = (
    _add_promote,
    _add_set_weight,
    _add_flip,
    _add_shadow,
    _add_finish,
    _add_rollback,
    _add_quarantine,
    _add_gate,
    _add_init,
    _add_render,
    _add_advance,
    _add_status,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nepse-gitops",
        description="Promote, step, roll back and gate nepse-predictor releases through git.",
    )
    parser.add_argument(
        "--repo",
        type=Path,
        help="repository root (default: the git repository containing the current directory)",
    )
    parser.add_argument(
        "--helm", help="helm binary (default: $NEPSE_HELM, .tools/bin/helm, or helm on PATH)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def _context(args: argparse.Namespace) -> Context:
    start = args.repo.resolve() if args.repo else Path.cwd()
    # With -o json the document alone goes to stdout; the log goes to stderr.
    log: Printer = _err if getattr(args, "output", "text") == "json" else _out
    return Context(
        root=GitRepo.discover(start).root,
        out=log,
        delivery=_delivery(args),
        dry_run=getattr(args, "dry_run", False),
        helm=args.helm,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Run = args.func
    try:
        return run(_context(args), args)
    except GitopsError as exc:
        _err(f"nepse-gitops {args.command}: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
