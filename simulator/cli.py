"""``python -m simulator run SCENARIO.yaml [--template T] [--param K=V ...] [--policy P] --out DIR``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

from simulator.policies import POLICIES
from simulator.scenario import ScenarioError, load_scenario
from tools.cfn_template import TemplateError

EXIT_PASSED, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _environment() -> None:
    """Fake credentials and quiet powertools: the twin never reaches AWS."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_SERVICE_NAME": "autoscaler-twin",
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario against the template")
    run.add_argument("scenario")
    run.add_argument("--template", default="template.yaml")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    run.add_argument("--policy", default="ours", choices=POLICIES)
    run.add_argument("--out", required=True)
    run.add_argument("--quiet", action="store_true", help="no table, no progress bar")
    args = parser.parse_args(argv)
    _environment()
    try:
        scenario = load_scenario(args.scenario)
        overrides = _params(args.param)
        if not Path(args.template).is_file():
            raise TemplateError(f"{args.template}: no such template")
    except (ScenarioError, TemplateError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        report = run_scenario(scenario, args.template, overrides, args.policy, Path(args.out), quiet=args.quiet)
    except (TemplateError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_PASSED if report["passed"] else EXIT_FAILED


def run_scenario(
    scenario: object, template: str, overrides: dict[str, str], policy: str, out: Path, *, quiet: bool = False
) -> dict[str, object]:
    from tqdm import tqdm

    from simulator.chart import draw_timeline
    from simulator.harness import Simulation
    from simulator.report import build_report, stage_table
    from simulator.scenario import Scenario

    assert isinstance(scenario, Scenario)
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

    result = Simulation(scenario, template, overrides, policy, progress).run()
    if bar is not None:
        bar.close()
    report = build_report(result)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    draw_timeline(result, report, out / "timeline.png")
    if not quiet:
        print(stage_table(report))
        print(f"wrote {out / 'report.json'} and {out / 'timeline.png'}")
    return report
