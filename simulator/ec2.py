"""EC2 as the hosts live it: boot, user-data install, worker start, stop, terminate, failure.

moto keeps the API's view (states, tags); this model keeps the physical one: when the worker
on an instance answers, and which instance-seconds are billed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from simulator.params import ModelParams
from simulator.traffic import TrafficEngine


@dataclass
class Machine:
    instance_id: str
    lifecycle: str
    state: str = "pending"  # physical: pending, running, stopping, stopped, terminated
    installed: bool = False
    worker_up: bool = False
    failed: bool = False
    generation: int = 0
    billed_from: float | None = None
    billed_seconds: float = 0.0
    ready_tagged: bool = False
    history: list[tuple[float, str]] = field(default_factory=list)


class Ec2Model:
    def __init__(
        self,
        env: simpy.Environment,
        engine: TrafficEngine,
        params: ModelParams,
        rng: random.Random,
        vcpus: int,
        on_ready: Callable[[str], None],
        on_worker: Callable[[str, bool], None],
    ) -> None:
        self.env = env
        self.engine = engine
        self.params = params
        self.rng = rng
        self.vcpus = vcpus
        self.on_ready = on_ready
        self.on_worker = on_worker
        self.machines: dict[str, Machine] = {}

    # -- billing --------------------------------------------------------------------------------
    def _bill(self, machine: Machine, now: float, billed: bool) -> None:
        if billed and machine.billed_from is None:
            machine.billed_from = now
        elif not billed and machine.billed_from is not None:
            machine.billed_seconds += now - machine.billed_from
            machine.billed_from = None

    def billed_seconds(self, now: float) -> float:
        return sum(
            m.billed_seconds + (now - m.billed_from if m.billed_from is not None else 0.0)
            for m in self.machines.values()
        )

    def _state(self, machine: Machine, state: str, now: float) -> None:
        machine.state = state
        machine.history.append((now, state))
        self._bill(machine, now, state in {"pending", "running", "stopping"})

    def _worker(self, machine: Machine, up: bool, now: float) -> None:
        up = up and not machine.failed
        if machine.worker_up == up:
            return
        machine.worker_up = up
        self.engine.set_worker_up(now, machine.instance_id, up)
        self.on_worker(machine.instance_id, up)

    def _spawn(self, machine: Machine, delay: float, body: Callable[[Machine, int], Generator[Any, Any, None]]) -> None:
        machine.generation += 1
        generation = machine.generation

        def run() -> Generator[Any, Any, None]:
            if delay > 0:
                yield self.env.timeout(delay)
            if machine.generation == generation:
                yield from body(machine, generation)

        self.env.process(run())

    # -- API-driven transitions (called from botocore hooks; ``delay`` = the caller's clock offset) ----
    def launched(self, instance_id: str, lifecycle: str, delay: float) -> None:
        machine = Machine(instance_id, lifecycle)
        self.machines[instance_id] = machine
        self.engine.add_worker(instance_id, self.vcpus)
        self._state(machine, "pending", self.env.now + delay)
        self._spawn(machine, delay, lambda m, g: self._boot(m, g, self.params.launch_seconds))

    def started(self, instance_id: str, delay: float) -> None:
        machine = self.machines.get(instance_id)
        if machine is None or machine.state == "terminated":
            return
        self._spawn(machine, delay, self._start)

    def _start(self, machine: Machine, generation: int) -> Generator[Any, Any, None]:
        self._state(machine, "pending", self.env.now)
        yield from self._boot(machine, generation, self.params.start_seconds)

    def _boot(self, machine: Machine, generation: int, boot_seconds: float) -> Generator[Any, Any, None]:
        yield self.env.timeout(boot_seconds)
        if machine.generation != generation:
            return
        self._state(machine, "running", self.env.now)
        if not machine.installed:
            p = self.params
            yield self.env.timeout(self.rng.uniform(p.install_min_seconds, p.install_max_seconds))
            if machine.generation != generation:
                return
            machine.installed = True
        else:
            yield self.env.timeout(self.params.worker_start_seconds)
            if machine.generation != generation:
                return
        self._worker(machine, True, self.env.now)
        if not machine.ready_tagged:
            machine.ready_tagged = True
            self.on_ready(machine.instance_id)

    def stopped(self, instance_id: str, delay: float) -> None:
        self._halt(instance_id, delay, "stopped", self.params.stop_seconds)

    def terminated(self, instance_id: str, delay: float) -> None:
        self._halt(instance_id, delay, "terminated", self.params.terminate_seconds)

    def _halt(self, instance_id: str, delay: float, final: str, seconds: float) -> None:
        machine = self.machines.get(instance_id)
        if machine is None or machine.state == "terminated":
            return

        def body(m: Machine, generation: int) -> Generator[Any, Any, None]:
            self._worker(m, False, self.env.now)
            self._state(m, "stopping", self.env.now)
            yield self.env.timeout(seconds)
            if m.generation == generation:
                self._state(m, final, self.env.now)
                if final == "terminated":
                    m.generation += 1

        self._spawn(machine, delay, body)

    def set_lifecycle(self, instance_id: str, lifecycle: str) -> None:
        machine = self.machines.get(instance_id)
        if machine is not None:
            machine.lifecycle = lifecycle

    def fail(self, instance_id: str) -> None:
        """The worker stops answering (process crash, disk full ...); the instance keeps running."""
        machine = self.machines[instance_id]
        self._worker(machine, False, self.env.now)
        machine.failed = True
