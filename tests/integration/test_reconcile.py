"""The scheduled reconcile: registration, replacement, warm pool upkeep, repair of half-done work."""

from __future__ import annotations

import pytest
from autoscaler import entrypoints

pytestmark = pytest.mark.integration


def test_registers_instances_that_were_not_running_in_time(fleet):
    fleet = fleet.with_settings(warm_pool_size=0)
    fleet.knobs.faults["RegisterTargets"] = ["InvalidTarget"] * 2  # bulk call, then the one-by-one retry
    outcome = entrypoints.create_fleet(fleet.runtime)
    assert outcome["result"]["failures"]
    assert fleet.registered() == set()
    repaired = entrypoints.reconcile(fleet.runtime)
    assert repaired["result"]["registered"] == outcome["result"]["launched"]
    assert fleet.registered() == set(outcome["result"]["launched"])


def test_unhealthy_instance_is_replaced_after_the_grace_period(fleet):
    fleet = fleet.with_settings(warm_pool_size=0, health_grace_seconds=300)
    entrypoints.create_fleet(fleet.runtime)
    (first,) = fleet.registered()
    fleet.knobs.health[first] = "unhealthy"
    fleet.clock.advance(120)
    assert entrypoints.reconcile(fleet.runtime).get("plan") is None  # within grace: wait
    fleet.clock.advance(200)
    outcome = entrypoints.reconcile(fleet.runtime)
    assert outcome["result"]["terminated"] == [first]
    assert len(outcome["result"]["launched"]) == 1
    assert fleet.target_health()[first] == "draining"  # deregistered: ELB drains it while EC2 terminates it


def test_warm_pool_is_kept_at_its_size(fleet):
    fleet = fleet.with_settings(warm_pool_size=2)
    entrypoints.create_fleet(fleet.runtime)
    assert fleet.lifecycle_counts() == {"service:running": 1, "warming:pending": 2}
    fleet.clock.advance(60)
    assert entrypoints.reconcile(fleet.runtime).get("plan") is None  # not ready yet: nothing to do
    fleet.mark_ready()
    entrypoints.reconcile(fleet.runtime)
    assert fleet.lifecycle_counts() == {"service:running": 1, "pool:stopping": 2}
    fleet.settle()
    assert fleet.lifecycle_counts() == {"service:running": 1, "pool:stopped": 2}


def test_warm_up_that_never_gets_ready_is_terminated_and_relaunched(fleet):
    fleet = fleet.with_settings(warm_pool_size=1, warmup_timeout_seconds=600)
    created = entrypoints.create_fleet(fleet.runtime)
    (warming,) = created["result"]["warming"]
    fleet.clock.advance(601)
    outcome = entrypoints.reconcile(fleet.runtime)
    assert outcome["result"]["terminated"] == [warming]
    assert len(outcome["result"]["warming"]) == 1


def test_crash_between_tagging_and_starting_is_repaired(fleet):
    """A Lambda timeout mid-action: the pool instance is tagged for service but never started."""
    entrypoints.create_fleet(fleet.runtime)
    fleet.mark_ready()
    entrypoints.reconcile(fleet.runtime)
    fleet.settle()  # the pool instance is `stopped`
    fleet.knobs.faults["StartInstances"] = ["ServiceUnavailable"]  # the run dies mid-action
    with pytest.raises(Exception, match="ServiceUnavailable"):
        entrypoints.set_capacity(fleet.runtime, 2)
    assert fleet.lifecycle_counts() == {"service:running": 1, "service:stopped": 1}
    outcome = entrypoints.reconcile(fleet.runtime)
    assert len(outcome["result"]["started"]) == 1
    assert fleet.lifecycle_counts()["service:running"] == 2
    assert len(fleet.registered()) == 2


def test_crash_between_tagging_pool_and_stopping_is_repaired(fleet):
    entrypoints.create_fleet(fleet.runtime)
    fleet.mark_ready()
    fleet.knobs.faults["StopInstances"] = ["InternalError"]
    with pytest.raises(Exception, match="InternalError"):
        entrypoints.reconcile(fleet.runtime)
    # Tagged pool but still running: the next run stops it.
    assert fleet.lifecycle_counts() == {"service:running": 1, "pool:running": 1}
    outcome = entrypoints.reconcile(fleet.runtime)
    assert len(outcome["result"]["stopped"]) == 1
    fleet.settle()
    assert fleet.lifecycle_counts() == {"service:running": 1, "pool:stopped": 1}


