"""The subcommands: read through the control plane's adapters, act through its entry points."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from autoscaler import entrypoints

from fleetctl import texts, views
from fleetctl.context import Context
from fleetctl.render import Renderer

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.type_defs import DescribeAlarmsInputPaginateTypeDef

CAUSE = "fleetctl"
INSTANCE_COLUMNS = (
    ("id", "ID"),
    ("az", "AZ"),
    ("state", "EC2 STATE"),
    ("lifecycle", "LIFECYCLE"),
    ("health", "TARGET HEALTH"),
    ("version", "VERSION"),
    ("launched", "LAUNCHED"),
    ("uptime", "UPTIME"),
)
ALARM_COLUMNS = (
    ("name", "ALARM"),
    ("state", "STATE"),
    ("metric", "METRIC / RULE"),
    ("threshold", "THRESHOLD"),
    ("period", "PERIOD"),
    ("datapoints", "M/N"),
    ("changed", "LAST CHANGE"),
    ("changed_ago", "AGO"),
)
ACTIVITY_COLUMNS = (
    ("at", "TIME"),
    ("cause", "CAUSE"),
    ("reason", "REASON"),
    ("change", "DESIRED"),
    ("status", "STATUS"),
    ("count", "INSTANCES"),
    ("message", "MESSAGE"),
)
# Plan fields (autoscaler.plan.Plan) in the words an operator reads; spare_pool is a fallback, not an
# action; retire and discard say which of the drained and terminated instances a refresh replaces.
PLAN_WORDS = {
    "reclaim": "return to service",
    "start": "start from the pool",
    "launch": "launch",
    "register": "register with the target group",
    "drain": "drain",
    "retire": "of those drained, replace (old version or past its lifetime)",
    "replace": "replace (unhealthy)",
    "to_pool": "stop into the warm pool",
    "terminate": "terminate",
    "discard": "of those terminated, replace (old version or past its lifetime)",
    "launch_warming": "launch for the warm pool",
    "retag_pool": "retag as pool",
}
RESULT_WORDS = {
    "started": "started",
    "reclaimed": "back in service",
    "launched": "launched",
    "registered": "registered",
    "drained": "draining",
    "stopped": "stopped",
    "terminated": "terminated",
    "warming": "warming up for the pool",
    "failures": "failed",
    "capacity_errors": "no capacity",
}


def status(ctx: Context, args: argparse.Namespace, out: Renderer) -> int:
    from autoscaler.refresh import report

    controller = ctx.controller
    state = controller.state()
    instances = controller.instances()
    runtime = ctx.runtime
    settings = runtime.settings
    now = runtime.clock.now()
    versions = report(
        state.refresh, settings.launch_template_version, instances, now, settings.max_instance_lifetime_seconds
    )
    view = views.status(
        ctx.stack.name,
        settings.fleet_name,
        state,
        instances,
        runtime.scaling_policy(),
        now,
        versions,
    )
    if args.output == "json":
        out.json(view)
        return 0
    decision = view["last_decision"]
    desired = view["desired"] if view["desired"] is not None else "- (no decision yet)"
    fields = [
        ("Stack", view["stack"]),
        ("Fleet", view["fleet"]),
        ("Desired", f"{desired}  (min {view['min_size']}, max {view['max_size']})"),
        ("Capacity", _capacity_line(view["capacity"])),
        ("Scaling", "SUSPENDED" if view["suspended"] else "active"),
        ("Last decision", _decision_line(decision)),
        ("Version", texts.version_line(versions)),
    ]
    styles = {"Scaling": "red" if view["suspended"] else "green"}
    if views.refresh_recent(versions, now):
        fields.append(("Refresh", texts.refresh_line(versions)))
        style = texts.refresh_style(versions["refresh"]["status"])
        if style:
            styles["Refresh"] = style
    out.fields(fields, styles=styles)
    out.line()
    out.table(INSTANCE_COLUMNS, view["instances"], empty="(no instances)")
    out.line()
    t = view["totals"]
    parts = [f"{t[name]} {name}" for name in views.LIFECYCLES if t[name]]
    out.line(f"Total: {t['total']} instance(s)" + (f" - {', '.join(parts)}" if parts else ""))
    return 0


def _capacity_line(counts: dict[str, int]) -> str:
    serving, coming, pool = counts["in_service"], counts["booting"], counts["pool"]
    return f"{counts['capacity']}  ({serving} in service, {coming} on the way; {pool} in the pool)"


def _decision_line(decision: dict[str, Any]) -> str:
    if not decision["at"]:
        return "-"
    text = f"{decision['at']} {decision['reason'] or ''}".rstrip()
    return f"{text}: {decision['message']}" if decision["message"] else text


def alarms(ctx: Context, args: argparse.Namespace, out: Renderer) -> int:
    runtime = ctx.runtime
    cloudwatch = runtime.clients.cloudwatch
    now = runtime.clock.now()
    found: dict[str, dict[str, Any]] = {}

    def collect(query: DescribeAlarmsInputPaginateTypeDef) -> None:
        query["AlarmTypes"] = ["MetricAlarm", "CompositeAlarm"]
        for page in cloudwatch.get_paginator("describe_alarms").paginate(**query):
            for metric in page.get("MetricAlarms", []):
                found[metric["AlarmName"]] = views.metric_alarm_row(metric, now)
            for composite in page.get("CompositeAlarms", []):
                found[composite["AlarmName"]] = views.composite_alarm_row(composite, now)

    # The template names every alarm "<fleet>-..."; outputs name the scaling ones explicitly.
    collect({"AlarmNamePrefix": f"{runtime.settings.fleet_name}-"})
    missing = [n for n in ctx.stack.alarm_names() if n not in found]
    for start in range(0, len(missing), 100):
        collect({"AlarmNames": missing[start : start + 100]})
    rows = [found[name] for name in sorted(found)]
    if args.output == "json":
        out.json({"fleet": runtime.settings.fleet_name, "alarms": rows})
        return 0
    out.table(ALARM_COLUMNS, rows, empty=f"(no alarms of fleet {runtime.settings.fleet_name})")
    return 0


def activities(ctx: Context, args: argparse.Namespace, out: Renderer) -> int:
    runtime = ctx.runtime
    since = views.parse_since(args.since, runtime.clock.now()) if args.since else None
    rows = [views.activity_row(raw) for raw in ctx.controller.activities(since, limit=args.limit)]
    if args.output == "json":
        out.json({"fleet": runtime.settings.fleet_name, "since": views.stamp(since), "activities": rows})
        return 0
    table = [{**row, "change": f"{row['from']} -> {row['to']}", "count": len(row["instances"]) or None} for row in rows]
    out.table(ACTIVITY_COLUMNS, table, empty="(no scaling activities" + (" in that window)" if since else ")"))
    return 0


def scale(ctx: Context, args: argparse.Namespace, out: Renderer) -> int:
    runtime = ctx.runtime
    policy = runtime.scaling_policy()
    if args.to is not None:
        asked = args.to
    else:
        current = ctx.controller.desired_now()
        asked = current + args.by if args.direction == "out" else current - args.by
    preview = entrypoints.set_capacity(runtime, asked, CAUSE, dry_run=True)
    clamp = _clamp_note(asked, preview["desired"], policy.min_size, policy.max_size)
    if args.dry_run:
        if args.output == "json":
            out.json({"asked": asked, "dry_run": True, "planned": preview})
            return 0
        out.line(f"Dry run: would set desired capacity {preview['previous']} -> {preview['desired']}{clamp}")
        print_plan(out, preview.get("plan", {}), "would")
        out.line("Nothing changed.")
        return 0
    if args.output != "json":
        out.line(f"Setting desired capacity {preview['previous']} -> {preview['desired']}{clamp}")
        print_plan(out, preview.get("plan", {}), "will")
    result = entrypoints.set_capacity(runtime, asked, CAUSE, dry_run=False)
    if args.output == "json":
        out.json({"asked": asked, "dry_run": False, "planned": preview, "result": result})
        return 0
    out.line(f"Done: desired capacity {result.get('previous')} -> {result.get('desired')} ({result['status']})")
    print_result(out, result.get("result", {}))
    return 0 if not result.get("result", {}).get("failures") else 1


def _clamp_note(asked: int, desired: int, low: int, high: int) -> str:
    if asked > desired:
        return f" (asked for {asked}, clamped to the maximum {high})"
    if asked < desired:
        return f" (asked for {asked}, clamped to the minimum {low})"
    return ""


def print_plan(out: Renderer, plan: dict[str, Any], verb: str) -> None:
    """The plan's actions; ``verb`` ("would", "will", or "" for a step taken) leads each line."""
    lead = f"  {verb} " if verb else "  "
    steps = [(key, plan[key]) for key in PLAN_WORDS if plan.get(key)]
    if not steps:
        out.line(f"{lead}take no instance action" if verb else "  no instance action")
        return
    for key, value in steps:
        if key in {"launch", "launch_warming"}:
            what = ", ".join(f"{count} in {subnet}" for subnet, count in value)
        else:
            what = ", ".join(value)
        out.line(f"{lead}{PLAN_WORDS[key]}: {what}")


