"""The load balancer's target group: registration, health checks, draining, the routing set.

Sources: ELB user guide "Register targets with your target group", "Health checks for your
target groups" and "Deregistration delay".

- RegisterTargets accepts only running instances; a new target stays ``initial``
  (Elb.RegistrationInProgress) for a registration delay, then must pass
  ``initial_health_checks`` checks to be ``healthy`` (or fail ``UnhealthyThresholdCount`` to be
  ``unhealthy``); afterwards the consecutive thresholds flip it.
- The ALB routes only to healthy targets, and fails open (to every registered target that is not
  draining) when none is healthy.
- A deregistered target drains: no new requests; deregistration completes when it has no
  request in flight *and no open connection*, or after the deregistration delay. The ALB keeps
  connections to a target alive between requests until an idle timeout closes them (the ALB's
  idle timeout, or nginx's keepalive_timeout if shorter), so a target that served recently
  drains for the full delay unless the delay is longer than that idle time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import simpy

from simulator.deployment import HealthCheck
from simulator.params import ModelParams
from simulator.traffic import TrafficEngine

REASONS = {
    "initial": "Elb.RegistrationInProgress",
    "unhealthy": "Target.FailedHealthChecks",
    "draining": "Target.DeregistrationInProgress",
}
DRAIN_POLL_SECONDS = 1.0


@dataclass
class Target:
    instance_id: str
    port: int
    state: str = "initial"
    passes: int = 0
    fails: int = 0
    generation: int = 0
    since: float = 0.0
    checking: bool = False  # registration done: health checks run


class Balancer:
    def __init__(
        self,
        env: simpy.Environment,
        engine: TrafficEngine,
        health: HealthCheck,
        params: ModelParams,
        rng: random.Random,
        worker_up: Callable[[str], bool],
        on_change: Callable[[], None],
    ) -> None:
        self.env = env
        self.engine = engine
        self.health = health
        self.params = params
        self.rng = rng
        self.worker_up = worker_up
        self.on_change = on_change
        self.targets: dict[str, Target] = {}

    def healthy_count(self) -> int:
        return sum(1 for t in self.targets.values() if t.state == "healthy")

    def state_of(self, instance_id: str) -> str:
        target = self.targets.get(instance_id)
        return "unused" if target is None else target.state

    def _routing_changed(self) -> None:
        healthy = [i for i, t in self.targets.items() if t.state == "healthy"]
        if not healthy:  # fail open
            healthy = [i for i, t in self.targets.items() if t.state != "draining"]
        self.engine.set_routable(self.env.now, sorted(healthy))
        self.on_change()

    def _set(self, target: Target, state: str) -> None:
        if target.state != state:
            target.state = state
            target.since = self.env.now
            self._routing_changed()

    def register(self, instance_id: str, port: int) -> None:
        target = self.targets.get(instance_id)
        if target is not None and target.state != "draining":
            return  # registering a registered target changes nothing
        target = Target(instance_id, port, since=self.env.now)
        if instance_id in self.targets:
            target.generation = self.targets[instance_id].generation + 1
        self.targets[instance_id] = target
        self._routing_changed()
        self.env.process(self._checks(target, target.generation))

    def _checks(self, target: Target, generation: int) -> Generator[Any, Any, None]:
        h = self.health
        yield self.env.timeout(self.params.registration_seconds.sample(self.rng))
        target.checking = True
        # The first check comes at a random point of the interval after registration completes.
        yield self.env.timeout(self.rng.uniform(0.0, h.interval))
        while self.targets.get(target.instance_id) is target and target.generation == generation:
            if target.state == "draining":
                return
            ok = self.worker_up(target.instance_id)
            if ok:
                target.passes, target.fails = target.passes + 1, 0
            else:
                target.passes, target.fails = 0, target.fails + 1
            if target.state == "initial":
                if ok and target.passes >= self.params.initial_health_checks:
                    self._set(target, "healthy")
                elif target.fails >= h.unhealthy_threshold:
                    self._set(target, "unhealthy")
            elif target.state == "healthy" and target.fails >= h.unhealthy_threshold:
                self._set(target, "unhealthy")
            elif target.state == "unhealthy" and target.passes >= h.healthy_threshold:
                self._set(target, "healthy")
            yield self.env.timeout(h.interval)

    def deregister(self, instance_id: str) -> None:
        target = self.targets.get(instance_id)
        if target is None or target.state == "draining":
            return
        target.generation += 1
        self._set(target, "draining")
        self.env.process(self._drain(instance_id, target))

    def _drain(self, instance_id: str, target: Target) -> Generator[Any, Any, None]:
        deadline = self.env.now + self.health.deregistration_delay
        idle_close = min(self.health.idle_timeout, self.params.target_keepalive_seconds)
        while self.env.now < deadline:
            self.engine.advance_to(self.env.now)
            quiet = self.engine.outstanding(instance_id) == 0
            if quiet and self.env.now >= self.engine.last_active(instance_id) + idle_close:
                break
            yield self.env.timeout(min(DRAIN_POLL_SECONDS, deadline - self.env.now))
        if self.targets.get(instance_id) is target:
            del self.targets[instance_id]
            self._routing_changed()

    def describe(self, instance_ids: list[str] | None) -> list[dict[str, Any]]:
        ids = list(self.targets) if instance_ids is None else instance_ids
        out = []
        for instance_id in ids:
            target = self.targets.get(instance_id)
            if target is None:
                health = {"State": "unused", "Reason": "Target.NotRegistered"}
                port = 30000
            else:
                health = {"State": target.state}
                if target.state in REASONS:
                    health["Reason"] = REASONS[target.state]
                port = target.port
            out.append(
                {"Target": {"Id": instance_id, "Port": port}, "HealthCheckPort": str(port), "TargetHealth": health}
            )
        return out
