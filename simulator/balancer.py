"""The load balancer's target group: health checks and draining in SimPy time, the routing set.

Target states follow ``awsfake.targets`` (the state machine the tests' fake uses too); this
module drives it: it runs the health checks against the workers and decides when a draining
target has no connection left.

- RegisterTargets accepts only running instances (checked in ``simulator.aws``); a new target's
  checks begin after a registration delay, the first at a random point of the interval.
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
from typing import Any

import simpy

from awsfake.resources import WORKER_PORT
from awsfake.targets import DRAINING, HEALTHY, HealthRules, Target, TargetStates
from simulator.deployment import HealthCheck
from simulator.params import ModelParams
from simulator.traffic import TrafficEngine

DRAIN_POLL_SECONDS = 1.0


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
        own_stream: Callable[[str], random.Random | None] = lambda _instance_id: None,
    ) -> None:
        self.env = env
        self.engine = engine
        self.health = health
        self.params = params
        self.rng = rng
        # A target's own stream for its registration and check times (``Ec2Model.own_stream``).
        self.own_stream = own_stream
        self.worker_up = worker_up
        self.on_change = on_change
        self.states = TargetStates(
            HealthRules(health.healthy_threshold, health.unhealthy_threshold, params.initial_health_checks)
        )

    @property
    def targets(self) -> dict[str, Target]:
        return self.states.targets

    def healthy_count(self) -> int:
        return self.states.healthy_count()

    def state_of(self, instance_id: str) -> str:
        return self.states.state_of(instance_id)

    def _routing_changed(self) -> None:
        healthy = [i for i, t in self.targets.items() if t.state == HEALTHY]
        if not healthy:  # fail open
            healthy = [i for i, t in self.targets.items() if t.state != DRAINING]
        self.engine.set_routable(self.env.now, sorted(healthy))
        self.on_change()

    def register(self, instance_id: str, port: int) -> None:
        target = self.states.register(instance_id, port, self.env.now)
        if target is None:
            return  # registering a registered target changes nothing
        self._routing_changed()
        self.env.process(self._checks(target, target.generation))

    def _checks(self, target: Target, generation: int) -> Generator[Any, Any, None]:
        h = self.health
        rng = self.own_stream(target.instance_id) or self.rng
        yield self.env.timeout(self.params.registration_seconds.sample(rng))
        # The first check comes at a random point of the interval after registration completes.
        yield self.env.timeout(rng.uniform(0.0, h.interval))
        while self.targets.get(target.instance_id) is target and target.generation == generation:
            if target.state == DRAINING:
                return
            if self.states.check(target, self.worker_up(target.instance_id), self.env.now):
                self._routing_changed()
            yield self.env.timeout(h.interval)

    def deregister(self, instance_id: str) -> None:
        target = self.states.deregister(instance_id, self.env.now, self.health.deregistration_delay)
        if target is None:
            return
        self._routing_changed()
        self.env.process(self._drain(instance_id, target))

    def _drain(self, instance_id: str, target: Target) -> Generator[Any, Any, None]:
        deadline = target.drain_until
        idle_close = min(self.health.idle_timeout, self.params.target_keepalive_seconds)
        while self.env.now < deadline:
            self.engine.advance_to(self.env.now)
            quiet = self.engine.outstanding(instance_id) == 0
            if quiet and self.env.now >= self.engine.last_active(instance_id) + idle_close:
                break
            yield self.env.timeout(min(DRAIN_POLL_SECONDS, deadline - self.env.now))
        if self.states.drained(target):
            self._routing_changed()

    def describe(self, instance_ids: list[str] | None) -> list[dict[str, Any]]:
        return self.states.describe(instance_ids, WORKER_PORT)
