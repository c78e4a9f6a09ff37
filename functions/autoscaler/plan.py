"""Reconciliation as a pure function: observed instances + desired capacity -> the actions to take.

Level-triggered: the plan depends only on what EC2, ELB and the tags show now, so a run that
crashed half-way is finished by the next one. Every change is tagged *before* it is made
(lifecycle first, then start/stop/terminate), so an interrupted step is always recognisable.

Termination policy on scale-in (documented in docs/design.md):
1. instances that are not in service yet (booting or unhealthy) go first;
2. then, while a refresh runs, stale instances (an old launch-template version, or past their
   lifetime) before current ones: EC2 Auto Scaling's "oldest launch template" policy;
3. then, one at a time, from the availability zone that has the most serving instances;
4. then the newest instance of that zone.
Scale-in never goes below ``desired``, which ``decide`` keeps at or above the minimum size.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from autoscaler.model import Instance, Lifecycle, TargetHealth
from autoscaler.refresh import Rollout


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
        return pool_seats(self.warm_pool_size, self.max_prepared_capacity, desired)


def pool_seats(warm_pool_size: int, max_prepared_capacity: int, desired: int) -> int:
    """How many instances the warm pool holds at ``desired`` in service (the twin counts with it too)."""
    if max_prepared_capacity <= 0:
        return warm_pool_size
    return min(warm_pool_size, max(0, max_prepared_capacity - desired))


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
    # What the lists above do for a refresh or the lifetime limit (activity history; no extra action):
    retire: tuple[str, ...] = ()  # stale instances in ``drain``: replaced, not scaled in
    discard: tuple[str, ...] = ()  # stale instances in ``terminate`` (pool, warm-ups, drained)
    gave_up: tuple[str, ...] = ()  # in ``replace`` or ``terminate``: never became healthy or ready

    @property
    def empty(self) -> bool:
        return not any(getattr(self, name) for name in self.__dataclass_fields__)

    def summary(self) -> dict[str, object]:
        return {name: value for name, value in self.__dict__.items() if value}


def _expired(instance: Instance, now: datetime, seconds: float) -> bool:
    since = instance.since or instance.launch_time
    return now - since >= timedelta(seconds=seconds)


def plan(
    instances: Sequence[Instance],
    desired: int,
    limits: PlanLimits,
    now: datetime,
    rollout: Rollout | None = None,
) -> Plan:
    """The actions that converge the fleet to ``desired`` in service plus the warm pool, and,
    under ``rollout``, replace stale instances (refresh.py): the pool first, then in service,
    surge first, within the refresh's healthy-percentage and surge bounds."""
    rollout = rollout or Rollout()
    alive = [i for i in instances if i.alive]
    stale = {i.instance_id for i in alive if rollout.stale(i, now)}
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
    current = [i for i in service if i.instance_id not in stale]

    draining = by_lifecycle[Lifecycle.DRAINING]
    pool = by_lifecycle[Lifecycle.POOL]
    # Pool first: instances in service are replaced once no stale one is left to warm or pool.
    rolling = bool(stale) and not any(i.instance_id in stale for i in [*pool, *by_lifecycle[Lifecycle.WARMING]])
    reclaim: list[Instance] = []
    start: list[Instance] = [i for i in service if i.state in {"stopped", "stopping"}]
    launch: list[str] = []
    drain: list[Instance] = []
    retire: list[Instance] = []

    need = desired - len(service)
    # Surge: new-version instances beyond the capacity need, at most desired + max_surge meant
    # to serve (EC2 Auto Scaling's maximum healthy percentage, Kubernetes' maxSurge).
    surge = 0
    if rolling:
        room = desired + rollout.preferences.surge(desired) - len(service)
        surge = max(0, min(desired - len(current), room) - max(need, 0))
        # Stale instances beyond desired leave by retiring (below), within min healthy; only
        # current ones beyond desired are scaled in.
        drain = choose_victims(current, len(current) - desired)
    elif need < 0:
        drain = choose_victims(service, -need, stale)
    bring = max(need, 0) + surge
    if bring > 0:
        # Cheapest capacity first: draining instances still running, then the warm pool; a
        # surge brings only current-version instances, a capacity need takes stale ones too.
        running_draining = sorted((i for i in draining if i.state == "running"), key=lambda i: i.instance_id in stale)
        reclaim = [i for i in running_draining if i.instance_id not in stale][:bring]
        if not rolling:  # while rolling, retired instances must not come back
            reclaim += [i for i in running_draining if i.instance_id in stale][: max(0, max(need, 0) - len(reclaim))]
        bring -= len(reclaim)
        zones = Counter(i.availability_zone for i in [*service, *reclaim])
        ready_pool = [i for i in pool if i.pool_ready]
        chosen = _pick_balanced([i for i in ready_pool if i.instance_id not in stale], bring, zones)
        stale_allowed = max(0, max(need, 0) - len(reclaim) - len(chosen))
        chosen += _pick_balanced(
            [i for i in ready_pool if i.instance_id in stale], min(stale_allowed, bring - len(chosen)), zones
        )
        start.extend(chosen)
        bring -= len(chosen)
        unmet = max(0, max(need, 0) - len(reclaim) - len(chosen))  # capacity still missing
        surge_left = bring - unmet
        if rolling and surge_left > 0:
            # A surge is not urgent: a finished warm-up still running serves at once (no stop and
            # start), and while a current instance is on its way to the pool the surge waits for
            # it rather than paying for a launch that installs from scratch.
            installed = [
                i
                for i in by_lifecycle[Lifecycle.WARMING]
                if i.ready and i.state == "running" and i.instance_id not in stale
            ][:surge_left]
            reclaim += installed
            surge_left -= len(installed)
            coming = [*pool, *by_lifecycle[Lifecycle.WARMING]]
            if any(i.instance_id not in stale and not i.pool_ready and i not in installed for i in coming):
                surge_left = 0
            bring = unmet + surge_left
        subnet_counts = Counter(i.subnet_id for i in [*service, *reclaim, *chosen])
        launch = _spread(limits.subnet_ids, bring, subnet_counts)

    if rolling:
        # Retire stale instances while at least min_healthy % of desired stays in service,
        # counting replacements only once they are past their warm-up.
        scaled_in = {i.instance_id for i in drain}
        old = [i for i in service if i.instance_id in stale and i.instance_id not in scaled_in]
        floor = math.ceil(rollout.preferences.min_healthy_percent * desired / 100)
        available = sum(
            1
            for i in service
            if i.instance_id not in scaled_in and i.in_service and (i.instance_id in stale or rollout.warmed(i, now))
        )
        retire = choose_victims([i for i in old if i.in_service], max(0, available - floor))

    drained = {i.instance_id for i in [*drain, *retire]}
    start = [i for i in start if i.instance_id not in drained]  # a stopped victim is not restarted
    taken = {i.instance_id for i in [*reclaim, *start]}
    # Spares only matter to a start that hits a capacity error.
    spare_pool = [i.instance_id for i in pool if i.pool_ready and i.instance_id not in taken] if start else []
    pool_left = [i for i in pool if i.instance_id not in taken]
    restart_ids = {i.instance_id for i in start}

    register = [
        i.instance_id
        for i in [*service, *reclaim]
        if i.state == "running"
        and i.instance_id not in drained
        and (i.health in {TargetHealth.UNUSED, TargetHealth.DRAINING} or i.lifecycle is Lifecycle.DRAINING)
    ]

    to_pool: list[str] = []
    terminate: list[str] = []
    retag_pool: list[str] = []
    size = limits.pool_size(desired)
    # Seats in the warm pool go to initialized current instances first (already in the pool,
    # then drained, then finished warm-ups), and only then to warm-ups still installing:
    # reusing an instance beats paying for a fresh install. Stale instances get no seat.
    fresh_pool = [i for i in pool_left if i.instance_id not in stale]
    seated = len(fresh_pool)
    # Victims drained now come back to the pool like the draining ones below: hold their seats,
    # or the pool would launch a warm-up only to terminate the surplus minutes later.
    seated += sum(1 for i in drain if i.ready and i.instance_id not in stale)
    reclaimed = {i.instance_id for i in reclaim}
    for instance in draining:
        if instance.instance_id in reclaimed:
            continue
        finished = instance.health in {TargetHealth.UNUSED, TargetHealth.UNAVAILABLE} or _expired(
            instance, now, limits.drain_timeout_seconds
        )
        fresh = instance.instance_id not in stale
        if instance.state in {"stopped", "stopping"}:
            (retag_pool if fresh else terminate).append(instance.instance_id)
            seated += 1 if fresh else 0
        elif not finished:
            seated += 1 if instance.ready and fresh else 0  # likely back in the pool soon: hold its seat
        elif instance.ready and fresh and seated < size:
            to_pool.append(instance.instance_id)
            seated += 1
        else:
            terminate.append(instance.instance_id)

    installing: list[Instance] = []
    gave_up: list[str] = []
    for instance in by_lifecycle[Lifecycle.WARMING]:
        if instance.instance_id in reclaimed:
            continue  # promoted straight into service
        if instance.instance_id in stale:
            terminate.append(instance.instance_id)  # an old version still installing
        elif instance.ready and seated < size:
            (to_pool if instance.state == "running" else retag_pool).append(instance.instance_id)
            seated += 1
        elif instance.ready:
            terminate.append(instance.instance_id)
        elif _expired(instance, now, limits.warmup_timeout_seconds):
            terminate.append(instance.instance_id)
            gave_up.append(instance.instance_id)
        else:
            installing.append(instance)
    surplus = choose_victims(installing, seated + len(installing) - size)
    terminate.extend(i.instance_id for i in surplus)

    # Pool members running (an interrupted stop, or a manual start) go back to sleep.
    to_pool.extend(i.instance_id for i in pool_left if i.state == "running" and i.instance_id not in stale)

    # Keep the warm pool at its size: launch warm-ups for a deficit, terminate a stopped excess.
    launch_warming: list[str] = []
    filled = seated + len(installing) - len(surplus)
    deficit = size - filled
    if rolling and deficit > 0:
        # While replacing in service, a warm-up is extra capacity as much as a surge instance or
        # one still draining: every instance running beyond desired counts against max_surge,
        # so a refresh never pays for more than max_surge extra instances at a time.
        pool_starts = sum(1 for i in start if i.lifecycle is Lifecycle.POOL)
        serving_after = len(service) + len(reclaim) + pool_starts + len(launch) - len(drain) - len(retire)
        gone = set(terminate)
        leaving = sum(
            1 for i in draining if i.state == "running" and i.instance_id not in reclaimed and i.instance_id not in gone
        )
        extra = max(0, serving_after - desired) + len(installing) - len(surplus) + leaving + len(drain) + len(retire)
        deficit = min(deficit, max(0, rollout.preferences.surge(desired) - extra))
    if deficit > 0:
        subnet_counts = Counter(i.subnet_id for i in [*fresh_pool, *installing])
        launch_warming = _spread(limits.subnet_ids, deficit, subnet_counts)
    elif len(fresh_pool) > size:
        stopped = [i for i in fresh_pool if i.state == "stopped"]
        victims = choose_victims(stopped, len(fresh_pool) - size)
        terminate.extend(i.instance_id for i in victims)
    # Stale pool members stay as spare capacity until current ones hold their seats.
    old_pool = [i for i in pool_left if i.instance_id in stale]
    keep = max(0, size - seated)
    discard = [i.instance_id for i in old_pool if i.state in {"stopped", "running"}][: max(0, len(old_pool) - keep)]
    terminate.extend(discard)
    gone = set(terminate)
    spare_pool = [i for i in spare_pool if i not in gone]

    return Plan(
        reclaim=tuple(i.instance_id for i in reclaim),
        start=tuple(i.instance_id for i in start),
        spare_pool=tuple(spare_pool),
        launch=_group(launch),
        register=tuple(register),
        drain=tuple(i.instance_id for i in [*drain, *retire]),
        replace=tuple(i.instance_id for i in replace),
        to_pool=tuple(i for i in dict.fromkeys(to_pool) if i not in restart_ids),
        terminate=tuple(dict.fromkeys(terminate)),
        launch_warming=_group(launch_warming),
        retag_pool=tuple(retag_pool),
        retire=tuple(i.instance_id for i in retire),
        discard=tuple(i for i in terminate if i in stale),
        gave_up=(*(i.instance_id for i in replace), *gave_up),
    )


def choose_victims(candidates: Iterable[Instance], count: int, stale: Collection[str] = ()) -> list[Instance]:
    """Apply the termination policy (module docstring) to pick ``count`` instances; ``stale``
    ones (an old version, or past their lifetime) go before current ones of the same standing."""
    remaining = list(candidates)
    victims: list[Instance] = []
    while remaining and len(victims) < count:
        zones = Counter(i.availability_zone for i in remaining)
        victim = max(
            remaining,
            key=lambda i: (
                not i.in_service,
                i.instance_id in stale,
                zones[i.availability_zone],
                i.launch_time,
                i.instance_id,
            ),
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
