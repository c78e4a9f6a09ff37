"""No two decisions for a fleet interleave: concurrent invocations in threads against moto."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from autoscaler import entrypoints
from autoscaler.clock import SystemClock
from autoscaler.model import Direction

from awsfake.moto_backends import atomic_dynamodb_items
from tests.support.aws import build_fleet
from tests.support.events import alarm_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def atomic_dynamodb():
    """DynamoDB applies a conditional write atomically; moto does not, so two threads could both
    pass the same condition. With the service's guarantee restored the test exercises our lease,
    not moto's missing atomicity."""
    with atomic_dynamodb_items():
        yield


@pytest.fixture
def real_time_fleet(atomic_dynamodb):
    from moto import mock_aws

    with mock_aws():
        # Real time: the fleet's instance passes its first health check as soon as it is registered,
        # not seconds later, so the alarms find it in service at once.
        yield build_fleet(clock=SystemClock(), registration_seconds=0, lease_wait_seconds=30, warm_pool_size=0)


def test_concurrent_alarm_invocations_scale_once_and_drop_nothing(real_time_fleet):
    fleet = real_time_fleet
    entrypoints.create_fleet(fleet.runtime)
    fleet.knobs.cpu = 90.0  # one instance at 90 % needs exactly two
    fleet.knobs.alarms.update({"fleet-cpu-high": "ALARM", "fleet-requests-high": "ALARM"})
    now = fleet.clock.now()
    events = [
        alarm_event(name, now + timedelta(milliseconds=n))
        for n, name in enumerate(["fleet-cpu-high", "fleet-requests-high"] * 3)
    ]
    results: list[dict] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(events))

    def invoke(event: dict) -> None:
        barrier.wait()
        try:
            results.extend(entrypoints.handle_alarm_event(event, fleet.runtime, Direction.OUT)["results"])
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=invoke, args=(e,)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert len(results) == len(events)  # every event was processed: none dropped
    scale_outs = [r for r in results if r.get("reason") == "scale-out"]
    assert len(scale_outs) == 1, results  # exactly one decision scaled; the others saw it
    assert fleet.lifecycle_counts() == {"service:running": 2}
    # The others ran after the winner, under the lease: stale, or deciding from desired = 2.
    others = [r for r in results if r.get("reason") != "scale-out"]
    assert all(r["reason"] == "stale-transition" or r["previous"] == r["desired"] == 2 for r in others), others
    # ...and every invocation gave the lease back.
    assert fleet.store.acquire_lease("after-the-race", fleet.clock.now(), 60)
