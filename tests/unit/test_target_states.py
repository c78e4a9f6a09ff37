"""awsfake's target health state machine, the one the tests' fake and the twin's load balancer share.

Cases from the ELB user guide: "Health checks for your target groups" (a new target is
``initial`` until it passes its first check; the healthy and unhealthy threshold counts flip a
target afterwards) and "Deregistration delay" (a deregistered target is ``draining`` until its
requests are done or the delay has passed, then it is gone).
"""

from __future__ import annotations

import pytest

from awsfake.targets import HealthRules, TargetStates

RULES = HealthRules(healthy_threshold=2, unhealthy_threshold=2, initial_checks=1)
DELAY = 30.0


def _run(steps: list[tuple[str, float]]) -> TargetStates:
    """Apply ``steps`` to target i-1: ("register"|"pass"|"fail"|"deregister"|"drained", time)."""
    states = TargetStates(RULES)
    for action, now in steps:
        states.expire(now)
        target = states.targets.get("i-1")
        if action == "register":
            states.register("i-1", 30000, now)
        elif action in {"pass", "fail"}:
            assert target is not None
            states.check(target, action == "pass", now)
        elif action == "deregister":
            states.deregister("i-1", now, DELAY)
        elif action == "drained":
            assert target is not None
            states.drained(target)
        else:  # "look": only time passes
            assert action == "look"
    return states


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # Health checks for your target groups
        ([("register", 0)], "initial"),
        ([("register", 0), ("pass", 10)], "healthy"),
        ([("register", 0), ("fail", 10)], "initial"),
        ([("register", 0), ("fail", 10), ("fail", 15)], "unhealthy"),
        ([("register", 0), ("pass", 10), ("fail", 15)], "healthy"),
        ([("register", 0), ("pass", 10), ("fail", 15), ("fail", 20)], "unhealthy"),
        ([("register", 0), ("fail", 10), ("fail", 15), ("pass", 20)], "unhealthy"),
        ([("register", 0), ("fail", 10), ("fail", 15), ("pass", 20), ("pass", 25)], "healthy"),
        ([("register", 0), ("pass", 10), ("register", 12)], "healthy"),  # registering again changes nothing
        # Deregistration delay
        ([("register", 0), ("pass", 10), ("deregister", 20)], "draining"),
        ([("register", 0), ("deregister", 5)], "draining"),  # even before its first check
        ([("register", 0), ("pass", 10), ("deregister", 20), ("look", 20 + DELAY - 0.1)], "draining"),
        ([("register", 0), ("pass", 10), ("deregister", 20), ("look", 20 + DELAY)], "unused"),
        ([("register", 0), ("pass", 10), ("deregister", 20), ("drained", 25)], "unused"),  # no connection left
        ([("register", 0), ("pass", 10), ("deregister", 20), ("fail", 22), ("fail", 24)], "draining"),
        # a second deregistration keeps the first deadline
        ([("register", 0), ("deregister", 20), ("deregister", 40), ("look", 50)], "unused"),
        # registering a draining target registers it afresh
        ([("register", 0), ("pass", 10), ("deregister", 20), ("register", 25)], "initial"),
        ([("register", 0), ("pass", 10), ("deregister", 20), ("register", 25), ("look", 60)], "initial"),
    ],
)
def test_target_state(steps: list[tuple[str, float]], expected: str) -> None:
    assert _run(steps).state_of("i-1") == expected


def test_a_drain_begun_before_a_fresh_registration_does_not_remove_the_new_target() -> None:
    states = TargetStates(RULES)
    states.register("i-1", 30000, 0)
    old = states.deregister("i-1", 10, DELAY)
    assert old is not None
    states.register("i-1", 30000, 15)
    assert states.drained(old) is False
    assert states.state_of("i-1") == "initial"


def test_describe_reports_reasons_and_unused_targets() -> None:
    states = _run([("register", 0), ("pass", 5), ("deregister", 10)])
    states.register("i-2", 30000, 12)
    described = {d["Target"]["Id"]: d["TargetHealth"] for d in states.describe(["i-1", "i-2", "i-3"], 30000)}
    assert described == {
        "i-1": {"State": "draining", "Reason": "Target.DeregistrationInProgress"},
        "i-2": {"State": "initial", "Reason": "Elb.RegistrationInProgress"},
        "i-3": {"State": "unused", "Reason": "Target.NotRegistered"},
    }
    assert [d["Target"]["Id"] for d in states.describe(None, 30000)] == ["i-1", "i-2"]
