"""EC2 instance states as the EC2 API reports them, on whatever clock the caller keeps.

Sources: EC2 user guide "Amazon EC2 instance state changes"; EC2 developer guide "Eventual
consistency in the Amazon EC2 API"
(https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html); StartInstances,
StopInstances and TerminateInstances in the EC2 API reference.

- RunInstances: ``pending``, then ``running`` once the instance is up. StartInstances on a
  ``stopped`` instance: the same; on a ``pending`` or ``running`` one it changes nothing.
- StopInstances: ``running`` -> ``stopping`` -> ``stopped``; on a ``stopping`` or ``stopped`` one
  it changes nothing. TerminateInstances: ``shutting-down`` -> ``terminated`` from any state.
- A call on an instance in a state it does not apply to fails with IncorrectInstanceState
  (StartInstances on a ``stopping`` one, StopInstances on a ``pending`` one, ...).
- Right after RunInstances the API may not know the instance yet: until ``visible_at``
  DescribeInstances and CreateTags answer InvalidInstanceID.NotFound for it.

The caller drives time: each transition takes the seconds it says, ``settle`` ends one that is
due, ``advance`` every one due by ``now``. The twin drives it
from SimPy processes, a test's fake (``fleet_instances``) from the test's clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

PENDING, RUNNING, STOPPING, STOPPED = "pending", "running", "stopping", "stopped"
SHUTTING_DOWN, TERMINATED = "shutting-down", "terminated"

# The State.Code DescribeInstances reports with each name (EC2 API reference, InstanceState).
STATE_CODES = {PENDING: 0, RUNNING: 16, SHUTTING_DOWN: 32, TERMINATED: 48, STOPPING: 64, STOPPED: 80}
# A state that ends by itself, and the state it ends in.
SETTLES_TO = {PENDING: RUNNING, STOPPING: STOPPED, SHUTTING_DOWN: TERMINATED}
# The states each call accepts; any other is IncorrectInstanceState. A call on an instance
# already on its way (or there) is accepted and changes nothing.
ACCEPTS = {
    "start": frozenset({STOPPED, PENDING, RUNNING}),
    "stop": frozenset({RUNNING, STOPPING, STOPPED}),
    "terminate": frozenset({PENDING, RUNNING, STOPPING, STOPPED, SHUTTING_DOWN, TERMINATED}),
}


@dataclass
class Instance:
    instance_id: str
    visible_at: float  # DescribeInstances and CreateTags know the instance from then on
    state: str = PENDING
    since: float = 0.0
    until: float = math.inf  # when a state in SETTLES_TO ends by itself
    # Bumped by every state change: a transition begun for an earlier state must not act now.
    generation: int = 0
    history: list[tuple[float, str]] = field(default_factory=list)

    @property
    def launched_at(self) -> float:
        return self.history[0][0] if self.history else 0.0


class InstanceStates:
    """The instances EC2 launched and their states."""

    def __init__(self) -> None:
        self.instances: dict[str, Instance] = {}

    def state_of(self, instance_id: str) -> str | None:
        instance = self.instances.get(instance_id)
        return None if instance is None else instance.state

    # -- what the API sees ----------------------------------------------------------------------
    def visible(self, instance_id: str, now: float) -> bool:
        """Whether the API knows the instance (one this model never launched: as the caller has it)."""
        instance = self.instances.get(instance_id)
        return instance is None or instance.visible_at <= now

    def unknown(self, instance_ids: Sequence[str], now: float) -> list[str]:
        """The ids the API does not know yet (eventual consistency after RunInstances)."""
        return [i for i in instance_ids if not self.visible(i, now)]

    def refusal(self, operation: str, instance_ids: Sequence[str]) -> str | None:
        """The IncorrectInstanceState message for ``operation`` ("start", "stop", "terminate")
        on one of these instances in a state it does not apply to, or None."""
        accepted = ACCEPTS[operation]
        for instance_id in instance_ids:
            instance = self.instances.get(instance_id)
            if instance is not None and instance.state not in accepted:
                return f"The instance '{instance_id}' is not in a state from which it can be {operation}ed."
        return None

    # -- transitions the API starts -------------------------------------------------------------
    def launch(self, instance_id: str, now: float, visible_at: float, pending_seconds: float = math.inf) -> Instance:
        instance = Instance(instance_id, visible_at)
        self.instances[instance_id] = instance
        self._set(instance, PENDING, now, pending_seconds)
        return instance

    def start(self, instance_id: str, now: float, pending_seconds: float = math.inf) -> Instance | None:
        """The instance, ``pending`` from ``now``; None if StartInstances changes nothing."""
        instance = self.instances.get(instance_id)
        if instance is None or instance.state != STOPPED:
            return None
        self._set(instance, PENDING, now, pending_seconds)
        return instance

    def stop(self, instance_id: str, now: float, seconds: float = math.inf) -> Instance | None:
        """The instance, ``stopping`` from ``now``; None if StopInstances changes nothing."""
        return self._halt(instance_id, STOPPING, now, seconds)

    def terminate(self, instance_id: str, now: float, seconds: float = math.inf) -> Instance | None:
        """The instance, ``shutting-down`` from ``now``; None if TerminateInstances changes nothing."""
        return self._halt(instance_id, SHUTTING_DOWN, now, seconds)

    def _halt(self, instance_id: str, going: str, now: float, seconds: float) -> Instance | None:
        instance = self.instances.get(instance_id)
        if instance is None or instance.state in {going, SETTLES_TO[going], TERMINATED, SHUTTING_DOWN}:
            return None
        self._set(instance, going, now, seconds)
        return instance

    # -- time passing ---------------------------------------------------------------------------
    def settle(self, instance: Instance, now: float) -> bool:
        """End the instance's ``pending``/``stopping``/``shutting-down`` if it is due by ``now``;
        True if its state changed."""
        final = SETTLES_TO.get(instance.state)
        if final is None or instance.until > now:
            return False
        self._set(instance, final, now, math.inf)
        return True

    def advance(self, now: float) -> list[Instance]:
        """End every transition due by ``now``, each at its own time, oldest first."""
        due = sorted(
            (i for i in self.instances.values() if i.state in SETTLES_TO and i.until <= now),
            key=lambda i: (i.until, i.instance_id),
        )
        for instance in due:
            self.settle(instance, instance.until)
        return due

    @staticmethod
    def _set(instance: Instance, state: str, now: float, seconds: float) -> None:
        instance.state = state
        instance.since = now
        instance.until = now + seconds if state in SETTLES_TO else math.inf
        instance.generation += 1
        instance.history.append((now, state))
