"""Plain, frozen data the pure core works on: instances, fleet snapshots, decisions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING

from autoscaler.signals import HostReport, SignalData, SignalSpec

if TYPE_CHECKING:
    from autoscaler.decide import SignalRecommendation
    from autoscaler.refresh import Refresh


class Lifecycle(StrEnum):
    """Where an instance stands in the fleet, as recorded in its lifecycle tag."""

    WARMING = "warming"  # launched for the warm pool; installing the worker, then stopped
    POOL = "pool"  # initialized and stopped (or stopping), ready to start
    SERVICE = "service"  # meant to serve: booting, registered, in service or unhealthy
    DRAINING = "draining"  # deregistered, waiting for connections to drain


class TargetHealth(StrEnum):
    """ELB target health, reduced to what the control plane acts on."""

    HEALTHY = "healthy"
    INITIAL = "initial"
    UNHEALTHY = "unhealthy"
    DRAINING = "draining"
    UNUSED = "unused"  # not registered (or stopped)
    UNAVAILABLE = "unavailable"


class Direction(StrEnum):
    OUT = "out"
    IN = "in"


def serving(lifecycle: str, state: str, health: str) -> bool:
    """The one rule for "in service": meant to serve, running, and healthy in the target group.

    decide, fleetctl and the twin all count with it."""
    return lifecycle == Lifecycle.SERVICE and state == "running" and health == TargetHealth.HEALTHY


@dataclass(frozen=True)
class Instance:
    """One fleet instance as EC2 and the target group see it."""

    instance_id: str
    state: str  # EC2 state name: pending, running, stopping, stopped, shutting-down, terminated
    lifecycle: Lifecycle
    subnet_id: str
    availability_zone: str
    launch_time: datetime
    ready: bool  # worker installed and answering /ping through nginx (the instance's own tag)
    health: TargetHealth = TargetHealth.UNUSED
    # When the instance last entered its lifecycle (tag), for grace periods and drain timeouts.
    since: datetime | None = None
    # Its launch-template version (EC2's aws:ec2launchtemplate:version tag); None if not launched from one.
    version: str | None = None

    @property
    def alive(self) -> bool:
        return self.state not in {"shutting-down", "terminated"}

    @property
    def in_service(self) -> bool:
        return serving(self.lifecycle, self.state, self.health)

    @property
    def booting(self) -> bool:
        return self.lifecycle is Lifecycle.SERVICE and self.alive and not self.in_service

    @property
    def pool_ready(self) -> bool:
        """A stopped, initialized instance that can be started to serve."""
        return self.lifecycle is Lifecycle.POOL and self.state == "stopped"


@dataclass(frozen=True)
class Recommendation:
    at: datetime
    desired: int


@dataclass(frozen=True)
class Panic:
    """Panic mode (decide.py): since when, and the latest decision whose reading called for it."""

    since: datetime
    seen_at: datetime
    added: int = 0  # instances its steps added (the entry's and any further one's)


@dataclass(frozen=True)
class FleetState:
    """What the state table remembers between invocations."""

    desired: int | None = None
    suspended: bool = False
    last_scaling_at: datetime | None = None
    # The latest scale-out, unless a scale-in came after it (decide's follow-through).
    last_scale_out_at: datetime | None = None
    recommendations: tuple[Recommendation, ...] = ()
    last_reason: str | None = None
    last_message: str | None = None
    last_decision_at: datetime | None = None
    # Alarm name -> its latest known transition to OK or INSUFFICIENT_DATA (from notifications).
    alarms_cleared_at: Mapping[str, datetime] = field(default_factory=dict)
    panic: Panic | None = None
    # What the latest panic added, still held after the panic ended: decide's release may give
    # it back without a scale-in alarm, as far as the arrivals allow. 0 after the next resize.
    panic_held: int = 0
    # The latest instance refresh (refresh.py): the active one, or the last one that ended.
    refresh: Refresh | None = None
    # The hosts' recent demand reports: each run counts them beside CloudWatch's datapoints, so
    # consecutive reports, and reports of several hosts, add up before CloudWatch shows them.
    reports: tuple[HostReport, ...] = ()


@dataclass(frozen=True)
class FleetCounts:
    """How many instances serve, are on their way, wait in the pool: the one rule that decide,
    the twin's observer and fleetctl all count with."""

    in_service: int
    booting: int  # service lifecycle, alive, not (yet, or no longer) healthy: capacity on its way
    pool: int
    warming: int = 0  # installing, to be stopped into the pool

    @property
    def capacity(self) -> int:
        """Instances serving or on their way to serving."""
        return self.in_service + self.booting

    @classmethod
    def of(cls, instances: Iterable[Instance]) -> FleetCounts:
        listed = tuple(instances)
        return cls(
            in_service=sum(1 for i in listed if i.in_service),
            booting=sum(1 for i in listed if i.booting),
            pool=sum(1 for i in listed if i.lifecycle is Lifecycle.POOL and i.alive),
            warming=sum(1 for i in listed if i.lifecycle is Lifecycle.WARMING and i.alive),
        )


