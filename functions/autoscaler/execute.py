"""Apply a plan through the adapters, working around capacity errors.

Expected faults (no capacity, wrong instance state, a refused registration) are caught and
reported in the result; the next reconcile retries from whatever state they left. Anything
else (throttling past the retries, access denied, a crash) propagates so Lambda retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from autoscaler.adapters.ec2 import Ec2Fleet
from autoscaler.adapters.elb import TargetGroup
from autoscaler.clock import Clock
from autoscaler.errors import CapacityError, InstanceNotVisibleError, InstanceStateError, TargetRegistrationError
from autoscaler.model import Instance, Lifecycle
from autoscaler.observability import logger
from autoscaler.plan import Plan

POLL_SECONDS = 2.0
# Backoff while EC2 does not show new instances yet (eventual consistency): 1, 2, 4, 8, 8... s.
NOT_VISIBLE_FIRST_SECONDS = 1.0
NOT_VISIBLE_MAX_SECONDS = 8.0


@dataclass
class Result:
    started: list[str] = field(default_factory=list)
    reclaimed: list[str] = field(default_factory=list)  # draining or finished warm-ups put (back) in service
    launched: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    drained: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    warming: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    capacity_errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.failures and not self.capacity_errors:
            return "Successful"
        if self.started or self.reclaimed or self.launched or self.drained or self.terminated:
            return "PartiallyFailed"
        return "Failed"

    def to_json(self) -> dict[str, list[str]]:
        return {k: v for k, v in self.__dict__.items() if v}


class Executor:
    def __init__(
        self,
        ec2: Ec2Fleet,
        target_group: TargetGroup,
        clock: Clock,
        subnet_ids: Sequence[str],
        running_wait_seconds: float,
    ) -> None:
        self._ec2 = ec2
        self._tg = target_group
        self._clock = clock
        self._subnets = tuple(subnet_ids)
        self._running_wait = running_wait_seconds

    def apply(self, plan: Plan, instances: Sequence[Instance], version: str | None = None) -> Result:
        """Carry out ``plan``; launches use launch-template ``version`` (default: the configured one)."""
        result = Result()
        by_id = {i.instance_id: i for i in instances}

        if plan.replace:
            self._tg.deregister(plan.replace)
            self._ec2.terminate(plan.replace)
            result.terminated.extend(plan.replace)
        if plan.drain:
            self._ec2.set_lifecycle(plan.drain, Lifecycle.DRAINING)
            self._tg.deregister(plan.drain)
            result.drained.extend(plan.drain)
        if plan.reclaim:
            self._ec2.set_lifecycle(plan.reclaim, Lifecycle.SERVICE)
            result.reclaimed.extend(plan.reclaim)

        shortfall = self._start(plan, by_id, result)
        launches = list(plan.launch)
        if shortfall:
            launches.append((self._subnets[0], shortfall))
        for subnet, count in launches:
            result.launched.extend(self._launch(subnet, count, Lifecycle.SERVICE, result, version))

        new = [*result.started, *result.launched]
        running = self._wait_running(new)
        waiting = [i for i in new if i not in running]
        if waiting:
            logger.info("not running yet; the next reconcile registers them", extra={"instances": waiting})
        # In the plan's order, not the set's: a set's order changes with the interpreter's string
        # hash seed, and the twin replays a run only if every call comes in the same order.
        self._register([*plan.register, *(i for i in new if i in running)], result)

        if plan.to_pool:
            self._ec2.set_lifecycle(plan.to_pool, Lifecycle.POOL)
            for instance_id in plan.to_pool:
                try:
                    self._ec2.stop([instance_id])
                    result.stopped.append(instance_id)
                except InstanceStateError as exc:
                    result.failures.append(f"stop {instance_id}: {exc}")
        if plan.retag_pool:
            self._ec2.set_lifecycle(plan.retag_pool, Lifecycle.POOL)
        if plan.terminate:
            self._ec2.terminate(plan.terminate)
            result.terminated.extend(plan.terminate)
        for subnet, count in plan.launch_warming:
            result.warming.extend(self._launch(subnet, count, Lifecycle.WARMING, result, version))
        return result

    def _start(self, plan: Plan, by_id: dict[str, Instance], result: Result) -> int:
        """Start planned instances zone by zone; on a capacity error use spare pool instances
        from other zones. Returns how many could not be started from the pool at all."""
        if not plan.start:
            return 0
        spares = [by_id[i] for i in plan.spare_pool if i in by_id]
        queue = [by_id[i] for i in plan.start if i in by_id]
        full_zones: set[str] = set()
        shortfall = 0
        self._ec2.set_lifecycle([i.instance_id for i in queue], Lifecycle.SERVICE)
        while queue:
            zone = queue[0].availability_zone
            batch = [i for i in queue if i.availability_zone == zone]
            queue = [i for i in queue if i.availability_zone != zone]
            ids = [i.instance_id for i in batch]
            try:
                self._ec2.start(ids, zone=zone)
                result.started.extend(ids)
                continue
            except CapacityError as exc:
                result.capacity_errors.append(f"start in {zone}: {exc}")
                full_zones.add(zone)
            except InstanceStateError as exc:
                result.failures.append(f"start {ids}: {exc}")
            # Put them back in the pool, then try spares from zones that still have capacity.
            self._ec2.set_lifecycle(ids, Lifecycle.POOL)
            replacements = [s for s in spares if s.availability_zone not in full_zones][: len(ids)]
            spares = [s for s in spares if s not in replacements]
            if replacements:
                self._ec2.set_lifecycle([r.instance_id for r in replacements], Lifecycle.SERVICE)
                queue.extend(replacements)
            shortfall += len(ids) - len(replacements)
        return shortfall

    def _launch(
        self, subnet: str, count: int, lifecycle: Lifecycle, result: Result, version: str | None = None
    ) -> list[str]:
        """Launch into ``subnet``, falling back to the other subnets on a capacity error."""
        order = [subnet, *(s for s in self._subnets if s != subnet)]
        for candidate in order:
            try:
                return self._ec2.launch(candidate, count, lifecycle, version)
            except CapacityError as exc:
                result.capacity_errors.append(f"launch {count} in {candidate}: {exc}")
        return []

    def _wait_running(self, instance_ids: Sequence[str]) -> set[str]:
        """Poll until every instance runs or the wait is over; instances EC2 does not show yet
        count as not running, with backoff between reads. Whatever is not running in time is
        registered by a later run (the plan registers running service instances)."""
        if not instance_ids:
            return set()
        deadline = self._clock.now().timestamp() + self._running_wait
        running: set[str] = set()
        backoff = NOT_VISIBLE_FIRST_SECONDS
        while True:
            delay = POLL_SECONDS
            try:
                running |= self._ec2.running([i for i in instance_ids if i not in running])
                backoff = NOT_VISIBLE_FIRST_SECONDS
            except InstanceNotVisibleError:
                delay, backoff = backoff, min(backoff * 2, NOT_VISIBLE_MAX_SECONDS)
            now = self._clock.now().timestamp()
            if len(running) == len(instance_ids) or now >= deadline:
                return running
            self._clock.sleep(min(delay, deadline - now))

    def _register(self, instance_ids: Sequence[str], result: Result) -> None:
        ids = list(dict.fromkeys(instance_ids))
        if not ids:
            return
        try:
            self._tg.register(ids)
            result.registered.extend(ids)
        except TargetRegistrationError:
            # One bad target fails the whole call: retry one by one so the others still serve.
            for instance_id in ids:
                try:
                    self._tg.register([instance_id])
                    result.registered.append(instance_id)
                except TargetRegistrationError as exc:
                    result.failures.append(f"register {instance_id}: {exc}")
