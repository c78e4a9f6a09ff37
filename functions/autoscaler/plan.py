"""Reconciliation as a pure function: observed instances + desired capacity -> the actions to take.

Level-triggered: the plan depends only on what EC2, ELB and the tags show now, so a run that
crashed half-way is finished by the next one. Every change is tagged *before* it is made
(lifecycle first, then start/stop/terminate), so an interrupted step is always recognisable.

Termination policy on scale-in (documented in docs/design.md):
1. instances that are not in service yet (booting or unhealthy) go first;
2. then, one at a time, from the availability zone that has the most serving instances;
3. then the newest instance of that zone.
Scale-in never goes below ``desired``, which ``decide`` keeps at or above the minimum size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from autoscaler.model import Instance, Lifecycle, TargetHealth


@dataclass(frozen=True)
class PlanLimits:
    subnet_ids: tuple[str, ...]
    warm_pool_size: int
    health_grace_seconds: float
    warmup_timeout_seconds: float
    drain_timeout_seconds: float
    # EC2 Auto Scaling's MaxGroupPreparedCapacity: at most this many instances in service and in
    # the pool together (0: no bound, the pool holds warm_pool_size).
    max_prepared_capacity: int = 0

    def pool_size(self, desired: int) -> int:
        if self.max_prepared_capacity <= 0:
            return self.warm_pool_size
        return min(self.warm_pool_size, max(0, self.max_prepared_capacity - desired))


@dataclass(frozen=True)
class Plan:
    reclaim: tuple[str, ...] = ()  # draining but still running: back into service, re-registered
    start: tuple[str, ...] = ()  # pool (or stopped service) instances to start into service
    spare_pool: tuple[str, ...] = ()  # further pool instances, tried when a start hits a capacity error
    launch: tuple[tuple[str, int], ...] = ()  # (subnet, count) of new service instances
    register: tuple[str, ...] = ()  # running service instances the target group does not know
    drain: tuple[str, ...] = ()  # scale-in victims: deregister, then wait for draining
    replace: tuple[str, ...] = ()  # unhealthy past the grace period: deregister and terminate
    to_pool: tuple[str, ...] = ()  # drained or warmed-up instances to stop into the warm pool
    terminate: tuple[str, ...] = ()  # drained with no room in the pool, failed warm-ups, pool excess
    launch_warming: tuple[tuple[str, int], ...] = ()  # (subnet, count) of new warm-pool instances
    retag_pool: tuple[str, ...] = ()  # stopped instances whose tag still says draining/warming

    @property
    def empty(self) -> bool:
        return not any(getattr(self, name) for name in self.__dataclass_fields__)

    def summary(self) -> dict[str, object]:
        return {name: value for name, value in self.__dict__.items() if value}


def _expired(instance: Instance, now: datetime, seconds: float) -> bool:
    since = instance.since or instance.launch_time
    return now - since >= timedelta(seconds=seconds)


def plan(instances: Sequence[Instance], desired: int, limits: PlanLimits, now: datetime) -> Plan:
    alive = [i for i in instances if i.alive]
    by_lifecycle: dict[Lifecycle, list[Instance]] = {lc: [] for lc in Lifecycle}
    for instance in alive:
        by_lifecycle[instance.lifecycle].append(instance)

    # Service instances that never became healthy (or stopped being healthy) past the grace period.
    replace = [
        i
        for i in by_lifecycle[Lifecycle.SERVICE]
        if i.state == "running" and not i.in_service and _expired(i, now, limits.health_grace_seconds)
    ]
    replaced = {i.instance_id for i in replace}
    service = [i for i in by_lifecycle[Lifecycle.SERVICE] if i.instance_id not in replaced]

    draining = by_lifecycle[Lifecycle.DRAINING]
    pool = by_lifecycle[Lifecycle.POOL]
    reclaim: list[Instance] = []
    start: list[Instance] = [i for i in service if i.state in {"stopped", "stopping"}]
    launch: list[str] = []
    drain: list[Instance] = []

    need = desired - len(service)
    if need > 0:
        # Cheapest capacity first: draining instances still running, then the warm pool.
        reclaim = [i for i in draining if i.state == "running"][:need]
        need -= len(reclaim)
        zones = Counter(i.availability_zone for i in [*service, *reclaim])
        chosen = _pick_balanced([i for i in pool if i.pool_ready], need, zones)
        start.extend(chosen)
        need -= len(chosen)
        subnet_counts = Counter(i.subnet_id for i in [*service, *reclaim, *chosen])
        launch = _spread(limits.subnet_ids, need, subnet_counts)
    elif need < 0:
        drain = choose_victims(service, -need)

    drained = {i.instance_id for i in drain}
    start = [i for i in start if i.instance_id not in drained]  # a stopped victim is not restarted
    taken = {i.instance_id for i in [*reclaim, *start]}
    # Spares only matter to a start that hits a capacity error.
    spare_pool = [i.instance_id for i in pool if i.pool_ready and i.instance_id not in taken] if start else []
    pool_left = [i for i in pool if i.instance_id not in taken]
    drain_ids = {i.instance_id for i in drain}
    restart_ids = {i.instance_id for i in start}

    register = [
        i.instance_id
        for i in [*service, *reclaim]
        if i.state == "running"
        and i.instance_id not in drain_ids
        and (i.health in {TargetHealth.UNUSED, TargetHealth.DRAINING} or i.lifecycle is Lifecycle.DRAINING)
    ]

    to_pool: list[str] = []
    terminate: list[str] = []
    retag_pool: list[str] = []
    size = limits.pool_size(desired)
    # Seats in the warm pool go to initialized instances first (already in the pool, then drained,
    # then finished warm-ups), and only then to warm-ups still installing: reusing an instance
    # beats paying for a fresh install.
    seated = len(pool_left)
    # Victims drained now come back to the pool like the draining ones below: hold their seats,
    # or the pool would launch a warm-up only to terminate the surplus minutes later.
    seated += sum(1 for i in drain if i.ready)
    reclaimed = {i.instance_id for i in reclaim}
    for instance in draining:
        if instance.instance_id in reclaimed:
            continue
        finished = instance.health in {TargetHealth.UNUSED, TargetHealth.UNAVAILABLE} or _expired(
            instance, now, limits.drain_timeout_seconds
        )
        if instance.state in {"stopped", "stopping"}:
            retag_pool.append(instance.instance_id)
            seated += 1
        elif not finished:
            seated += 1 if instance.ready else 0  # likely back in the pool soon: hold its seat
        elif instance.ready and seated < size:
            to_pool.append(instance.instance_id)
            seated += 1
        else:
            terminate.append(instance.instance_id)

    installing: list[Instance] = []
    for instance in by_lifecycle[Lifecycle.WARMING]:
        if instance.ready and seated < size:
            (to_pool if instance.state == "running" else retag_pool).append(instance.instance_id)
            seated += 1
        elif instance.ready or _expired(instance, now, limits.warmup_timeout_seconds):
            terminate.append(instance.instance_id)
        else:
            installing.append(instance)
    surplus = choose_victims(installing, seated + len(installing) - size)
    terminate.extend(i.instance_id for i in surplus)

    # Pool members running (an interrupted stop, or a manual start) go back to sleep.
    to_pool.extend(i.instance_id for i in pool_left if i.state == "running")

    # Keep the warm pool at its size: launch warm-ups for a deficit, terminate a stopped excess.
    launch_warming: list[str] = []
    filled = seated + len(installing) - len(surplus)
    if filled < size:
        subnet_counts = Counter(i.subnet_id for i in [*pool_left, *installing])
        launch_warming = _spread(limits.subnet_ids, size - filled, subnet_counts)
    elif len(pool_left) > size:
        stopped = [i for i in pool_left if i.state == "stopped"]
        victims = choose_victims(stopped, len(pool_left) - size)
        terminate.extend(i.instance_id for i in victims)
        spare_pool = [i for i in spare_pool if i not in {v.instance_id for v in victims}]

    return Plan(
        reclaim=tuple(i.instance_id for i in reclaim),
        start=tuple(i.instance_id for i in start),
        spare_pool=tuple(spare_pool),
        launch=_group(launch),
        register=tuple(register),
        drain=tuple(i.instance_id for i in drain),
        replace=tuple(i.instance_id for i in replace),
        to_pool=tuple(i for i in to_pool if i not in restart_ids),
        terminate=tuple(terminate),
        launch_warming=_group(launch_warming),
        retag_pool=tuple(retag_pool),
    )


def choose_victims(candidates: Iterable[Instance], count: int) -> list[Instance]:
    """Apply the termination policy (module docstring) to pick ``count`` instances."""
    remaining = list(candidates)
    victims: list[Instance] = []
    while remaining and len(victims) < count:
        zones = Counter(i.availability_zone for i in remaining)
        victim = max(
            remaining,
            key=lambda i: (not i.in_service, zones[i.availability_zone], i.launch_time, i.instance_id),
        )
        victims.append(victim)
        remaining.remove(victim)
    return victims


def _pick_balanced(candidates: Sequence[Instance], count: int, zones: Counter[str]) -> list[Instance]:
    """Pick instances one at a time from the zone that has the fewest so far."""
    remaining = sorted(candidates, key=lambda i: (i.launch_time, i.instance_id))
    chosen: list[Instance] = []
    counts = Counter(zones)
    while remaining and len(chosen) < count:
        pick = min(remaining, key=lambda i: counts[i.availability_zone])
        chosen.append(pick)
        counts[pick.availability_zone] += 1
        remaining.remove(pick)
    return chosen


def _spread(subnets: Sequence[str], count: int, existing: Counter[str]) -> list[str]:
    """One subnet per new instance, filling the least used subnet first."""
    counts = Counter({s: existing.get(s, 0) for s in subnets})
    result: list[str] = []
    for _ in range(max(count, 0)):
        subnet = min(subnets, key=lambda s: (counts[s], subnets.index(s)))
        result.append(subnet)
        counts[subnet] += 1
    return result


def _group(subnets: Sequence[str]) -> tuple[tuple[str, int], ...]:
    counts = Counter(subnets)
    return tuple((subnet, counts[subnet]) for subnet in dict.fromkeys(subnets))
