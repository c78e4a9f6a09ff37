"""The test fleet's GetMetricData: the knobs publish datapoints into awsfake's metric store as the
hosts would, and the store answers, as it does in the twin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from autoscaler import entrypoints

from tests.support.knob_metrics import HOST_DELAY

pytestmark = pytest.mark.integration


def _cpu(fleet: Any, instance: str | None, seconds: int = 120, period: int = 10) -> list[float]:
    """Newest first: the CPU averages per period over the last ``seconds``."""
    now = fleet.clock.now()
    dims = [{"Name": "Fleet", "Value": fleet.settings.fleet_name}]
    if instance is not None:
        dims.append({"Name": "InstanceId", "Value": instance})
    response = fleet.runtime.clients.cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "cpu",
                "MetricStat": {
                    "Metric": {"Namespace": "Autoscaler", "MetricName": "CPUUtilization", "Dimensions": dims},
                    "Period": period,
                    "Stat": "Average",
                },
            }
        ],
        StartTime=now - timedelta(seconds=seconds),
        EndTime=now,
    )
    return list(response["MetricDataResults"][0]["Values"])


def test_a_turned_knob_reaches_get_metric_data_with_the_datapoints_published_after_it(fleet):
    entrypoints.create_fleet(fleet.runtime)
    (host,) = fleet.registered()
    fleet.clock.advance(10 - fleet.clock.now().timestamp() % 10)  # on a publishing time
    assert set(_cpu(fleet, host)) == {50.0}  # what the host published so far
    fleet.knobs.cpu = 90.0
    assert set(_cpu(fleet, host)) == {50.0}  # published figures do not change
    fleet.clock.advance(30)
    newest = _cpu(fleet, host)
    # 10-second periods: the two published after the knob turned, visible HOST_DELAY seconds later.
    assert newest[:2] == [90.0, 90.0] and set(newest[2:]) == {50.0}
    fleet.clock.advance(HOST_DELAY)
    assert _cpu(fleet, host)[:3] == [90.0, 90.0, 90.0]
    assert _cpu(fleet, None, period=60)[0] > 50.0  # the fleet series: the same datapoints
    assert _cpu(fleet, "i-elsewhere") == []  # another metric (its exact dimensions): no data


def test_an_instance_not_in_service_publishes_nothing(fleet):
    fleet = fleet.with_settings(warm_pool_size=1)
    created = entrypoints.create_fleet(fleet.runtime)
    (warming,) = created["result"]["warming"]
    fleet.clock.advance(120)
    assert _cpu(fleet, warming) == []
    (host,) = created["result"]["launched"]
    fleet.knobs.per_instance[("CPUUtilization", host)] = None  # silent
    fleet.clock.advance(120)
    assert _cpu(fleet, host, seconds=60) == []
