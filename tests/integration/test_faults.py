"""AWS faults: throttling, capacity errors, registration failures, lease conflicts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from autoscaler import entrypoints
from autoscaler.adapters.ec2 import Ec2Fleet
from autoscaler.errors import LeaseBusyError
from autoscaler.model import Direction, Lifecycle

from tests.support.aws import throttle
from tests.support.events import alarm_event

pytestmark = pytest.mark.integration


def _pool_of_two(fleet):
    fleet = fleet.with_settings(warm_pool_size=2)
    entrypoints.create_fleet(fleet.runtime)
    fleet.mark_ready()
    entrypoints.reconcile(fleet.runtime)
    fleet.settle()  # EC2 stops them: `stopping`, then `stopped`
    assert fleet.lifecycle_counts() == {"service:running": 1, "pool:stopped": 2}
    return fleet


def test_ec2_throttling_is_retried_by_botocore(fleet):
    attempts = throttle(fleet.ec2, "ec2.RunInstances", times=3)
    outcome = entrypoints.create_fleet(fleet.runtime)
    assert len(attempts) == 5  # three throttled attempts, then the two launches (service, warm-up)
    (launched,) = outcome["result"]["launched"]
    (warming,) = outcome["result"]["warming"]
    # What EC2 holds: the throttled attempts launched nothing.
    assert {i["InstanceId"] for i in fleet.instances()} == {launched, warming}
    # The run waited for the instance it put in service; the warm-up is still booting.
    assert fleet.lifecycle_counts() == {"service:running": 1, "warming:pending": 1}


def test_new_instances_that_describe_does_not_know_yet_are_waited_for(fleet):
    """Right after RunInstances, DescribeInstances may answer InvalidInstanceID.NotFound: that
    means "not visible yet", not "gone" (EC2 eventual consistency)."""
    fleet.fake_instances.visibility_seconds = 6  # unknown at 0, 1 and 3 s; known after the 4 s backoff
    outcome = entrypoints.create_fleet(fleet.runtime)
    (launched,) = outcome["result"]["launched"]
    refused = fleet.fake_instances.refused
    assert len(refused) == 3 and launched in refused[0]
    assert launched in fleet.registered()  # registered once EC2 knew it, in the same run
    assert fleet.clock.slept >= 1 + 2 + 4  # backing off between the refused reads


def test_instances_still_invisible_at_the_deadline_are_left_to_the_next_run(fleet):
    fleet.fake_instances.visibility_seconds = 60
    outcome = entrypoints.create_fleet(fleet.runtime)
    (launched,) = outcome["result"]["launched"]
    assert launched not in fleet.registered()
    assert fleet.clock.slept <= fleet.settings.running_wait_seconds + 8
    fleet.clock.advance(60)  # EC2 caught up
    assert launched in entrypoints.reconcile(fleet.runtime)["result"]["registered"]


def test_capacity_error_on_start_uses_a_pool_instance_in_another_zone(fleet):
    fleet = _pool_of_two(fleet)
    zones = {i["InstanceId"]: i["Placement"]["AvailabilityZone"] for i in fleet.instances()}
    fleet.knobs.faults["StartInstances"] = ["InsufficientInstanceCapacity"]
    fleet.clock.advance(10)  # history is ordered by time
    outcome = entrypoints.set_capacity(fleet.runtime, 2)
    (started,) = outcome["result"]["started"]
    assert outcome["result"]["capacity_errors"]
    assert zones[started] != zones[outcome["plan"]["start"][0]]
    history = fleet.store.activities()
    assert history[0]["status"] == "PartiallyFailed"
    assert "InsufficientInstanceCapacity" in history[0]["details"]["capacity_errors"][0]


def test_capacity_error_everywhere_in_the_pool_falls_back_to_launching_in_another_subnet(fleet):
    fleet = fleet.with_settings(warm_pool_size=1)
    entrypoints.create_fleet(fleet.runtime)
    fleet.mark_ready()
    entrypoints.reconcile(fleet.runtime)
    fleet.settle()  # the pool instance is `stopped`
    fleet.knobs.faults["StartInstances"] = ["InsufficientInstanceCapacity"]
    fleet.knobs.faults["RunInstances"] = ["InsufficientInstanceCapacity"]
    outcome = entrypoints.set_capacity(fleet.runtime, 2)
    (launched,) = outcome["result"]["launched"]
    assert len(outcome["result"]["capacity_errors"]) == 2
    subnet = next(i["SubnetId"] for i in fleet.instances() if i["InstanceId"] == launched)
    assert subnet == fleet.subnets[1]
    assert launched in fleet.registered()


def test_capacity_error_with_no_way_out_is_recorded_and_retried_next_run(fleet):
    fleet = fleet.with_settings(warm_pool_size=0)
    fleet.knobs.faults["RunInstances"] = ["InsufficientInstanceCapacity"] * 2
    outcome = entrypoints.create_fleet(fleet.runtime)
    assert "launched" not in outcome["result"]
    fleet.clock.advance(10)
    assert fleet.store.activities()[0]["status"] == "Failed"
    retry = entrypoints.reconcile(fleet.runtime)
    assert len(retry["result"]["launched"]) == 1


def test_lease_conflict_makes_an_alarm_invocation_raise_so_lambda_retries(fleet):
    fleet = fleet.with_settings(lease_wait_seconds=3)
    entrypoints.create_fleet(fleet.runtime)
    store = fleet.store
    assert store.acquire_lease("stuck-invocation", fleet.clock.now(), 60)
    fleet.knobs.cpu = 200.0
    fleet.knobs.alarms["fleet-cpu-high"] = "ALARM"
    event = alarm_event("fleet-cpu-high", fleet.clock.now())
    with pytest.raises(LeaseBusyError):
        entrypoints.handle_alarm_event(event, fleet.runtime, Direction.OUT)
    # The failed run left no idempotency record behind: Lambda's retry (after the lease expired) acts.
    fleet.clock.advance(120)
    (outcome,) = entrypoints.handle_alarm_event(event, fleet.runtime, Direction.OUT)["results"]
    assert outcome["reason"] == "scale-out"


def test_conditional_check_failure_on_the_lease_is_a_lost_race_not_a_crash(fleet):
    fleet = fleet.with_settings(lease_wait_seconds=5)
    fleet.knobs.faults["PutItem"] = ["ConditionalCheckFailedException"] * 2
    outcome = entrypoints.create_fleet(fleet.runtime)  # waits, then wins the lease on the third try
    assert len(outcome["result"]["launched"]) == 1
    assert fleet.clock.slept >= 2


def test_an_expired_lease_is_taken_over(fleet):
    store = fleet.store
    assert store.acquire_lease("crashed", fleet.clock.now(), 60)
    fleet.clock.advance(61)
    assert store.acquire_lease("next", fleet.clock.now(), 60)
    assert not store.acquire_lease("third", fleet.clock.now(), 60)


def test_delete_waits_for_a_run_in_flight_before_its_last_sweep(fleet):
    """A run that read the state before Delete suspended the fleet still acts; if Delete does
    not wait for its lease, the run launches after Delete reported every instance gone."""
    entrypoints.create_fleet(fleet.runtime)
    store = fleet.store
    assert store.acquire_lease("in-flight", fleet.clock.now(), fleet.settings.lease_seconds)

    def in_flight_run_acts() -> None:
        Ec2Fleet(fleet.ec2, fleet.settings, fleet.clock).launch(fleet.subnets[0], 1, Lifecycle.SERVICE)
        store.release_lease("in-flight")

    fleet.clock.at(fleet.clock.now() + timedelta(seconds=30), in_flight_run_acts)
    outcome = entrypoints.delete_fleet(fleet.runtime, timeout_seconds=600)
    assert outcome["status"] == "deleted"
    fleet.clock.advance(120)  # whatever was still to happen has happened
    assert fleet.instances() == []
    assert len(outcome["terminated"]) == 3  # the two of Create and the in-flight run's launch
