"""The local twin's command line.

``python -m simulator run SCENARIO.yaml [--template T] [--param K=V ...] [--policy P] --out DIR``
runs one scenario; ``python -m simulator sweep SCENARIO.yaml --runs N [--jobs J] ... --out DIR``
runs its robustness envelope (every modelled parameter and phase drawn afresh per run).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from fleet_template.cfn import TemplateError
from simulator.policies import LAGGED, POLICIES, parse_policy
from simulator.scenario import Scenario, ScenarioError, load_scenario

EXIT_PASSED, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def environment() -> None:
    """Fake credentials: the twin never reaches AWS."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        os.environ[key] = value
    os.environ.pop("AWS_PROFILE", None)
    logging.getLogger().setLevel(logging.ERROR)
    # There is no Lambda context in the twin, so powertools cannot read the remaining time.
    warnings.filterwarnings("ignore", message="Couldn't determine the remaining time")


def _params(values: list[str]) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param expects Name=Value, got {item!r}")
        out[key] = value
    return out


POLICY_CHOICES = "{" + ",".join((*POLICIES, f"{LAGGED}:SECONDS")) + "}"


def _policy(name: str) -> str:
    try:
        parse_policy(name)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario against the template")
    envelope = sub.add_parser("sweep", help="run a scenario many times, every modelled parameter drawn afresh")
    sub.add_parser("params", help="print the modelled parameters with their defaults, ranges and sources")
    for command in (run, envelope):
        command.add_argument("scenario")
        command.add_argument("--template", default="template.yaml")
        command.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                             help="template parameter override")  # fmt: skip
        command.add_argument("--policy", default="ours", type=_policy, metavar=POLICY_CHOICES)
        command.add_argument("--out", required=True)
        command.add_argument("--quiet", action="store_true", help="no table, no progress bar")
        command.add_argument("--paired-draws", action="store_true",
                             help="each instance's timings from a stream of its own")  # fmt: skip
    run.add_argument("--sweep-run", type=int, metavar="K", help="reproduce run K of a sweep (its seed and parameters)")
    envelope.add_argument("--runs", type=int, default=50)
    envelope.add_argument("--jobs", type=int, default=0, help="parallel processes (0: one per CPU)")
    envelope.add_argument("--min-pass-rate", type=float, default=0.95, help="exit 0 at or above this share")
    args = parser.parse_args(argv)
    if args.command == "params":
        from simulator.params import markdown_table

        print(markdown_table())
        return EXIT_PASSED
    environment()
    try:
        scenario = replace(load_scenario(args.scenario), paired_draws=args.paired_draws)
        overrides = _params(args.param)
        if not Path(args.template).is_file():
            raise TemplateError(f"{args.template}: no such template")
        if args.command == "sweep" and args.runs < 1:
            raise ValueError(f"--runs must be at least 1, got {args.runs}")
    except (ScenarioError, TemplateError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.command == "sweep":
            doc = run_sweep(scenario, args.template, overrides, args.policy, Path(args.out), args.runs,
                            args.jobs or None, quiet=args.quiet)  # fmt: skip
            rate = doc["summary"]["pass_rate"] or 0.0
            return EXIT_PASSED if rate >= args.min_pass_rate else EXIT_FAILED
        report = run_scenario(scenario, args.template, overrides, args.policy, Path(args.out), quiet=args.quiet,
                              sweep_run=args.sweep_run)  # fmt: skip
    except (TemplateError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_PASSED if report["passed"] else EXIT_FAILED


def run_sweep(
    scenario: Scenario, template: str, overrides: dict[str, str], policy: str, out: Path, runs: int,
    jobs: int | None, *, quiet: bool = False,
) -> dict[str, Any]:  # fmt: skip
    from simulator.sweep import draw_sweep, summary_table, sweep

    def progress(done: int, total: int) -> None:
        if not quiet and sys.stderr.isatty():
            print(f"\r{done}/{total} runs", end="", file=sys.stderr, flush=True)

    doc = sweep(scenario, template, overrides, policy, runs, jobs, progress)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    draw_sweep(doc, out / "sweep.png")
    if not quiet:
        print(("\r" if sys.stderr.isatty() else "") + summary_table(doc))
        print(f"wrote {out / 'sweep.json'} and {out / 'sweep.png'}")
    return doc


def run_scenario(
    scenario: Scenario, template: str, overrides: dict[str, str], policy: str, out: Path, *, quiet: bool = False,
    sweep_run: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    from tqdm import tqdm

    from simulator.chart import draw_timeline
    from simulator.harness import Simulation
    from simulator.report import build_report, stage_table

    bar = (
        None
        if quiet
        else tqdm(
            total=int(scenario.duration + scenario.warmup),
            unit="sim s",
            file=sys.stderr,
            delay=2.0,
            leave=False,
            disable=None,  # None: only on a terminal, never in logs or CI
        )
    )
    last = [0.0]

    def progress(now: float, total: float) -> None:
        if bar is not None and now - last[0] >= 60:
            bar.update(int(now - last[0]))
            last[0] = now

    from simulator.sweep import sweep_case

    scenario, params = sweep_case(scenario, sweep_run) if sweep_run is not None else (scenario, None)
    out.mkdir(parents=True, exist_ok=True)
    simulation = Simulation(
        scenario, template, overrides, policy, params=params, progress=progress, function_log=out / "functions.log"
    )
    # A scenario with a deploy runs twice: without its deploys first, for the deploy's extra cost.
    baseline = simulation.baseline_instance_seconds()
    result = simulation.run()
    if bar is not None:
        bar.close()
    report = build_report(result, baseline)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    draw_timeline(result, report, out / "timeline.png")
    if not quiet:
        print(stage_table(report))
        print(f"wrote {out / 'report.json'} and {out / 'timeline.png'}")
    return report