def test_drained_instance_is_terminated_when_the_pool_is_already_full(fleet):
    fleet = fleet.with_settings(scale_in_stabilization_seconds=0)
    entrypoints.create_fleet(fleet.runtime)
    fleet.mark_ready()
    entrypoints.reconcile(fleet.runtime)
    entrypoints.set_capacity(fleet.runtime, 2)  # takes the pool instance, launches a warm-up
    fleet.mark_ready()
    entrypoints.reconcile(fleet.runtime)  # the warm-up is stopped into the pool: it is full again
    (victim,) = entrypoints.set_capacity(fleet.runtime, 1)["result"]["drained"]
    fleet.clock.advance(400)  # past the drain timeout
    outcome = entrypoints.reconcile(fleet.runtime)
    assert outcome["result"]["terminated"] == [victim]


def test_reconcile_skips_when_the_lease_is_held(fleet):
    controller_store = fleet.store
    assert controller_store.acquire_lease("someone-else", fleet.clock.now(), 60)
    assert entrypoints.reconcile(fleet.runtime) == {"status": "skipped", "reason": "lease-busy"}


def test_converged_fleet_reconciles_to_nothing(fleet):
    entrypoints.create_fleet(fleet.runtime)
    fleet.mark_ready()
    entrypoints.reconcile(fleet.runtime)
    calls_before = len(fleet.knobs.calls)
    outcome = entrypoints.reconcile(fleet.runtime)
    assert "plan" not in outcome and "result" not in outcome, outcome
    mutating = [
        c for c in fleet.knobs.calls[calls_before:] if c.split(":")[1].startswith(("Run", "Start", "Stop", "Term"))
    ]
    assert mutating == []


def test_a_new_fleet_can_start_suspended(fleet):
    fleet = fleet.with_settings(suspended_by_default=True)
    entrypoints.create_fleet(fleet.runtime)  # the minimum is still brought up
    assert fleet.lifecycle_counts().get("service:running") == 1
    assert entrypoints.reconcile(fleet.runtime) == {"status": "skipped", "reason": "suspended"}


def test_a_start_refused_while_the_instance_is_still_stopping_is_repaired_by_the_next_run(fleet):
    """EC2 user guide "Amazon EC2 instance state changes": a stopped instance passes through
    ``stopping``; StartInstances on it meanwhile fails with IncorrectInstanceState (StartInstances
    API reference). The run puts it back in the pool and launches a replacement; once it has
    stopped, the next run finds one instance too many in the (empty) pool and terminates it."""
    fleet = fleet.with_settings(warm_pool_size=0)
    entrypoints.create_fleet(fleet.runtime)
    fleet.clock.advance(30)
    (first,) = fleet.registered()
    fleet.ec2.stop_instances(InstanceIds=[first])  # an operator, or EC2 itself (a scheduled event)
    assert fleet.lifecycle_counts() == {"service:stopping": 1}

    fleet.clock.advance(2)
    outcome = entrypoints.reconcile(fleet.runtime)
    assert list(outcome["plan"]["start"]) == [first]
    (failure,) = outcome["result"]["failures"]
    assert "IncorrectInstanceState" in failure
    (replacement,) = outcome["result"]["launched"]
    assert replacement in fleet.registered()
    assert fleet.lifecycle_counts() == {"service:running": 1, "pool:stopping": 1}
    assert fleet.store.activities()[0]["status"] == "PartiallyFailed"

    fleet.settle()
    assert fleet.lifecycle_counts() == {"service:running": 1, "pool:stopped": 1}
    repaired = entrypoints.reconcile(fleet.runtime)
    assert repaired["result"]["terminated"] == [first]
    fleet.settle()
    assert fleet.lifecycle_counts() == {"service:running": 1}
    assert fleet.fake_instances.state_of(first) == "terminated"
