"""EC2 as the hosts live it, and as the EC2 API reports it.

moto keeps the API's bookkeeping (ids, subnets, tags). This model owns what moto cannot: states
that take time (``pending``, ``stopping``, ``shutting-down``), the API's eventual consistency
right after RunInstances, the errors a call in the wrong state gets, boot, the user-data install,
the worker, and billing. The twin answers DescribeInstances from here.

Sources: EC2 user guide "Amazon EC2 instance state changes" (states; only ``running`` is billed);
EC2 developer guide "Eventual consistency in the Amazon EC2 API"; StartInstances / StopInstances
API reference (IncorrectInstanceState).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import simpy

from simulator.params import ModelParams
from simulator.traffic import TrafficEngine

PENDING, RUNNING, STOPPING, STOPPED = "pending", "running", "stopping", "stopped"
SHUTTING_DOWN, TERMINATED = "shutting-down", "terminated"


@dataclass
class Machine:
    instance_id: str
    lifecycle: str
    visible_at: float  # DescribeInstances / CreateTags know the instance from then on
    state: str = PENDING
    installed: bool = False
    booted: bool = False  # the OS is up (user-data / systemd ran)
    worker_up: bool = False
    failed: bool = False
    generation: int = 0  # bumped by every state change; stale processes stop
    billed_from: float | None = None
    billed_seconds: float = 0.0
    ready_tagged: bool = False
    history: list[tuple[float, str]] = field(default_factory=list)

    @property
    def launched_at(self) -> float:
        return self.history[0][0] if self.history else 0.0


class Ec2Model:
    def __init__(
        self,
        env: simpy.Environment,
        engine: TrafficEngine,
        params: ModelParams,
        rng: random.Random,
        vcpus: int,
        on_ready: Callable[[str], None],
        on_boot: Callable[[Machine], None],
    ) -> None:
        self.env = env
        self.engine = engine
        self.params = params
        self.rng = rng
        self.vcpus = vcpus
        self.on_ready = on_ready
        self.on_boot = on_boot  # the host's services start: the metric publisher begins
        self.machines: dict[str, Machine] = {}
        self.capacity_until = -1.0

    # -- billing (only ``running`` is billed) ------------------------------------------------
    def billed_seconds(self, now: float) -> float:
        return sum(
            m.billed_seconds + (now - m.billed_from if m.billed_from is not None else 0.0)
            for m in self.machines.values()
        )

    def _state(self, machine: Machine, state: str) -> None:
        now = self.env.now
        machine.state = state
        machine.generation += 1
        machine.history.append((now, state))
        if state == RUNNING and machine.billed_from is None:
            machine.billed_from = now
        elif state != RUNNING and machine.billed_from is not None:
            machine.billed_seconds += now - machine.billed_from
            machine.billed_from = None

    def _worker(self, machine: Machine, up: bool) -> None:
        up = up and not machine.failed
        if machine.worker_up != up:
            machine.worker_up = up
            self.engine.set_host_up(self.env.now, machine.instance_id, up)

    def _wait(self, machine: Machine, seconds: float) -> Generator[Any, Any, bool]:
        """Sleep; False when the machine changed state meanwhile (the process must stop)."""
        generation = machine.generation
        yield self.env.timeout(seconds)
        return machine.generation == generation

    # -- what the API sees --------------------------------------------------------------------
    def visible(self, instance_id: str) -> bool:
        machine = self.machines.get(instance_id)
        return machine is None or machine.visible_at <= self.env.now

    def unknown(self, instance_ids: Sequence[str]) -> list[str]:
        """Ids the API does not know yet (eventual consistency after RunInstances)."""
        return [i for i in instance_ids if not self.visible(i)]

    def refuse(self, operation: str, instance_ids: Sequence[str]) -> str | None:
        """The IncorrectInstanceState message for a call in the wrong state, or None."""
        allowed = {
            "start": {STOPPED, PENDING, RUNNING},
            "stop": {RUNNING, STOPPING, STOPPED},
            "terminate": {PENDING, RUNNING, STOPPING, STOPPED, SHUTTING_DOWN, TERMINATED},
        }[operation]
        for instance_id in instance_ids:
            machine = self.machines.get(instance_id)
            if machine is not None and machine.state not in allowed:
                return f"The instance '{instance_id}' is not in a state from which it can be {operation}ed."
        return None

    def capacity_error(self) -> bool:
        return self.env.now < self.capacity_until

    # -- API-driven transitions -----------------------------------------------------------------
    def launched(self, instance_id: str, lifecycle: str) -> None:
        now = self.env.now
        machine = Machine(instance_id, lifecycle, now + self.params.ec2_consistency_seconds.sample(self.rng))
        self.machines[instance_id] = machine
        self.engine.add_host(instance_id, self.vcpus, self.params.background_cpu_percent / 100.0 / self.vcpus)
        self._state(machine, PENDING)
        self.env.process(self._boot(machine, self.params.launch_pending_seconds.sample(self.rng)))

    def started(self, instance_id: str) -> None:
        machine = self.machines.get(instance_id)
        if machine is None or machine.state != STOPPED:
            return  # pending or running already: StartInstances changes nothing
        self._state(machine, PENDING)
        self.env.process(self._boot(machine, self.params.start_pending_seconds.sample(self.rng)))

    def _boot(self, machine: Machine, pending: float) -> Generator[Any, Any, None]:
        p = self.params
        if not (yield from self._wait(machine, pending)):
            return
        self._state(machine, RUNNING)
        if not (yield from self._wait(machine, p.boot_seconds.sample(self.rng))):
            return
        machine.booted = True
        self.on_boot(machine)
        if not machine.installed:
            if not (yield from self._wait(machine, p.install_seconds.sample(self.rng))):
                return
            machine.installed = True
        elif not (yield from self._wait(machine, p.worker_start_seconds.sample(self.rng))):
            return
        self._worker(machine, True)
        if not machine.ready_tagged:
            machine.ready_tagged = True
            self.on_ready(machine.instance_id)

    def stopped(self, instance_id: str) -> None:
        self._halt(instance_id, STOPPING, STOPPED, self.params.stop_seconds.sample(self.rng))

    def terminated(self, instance_id: str) -> None:
        self._halt(instance_id, SHUTTING_DOWN, TERMINATED, self.params.terminate_seconds.sample(self.rng))

    def _halt(self, instance_id: str, going: str, final: str, seconds: float) -> None:
        machine = self.machines.get(instance_id)
        if machine is None or machine.state in {final, TERMINATED} or machine.state == going:
            return
        if final == STOPPED and machine.state == STOPPED:
            return
        self._worker(machine, False)
        machine.booted = False
        self._state(machine, going)

        def body() -> Generator[Any, Any, None]:
            if (yield from self._wait(machine, seconds)):
                self._state(machine, final)

        self.env.process(body())

    def set_lifecycle(self, instance_id: str, lifecycle: str) -> None:
        machine = self.machines.get(instance_id)
        if machine is not None:
            machine.lifecycle = lifecycle

    def fail(self, instance_id: str) -> None:
        """The worker stops answering (process crash, disk full ...); the instance keeps running."""
        machine = self.machines[instance_id]
        self._worker(machine, False)
        machine.failed = True
