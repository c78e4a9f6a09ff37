"""``fleetctl refresh start|status|cancel|rollback``: the control plane's refresh entry points.

A refused request (one already in progress, nothing to roll back, inconsistent preferences) is
the core's ``RefreshError``: one line on stderr, exit 2, nothing changed (cli.py).
"""

from __future__ import annotations

import argparse
from typing import Any

from autoscaler import entrypoints

from fleetctl import texts, views
from fleetctl.commands import CAUSE, print_plan, print_result
from fleetctl.context import Context
from fleetctl.render import Renderer

EXIT_NOT_SUCCESSFUL = 1
EXIT_TIMEOUT = 3


def start(ctx: Context, args: argparse.Namespace, out: Renderer) -> int:
    runtime = ctx.runtime
    options: dict[str, Any] = {
        "min_healthy_percent": args.min_healthy,
        "max_surge": args.max_surge,
        "warmup_seconds": args.warmup,
        "checkpoints": args.checkpoints,
        "checkpoint_delay_seconds": args.checkpoint_delay,
        "skip_matching": args.skip_matching,
    }
    if args.dry_run:
        return _start_dry_run(ctx, args, out, options)
    outcome = entrypoints.start_refresh(runtime, **options, cause=CAUSE)
    report = entrypoints.refresh_status(runtime)
    if args.output == "json":
        out.json({"fleet": runtime.settings.fleet_name, "dry_run": False, "started": outcome, "status": report})
        return 0
    refresh = outcome["refresh"]
    out.line(f"Started {_summary(refresh)}")
    out.line(f"  {texts.preferences_line(refresh['preferences'])}; checkpoints {texts.checkpoints_line(refresh)}")
    out.line("First step, taken now:")
    _print_step(out, outcome)
    out.line(f"Now: {texts.refresh_line(report)}")
    out.line("The reconcile function takes the next steps, every minute: `fleetctl refresh status --wait`.")
    return 0 if not outcome.get("result", {}).get("failures") else 1


def _start_dry_run(ctx: Context, args: argparse.Namespace, out: Renderer, options: dict[str, Any]) -> int:
    runtime = ctx.runtime
    outcome = entrypoints.start_refresh(runtime, **options, cause=CAUSE, dry_run=True)
    refresh = outcome["refresh"]
    rows = views.to_replace(
        ctx.controller.instances(), refresh, runtime.clock.now(), runtime.settings.max_instance_lifetime_seconds
    )
    if args.output == "json":
        out.json({"fleet": runtime.settings.fleet_name, "dry_run": True, "planned": outcome, "to_replace": rows})
        return 0
    out.line(f"Dry run: would start a refresh ({refresh['cause']}): {_versions(refresh)}")
    out.line(f"  {texts.preferences_line(refresh['preferences'])}; checkpoints {texts.checkpoints_line(refresh)}")
    out.line()
    out.line(f"Would replace {len(rows)} instance(s):")
    columns = (("id", "ID"), ("az", "AZ"), ("state", "EC2 STATE"), ("lifecycle", "LIFECYCLE"), ("version", "VERSION"))
    out.table(columns, rows, empty="(none: every instance runs the version already)")
    out.line()
    out.line("First step:")
    print_plan(out, outcome.get("plan", {}), "would")
    out.line("Nothing changed.")
    return 0


def status(ctx: Context, args: argparse.Namespace, out: Renderer) -> int:
    runtime = ctx.runtime
    fleet = runtime.settings.fleet_name
    report = entrypoints.refresh_status(runtime)
    if not args.wait:
        if args.output == "json":
            out.json({"fleet": fleet, **report})
        else:
            out.fields(texts.refresh_fields(report), styles=_styles(report))
        return 0
    clock = runtime.clock
    began = clock.now()

    def waited() -> float:
        return (clock.now() - began).total_seconds()

    verdict = views.wait_verdict(report)
    shown = ""
    while verdict is None and not (args.timeout and waited() >= args.timeout):
        if args.output != "json":
            line = _wait_line(report)
            if line != shown:
                out.line(f"{views.stamp(clock.now())}  {line}")
                shown = line
        clock.sleep(max(0.0, min(args.interval, args.timeout - waited())) if args.timeout else args.interval)
        report = entrypoints.refresh_status(runtime)
        verdict = views.wait_verdict(report)
    code = _wait_exit_code(verdict)
    if args.output == "json":
        out.json({"fleet": fleet, **report, "waited_seconds": round(waited(), 1), "outcome": verdict or "timeout"})
        return code
    if shown:
        out.line()
    out.fields(texts.refresh_fields(report), styles=_styles(report))
    out.line()
    if verdict is None:
        out.line(out.style(f"Timed out after {waited():.0f} s; the refresh goes on (exit {code}).", "yellow"))
    else:
        ok = code == 0
        out.line(out.style(f"Refresh ended: {verdict}.", "green" if ok else "red"))
    return code


def _wait_exit_code(verdict: str | None) -> int:
    if verdict is None:
        return EXIT_TIMEOUT
    return 0 if verdict in {"Successful", "nothing to replace"} else EXIT_NOT_SUCCESSFUL


def _wait_line(report: dict[str, Any]) -> str:
    if report.get("refresh") is None or not views.refresh_active(report):
        return f"waiting for the refresh to version {report['configured_version']} to start"
    return texts.refresh_line(report)


def cancel(ctx: Context, args: argparse.Namespace, out: Renderer) -> int:
    runtime = ctx.runtime
    outcome = entrypoints.cancel_refresh(runtime, cause=CAUSE)
    report = entrypoints.refresh_status(runtime)
    if args.output == "json":
        out.json({"fleet": runtime.settings.fleet_name, "cancelled": outcome, "status": report})
        return 0
    refresh = outcome["refresh"]
    out.line(f"Cancelled {refresh['refresh_id']} ({_versions(refresh)}): instances already replaced stay.")
    out.line(f"Now: {texts.refresh_line(report)}")
    return 0


def rollback(ctx: Context, args: argparse.Namespace, out: Renderer) -> int:
    runtime = ctx.runtime
    outcome = entrypoints.rollback_refresh(runtime, cause=CAUSE)
    report = entrypoints.refresh_status(runtime)
    if args.output == "json":
        out.json({"fleet": runtime.settings.fleet_name, "rolled_back": outcome, "status": report})
        return 0
    refresh = outcome["refresh"]
    out.line(
        f"Rolling back {refresh['refresh_id']}: version {refresh['target_version']} is pinned again "
        f"(new instances get it), {refresh['to_replace']} instance(s) of version {refresh['previous_version']} "
        f"to replace."
    )
    out.line("First step, taken now:")
    _print_step(out, outcome)
    out.line(f"Now: {texts.refresh_line(report)}")
    out.line("Follow it with `fleetctl refresh status --wait`.")
    return 0 if not outcome.get("result", {}).get("failures") else 1


def _versions(refresh: dict[str, Any]) -> str:
    return f"version {texts.versions(refresh)}, {refresh['to_replace']} instance(s) to replace"


def _summary(refresh: dict[str, Any]) -> str:
    return f"{refresh['refresh_id']} ({refresh['cause']}): {_versions(refresh)}"


def _print_step(out: Renderer, outcome: dict[str, Any]) -> None:
    print_plan(out, outcome.get("plan", {}), "")
    if outcome.get("result"):
        print_result(out, outcome["result"])


def _styles(report: dict[str, Any]) -> dict[str, str]:
    refresh = report.get("refresh")
    style = texts.refresh_style(refresh["status"]) if refresh else None
    return {"Status": style} if style else {}
