"""The robustness envelope: one scenario, many runs, every modelled parameter and phase drawn afresh.

Run ``k`` of a sweep uses seed ``scenario.seed * 1000 + k``: every per-event quantity (boots,
publication delays, API latencies, service times) and every phase (where the scenario starts in
its minute, the schedule's second, each alarm's evaluation offset) comes from it, and each per-run
parameter is drawn uniformly from its range (``params.SPECS``). Runs go to parallel processes.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from simulator.params import ModelParams
from simulator.scenario import Scenario

SWEEP_VERSION = 1


def run_seed(scenario: Scenario, k: int) -> int:
    return scenario.seed * 1000 + k


def sweep_case(scenario: Scenario, k: int) -> tuple[Scenario, ModelParams]:
    """Run ``k``'s scenario (its seed) and modelled parameters (each per-run one drawn)."""
    seed = run_seed(scenario, k)
    params = ModelParams().with_overrides(scenario.model).drawn(random.Random(f"{seed}:params"), scenario.model)
    return replace(scenario, seed=seed), params


def _one(job: tuple[Scenario, str, dict[str, str], str, int]) -> dict[str, Any]:
    """One run of the sweep, in a worker process: its report without the bulky parts."""
    base, template, overrides, policy, k = job
    from simulator.cli import environment
    from simulator.harness import Simulation
    from simulator.report import build_report

    environment()
    scenario, params = sweep_case(base, k)
    seed = scenario.seed
    simulation = Simulation(scenario, template, overrides, policy, params=params)
    baseline = simulation.baseline_instance_seconds()
    report = build_report(simulation.run(), baseline)
    return {
        "run": k,
        "seed": seed,
        "passed": report["passed"],
        "stages": [
            {
                key: s[key]
                for key in (
                    "index",
                    "name",
                    "start",
                    "expect_instances",
                    "expect_within",
                    "instances_at_end",
                    "seconds_to_expected",
                    "need",
                    "seconds_to_need",
                    "errors",
                    "error_ratio",
                    "shed",
                    "timeouts",
                    "requests",
                    "latency_p95_settled",
                    "passed",
                )
            }
            for s in report["stages"]
        ],
        "totals": report["totals"],
        "checks": report["checks"],
        "deploys": [{k: v for k, v in d.items() if k != "timeline"} for d in report["deploys"]],
        "actions": report["actions"],
        "drawn": {name: getattr(params, name) for name in params.ranges()},
        "phases": report["phases"],
        "wall_seconds": report["speed"]["wall_seconds"],
    }


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (the value a share ``q`` of the runs do not exceed)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100.0 * len(ordered)) - 1))]


def summarize(scenario: Scenario, runs: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(runs)
    stages = []
    for i, stage in enumerate(scenario.stages):
        rows = [r["stages"][i] for r in runs]
        reached = [r["seconds_to_expected"] for r in rows if r["seconds_to_expected"] is not None]
        at_end: dict[str, int] = {}
        for r in rows:
            key = str(r["instances_at_end"])
            at_end[key] = at_end.get(key, 0) + 1
        stages.append(
            {
                "index": stage.index,
                "name": stage.name,
                "expect_instances": rows[0]["expect_instances"] if rows else None,
                "expect_within": stage.expect_within,
                "pass_rate": sum(1 for r in rows if r["passed"]) / n if n else None,
                "instances_at_end": dict(sorted(at_end.items())),
                "never_reached": sum(1 for r in rows if r["seconds_to_expected"] is None),
                "seconds_to_expected": {
                    "p50": percentile(reached, 50),
                    "p95": percentile(reached, 95),
                    "max": max(reached) if reached else None,
                },
            }
        )

    def dist(key: str) -> dict[str, float | None]:
        values = [float(r["totals"][key]) for r in runs if r["totals"].get(key) is not None]
        return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values) if values else None}

    failed_checks: dict[str, int] = {}
    for r in runs:
        for stage in r["stages"]:
            if not stage["passed"]:
                failed_checks[f"stage {stage['index']}"] = failed_checks.get(f"stage {stage['index']}", 0) + 1
        for check in r["checks"]:
            if not check["passed"]:
                failed_checks[check["check"]] = failed_checks.get(check["check"], 0) + 1
    return {
        "runs": n,
        "passed": sum(1 for r in runs if r["passed"]),
        "deploys": summarize_deploys(runs),
        "pass_rate": sum(1 for r in runs if r["passed"]) / n if n else None,
        "stages": stages,
        "failures": dict(sorted(failed_checks.items())),
        "scale_out_actions": dist("scale_out_actions"),
        "scale_in_actions": dist("scale_in_actions"),
        "flaps": dist("flaps"),
        "errors": dist("errors"),
        "shed": dist("shed"),
        "timeouts": dist("timeouts"),
        "instance_seconds_vs_oracle": dist("instance_seconds_vs_oracle"),
        "slo_attainment": dist("slo_attainment"),
        "wall_seconds_per_run": {
            "p50": percentile([r["wall_seconds"] for r in runs], 50),
            "max": max(r["wall_seconds"] for r in runs) if runs else None,
        },
    }


