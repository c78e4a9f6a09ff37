"""DescribeTargetHealth for a test's target group, from ``targets``' state machine on the test's clock.

moto drops a deregistered target at once and reports every registered one ``healthy``; ELB
keeps a deregistered target ``draining`` until its deregistration delay has passed (ELB user
guide, "Deregistration delay") and a new one ``initial`` until it passes a health check ("Health
checks for your target groups"). Code that waits for draining is only exercised against the latter.

moto still keeps the registrations (and refuses to register an instance that is not running);
this fake follows them: the hooked client's RegisterTargets and DeregisterTargets at the moment
they are made, anyone else's (another client, moto dropping a terminated instance) when
DescribeTargetHealth next looks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from awsfake import moto_backends
from awsfake.hooks import Params, answer, error, observe
from awsfake.resources import WORKER_PORT
from awsfake.targets import DRAINING, INITIAL, REASONS, HealthRules, Target, TargetStates

if TYPE_CHECKING:
    from botocore.client import BaseClient


class FakeTargetGroup:
    """One target group's target health, on a clock the caller keeps (``now``: seconds).

    Health checks pass: a target is ``initial`` for ``registration_seconds``, then ``healthy``.
    ``reported`` lets a test say what the checks found instead (a state, or None) for a target
    that is registered and not draining. ``connections_closed`` ends a target's draining early,
    as ELB does once the target has no connection left."""

    def __init__(
        self,
        arn: str,
        now: Callable[[], float],
        rules: HealthRules,
        registration_seconds: float,
        reported: Callable[[str], str | None] = lambda _: None,
    ) -> None:
        self.arn = arn
        self.now = now
        self.registration_seconds = registration_seconds
        self.reported = reported
        self.states = TargetStates(rules)

    def install(self, elbv2: BaseClient) -> None:
        observe(elbv2, "elastic-load-balancing-v2.RegisterTargets", self._registered)
        answer(elbv2, "elastic-load-balancing-v2.DeregisterTargets", self._deregister)
        answer(elbv2, "elastic-load-balancing-v2.DescribeTargetHealth", self._describe)

    def connections_closed(self, instance_id: str) -> None:
        target = self.states.targets.get(instance_id)
        if target is not None and target.state == DRAINING:
            self.states.drained(target)

    def _ids(self, params: Params) -> list[str] | None:
        if params.get("TargetGroupArn") != self.arn:
            return None
        return [str(t["Id"]) for t in params.get("Targets") or ()]

    def _registered(self, params: Params, _: Params) -> None:
        now = self.now()
        for instance_id in self._ids(params) or ():
            self.states.register(instance_id, WORKER_PORT, now)

    def _deregister(self, params: Params) -> Params | None:
        ids = self._ids(params)
        if ids is None:
            return None
        self._catch_up()
        listed = set(moto_backends.target_ids(self.arn))
        unknown = [i for i in ids if i not in listed and self.states.state_of(i) != DRAINING]
        if unknown:
            return error("InvalidTarget", f"The target '{unknown[0]}' is not registered with the target group")
        moto_backends.deregister_targets(self.arn, ids)
        now, delay = self.now(), moto_backends.deregistration_delay(self.arn)
        for instance_id in ids:
            self.states.deregister(instance_id, now, delay)  # a draining one keeps its first deadline
        return {}

    def _describe(self, params: Params) -> Params | None:
        if params.get("TargetGroupArn") != self.arn:
            return None
        self._catch_up()
        asked = params.get("Targets")
        ids = None if asked is None else [str(t["Id"]) for t in asked]
        descriptions = self.states.describe(ids, WORKER_PORT)
        for description in descriptions:
            target = self.states.targets.get(description["Target"]["Id"])
            state = None if target is None or target.state == DRAINING else self.reported(target.instance_id)
            if state is not None:
                description["TargetHealth"] = {
                    "State": state,
                    **({"Reason": REASONS[state]} if state in REASONS else {}),
                }
        return {"TargetHealthDescriptions": descriptions}

    def _catch_up(self) -> None:
        """Bring the states to ``now``: delays passed, checks due, registrations made elsewhere."""
        now = self.now()
        self.states.expire(now)
        listed = moto_backends.target_ids(self.arn)
        for instance_id in listed:
            if self.states.state_of(instance_id) in {"unused", DRAINING}:
                self.states.register(instance_id, WORKER_PORT, now)
        gone = [
            t.instance_id for t in self.states.targets.values() if t.state != DRAINING and t.instance_id not in listed
        ]
        delay = moto_backends.deregistration_delay(self.arn)
        for instance_id in gone:
            self.states.deregister(instance_id, now, delay)
        for target in list(self.states.targets.values()):
            self._check(target, now)

    def _check(self, target: Target, now: float) -> None:
        first_check = target.since + self.registration_seconds
        if target.state == INITIAL and now >= first_check:
            self.states.check(target, True, first_check)
