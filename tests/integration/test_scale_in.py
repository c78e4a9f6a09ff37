"""Scale-in: stabilization, draining, back to the pool or terminated, termination policy."""

from __future__ import annotations

from collections import Counter

import pytest
from autoscaler import entrypoints
from autoscaler.model import Direction

from tests.support.aws import REGISTRATION_SECONDS
from tests.support.events import alarm_event
from tests.support.template_settings import template_parameter_defaults

pytestmark = pytest.mark.integration

DEREGISTRATION_DELAY = int(template_parameter_defaults()["DeregistrationDelaySeconds"])


def _two_in_service(fleet):
    entrypoints.create_fleet(fleet.runtime)
    fleet.mark_ready()
    entrypoints.reconcile(fleet.runtime)
    fleet.clock.advance(REGISTRATION_SECONDS)  # the first health check passes: in service
    fleet.knobs.cpu = 90.0
    fleet.knobs.alarms["fleet-cpu-high"] = "ALARM"
    entrypoints.handle_alarm_event(alarm_event("fleet-cpu-high", fleet.clock.now()), fleet.runtime, Direction.OUT)
    fleet.knobs.alarms["fleet-cpu-high"] = "OK"
    fleet.clock.advance(REGISTRATION_SECONDS)
    # The pool's replacement warm-up is still installing (not ready).
    assert fleet.lifecycle_counts().get("service:running") == 2
    assert set(fleet.target_health().values()) == {"healthy"}


def test_scale_in_waits_for_the_stabilization_window_then_drains_into_the_pool(fleet):
    # The stabilization window alone: the scale-out just before would otherwise hold any scale-in
    # for the reversal window (test_decide.py).
    fleet = fleet.with_settings(scale_in_stabilization_seconds=120, reversal_window_seconds=0)
    _two_in_service(fleet)
    fleet.knobs.cpu, fleet.knobs.requests = 33.0, 40.0
    fleet.knobs.alarms["fleet-scale-in"] = "ALARM"
    fleet.clock.advance(60)
    early = entrypoints.handle_alarm_event(
        alarm_event("fleet-scale-in", fleet.clock.now()), fleet.runtime, Direction.IN
    )
    assert early["results"][0]["reason"] == "scale-in-stabilizing"

    fleet.clock.advance(61)
    outcome = entrypoints.reconcile(fleet.runtime)
    assert outcome["reason"] == "scale-in" and outcome["desired"] == 1
    (victim,) = outcome["result"]["drained"]
    assert fleet.target_health()[victim] == "draining"
    # Initialized instances get pool seats before warm-ups still installing: the victim will be
    # back in the pool once drained, so the warm-up still installing is surplus at once.
    assert len(outcome["result"]["terminated"]) == 1
    assert "draining:running" in fleet.lifecycle_counts()

    # Draining finished (the deregistration delay passed, the target is gone): it is stopped
    # back into the pool.
    fleet.knobs.alarms["fleet-scale-in"] = "OK"
    fleet.clock.advance(DEREGISTRATION_DELAY)
    assert victim not in fleet.registered()
    done = entrypoints.reconcile(fleet.runtime)
    assert done["result"]["stopped"] == [victim]
    assert fleet.lifecycle_counts() == {"service:running": 1, "pool:stopping": 1}
    fleet.settle()
    assert fleet.lifecycle_counts() == {"service:running": 1, "pool:stopped": 1}


def test_a_scaled_in_instance_keeps_running_until_its_target_has_drained(fleet):
    """ELB user guide, "Deregistration delay": a deregistered target stays ``draining``, finishing
    its requests in flight, until the delay has passed; only then may the instance stop."""
    fleet = fleet.with_settings(scale_in_stabilization_seconds=0)
    _two_in_service(fleet)
    fleet.knobs.cpu, fleet.knobs.requests = 20.0, 20.0
    (victim,) = entrypoints.set_capacity(fleet.runtime, 1)["result"]["drained"]

    fleet.clock.advance(DEREGISTRATION_DELAY - 1)
    waiting = entrypoints.reconcile(fleet.runtime)
    assert victim not in (waiting.get("result") or {}).get("stopped", [])
    assert fleet.lifecycle_counts().get("draining:running") == 1
    assert fleet.target_health().get(victim) == "draining"

    fleet.clock.advance(1)
    done = entrypoints.reconcile(fleet.runtime)
    assert done["result"]["stopped"] == [victim]


