"""What a detection delay alone costs on a scenario, and which delay ours fails like.

On one scenario, the same seeds for every cell: ``--policy ideal``, the ideal seeing the demand
each of ``--lags`` seconds late (``--policy ideal-lagged:L``, docs/simulator.md), and ours. Prints
each one's errors (all runs pooled) against the ideal's, and the first scale-out of each step or
ramp behind the ideal's; then, interpolated between the lags, the delay an error bar leaves
(``--bar`` x the ideal's, 1.5 by default) and the delay at which the ideal fails what ours fails.
The figures behind docs/simulator.md, "What a detection delay costs on the sawtooth".

    .venv/bin/python -m benchmarks.detection_lag scenarios/sawtooth.yaml [--runs 20] [--lags 15 30 45 60 75]
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.policies import error_share, scenarios_or_refuse
from simulator.cli import environment
from simulator.scenario import Scenario
from simulator.sweep import percentile, sweep

ROOT = Path(__file__).resolve().parents[1]


def lag_at(ratio: float, points: Sequence[tuple[float, float]]) -> float | None:
    """The delay at which the error ratio first reaches ``ratio``, linear between measured
    ``(lag, ratio)`` points in order of lag; None if no measured lag reaches it."""
    if points and points[0][1] >= ratio:
        return points[0][0]
    for (lag0, r0), (lag1, r1) in itertools.pairwise(points):
        if r1 >= ratio:  # and r0 < ratio, or the point before would have returned
            return lag0 + (lag1 - lag0) * (ratio - r0) / (r1 - r0)
    return None


def rises(scenario: Scenario) -> list[tuple[float, float]]:
    """Where the demand starts to rise and until when a first scale-out counts for that rise:
    each stage whose rate or client count exceeds the previous one's, or that ramps up."""
    spans: list[tuple[float, float]] = []
    before: float | None = None  # the first stage is where the scenario starts, not a rise
    for stage in scenario.stages:
        level = float(stage.clients if stage.clients is not None else stage.rate or 0.0)
        if (before is not None and level > before) or (stage.rate_end or 0.0) > level:
            spans.append((stage.start, stage.start + stage.duration))
        before = float(stage.rate_end) if stage.rate_end is not None else level
    return spans


def first_scale_outs(doc: dict[str, Any], spans: Sequence[tuple[float, float]]) -> list[list[float | None]]:
    """Per run, per rise: the first scale-out within it, from its start (None: none)."""
    out: list[list[float | None]] = []
    for run in doc["runs"]:
        times = [a["t"] for a in run["actions"] if a["direction"] == "out"]
        out.append([min((t - start for t in times if start <= t < end), default=None) for start, end in spans])
    return out


def behind(doc: dict[str, Any], ideal: dict[str, Any], spans: Sequence[tuple[float, float]]) -> str:
    """p50 / p95 over the runs of each rise's first scale-out behind the ideal's, as ranges over the rises."""
    ours, best = first_scale_outs(doc, spans), first_scale_outs(ideal, spans)
    p50s: list[float] = []
    p95s: list[float] = []
    for k in range(len(spans)):
        gaps = [
            a - b for a, b in ((x[k], y[k]) for x, y in zip(ours, best, strict=True)) if a is not None and b is not None
        ]
        p50, p95 = percentile(gaps, 50), percentile(gaps, 95)
        if p50 is not None and p95 is not None:
            p50s.append(p50)
            p95s.append(p95)

    def span(values: list[float]) -> str:
        low, high = round(min(values)), round(max(values))
        return f"{low}" if low == high else f"{low}-{high}"

    return f"{span(p50s)} / {span(p95s)}" if p50s else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--lags", type=float, nargs="+", default=[15.0, 30.0, 45.0, 60.0, 75.0])
    parser.add_argument("--bar", type=float, default=1.5, help="errors allowed, x the ideal's")
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    parser.add_argument("--jobs", type=int, default=0, help="parallel processes (0: one per CPU)")
    args = parser.parse_args(argv)
    if any(lag <= 0 for lag in args.lags) or args.runs < 1 or args.bar < 1:
        parser.error("--lags must be > 0 seconds, --runs at least 1 and --bar at least 1 (x the ideal's errors)")
    (scenario,) = scenarios_or_refuse(parser, args.template, [args.scenario])
    environment()
    spans = rises(scenario)

    def run(policy: str) -> dict[str, Any]:
        return sweep(scenario, args.template, {}, policy, args.runs, args.jobs or None)

    ideal = run("ideal")
    base = error_share(ideal)
    if base == 0:
        print(f"{scenario.name}: the ideal fails no request in {args.runs} runs; no ratio to measure against")
        return 0
    lags = sorted(set(args.lags))
    print(f"{scenario.name}, {args.runs} runs each, the same seeds; errors over all requests of all runs")
    print(f"{'policy':<24} {'errors':>8} {'x ideal':>8}  first scale-out of a rise behind the ideal's, p50 / p95 (s)")
    print(f"{'ideal':<24} {100 * base:>7.2f}% {1.0:>8.2f}  -", flush=True)

    def row(name: str) -> float:
        """Sweep ``name``, print its row, return its errors against the ideal's."""
        doc = run(name)
        ratio = error_share(doc) / base
        print(f"{name:<24} {100 * error_share(doc):>7.2f}% {ratio:>8.2f}  {behind(doc, ideal, spans)}", flush=True)
        return ratio

    points = [(0.0, 1.0), *((lag, row(f"ideal-lagged:{lag:g}")) for lag in lags)]
    mine = row("ours")
    for label, ratio in ((f"a bar of {args.bar:g} x the ideal's errors leaves", args.bar),
                         ("ours fails what the ideal fails, lagged", mine)):  # fmt: skip
        lag_found = lag_at(ratio, points)
        said = f"about {lag_found:.0f} s" if lag_found is not None else f"more than {lags[-1]:g} s"
        print(f"{label}: {said}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
