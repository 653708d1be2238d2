"""The report: every number, its ratio to MLServer and the goals, printed and kept as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serving.settings import (
    CLIENT_CPU,
    DISTURBED,
    GOAL_BATCH_SPEEDUP,
    GOAL_OF_FLOOR,
    GOAL_P99_FRACTION,
    GOAL_READY_OF_FLOOR,
    GOAL_SPEEDUP,
    LABELS,
    RUNS,
    SERVER_CPU,
)

METRICS = (
    # key, heading, unit, getter
    ("c1_rps", "c=1 req/s", "", lambda r: r["load"]["c1"]["requests_per_s"]),
    ("c1_p50", "c=1 p50", "ms", lambda r: r["load"]["c1"]["latency_us"]["p50"] / 1000),
    ("c1_p99", "c=1 p99", "ms", lambda r: r["load"]["c1"]["latency_us"]["p99"] / 1000),
    ("c16_rps", "c=16 req/s", "", lambda r: r["load"]["c16"]["requests_per_s"]),
    ("c16_p50", "c=16 p50", "ms", lambda r: r["load"]["c16"]["latency_us"]["p50"] / 1000),
    ("c16_p99", "c=16 p99", "ms", lambda r: r["load"]["c16"]["latency_us"]["p99"] / 1000),
    ("batch_rows", "batch rows/s", "", lambda r: r["load"]["batch"]["rows_per_s"]),
    ("ready_s", "ready s", "", lambda r: r["startup"]["median_s"]),
)


def _fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3f}"


def _host_floor(loop: dict[str, float] | None, base: dict[str, float]) -> str:
    """The c=16 p99 of uvloop alone answering a constant: what the host adds to any tail."""
    if not loop:
        return ""
    ratio = loop["c16_p99"] / base["c16_p99"]
    return f"; uvloop alone {loop['c16_p99']:.2f} ms ({ratio:.3f}x)"


def summarize(
    servers: dict[str, dict[str, Any]], reference: dict[str, Any] | None = None
) -> dict[str, Any]:
    values = {key: {m[0]: m[3](res) for m in METRICS} for key, res in servers.items()}
    base = values.get("mlserver")
    ratios = (
        {key: {name: v / base[name] for name, v in vals.items()} for key, vals in values.items()}
        if base
        else {}
    )
    ours, hello = values.get("ours"), values.get("hello")
    of_floor = (
        {name: ours[name] / hello[name] for name in ("c1_rps", "c16_rps")}
        if (ours and hello)
        else {}
    )
    goals = []
    if ours and base:
        for name, label in (("c1_rps", "c=1"), ("c16_rps", "c=16")):
            ratio = ours[name] / base[name]
            goals.append(
                {
                    "goal": f"{label} req/s >= {GOAL_SPEEDUP:g}x MLServer",
                    "value": f"{ratio:.2f}x",
                    "pass": ratio >= GOAL_SPEEDUP,
                }
            )
    if of_floor:
        for name, label in (("c1_rps", "c=1"), ("c16_rps", "c=16")):
            ratio = of_floor[name]
            goals.append(
                {
                    "goal": f"{label} req/s >= {GOAL_OF_FLOOR:g}x hello-world",
                    "value": f"{ratio:.2f}x",
                    "pass": ratio >= GOAL_OF_FLOOR,
                }
            )
    if ours and base:
        ratio = ours["batch_rows"] / base["batch_rows"]
        goals.append(
            {
                "goal": f"batch rows/s >= {GOAL_BATCH_SPEEDUP:g}x MLServer",
                "value": f"{ratio:.2f}x",
                "pass": ratio >= GOAL_BATCH_SPEEDUP,
            }
        )
        ratio = ours["c16_p99"] / base["c16_p99"]
        goals.append(
            {
                "goal": f"c=16 p99 <= {GOAL_P99_FRACTION:g}x MLServer's",
                "value": f"{ours['c16_p99']:.2f} ms vs {base['c16_p99']:.2f} ms ({ratio:.3f}x)"
                + _host_floor(values.get("loop"), base),
                "pass": ratio <= GOAL_P99_FRACTION,
            }
        )
    if ours and hello:
        ratio = ours["ready_s"] / hello["ready_s"]
        goals.append(
            {
                "goal": f"ready <= {GOAL_READY_OF_FLOOR:g}x hello-world's",
                "value": f"{ours['ready_s']:.3f} s vs {hello['ready_s']:.3f} s ({ratio:.2f}x)",
                "pass": ratio <= GOAL_READY_OF_FLOOR,
            }
        )
    of_model = {}
    if ours and reference:
        alone = reference["rows_per_s"]
        of_model = {
            "batch_of_model_alone": ours["batch_rows"] / alone["trees_batch"],
            "c1_of_model_alone": ours["c1_rps"] / alone["trees_single"],
        }
    interference = max(servers[key]["load"][run]["disturbance"] for key in servers for run in RUNS)
    return {
        "values": values,
        "disturbance": {
            key: [res["load"][run]["disturbance"] for run in RUNS] for key, res in servers.items()
        },
        "disturbance_max": interference,
        "ratio_to_mlserver": ratios,
        "ours_to_hello": of_floor,
        "ours_to_model_alone": of_model,
        "goals": goals,
    }


def print_report(summary: dict[str, Any], keys: list[str]) -> None:
    name_width = 16
    widths = [max(len(m[1]), 11) for m in METRICS]
    header = f"{'server':<{name_width}}" + "".join(
        f"  {m[1]:>{w}}" for m, w in zip(METRICS, widths, strict=True)
    )
    print("\n" + header)
    print("-" * len(header))
    for key in keys:
        vals = summary["values"][key]
        print(
            f"{LABELS[key]:<{name_width}}"
            + "".join(
                f"  {_fmt(vals[m[0]], m[2]):>{w}}" for m, w in zip(METRICS, widths, strict=True)
            )
        )
    ratios = summary["ratio_to_mlserver"]
    if ratios:
        print("\nratio to MLServer (throughput: higher is better; latency and ready: lower)")
        print("-" * len(header))
        for key in keys:
            print(
                f"{LABELS[key]:<{name_width}}"
                + "".join(
                    f"  {ratios[key][m[0]]:>{w - 1}.2f}x"
                    for m, w in zip(METRICS, widths, strict=True)
                )
            )
    if summary["ours_to_hello"]:
        floor = summary["ours_to_hello"]
        print(
            f"\nnepse-predictor / hello (floor): c=1 {floor['c1_rps']:.2f}x, "
            f"c=16 {floor['c16_rps']:.2f}x"
        )
    if summary.get("ours_to_model_alone"):
        share = summary["ours_to_model_alone"]
        print(
            f"nepse-predictor / its model alone in process (compiled trees): batch rows/s "
            f"{share['batch_of_model_alone']:.0%}, c=1 req/s {share['c1_of_model_alone']:.0%}"
        )
    print(
        f"\nDisturbance by other processes in the reported runs (the larger of: their time on "
        f"CPU {SERVER_CPU}, wrk's wait for CPU {CLIENT_CPU}; share of the run, c=1/c=16/batch):"
    )
    for key in keys:
        print(
            f"  {LABELS[key]:<{name_width}}"
            + "/".join(f"{d:.0%}" for d in summary["disturbance"][key])
        )
    if summary["disturbance_max"] > DISTURBED:
        print(
            "  Some numbers are disturbed by other work on this machine: rerun when it is quiet "
            "(more --rounds help)."
        )
    if summary["goals"]:
        print("\nGoals")
        for goal in summary["goals"]:
            print(f"  {'PASS' if goal['pass'] else 'FAIL'}  {goal['goal']:<38} {goal['value']}")


def write_results(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
