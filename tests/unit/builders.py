"""Small builders for the pure unit tests: events from tests/events/, instances, snapshots, policies.

Owned by the unit tests for now; they are meant to move to tests/support/ later.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from autoscaler.model import (
    Direction,
    FleetState,
    Instance,
    Lifecycle,
    Metrics,
    Recommendation,
    ScalingPolicy,
    Snapshot,
    TargetHealth,
)

EVENTS = Path(__file__).resolve().parent.parent / "events"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
"""A fixed, aware UTC origin; every test time is an offset from it."""


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of ``tests/events/<name>`` (``.json`` optional)."""
    filename = name if name.endswith(".json") else f"{name}.json"
    return json.loads((EVENTS / filename).read_text())


def event_files() -> list[str]:
    return sorted(p.name for p in EVENTS.glob("*.json"))


def sns_message(event: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """The alarm notification inside an SNS record, decoded."""
    return json.loads(event["Records"][index]["Sns"]["Message"])


def with_raw_message(event: dict[str, Any], raw: str, index: int = 0) -> dict[str, Any]:
    """A copy of ``event`` whose record ``index`` carries ``raw`` verbatim as ``Sns.Message``."""
    result = copy.deepcopy(event)
    result["Records"][index]["Sns"]["Message"] = raw
    return result


def sns_alarm_event(
    name: str = "fleet-cpu-high",
    new_state: str = "ALARM",
    old_state: str | None = "OK",
    time: str = "2026-01-01T00:10:00.000+0000",
    message_id: str = "6f2c3a3e-5d1b-5a0e-9c43-0b1d2e3f4a01",
    *,
    template: str = "sns-alarm-cpu-high.json",
    drop: tuple[str, ...] = (),
    **overrides: Any,
) -> dict[str, Any]:
    """An SNS event from ``template`` with the alarm fields overridden (``drop`` removes keys)."""
    event = load_event(template)
    message = sns_message(event)
    message.update(AlarmName=name, NewStateValue=new_state, StateChangeTime=time, **overrides)
    message["AlarmArn"] = f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"
    if old_state is None:
        message.pop("OldStateValue", None)
    else:
        message["OldStateValue"] = old_state
    for key in drop:
        message.pop(key, None)
    sns = event["Records"][0]["Sns"]
    sns["MessageId"] = message_id
    sns["Subject"] = f'{new_state}: "{name}" in EU (Ireland)'
    sns["Message"] = json.dumps(message, separators=(",", ":"))
    return event


def sns_batch(*events: dict[str, Any]) -> dict[str, Any]:
    """One SNS event holding the records of several."""
    return {"Records": [record for event in events for record in event["Records"]]}


def direct_alarm_event(
    name: str = "fleet-cpu-high",
    new_state: str = "ALARM",
    old_state: str | None = "OK",
    time: str = "2026-01-01T00:10:00.000+0000",
) -> dict[str, Any]:
    """A direct CloudWatch alarm-action event (``source: aws.cloudwatch``) with fields overridden."""
    event = load_event("cloudwatch-alarm-direct.json")
    data = event["alarmData"]
    data["alarmName"] = name
    data["state"]["value"] = new_state
    data["state"]["timestamp"] = time
    event["alarmArn"] = f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"
    if old_state is None:
        data.pop("previousState", None)
    else:
        data["previousState"]["value"] = old_state
    return event


# --- domain objects ---------------------------------------------------------------------------

_ZONES = {"a": "eu-west-1a", "b": "eu-west-1b", "c": "eu-west-1c"}


def instance(
    instance_id: str,
    *,
    state: str = "running",
    lifecycle: Lifecycle = Lifecycle.SERVICE,
    zone: str = "a",
    ready: bool = True,
    health: TargetHealth | None = None,
    launched: float = 0.0,
    since: float | None = None,
) -> Instance:
    """An instance in zone ``a``/``b``/``c`` (subnet ``subnet-<zone>``), launched ``launched`` s after T0.

    Health defaults to HEALTHY for a running service instance and UNUSED otherwise; ``since`` is
    seconds after T0 (None: the launch time is used).
    """
    if health is None:
        healthy = lifecycle is Lifecycle.SERVICE and state == "running"
        health = TargetHealth.HEALTHY if healthy else TargetHealth.UNUSED
    return Instance(
        instance_id=instance_id,
        state=state,
        lifecycle=lifecycle,
        subnet_id=f"subnet-{zone}",
        availability_zone=_ZONES[zone],
        launch_time=T0 + timedelta(seconds=launched),
        ready=ready,
        health=health,
        since=None if since is None else T0 + timedelta(seconds=since),
    )


def serving(count: int, *, zones: str = "ab", prefix: str = "i-svc") -> list[Instance]:
    """``count`` healthy running service instances, round-robin over ``zones``."""
    return [instance(f"{prefix}{n}", zone=zones[n % len(zones)], launched=n) for n in range(count)]


def booting(count: int, *, zones: str = "ab", prefix: str = "i-boot") -> list[Instance]:
    return [
        instance(f"{prefix}{n}", state="pending", zone=zones[n % len(zones)], launched=600 + n) for n in range(count)
    ]


def pool(count: int, *, zones: str = "ab", prefix: str = "i-pool") -> list[Instance]:
    return [
        instance(f"{prefix}{n}", state="stopped", lifecycle=Lifecycle.POOL, zone=zones[n % len(zones)], launched=n)
        for n in range(count)
    ]


def policy(**overrides: Any) -> ScalingPolicy:
    """The template defaults: 1..10 instances, CPU 70 %, 84 requests per target, 10 % tolerance."""
    values: dict[str, Any] = {
        "min_size": 1,
        "max_size": 10,
        "cpu_target": 70.0,
        "requests_per_target_target": 84.0,
    }
    values.update(overrides)
    return ScalingPolicy(**values)


def recommendations(*pairs: tuple[float, int]) -> tuple[Recommendation, ...]:
    """``(seconds after T0, desired)`` pairs."""
    return tuple(Recommendation(T0 + timedelta(seconds=at), desired) for at, desired in pairs)


def snapshot(
    in_service: int = 1,
    *,
    cpu: float | None = None,
    requests: float | None = None,
    booting_count: int = 0,
    desired: int | None = None,
    active: frozenset[Direction] | set[Direction] = frozenset(),
    suspended: bool = False,
    history: tuple[Recommendation, ...] = (),
    extra: tuple[Instance, ...] = (),
) -> Snapshot:
    """A fleet of ``in_service`` serving and ``booting_count`` booting instances and its metrics."""
    return Snapshot(
        instances=(*serving(in_service), *booting(booting_count), *extra),
        metrics=Metrics(cpu_percent=cpu, requests_per_target=requests),
        state=FleetState(desired=desired, suspended=suspended, recommendations=history),
        active=frozenset(active),
    )
