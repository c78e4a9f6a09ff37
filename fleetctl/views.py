"""Rows: the domain objects (instances, fleet state, alarms, activities) as plain, JSON-ready dicts.

No I/O and no formatting beyond values: ``render`` lays the rows out.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from autoscaler.model import FleetCounts, FleetState, Instance, Lifecycle, TargetHealth
from autoscaler.refresh import Refresh, rollout_of, stale_members

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.type_defs import CompositeAlarmTypeDef, MetricAlarmTypeDef

LIFECYCLES = ("in service", "booting", "unhealthy", "draining", "warming", "pool")
COMPARISONS = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}
_SINCE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# `fleetctl status` shows a refresh while it runs and for this long after it ended.
RECENT_REFRESH = timedelta(hours=24)


def lifecycle(instance: Instance) -> str:
    """pool / warming / draining from the lifecycle tag; a service instance is in service,
    unhealthy (running, and the target group says so) or booting (everything on its way)."""
    if instance.lifecycle is not Lifecycle.SERVICE:
        return instance.lifecycle.value
    if instance.in_service:
        return "in service"
    if instance.state == "running" and instance.health in {TargetHealth.UNHEALTHY, TargetHealth.UNAVAILABLE}:
        return "unhealthy"
    return "booting"


def duration(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def stamp(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


def instance_row(instance: Instance, now: datetime) -> dict[str, Any]:
    uptime = now - instance.launch_time if instance.state == "running" else None
    return {
        "id": instance.instance_id,
        "az": instance.availability_zone,
        "state": instance.state,
        "lifecycle": lifecycle(instance),
        "health": instance.health.value,
        "version": instance.version,
        "ready": instance.ready,
        "launched": stamp(instance.launch_time),
        "uptime": duration(uptime),
        "uptime_seconds": int(uptime.total_seconds()) if uptime else None,
        "since": stamp(instance.since),
    }


def totals(instances: Iterable[Instance]) -> dict[str, int]:
    counts = Counter(lifecycle(i) for i in instances)
    result = {name: counts.get(name, 0) for name in LIFECYCLES}
    result["total"] = sum(counts.values())
    return result


def status(
    stack: str,
    fleet: str,
    state: FleetState,
    instances: Sequence[Instance],
    policy: Any,
    now: datetime,
    refresh: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``refresh``: ``autoscaler.refresh.report`` of the fleet (versions, latest refresh, old vs new)."""
    return {
        "stack": stack,
        "fleet": fleet,
        "desired": state.desired,
        "min_size": policy.min_size,
        "max_size": policy.max_size,
        "suspended": state.suspended,
        "last_decision": {
            "at": stamp(state.last_decision_at),
            "reason": state.last_reason,
            "message": state.last_message,
            "last_scaling_at": stamp(state.last_scaling_at),
        },
        "capacity": capacity(instances),
        "totals": totals(instances),
        "refresh": refresh,
        "instances": [instance_row(i, now) for i in instances],
    }


def capacity(instances: Iterable[Instance]) -> dict[str, int]:
    """The counts the decisions use (an unhealthy instance is capacity on its way until the grace
    period replaces it), as opposed to ``totals``, which splits them by label for display."""
    counts = FleetCounts.of(instances)
    return {**dataclasses.asdict(counts), "capacity": counts.capacity}


def pool(fleet: str, size: int, instances: Sequence[Instance], now: datetime) -> dict[str, Any]:
    members = [i for i in instances if i.lifecycle in {Lifecycle.POOL, Lifecycle.WARMING}]
    return {
        "fleet": fleet,
        "size": size,
        "ready": sum(1 for i in members if i.pool_ready),
        "warming": sum(1 for i in members if i.lifecycle is Lifecycle.WARMING),
        "stopping": sum(1 for i in members if i.lifecycle is Lifecycle.POOL and i.state != "stopped"),
        "instances": [instance_row(i, now) for i in members],
    }


def metric_alarm_row(raw: MetricAlarmTypeDef, now: datetime) -> dict[str, Any]:
    metric = f"{raw.get('Namespace', '')}/{raw.get('MetricName', '')}"
    statistic = raw.get("Statistic") or raw.get("ExtendedStatistic")
    if statistic:
        metric += f" ({statistic})"
    comparison = raw.get("ComparisonOperator", "")
    evaluation = raw.get("EvaluationPeriods")
    return _alarm_row(
        raw,
        "metric",
        now,
        metric=metric,
        threshold=f"{COMPARISONS.get(comparison, comparison)} {raw['Threshold']:g}" if "Threshold" in raw else None,
        period=raw.get("Period"),
        datapoints=f"{raw.get('DatapointsToAlarm', evaluation)}/{evaluation}" if evaluation else None,
    )


