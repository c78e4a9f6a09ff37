"""Host demand reports through the real entry points, against moto: a report from an instance in
service counts its period before CloudWatch shows it, and one that may not be trusted acts on
nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from autoscaler import entrypoints
from autoscaler.model import Direction

from tests.support.aws import at_rest
from tests.support.events import host_demand_event

pytestmark = pytest.mark.integration


def _serving(fleet) -> str:
    (instance,) = [i for i in fleet.instances(("running",)) if {"Key": "AutoscalerLifecycle", "Value": "service"}
                   in i["Tags"]]  # fmt: skip
    return str(instance["InstanceId"])


def report(fleet, instance_id: str, age: float = 1.0, offered: float = 250.0, **changes: object):
    metrics = {"CPUUtilization": 100.0, "RequestsPerMinute": 300.0, "OfferedLoad": offered, "BacklogSeconds": 3.0}
    changes = {"Metrics": metrics, **changes}
    at = fleet.clock.now() - timedelta(seconds=age)
    return host_demand_event(fleet.settings.fleet_name, instance_id, at, fleet.settings.cpu_metric_namespace,
                             **changes)  # fmt: skip


def _burst_begins(fleet, offered: float = 250.0):
    """Calm datapoints, then one period of a burst that CloudWatch already shows, then none: the
    burst's next period is on its way to CloudWatch (2-30 s in the twin)."""
    fleet.knobs.cpu, fleet.knobs.requests, fleet.knobs.offered, fleet.knobs.backlog = 30.0, 36.0, 25.0, 0.0
    fleet.clock.advance(60)
    fleet.metrics.catch_up()
    fleet.knobs.cpu, fleet.knobs.requests, fleet.knobs.offered, fleet.knobs.backlog = 100.0, 300.0, offered, 3.0
    fleet.clock.advance(10)
    fleet.metrics.catch_up()
    fleet.knobs.cpu = fleet.knobs.requests = fleet.knobs.offered = fleet.knobs.backlog = None
    fleet.clock.advance(15)  # the report (1 s old) is of the next period


def test_a_report_enters_panic_before_cloudwatch_shows_the_burst(fleet):
    fleet = at_rest(fleet)
    _burst_begins(fleet)
    host = _serving(fleet)
    # What CloudWatch shows: the panic window's two periods read (25 + 250) / 2 + 5 % of backlog,
    # under 2 x 80 %; the 30 s window is not at the CPU-high alarm's line either.
    without = entrypoints.reconcile(fleet.runtime)
    assert without["desired"] == 1 and "panic" not in without["reason"], without

    result = entrypoints.handle_alarm_event(report(fleet, host), fleet.runtime, Direction.OUT)
    (outcome,) = result["results"]
    # With the reported period: 250 % + 3 s of backlog drained in 30 s (10 %) = 260 %
    # -> ceil(260 / 80) = 4 at once, and panic needs no alarm.
    assert (outcome["instance"], outcome["reason"], outcome["desired"]) == (host, "panic-entered", 4), outcome[
        "message"
    ]
    assert fleet.store.load().panic is not None
    (activity,) = [a for a in fleet.store.activities() if a["reason"] == "panic-entered"]
    assert activity["cause"] == f"host-report:{host}"
    assert activity["details"]["report"]["OfferedLoad"] == 250.0


def test_a_report_below_the_panic_line_does_not_start_panic(fleet):
    fleet = at_rest(fleet)
    _burst_begins(fleet, offered=100.0)
    # (100 + 100) / 2 + 10 % of backlog: under 2 x 80 %, though above the target.
    result = entrypoints.handle_alarm_event(report(fleet, _serving(fleet), offered=100.0), fleet.runtime,
                                            Direction.OUT)  # fmt: skip
    (outcome,) = result["results"]
    assert outcome["desired"] == 1 and "panic" not in outcome["reason"], outcome
    assert fleet.store.load().panic is None


def test_reports_that_may_not_be_trusted_act_on_nothing(fleet):
    fleet = at_rest(fleet)
    _burst_begins(fleet)
    host = _serving(fleet)
    (pooled,) = [i["InstanceId"] for i in fleet.instances(("stopped",))]
    window = fleet.settings.panic_window_seconds
    cases = [
        (report(fleet, pooled), Direction.OUT, "report-not-in-service"),
        (report(fleet, "i-0fffffffffffffff0"), Direction.OUT, "report-not-in-service"),
        (report(fleet, host, Fleet="another-fleet"), Direction.OUT, "report-of-another-fleet"),
        (report(fleet, host, age=window + 1), Direction.OUT, "stale-report"),
        (report(fleet, host, age=-(window + 1)), Direction.OUT, "report-from-the-future"),
        (report(fleet, host), Direction.IN, "host-report-to-scale-in"),
    ]
    for event, direction, reason in cases:
        (outcome,) = entrypoints.handle_alarm_event(event, fleet.runtime, direction)["results"]
        assert outcome["reason"].startswith(reason), (reason, outcome)
    assert fleet.store.load().desired == 1 and fleet.store.load().panic is None


def test_a_report_while_another_run_holds_the_lease_is_dropped_not_retried(fleet):
    fleet = at_rest(fleet)
    _burst_begins(fleet)
    fleet = fleet.with_settings(cpu_metric_period_seconds=10)
    assert fleet.store.acquire_lease("another-run", fleet.clock.now(), 120)
    result = entrypoints.handle_alarm_event(report(fleet, _serving(fleet), age=0), fleet.runtime, Direction.OUT)
    (outcome,) = result["results"]
    assert outcome["reason"] == "lease-busy"
    assert fleet.store.load().desired == 1


def test_reports_are_remembered_so_consecutive_periods_add_up_before_cloudwatch_shows_them(fleet):
    fleet = at_rest(fleet)
    fleet.knobs.cpu, fleet.knobs.requests, fleet.knobs.offered, fleet.knobs.backlog = 30.0, 36.0, 25.0, 0.0
    fleet.clock.advance(60)
    fleet.metrics.catch_up()
    fleet.knobs.cpu = fleet.knobs.requests = fleet.knobs.offered = fleet.knobs.backlog = None  # CloudWatch lags
    fleet.clock.advance(15)  # the report (1 s old) is of the period after the last calm one
    host = _serving(fleet)
    # The first burst period shares the panic window with a calm one: (25 + 250) / 2 + 5 %.
    first = entrypoints.handle_alarm_event(report(fleet, host), fleet.runtime, Direction.OUT)["results"][0]
    assert first["desired"] == 1 and "panic" not in first["reason"], first
    assert [r.instance_id for r in fleet.store.load().reports] == [host]

    fleet.clock.advance(10)
    # The next one: the window holds the two reported periods, CloudWatch neither.
    second = entrypoints.handle_alarm_event(report(fleet, host), fleet.runtime, Direction.OUT)["results"][0]
    assert (second["reason"], second["desired"]) == ("panic-entered", 4), second["message"]
    assert len(fleet.store.load().reports) == 2

    # They count in every run while they are in the long window (60 s), then are forgotten.
    fleet.clock.advance(70)
    entrypoints.reconcile(fleet.runtime)
    assert fleet.store.load().reports == ()