@dataclass(frozen=True)
class Snapshot:
    """Everything a decision needs, read once; the decision itself does no I/O."""

    instances: tuple[Instance, ...]
    state: FleetState
    # What each signal's metric query returned (signal name -> data), read at decision time.
    signals: Mapping[str, SignalData] = field(default_factory=dict)
    # Directions whose scaling alarms are currently in ALARM (or whose notification triggered us).
    active: frozenset[Direction] = field(default_factory=frozenset)
    cause: str = ""  # what triggered the decision: an alarm name, "schedule", "manual"

    @cached_property
    def counts(self) -> FleetCounts:
        return FleetCounts.of(self.instances)

    @property
    def in_service(self) -> int:
        return self.counts.in_service

    @property
    def in_service_ids(self) -> tuple[str, ...]:
        return tuple(i.instance_id for i in self.instances if i.in_service)

    @property
    def booting(self) -> int:
        return self.counts.booting

    @property
    def pool(self) -> int:
        return self.counts.pool

    @property
    def capacity(self) -> int:
        """Instances serving or on their way to serving."""
        return self.counts.capacity


@dataclass(frozen=True)
class ScalingPolicy:
    """How decisions are sized; built from the settings (runtime.policy_from_settings) only."""

    min_size: int
    max_size: int
    signals: tuple[SignalSpec, ...]
    tolerance: float
    # A scale-in sizes for at most (1 - this) x each signal's target (decide.recommend).
    scale_in_headroom: float
    # A resize must move by at least this fraction of the current capacity (never less than one
    # instance): irrelevant at 1-10 instances, it keeps noise from nudging a large fleet.
    min_step_fraction: float
    scale_in_stabilization_seconds: float
    # After a scale-out, a decision may scale out again without an alarm in ALARM for this long.
    scale_out_follow_through_seconds: float
    # After a scale-out, no scale-in for this long; after a scale-in, a scale-out must hold over
    # the long window for this long.
    reversal_window_seconds: float
    # Panic mode: see Settings.
    panic_threshold: float
    panic_window_seconds: int
    panic_stable_seconds: float
    backlog_drain_seconds: float
    # Per decision, scale out to at most max(factor x current, current + step) (the HPA's limit).
    scale_out_factor: float = 2.0
    scale_out_step: int = 4


@dataclass(frozen=True)
class Decision:
    """A desired capacity and why; ``changed`` says whether it differs from the current one."""

    desired: int
    previous: int
    reason: str
    message: str
    recommendation: int | None = None
    panic: Panic | None = None  # panic mode after this decision
    # Each signal's recommendation, when the decision read them (None: it did not).
    signals: tuple[SignalRecommendation, ...] | None = None

    @property
    def changed(self) -> bool:
        return self.desired != self.previous

    @property
    def direction(self) -> Direction | None:
        if self.desired > self.previous:
            return Direction.OUT
        if self.desired < self.previous:
            return Direction.IN
        return None
