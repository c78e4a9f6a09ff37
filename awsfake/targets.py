"""Target health as ELB reports it, on whatever clock the caller keeps.

Sources: ELB user guide "Register targets with your target group", "Health checks for your
target groups" and "Deregistration delay".

- A registered target is ``initial`` (Elb.RegistrationInProgress) until it has passed the
  checks a new target needs (``HealthRules.initial_checks``), or ``unhealthy`` once it fails
  ``UnhealthyThresholdCount`` in a row; afterwards the consecutive thresholds flip it between
  ``healthy`` and ``unhealthy``.
- DeregisterTargets makes a target ``draining`` (Target.DeregistrationInProgress): it gets no
  new requests and stays listed until it has no connection left or the deregistration delay
  has passed, whichever comes first; then it is gone (``unused`` when asked for by id).
- Registering a draining target registers it afresh; registering a registered one changes nothing.

The caller drives time: it says when checks happen and what they found (``check``), when a
draining target has no connection left (``drained``), and asks what has expired by now
(``expire``). The twin drives it from SimPy processes, a test's fake from its FakeClock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INITIAL = "initial"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
DRAINING = "draining"
UNUSED = "unused"

REASONS = {
    INITIAL: "Elb.RegistrationInProgress",
    UNHEALTHY: "Target.FailedHealthChecks",
    DRAINING: "Target.DeregistrationInProgress",
}


@dataclass(frozen=True)
class HealthRules:
    healthy_threshold: int
    unhealthy_threshold: int
    # A new target needs fewer passes than HealthyThresholdCount: "After your target is
    # registered, it must pass one health check to be considered healthy" (ELB user guide).
    initial_checks: float = 1


@dataclass
class Target:
    instance_id: str
    port: int
    state: str = INITIAL
    passes: int = 0
    fails: int = 0
    # Bumped by every (re-)registration and deregistration: a check or drain begun for an
    # earlier one must not act on the target as it is now.
    generation: int = 0
    since: float = 0.0
    drain_until: float = float("inf")


class TargetStates:
    """The targets of one target group and their health states."""

    def __init__(self, rules: HealthRules) -> None:
        self.rules = rules
        self.targets: dict[str, Target] = {}

    def state_of(self, instance_id: str) -> str:
        target = self.targets.get(instance_id)
        return UNUSED if target is None else target.state

    def healthy_count(self) -> int:
        return sum(1 for t in self.targets.values() if t.state == HEALTHY)

    def register(self, instance_id: str, port: int, now: float) -> Target | None:
        """The target, registered afresh at ``now``; None if it already was (and is not draining)."""
        current = self.targets.get(instance_id)
        if current is not None and current.state != DRAINING:
            return None
        target = Target(instance_id, port, since=now)
        if current is not None:
            target.generation = current.generation + 1
        self.targets[instance_id] = target
        return target

    def check(self, target: Target, ok: bool, now: float) -> bool:
        """Apply one health check's result; True if the target's state changed."""
        if target.state == DRAINING:
            return False
        rules = self.rules
        if ok:
            target.passes, target.fails = target.passes + 1, 0
        else:
            target.passes, target.fails = 0, target.fails + 1
        state = target.state
        if state == INITIAL:
            if ok and target.passes >= rules.initial_checks:
                state = HEALTHY
            elif target.fails >= rules.unhealthy_threshold:
                state = UNHEALTHY
        elif state == HEALTHY and target.fails >= rules.unhealthy_threshold:
            state = UNHEALTHY
        elif state == UNHEALTHY and target.passes >= rules.healthy_threshold:
            state = HEALTHY
        return self._set(target, state, now)

    def deregister(self, instance_id: str, now: float, delay: float) -> Target | None:
        """Start draining the target for at most ``delay`` seconds; None if it is not registered
        or already draining (its first deregistration's deadline stands)."""
        target = self.targets.get(instance_id)
        if target is None or target.state == DRAINING:
            return None
        target.generation += 1
        target.drain_until = now + delay
        self._set(target, DRAINING, now)
        return target

    def drained(self, target: Target) -> bool:
        """The draining ``target`` is gone (no connection left, or its delay passed); False if
        it was registered afresh meanwhile."""
        if self.targets.get(target.instance_id) is not target:
            return False
        del self.targets[target.instance_id]
        return True

    def expire(self, now: float) -> list[str]:
        """Remove the draining targets whose deregistration delay has passed by ``now``."""
        done = [t for t in self.targets.values() if t.state == DRAINING and t.drain_until <= now]
        return [t.instance_id for t in done if self.drained(t)]

    def describe(self, instance_ids: list[str] | None, default_port: int) -> list[dict[str, Any]]:
        """TargetHealthDescriptions as DescribeTargetHealth returns them (every target, or the
        ones asked for by id, ``unused`` if not registered)."""
        ids = list(self.targets) if instance_ids is None else instance_ids
        out = []
        for instance_id in ids:
            target = self.targets.get(instance_id)
            if target is None:
                health = {"State": UNUSED, "Reason": "Target.NotRegistered"}
                port = default_port
            else:
                health = {"State": target.state}
                if target.state in REASONS:
                    health["Reason"] = REASONS[target.state]
                port = target.port
            out.append(
                {"Target": {"Id": instance_id, "Port": port}, "HealthCheckPort": str(port), "TargetHealth": health}
            )
        return out

    @staticmethod
    def _set(target: Target, state: str, now: float) -> bool:
        if target.state == state:
            return False
        target.state = state
        target.since = now
        return True