def test_a_target_with_no_connection_left_finishes_draining_before_the_delay(fleet):
    """ELB user guide, "Deregistration delay": deregistration completes once in-flight requests
    are done, without waiting out the delay."""
    fleet = fleet.with_settings(scale_in_stabilization_seconds=0)
    _two_in_service(fleet)
    fleet.knobs.cpu, fleet.knobs.requests = 20.0, 20.0
    (victim,) = entrypoints.set_capacity(fleet.runtime, 1)["result"]["drained"]
    fleet.clock.advance(5)
    fleet.target_group.connections_closed(victim)
    done = entrypoints.reconcile(fleet.runtime)
    assert done["result"]["stopped"] == [victim]


def test_drained_instance_beyond_the_pool_size_is_terminated(fleet):
    fleet = fleet.with_settings(warm_pool_size=0, scale_in_stabilization_seconds=0)
    _two_in_service(fleet)
    fleet.knobs.cpu, fleet.knobs.requests = 20.0, 20.0
    outcome = entrypoints.set_capacity(fleet.runtime, 1)
    (victim,) = outcome["result"]["drained"]
    fleet.clock.advance(30)
    done = entrypoints.reconcile(fleet.runtime)
    assert victim in done["result"]["terminated"]


def test_scale_in_needs_every_signal_low(fleet):
    fleet = fleet.with_settings(scale_in_stabilization_seconds=0)
    _two_in_service(fleet)
    fleet.knobs.cpu, fleet.knobs.requests = 30.0, 80.0  # requests still near target
    fleet.knobs.alarms["fleet-scale-in"] = "ALARM"
    fleet.clock.advance(60)
    (outcome,) = entrypoints.handle_alarm_event(
        alarm_event("fleet-scale-in", fleet.clock.now()), fleet.runtime, Direction.IN
    )["results"]
    assert outcome["desired"] == 2


def test_scale_in_never_goes_below_min(fleet):
    _two_in_service(fleet)
    fleet = fleet.with_settings(min_size=2, scale_in_stabilization_seconds=0)
    fleet.knobs.cpu, fleet.knobs.requests = 1.0, 1.0
    fleet.knobs.alarms["fleet-scale-in"] = "ALARM"
    fleet.clock.advance(60)
    (outcome,) = entrypoints.handle_alarm_event(
        alarm_event("fleet-scale-in", fleet.clock.now()), fleet.runtime, Direction.IN
    )["results"]
    assert outcome["desired"] == 2
    assert fleet.lifecycle_counts()["service:running"] == 2


def test_termination_policy_prefers_unhealthy_then_balances_zones(fleet):
    fleet = fleet.with_settings(warm_pool_size=0, max_size=10)
    entrypoints.set_capacity(fleet.runtime, 4)
    ids = [i["InstanceId"] for i in fleet.instances()]
    sick = ids[0]
    fleet.knobs.health[sick] = "unhealthy"
    fleet.clock.advance(REGISTRATION_SECONDS)  # the others pass their first health check
    outcome = entrypoints.set_capacity(fleet.runtime, 2)
    drained = outcome["result"]["drained"]
    assert sick in drained and len(drained) == 2
    zones = Counter(
        i["Placement"]["AvailabilityZone"]
        for i in fleet.instances()
        if {"Key": "AutoscalerLifecycle", "Value": "service"} in i["Tags"]
    )
    assert sorted(zones.values()) == [1, 1]


def test_an_instance_taken_back_from_draining_is_named_in_the_history(fleet):
    """A scale-out that reclaims a draining instance (or a refresh that puts a finished warm-up
    straight into service) must say which instance came back."""
    from autoscaler.controller import Controller

    fleet = fleet.with_settings(scale_in_stabilization_seconds=0)
    _two_in_service(fleet)
    (victim,) = entrypoints.set_capacity(fleet.runtime, 1)["result"]["drained"]
    fleet.clock.advance(5)  # activities recorded at the same instant have no order
    back = entrypoints.set_capacity(fleet.runtime, 2)
    assert back["result"]["reclaimed"] == [victim]
    latest = Controller(fleet.runtime).activities(limit=1)[0]
    assert victim in latest["instance_ids"] and latest["details"]["reclaimed"] == [victim]
