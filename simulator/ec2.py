"""EC2 as the hosts live it: boot, the user-data install, the worker, billing.

The states the EC2 API reports (``pending``, ``stopping``, ``shutting-down``, eventual
consistency after RunInstances, IncorrectInstanceState) are ``awsfake.instances``' state machine,
the one the tests' fake shares; this model times its transitions with SimPy processes and adds
what only the twin needs. The twin answers DescribeInstances from that state machine.

Sources: EC2 user guide "Amazon EC2 instance state changes" (states; only ``running`` is billed).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import simpy

from awsfake.instances import RUNNING, STOPPED, Instance, InstanceStates
from simulator.params import ModelParams, Span
from simulator.traffic import TrafficEngine


@dataclass(frozen=True)
class VersionProfile:
    """What the workers of one launch template version do at boot (a deploy's ``install_seconds``
    and ``healthy``): ``install_seconds`` None installs as the modelled parameter says."""

    install_seconds: Span | None = None
    healthy: bool = True


@dataclass
class Machine:
    """A host: its API state (``instance``, shared with the API model) and what runs on it."""

    instance: Instance
    lifecycle: str
    version: str = ""  # its launch template version (the aws:ec2launchtemplate:version tag)
    broken: bool = False  # its version's worker never answers /ping
    installed: bool = False
    booted: bool = False  # the OS is up (user-data / systemd ran)
    worker_up: bool = False
    failed: bool = False
    billed_from: float | None = None
    billed_seconds: float = 0.0
    ready_tagged: bool = False

    @property
    def instance_id(self) -> str:
        return self.instance.instance_id

    @property
    def state(self) -> str:
        return self.instance.state

    @property
    def generation(self) -> int:
        """Bumped by every state change; stale processes stop."""
        return self.instance.generation

    @property
    def launched_at(self) -> float:
        return self.instance.launched_at


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
        on_change: Callable[[], None] | None = None,
        paired: str | None = None,
    ) -> None:
        self.env = env
        self.engine = engine
        self.params = params
        self.rng = rng
        # ``paired`` (a seed): each instance draws its timings from a stream of its own, keyed by
        # what it was launched for and how many of those came before it, instead of all from
        # ``rng`` in the order they are asked for.
        self.paired = paired
        self.streams: dict[str, random.Random] = {}
        self.launches: dict[str, int] = {}  # lifecycle launched for -> how many so far
        self.vcpus = vcpus
        self.on_ready = on_ready
        self.on_boot = on_boot  # the host's services start: the metric publisher begins
        # A launch, a stop or terminate call, a lifecycle tag: what the fleet holds changed.
        self.on_change = on_change or (lambda: None)
        self.versions: dict[str, VersionProfile] = {}  # launch template version -> its workers
        self.states = InstanceStates()
        self.machines: dict[str, Machine] = {}
        self.capacity_until = -1.0

    # -- billing (only ``running`` is billed) ------------------------------------------------
    def billed_seconds(self, now: float) -> float:
        return sum(
            m.billed_seconds + (now - m.billed_from if m.billed_from is not None else 0.0)
            for m in self.machines.values()
        )

    def _bill(self, machine: Machine) -> None:
        """Follow a state change of ``machine`` with its billing."""
        now = self.env.now
        if machine.state == RUNNING and machine.billed_from is None:
            machine.billed_from = now
        elif machine.state != RUNNING and machine.billed_from is not None:
            machine.billed_seconds += now - machine.billed_from
            machine.billed_from = None

    def _worker(self, machine: Machine, up: bool) -> None:
        up = up and not machine.failed and not machine.broken
        if machine.worker_up != up:
            machine.worker_up = up
            self.engine.set_host_up(self.env.now, machine.instance_id, up)

    def _wait(self, machine: Machine, seconds: float) -> Generator[Any, Any, bool]:
        """Sleep; False when the machine changed state meanwhile (the process must stop)."""
        generation = machine.generation
        yield self.env.timeout(seconds)
        return machine.generation == generation

    def _settle(self, machine: Machine, seconds: float) -> Generator[Any, Any, bool]:
        """Wait out the transition begun ``seconds`` ago and end it; False if it was overtaken."""
        if not (yield from self._wait(machine, seconds)):
            return False
        settled = self.states.settle(machine.instance, self.env.now)
        self._bill(machine)
        return settled

    def own_stream(self, instance_id: str) -> random.Random | None:
        """``instance_id``'s own stream, with ``paired``: the k-th instance launched to serve (or for
        the pool) draws the same start, boot, install, registration and health-check times whatever
        policy asked for it (common random numbers), so runs of two policies on one seed differ by
        what the policies did, not by which draw each instance happened to get. None without
        ``paired``: every model draws from its own shared stream, as asked."""
        return self.streams.get(instance_id)

    def _draws(self, instance_id: str) -> random.Random:
        return self.streams.get(instance_id, self.rng)

    # -- what the API sees --------------------------------------------------------------------
    def visible(self, instance_id: str) -> bool:
        return self.states.visible(instance_id, self.env.now)

    def unknown(self, instance_ids: Sequence[str]) -> list[str]:
        """Ids the API does not know yet (eventual consistency after RunInstances)."""
        return self.states.unknown(instance_ids, self.env.now)

    def refuse(self, operation: str, instance_ids: Sequence[str]) -> str | None:
        """The IncorrectInstanceState message for a call in the wrong state, or None."""
        return self.states.refusal(operation, instance_ids)

    def capacity_error(self) -> bool:
        return self.env.now < self.capacity_until

    # -- API-driven transitions -----------------------------------------------------------------
    def launched(self, instance_id: str, lifecycle: str, version: str = "") -> None:
        now = self.env.now
        if self.paired is not None:
            # Counted per lifecycle: a pool's refill launched between two service launches in one
            # run and after them in the other would otherwise swap the service instances' draws.
            k = self.launches.get(lifecycle, 0)
            self.launches[lifecycle] = k + 1
            self.streams[instance_id] = random.Random(f"{self.paired}:{lifecycle}:{k}")
        rng = self._draws(instance_id)
        visible_at = now + self.params.ec2_consistency_seconds.sample(rng)
        pending = self.params.launch_pending_seconds.sample(rng)
        profile = self.versions.get(version, VersionProfile())
        instance = self.states.launch(instance_id, now, visible_at, pending)
        machine = Machine(instance, lifecycle, version=version, broken=not profile.healthy)
        self.machines[instance_id] = machine
        self.engine.add_host(instance_id, self.vcpus, self.params.background_cpu_percent / 100.0 / self.vcpus)
        self.env.process(self._boot(machine, pending))
        self.on_change()

    def started(self, instance_id: str) -> None:
        machine = self.machines.get(instance_id)
        if machine is None or machine.state != STOPPED:
            return  # pending or running already: StartInstances changes nothing
        pending = self.params.start_pending_seconds.sample(self._draws(instance_id))
        self.states.start(instance_id, self.env.now, pending)
        self._bill(machine)
        self.env.process(self._boot(machine, pending))
        self.on_change()

    def _boot(self, machine: Machine, pending: float) -> Generator[Any, Any, None]:
        p = self.params
        rng = self._draws(machine.instance_id)
        if not (yield from self._settle(machine, pending)):
            return
        if not (yield from self._wait(machine, p.boot_seconds.sample(rng))):
            return
        machine.booted = True
        self.on_boot(machine)
        if not machine.installed:
            install = self.versions.get(machine.version, VersionProfile()).install_seconds or p.install_seconds
            if not (yield from self._wait(machine, install.sample(rng))):
                return
            machine.installed = True
        elif not (yield from self._wait(machine, p.worker_start_seconds.sample(rng))):
            return
        self._worker(machine, True)
        # The user-data tags the instance ready once /ping answers: a broken worker never does.
        if machine.worker_up and not machine.ready_tagged:
            machine.ready_tagged = True
            self.on_ready(machine.instance_id)

    def stopped(self, instance_id: str) -> None:
        seconds = self.params.stop_seconds.sample(self._draws(instance_id))
        self._halt(instance_id, self.states.stop(instance_id, self.env.now, seconds), seconds)

    def terminated(self, instance_id: str) -> None:
        seconds = self.params.terminate_seconds.sample(self._draws(instance_id))
        self._halt(instance_id, self.states.terminate(instance_id, self.env.now, seconds), seconds)

    def _halt(self, instance_id: str, halting: Instance | None, seconds: float) -> None:
        machine = self.machines.get(instance_id)
        if machine is None or halting is None:
            return
        self._worker(machine, False)
        machine.booted = False
        self._bill(machine)
        self.env.process(self._settle(machine, seconds))
        self.on_change()

    def set_lifecycle(self, instance_id: str, lifecycle: str) -> None:
        machine = self.machines.get(instance_id)
        if machine is not None and machine.lifecycle != lifecycle:
            machine.lifecycle = lifecycle
            self.on_change()

    def fail(self, instance_id: str) -> None:
        """The worker stops answering (process crash, disk full ...); the instance keeps running."""
        machine = self.machines[instance_id]
        self._worker(machine, False)
        machine.failed = True
