"""Small builders for the pure unit tests: settings, policies, instances, snapshots
(events: tests/support/events.py).

Settings and policies start from the template's own defaults (``template.yaml`` resolved the way
CloudFormation would), so a test never runs with values nobody deploys.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from autoscaler.model import (
    Direction,
    FleetState,
    Instance,
    Lifecycle,
    Panic,
    Recommendation,
    ScalingPolicy,
    Snapshot,
    TargetHealth,
)
from autoscaler.runtime import policy_from_settings
from autoscaler.settings import Settings
from autoscaler.signals import Point, SignalData

from tests.support.template_settings import template_settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
"""A fixed, aware UTC origin; every test time is an offset from it."""
DECIDED_AT = T0 + timedelta(seconds=600)
"""When the snapshots' metric windows end (the unit tests decide at this time)."""
_SETTINGS_FIELDS = set(Settings.model_fields)


def settings(**overrides: Any) -> Settings:
    """The template's settings; ``targets`` overrides only the targets it names."""
    if "targets" in overrides:
        overrides["targets"] = {**template_settings().targets, **overrides["targets"]}
    return template_settings(**overrides)


def policy(**overrides: Any) -> ScalingPolicy:
    """The deployed policy (template defaults); settings fields and policy fields may be overridden."""
    own = {k: v for k, v in overrides.items() if k in _SETTINGS_FIELDS}
    rest = {k: v for k, v in overrides.items() if k not in _SETTINGS_FIELDS}
    return replace(policy_from_settings(settings(**own)), **rest)


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
    version: str | None = None,
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
        version=version,
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


def recommendations(*pairs: tuple[float, int]) -> tuple[Recommendation, ...]:
    """``(seconds after T0, desired)`` pairs."""
    return tuple(Recommendation(T0 + timedelta(seconds=at), desired) for at, desired in pairs)


def series(value: float, recent: float | None = None, *, at: datetime = DECIDED_AT, seconds: int = 60,
           period: int = 10, recent_seconds: int = 30) -> tuple[Point, ...]:  # fmt: skip
    """One instance's datapoints, oldest first, over the ``seconds`` before ``at``: ``value``, and
    ``recent`` in the last ``recent_seconds`` when given."""
    points = []
    for k in range(seconds // period, 0, -1):
        stamp = at - timedelta(seconds=k * period)
        fresh = recent is not None and k * period <= recent_seconds
        points.append((stamp, recent if fresh and recent is not None else value))
    return tuple(points)


def per_instance(ids: list[str], value: float | None, recent: float | None = None) -> SignalData:
    """Every instance in ``ids`` reporting ``value`` per period (``recent`` in the newest periods)."""
    if value is None:
        return SignalData()
    return SignalData(per_instance={i: series(value, recent) for i in ids})


def snapshot(
    in_service: int = 1,
    *,
    cpu: float | None = None,
    requests: float | None = None,
    recent_cpu: float | None = None,
    alb_requests: float | None = None,
    offered: float | None = None,
    backlog: float | None = None,
    booting_count: int = 0,
    desired: int | None = None,
    active: frozenset[Direction] | set[Direction] = frozenset(),
    suspended: bool = False,
    panic: Panic | None = None,
    history: tuple[Recommendation, ...] = (),
    extra: tuple[Instance, ...] = (),
    cause: str = "",
) -> Snapshot:
    """A fleet of ``in_service`` serving and ``booting_count`` booting instances, every serving one
    reporting ``cpu``, ``requests``, ``offered`` (load) and ``backlog`` (seconds) per period (per
    host, as the hosts publish them)."""
    hosts = serving(in_service)
    ids = [i.instance_id for i in hosts]
    signals: dict[str, SignalData] = {
        "cpu": per_instance(ids, cpu, recent_cpu),
        "requests": per_instance(ids, requests),
        "offered_load": per_instance(ids, offered),
        "backlog": per_instance(ids, backlog),
    }
    if alb_requests is not None:
        minute = DECIDED_AT.replace(second=0) - timedelta(minutes=2)
        signals["alb_requests"] = SignalData(fleet=((minute, alb_requests),))
    return Snapshot(
        instances=(*hosts, *booting(booting_count), *extra),
        state=FleetState(desired=desired, suspended=suspended, recommendations=history, panic=panic),
        signals=signals,
        active=frozenset(active),
        cause=cause,
    )