def _distribution(values: list[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values) if values else None}


def summarize_deploys(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per deploy of the scenario (the n-th of each run), its figures over the runs."""
    out: list[dict[str, Any]] = []
    count = min((len(r.get("deploys") or []) for r in runs), default=0)
    for i in range(count):
        rows = [r["deploys"][i] for r in runs]

        def dist(key: str, rows: list[dict[str, Any]] = rows) -> dict[str, float | None]:
            return _distribution([float(d[key]) for d in rows if d.get(key) is not None])

        headrooms = [d["min_headroom"] for d in rows if d["min_headroom"] is not None]
        out.append(
            {
                "at": rows[0]["at"],
                "healthy": rows[0]["healthy"],
                "seconds_to_all_new": dist("seconds_to_all_new"),
                "never_all_new": sum(1 for d in rows if d["seconds_to_all_new"] is None),
                "rolled_back": sum(1 for d in rows if d["rolled_back"]),
                "seconds_to_rolled_back": dist("seconds_to_rolled_back"),
                "failed_requests": dist("failed_requests"),
                "min_headroom": min(headrooms) if headrooms else None,
                "runs_below_desired": sum(1 for h in headrooms if h < 0),
                "extra_instance_seconds": dist("extra_instance_seconds"),
                "refresh_seconds": dist("refresh_seconds"),
            }
        )
    return out


def sweep(
    scenario: Scenario,
    template: str,
    overrides: dict[str, str],
    policy: str,
    runs: int,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    jobs = jobs or min(runs, os.cpu_count() or 1)
    work = [(scenario, template, overrides, policy, k) for k in range(runs)]
    results: list[dict[str, Any]] = []
    if jobs <= 1:
        for job in work:
            results.append(_one(job))
            if progress:
                progress(len(results), runs)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for result in pool.map(_one, work):
                results.append(result)
                if progress:
                    progress(len(results), runs)
    results.sort(key=lambda r: r["run"])
    return {
        "version": SWEEP_VERSION,
        "scenario": scenario.name,
        "scenario_file": scenario.path,
        "policy": policy,
        "paired_draws": scenario.paired_draws,
        "parameters": overrides,
        "summary": summarize(scenario, results),
        "runs": results,
    }


def summary_table(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    header = ("stage", "expect", "pass %", "at end (runs)", "t->exp p50", "p95", "max", "within")
    rows = [header]
    for st in s["stages"]:
        expected = st["expect_instances"]
        t = st["seconds_to_expected"]
        span = "-" if expected is None else str(expected) if isinstance(expected, int) else "{}-{}".format(*expected)
        rows.append(
            (
                str(st["index"]),
                span,
                "-" if st["pass_rate"] is None else f"{100 * st['pass_rate']:.0f}",
                " ".join(f"{k}:{v}" for k, v in st["instances_at_end"].items()),
                _fmt(t["p50"]), _fmt(t["p95"]), _fmt(t["max"]),
                "-" if st["expect_within"] is None else f"<= {st['expect_within']:g}",
            )
        )  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))

    def dist(name: str, key: str, digits: int = 0) -> str:
        d = s[key]
        return f"{name} p50 {_fmt(d['p50'], digits)} / p95 {_fmt(d['p95'], digits)} / max {_fmt(d['max'], digits)}"

    lines.append("")
    lines.append(f"{doc['scenario']} [{doc['policy']}]: {s['passed']} of {s['runs']} runs passed "
                 f"({100 * (s['pass_rate'] or 0):.0f} %)")  # fmt: skip
    lines.append("; ".join([dist("scale-outs", "scale_out_actions"), dist("scale-ins", "scale_in_actions")]))
    lines.append("; ".join([dist("flaps", "flaps"), dist("errors", "errors"), dist("503 shed", "shed"),
                            dist("504 timed out", "timeouts"),
                            dist("instance-s/oracle", "instance_seconds_vs_oracle", 2)]))  # fmt: skip
    for d in s.get("deploys") or []:
        t, failed, extra = d["seconds_to_all_new"], d["failed_requests"], d["extra_instance_seconds"]
        lines.append(
            f"deploy at {d['at']:g} s ({'healthy' if d['healthy'] else 'unhealthy'}): all new p50 {_fmt(t['p50'])} / "
            f"p95 {_fmt(t['p95'])} / max {_fmt(t['max'])} s, never in {d['never_all_new']} run(s); rolled back in "
            f"{d['rolled_back']}; failed requests p50 {_fmt(failed['p50'])} / max {_fmt(failed['max'])}; "
            f"min in service - desired {_fmt(d['min_headroom'])} (below in {d['runs_below_desired']} run(s)); "
            f"extra instance-s p50 {_fmt(extra['p50'])} / max {_fmt(extra['max'])}"
        )
    if s["failures"]:
        lines.append("failed: " + ", ".join(f"{k} in {v} run(s)" for k, v in s["failures"].items()))
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{round(value, digits) + 0.0:.{digits}f}"  # + 0.0: no "-0"


def draw_sweep(doc: dict[str, Any], path: Path) -> None:
    """Per stage: each run's time to the expected count (dots), the target (line), and misses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = doc["summary"]
    stages = s["stages"]
    fig, (ax_t, ax_pass) = plt.subplots(2, 1, figsize=(12, 7), height_ratios=[3, 1], sharex=True)
    fig.suptitle(f"{doc['scenario']} [{doc['policy']}] - envelope of {s['runs']} runs, "
                 f"{100 * (s['pass_rate'] or 0):.0f} % passed", fontsize=13)  # fmt: skip
    jitter = random.Random(0)
    for i, st in enumerate(stages):
        xs, ys, colors = [], [], []
        for run in doc["runs"]:
            stage = run["stages"][i]
            value = stage["seconds_to_expected"]
            xs.append(i + 1 + jitter.uniform(-0.25, 0.25))
            ys.append(value if value is not None else -20)
            colors.append("tab:green" if stage["passed"] else "tab:red")
        ax_t.scatter(xs, ys, c=colors, s=12, alpha=0.7)
        if st["expect_within"] is not None:
            ax_t.hlines(st["expect_within"], i + 0.6, i + 1.4, colors="black", linestyles="dashed")
    ax_t.set_ylabel("s to expected count (-20: never)")
    ax_t.set_title("time from the stage start to the expected instance count, per run (red: stage failed)",
                   loc="left", fontsize=9)  # fmt: skip
    ax_pass.bar([i + 1 for i in range(len(stages))], [100 * (st["pass_rate"] or 0) for st in stages],
                color="tab:blue")  # fmt: skip
    ax_pass.axhline(95, color="tab:red", linestyle=":", label="95 %")
    ax_pass.set_ylim(0, 105)
    ax_pass.set_ylabel("runs passed %")
    ax_pass.set_xticks([i + 1 for i in range(len(stages))], [f"S{st['index']}" for st in stages])
    ax_pass.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
