"""Panic mode through the real entry points, against moto: a burst read on the hosts' offered
load is sized at once by the every-minute run (no alarm in ALARM), kept in the state table,
recorded in the activity history, and ended after a quiet stable window."""

from __future__ import annotations

import pytest
from autoscaler import entrypoints

from tests.support.aws import at_rest

pytestmark = pytest.mark.integration


def test_a_burst_enters_panic_sizes_the_fleet_at_once_and_panic_ends_when_calm(fleet):
    fleet = at_rest(fleet)
    # 5 requests/s of 0.5 s at one 1-vCPU host: 250 % offered, CPU pinned, a queue building.
    fleet.knobs.cpu, fleet.knobs.requests = 100.0, 118.0
    fleet.knobs.offered, fleet.knobs.backlog = 250.0, 3.0
    fleet.clock.advance(30)
    decided_at = fleet.clock.now()
    outcome = entrypoints.reconcile(fleet.runtime)  # no alarm is in ALARM: panic needs none
    # 250 + 3 s / 30 s x 100 = 260 % -> ceil(260 / 80) = 4, in one decision.
    assert (outcome["reason"], outcome["desired"]) == ("panic-entered", 4)
    assert len(outcome["result"]["started"]) == 1  # the whole pool at once...
    assert len(outcome["result"]["launched"]) == 2  # ...and launches for the rest
    assert fleet.store.load().panic is not None
    entered = fleet.store.activities(since=decided_at)[0]
    assert (entered["reason"], entered["from"], entered["to"]) == ("panic-entered", 1, 4)

    # The burst is served; the hosts are calm, and an alarm asks for a scale-in: none in panic.
    fleet.mark_ready()
    fleet.knobs.cpu, fleet.knobs.requests, fleet.knobs.offered, fleet.knobs.backlog = 20.0, 25.0, 20.0, 0.0
    fleet.knobs.alarms["fleet-scale-in"] = "ALARM"
    fleet.clock.advance(30)
    held = entrypoints.reconcile(fleet.runtime)
    assert (held["reason"], held["desired"]) == ("panic-holding", 4)

    fleet.clock.advance(60)  # the stable window (60 s) without a reading at the threshold
    over_at = fleet.clock.now()
    over = entrypoints.reconcile(fleet.runtime)
    assert (over["reason"], over["desired"]) == ("panic-over", 4)
    assert fleet.store.load().panic is None
    ended = fleet.store.activities(since=over_at)[0]
    assert (ended["reason"], ended["from"], ended["to"]) == ("panic-over", 4, 4)