def print_result(out: Renderer, result: dict[str, Any]) -> None:
    if not result:
        out.line("  no instance was touched")
    for key, words in RESULT_WORDS.items():
        if result.get(key):
            style = "red" if key in {"failures", "capacity_errors"} else None
            out.line(out.style(f"  {words}: {', '.join(result[key])}", style))


def suspend(ctx: Context, args: argparse.Namespace, out: Renderer) -> int:
    return _set_suspended(ctx, args, out, True)


def resume(ctx: Context, args: argparse.Namespace, out: Renderer) -> int:
    return _set_suspended(ctx, args, out, False)


def _set_suspended(ctx: Context, args: argparse.Namespace, out: Renderer, suspended: bool) -> int:
    was = ctx.controller.state().suspended
    entrypoints.set_suspended(ctx.runtime, suspended, CAUSE)
    fleet = ctx.runtime.settings.fleet_name
    if args.output == "json":
        out.json({"fleet": fleet, "suspended": suspended, "was_suspended": was})
        return 0
    word = "suspended" if suspended else "resumed"
    note = " (it already was)" if was == suspended else ""
    out.line(f"Automatic scaling of fleet {fleet} {word}{note}.")
    if suspended:
        out.line("Alarms and the reconcile schedule now leave the fleet alone; `fleetctl scale` still works.")
    return 0


