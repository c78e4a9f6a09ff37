"""Small builders for the pure unit tests: instances, snapshots, policies (events: tests/support/events.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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

T0 = datetime(2026, 1, 1, tzinfo=UTC)
"""A fixed, aware UTC origin; every test time is an offset from it."""


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
    recent_cpu: float | None = None,
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
        metrics=Metrics(cpu_percent=cpu, requests_per_target=requests, cpu_recent_percent=recent_cpu),
        state=FleetState(desired=desired, suspended=suspended, recommendations=history),
        active=frozenset(active),
    )
