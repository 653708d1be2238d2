"""Command line: `nepse-gitops <command>`. Run `nepse-gitops <command> --help` for details.

Exit codes: 0 done, 1 refused or failed (the message says why; nothing was changed, except
after a quarantine commit whose void mark failed: the message says the commit stands),
2 usage error. `gate` has its own: 0 pass, 1 fail (rolled back), 2 error, 3 inconclusive;
so has `advance`: 0 waited or stepped on as planned, 1 rolled back, 2 error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import gate as gate_mod
from .advance import EXIT_ERROR as EXIT_ADVANCE_ERROR
from .advance import AdvanceRequest, advance, describe
from .change import Delivery
from .environments import list_environments, load_environment
from .errors import GateConfigError, GitopsError
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


def _out(line: str) -> None:
    print(line, flush=True)


def _delivery_options(p: argparse.ArgumentParser, new_branch_default: bool) -> None:
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


def _delivery(args: argparse.Namespace, branch: str | None = None) -> Delivery:
    return Delivery(
        branch=branch if branch is not None else getattr(args, "branch", None),
        push=args.push,
        pull_request=args.pr,
        remote=args.remote,
        base=args.base,
    )


def _version_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image-tag", help="image tag (with --model-version: a version by hand)")
    p.add_argument("--model-version", help="model version, e.g. 2026.11.26-a1b2c3d")
    p.add_argument("--model-sha256", help="sha256 of the model's checksums.sha256 manifest")


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


def _void_after_quarantine(args: argparse.Namespace) -> None:
    if args.image_tag:
        _out(
            "predictions are logged by model version: void those this image served with "
            "`nepse-predictor predictions mark --model-version V --reason TEXT`"
        )
        return
    reason = f"quarantined: {args.reason}" if args.reason else "quarantined"
    request = VoidRequest(args.model_version, reason, args.redis_url, args.prediction_stream)
    if args.dry_run:
        _out("dry run: nothing is marked; after the quarantine commit this would follow:")
        print_void_command(request, _out)
        return
    try:
        void_predictions(request, _out)
    except GitopsError as exc:
        raise GitopsError(f"the quarantine is committed, but {exc}") from exc


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

    p = sub.add_parser("promote", help="copy the version one environment serves into another")
    p.add_argument("--to", dest="to_env", required=True, help="target environment")
    p.add_argument("--from", dest="from_env", help="source environment (its served version)")
    _version_options(p)
    _delivery_options(p, new_branch_default=True)

    p = sub.add_parser("set-weight", help="canary: set the share of traffic the canary gets")
    p.add_argument("--env", required=True)
    p.add_argument("--weight", type=int, required=True, help="0-100")
    _delivery_options(p, new_branch_default=False)

    p = sub.add_parser("flip", help="blueGreen: make the idle colour the active one")
    p.add_argument("--env", required=True)
    _delivery_options(p, new_branch_default=False)

    p = sub.add_parser("shadow", help="start or stop mirroring traffic to a version")
    shadow_sub = p.add_subparsers(dest="shadow_command", required=True, metavar="start|stop")
    s = shadow_sub.add_parser("start", help="mirror traffic to a version (never answers users)")
    s.add_argument("--env", required=True)
    s.add_argument("--from", dest="from_env", help="shadow the version this environment serves")
    _version_options(s)
    s.add_argument(
        "--percent", type=percent_value, default=100, help="share of requests mirrored (0-100]"
    )
    _delivery_options(s, new_branch_default=False)
    s = shadow_sub.add_parser("stop", help="end the shadow phase")
    s.add_argument("--env", required=True)
    _delivery_options(s, new_branch_default=False)

    p = sub.add_parser("finish", help="the candidate becomes stable; the release ends")
    p.add_argument("--env", required=True)
    _delivery_options(p, new_branch_default=False)

    p = sub.add_parser("rollback", help="git revert the last promotion or step of an environment")
    p.add_argument("--env", required=True)
    p.add_argument(
        "--release",
        action="store_true",
        help="undo the whole release in flight (back to its promotion) in one commit",
    )
    p.add_argument("--reason", help="why; recorded in the commit message")
    _delivery_options(p, new_branch_default=False)

    p = sub.add_parser("quarantine", help="add a version to the list the chart refuses to render")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--image-tag")
    g.add_argument("--model-version")
    p.add_argument("--reason", help="why; kept as a comment beside the entry")
    _void_log_options(p)
    _delivery_options(p, new_branch_default=False)

    p = sub.add_parser("gate", help="compare candidate and stable metrics; roll back on failure")
    p.add_argument("--env", required=True)
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
    _delivery_options(p, new_branch_default=False)

    p = sub.add_parser(
        "init", help="point a copy of this repository at its own git URL (one commit)"
    )
    p.add_argument("--repo-url", required=True, help="the git URL Argo CD clones this copy from")
    p.add_argument("--image-repository", help="every environment's image.repository")
    p.add_argument("--model-url-base", help="every environment's model.url.base")
    _delivery_options(p, new_branch_default=False)

    p = sub.add_parser("render", help="render environments with helm and validate them")
    p.add_argument("--env", action="append", help="environment (default: all)")
    p.add_argument("--quiet", action="store_true", help="validate only; print no manifests")

    p = sub.add_parser(
        "advance",
        help="take the release in flight one step along the plan in policy.yaml (or roll it back)",
    )
    p.add_argument("--env", required=True)
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

    p = sub.add_parser("status", help="show each environment's release: step, since, next move")
    p.add_argument("--env", action="append", help="environment (default: all)")
    _output_option(p)
    return parser


def _output_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="json: one JSON document on stdout (the log goes to stderr)",
    )


def _root(args: argparse.Namespace) -> Path:
    if args.repo:
        return GitRepo.discover(args.repo.resolve()).root
    return GitRepo.discover(Path.cwd()).root


def _run(args: argparse.Namespace) -> int:
    root = _root(args)
    helm = args.helm
    cmd = args.command
    if cmd == "promote":
        req = PromoteRequest(
            args.to_env, args.from_env, args.image_tag, args.model_version, args.model_sha256
        )
        branch = None
        if not args.no_branch:
            branch = args.branch
            if branch is None:
                _, version, *_ = plan(root, req)
                branch = default_branch(args.to_env, version)
        promote(root, req, _delivery(args, branch or None), args.dry_run, _out, helm=helm)
        return 0
    if cmd == "set-weight":
        set_weight(root, args.env, args.weight, _delivery(args), args.dry_run, _out, helm)
        return 0
    if cmd == "flip":
        flip(root, args.env, _delivery(args), args.dry_run, _out, helm)
        return 0
    if cmd == "shadow":
        if args.shadow_command == "start":
            req = PromoteRequest(
                args.env, args.from_env, args.image_tag, args.model_version, args.model_sha256
            )
            shadow_start(
                root, args.env, args.percent, req, _delivery(args), args.dry_run, _out, helm
            )
        else:
            shadow_stop(root, args.env, _delivery(args), args.dry_run, _out, helm)
        return 0
    if cmd == "finish":
        finish(root, args.env, _delivery(args), args.dry_run, _out, helm)
        return 0
    if cmd == "rollback":
        rollback(
            root, args.env, args.release, args.reason, _delivery(args), args.dry_run, _out, helm
        )
        return 0
    if cmd == "quarantine":
        quarantine(
            root,
            args.image_tag,
            args.model_version,
            args.reason,
            _delivery(args),
            args.dry_run,
            _out,
            helm,
        )
        _void_after_quarantine(args)
        return 0
    if cmd == "gate":
        return _gate(root, args)
    if cmd == "init":
        req = InitRequest(args.repo_url, args.image_repository, args.model_url_base)
        init(root, req, _delivery(args), args.dry_run, _out, helm)
        return 0
    if cmd == "render":
        names = args.env or list_environments(root)
        for name in names:
            rendered = render_and_validate(load_environment(root, name), helm=helm)
            if not args.quiet:
                _out(f"# environment {name}: {' '.join(rendered.command[1:])}")
                _out(rendered.text.rstrip("\n"))
            else:
                _out(f"{name}: {len(rendered.docs)} manifests render and validate")
        return 0
    if cmd == "advance":
        return _advance(root, args)
    if cmd == "status":
        return _status(root, args)
    raise AssertionError(cmd)


def _log_printer(args: argparse.Namespace):
    if args.output == "json":
        return lambda line: print(line, file=sys.stderr, flush=True)
    return _out


def _advance(root: Path, args: argparse.Namespace) -> int:
    request = AdvanceRequest(
        args.env,
        prometheus=args.prometheus,
        push=args.push,
        remote=args.remote,
        dry_run=args.dry_run,
        redis_url=args.redis_url,
        prediction_stream=args.prediction_stream,
        kube=Kube(args.kubectl, args.kubeconfig, args.context),
    )
    log = _log_printer(args)
    try:
        outcome = advance(root, request, log, helm=args.helm)
    except GitopsError as exc:
        if args.output == "json":
            _out(json.dumps({"env": args.env, "result": "error", "reason": str(exc)}))
        print(f"nepse-gitops advance: error: {exc}", file=sys.stderr)
        return EXIT_ADVANCE_ERROR
    if args.output == "json":
        _out(json.dumps(outcome.to_json(), indent=2))
    else:
        describe(outcome, _out)
    return outcome.exit_code


def _status(root: Path, args: argparse.Namespace) -> int:
    repo = GitRepo(root)
    reports = [
        status_of(repo, load_environment(root, name))
        for name in args.env or list_environments(root)
    ]
    if args.output == "json":
        _out(json.dumps(reports, indent=2))
    else:
        for report in reports:
            print_status(report, _out)
    return 0


def _gate(root: Path, args: argparse.Namespace) -> int:
    try:
        source: MetricsSource | None
        if args.stable_url or args.candidate_url:
            if not (args.stable_url and args.candidate_url):
                raise GateConfigError(
                    "--stable-url and --candidate-url go together (one or more of each)"
                )
            if args.prometheus:
                raise GateConfigError("choose /metrics URLs or --prometheus, not both")
            source = ScrapeSource(
                {"stable": args.stable_url, "candidate": args.candidate_url},
                window_seconds=parse_window(args.window),
            )
        elif args.prometheus:
            source = PrometheusSource(args.prometheus)
        else:
            source = None
        run = gate_mod.run_gate(
            root,
            args.env,
            source,
            not (args.no_rollback or args.dry_run),
            _delivery(args),
            _log_printer(args),
            helm=args.helm,
            void_log=(args.redis_url, args.prediction_stream),
        )
    except GitopsError as exc:
        if args.output == "json":
            _out(json.dumps({"env": args.env, "result": "error", "reason": str(exc)}))
        print(f"nepse-gitops gate: error: {exc}", file=sys.stderr)
        return gate_mod.EXIT_ERROR
    if args.output == "json":
        _out(json.dumps(run.to_json(), indent=2))
    return run.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except GitopsError as exc:
        print(f"nepse-gitops {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