def pool(ctx: Context, args: argparse.Namespace, out: Renderer) -> int:
    if args.pool_action == "fill":
        return _pool_fill(ctx, args, out)
    view = _pool_view(ctx)
    if args.output == "json":
        out.json(view)
        return 0
    _print_pool(out, view)
    return 0


def _pool_view(ctx: Context) -> dict[str, Any]:
    runtime = ctx.runtime
    instances = ctx.controller.instances()
    return views.pool(runtime.settings.fleet_name, runtime.settings.warm_pool_size, instances, runtime.clock.now())


def _print_pool(out: Renderer, view: dict[str, Any]) -> None:
    out.fields(
        [
            ("Fleet", view["fleet"]),
            ("Pool size", view["size"]),
            ("Ready", f"{view['ready']} stopped and ready to start"),
            ("Warming", f"{view['warming']} installing, to be stopped into the pool"),
        ]
    )
    out.line()
    out.table((*INSTANCE_COLUMNS[:4], ("ready", "READY"), ("since", "SINCE")), view["instances"], empty="(pool empty)")


def _pool_fill(ctx: Context, args: argparse.Namespace, out: Renderer) -> int:
    runtime = ctx.runtime
    state = ctx.controller.state()
    desired = state.desired if state.desired is not None else runtime.scaling_policy().min_size
    if args.dry_run:
        preview = entrypoints.set_capacity(runtime, desired, CAUSE, dry_run=True)
        if args.output == "json":
            out.json({"dry_run": True, "planned": preview})
            return 0
        out.line(f"Dry run: pool fill at desired capacity {preview['desired']}")
        print_plan(out, preview.get("plan", {}), "would")
        return 0
    # The custom resource's entry point: the fleet at its desired capacity plus a full warm pool.
    result = entrypoints.create_fleet(runtime)
    view = _pool_view(ctx)
    if args.output == "json":
        out.json({"dry_run": False, "result": result, "pool": view})
        return 0
    out.line(f"Filled the warm pool of fleet {view['fleet']} up to {view['size']} (desired capacity {desired}):")
    print_result(out, result.get("result", {}))
    out.line()
    _print_pool(out, view)
    return 0