def composite_alarm_row(raw: CompositeAlarmTypeDef, now: datetime) -> dict[str, Any]:
    return _alarm_row(
        raw, "composite", now, metric=raw.get("AlarmRule", ""), threshold=None, period=None, datapoints=None
    )


def _alarm_row(
    raw: MetricAlarmTypeDef | CompositeAlarmTypeDef,
    kind: str,
    now: datetime,
    *,
    metric: str,
    threshold: str | None,
    period: int | None,
    datapoints: str | None,
) -> dict[str, Any]:
    updated = raw.get("StateUpdatedTimestamp")
    return {
        "name": raw["AlarmName"],
        "type": kind,
        "state": raw.get("StateValue", ""),
        "metric": metric,
        "threshold": threshold,
        "period": period,
        "datapoints": datapoints,
        "changed": stamp(updated),
        "changed_ago": duration(now - updated) if updated else "-",
        "reason": raw.get("StateReason", ""),
        "actions": raw.get("ActionsEnabled", True) and bool(raw.get("AlarmActions")),
    }


def activity_row(raw: dict[str, Any]) -> dict[str, Any]:
    """An activity; one that replaced instances (a refresh's step, or the lifetime limit) says
    which, with their versions, in its message."""
    details = raw.get("details") or {}
    message = details.get("message", "")
    replaced = details.get("replaced")
    if replaced:
        summary = replacement_summary(replaced)
        message = summary if raw.get("reason") == "refresh" or not message else f"{message}; {summary}"
    return {
        "at": raw.get("at"),
        "cause": raw.get("cause"),
        "reason": raw.get("reason"),
        "from": raw.get("from"),
        "to": raw.get("to"),
        "status": raw.get("status"),
        "instances": raw.get("instance_ids", []),
        "message": message,
        "replaced": replaced,
        "details": details,
    }


def replacement_summary(replaced: dict[str, Any]) -> str:
    """``details.replaced`` of an activity (controller.py) in words: ``retired i-1 (v1); discarded
    i-2 (v1); for version 2 (refresh-ab12cd34)``."""
    versions = replaced.get("versions") or {}

    def named(ids: Sequence[str]) -> str:
        return ", ".join(f"{i} (v{versions[i]})" if versions.get(i) else f"{i} (no version)" for i in ids)

    parts = []
    if replaced.get("retired"):
        parts.append(f"retired {named(replaced['retired'])}")
    if replaced.get("discarded"):
        parts.append(f"discarded {named(replaced['discarded'])}")
    if replaced.get("refresh"):
        parts.append(f"for version {replaced.get('target_version')} ({replaced['refresh']})")
    else:
        parts.append("past the maximum instance lifetime")
    return "; ".join(parts)


def refresh_active(report: dict[str, Any]) -> bool:
    refresh = report.get("refresh")
    return refresh is not None and Refresh.from_json(refresh).active


def refresh_recent(report: dict[str, Any], now: datetime) -> bool:
    """Active, or ended less than ``RECENT_REFRESH`` ago: `fleetctl status` shows it."""
    refresh = report.get("refresh")
    if refresh is None:
        return False
    return refresh_active(report) or now - datetime.fromisoformat(refresh["updated_at"]) < RECENT_REFRESH


def wait_verdict(report: dict[str, Any]) -> str | None:
    """What ``refresh status --wait`` waits for: None while a refresh runs or a deploy's refresh is
    about to start (the next reconcile starts it); else how the latest one ended, or
    ``"nothing to replace"`` when there has been none and every instance runs the configured version."""
    refresh = report.get("refresh")
    if report.get("deploy_pending") or refresh_active(report):
        return None
    if refresh is None:
        return "nothing to replace"
    return str(refresh["status"])


def to_replace(
    instances: Sequence[Instance], refresh: dict[str, Any], now: datetime, max_lifetime_seconds: float = 0.0
) -> list[dict[str, Any]]:
    """The instances ``refresh`` (a proposed one: ``start --dry-run``) would replace, as rows."""
    proposed = Refresh.from_json(refresh)
    rollout = rollout_of(proposed, proposed.target_version, max_lifetime_seconds)
    return [instance_row(i, now) for i in stale_members(instances, rollout, now)]


def parse_since(text: str, now: datetime) -> datetime:
    """``90s``, ``15m``, ``1h``, ``2d``, ``1w`` ago, or an ISO-8601 time (UTC if it has no zone)."""
    match = _SINCE.match(text)
    if match:
        amount, unit = match.groups()
        return now - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r}: expected a duration like 30m, 1h, 2d or an ISO-8601 time") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
