"""awsfake's CloudWatch metrics, the GetMetricData the twin and the fleet tests answer with.

Cases from the CloudWatch API reference, GetMetricData (statistics, StartTime rounded down to
the period, ScanBy, period timestamps) and the user guide "CloudWatch concepts" (a metric is its
namespace, name and exact set of dimensions).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from awsfake.metrics import MetricStore, aggregate, get_metric_data, metric_key

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
KEY = metric_key("Autoscaler", "CPUUtilization", [("InstanceId", "i-1"), ("Fleet", "f")])


def wall(t: float) -> datetime:
    return EPOCH + timedelta(seconds=t)


def seconds(when: datetime) -> float:
    return (when - EPOCH).total_seconds()


def query(
    start: float, end: float, period: int = 60, stat: str = "Average", dims: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    dimensions = dims if dims is not None else {"Fleet": "f", "InstanceId": "i-1"}
    return {
        "StartTime": wall(start),
        "EndTime": wall(end),
        "MetricDataQueries": [
            {
                "Id": "q",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "Autoscaler",
                        "MetricName": "CPUUtilization",
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                    },
                    "Period": period,
                    "Stat": stat,
                },
            }
        ],
        **extra,
    }


def answer(store: MetricStore, params: dict[str, Any], now: float) -> list[tuple[float, float]]:
    (result,) = get_metric_data(store, params, now, seconds, wall)["MetricDataResults"]
    return [(seconds(t), v) for t, v in zip(result["Timestamps"], result["Values"], strict=True)]


@pytest.mark.parametrize(
    ("stat", "expected"),
    [("Average", 25.0), ("Sum", 100.0), ("Maximum", 40.0), ("Minimum", 10.0), ("SampleCount", 4.0),
     ("p50", 20.0), ("p99", 40.0), ("p0", 10.0)],
)  # fmt: skip
def test_statistics(stat: str, expected: float) -> None:
    assert aggregate([10.0, 20.0, 30.0, 40.0], stat) == expected


def test_no_datapoint_no_statistic_and_an_unknown_statistic_is_an_error() -> None:
    assert aggregate([], "Average") is None
    with pytest.raises(ValueError, match="unsupported statistic"):
        aggregate([1.0], "Median")


def _store() -> MetricStore:
    store = MetricStore()
    for t, value in ((0, 10.0), (30, 20.0), (60, 30.0), (90, 50.0), (120, 70.0)):
        store.put(KEY, t, value, visible_at=t + 5)
    return store


@pytest.mark.parametrize(
    ("params", "now", "expected"),
    [
        # periods start on multiples of the period, newest first by default
        (query(0, 180), 200, [(120, 70.0), (60, 40.0), (0, 15.0)]),
        (query(0, 180, ScanBy="TimestampAscending"), 200, [(0, 15.0), (60, 40.0), (120, 70.0)]),
        # StartTime is rounded down to the period
        (query(45, 180), 200, [(120, 70.0), (60, 40.0), (0, 15.0)]),
        # EndTime is exclusive
        (query(0, 120), 200, [(60, 40.0), (0, 15.0)]),
        # a datapoint is not there until it is visible
        (query(0, 180), 124, [(60, 40.0), (0, 15.0)]),
        (query(0, 180), 94, [(60, 30.0), (0, 15.0)]),
        (query(0, 180, period=30, stat="Maximum"), 200, [(120, 70.0), (90, 50.0), (60, 30.0), (30, 20.0), (0, 10.0)]),
        (query(0, 180, stat="Sum"), 200, [(120, 70.0), (60, 80.0), (0, 30.0)]),
        # the exact set of dimensions: a subset or another value is another metric
        (query(0, 180, dims={"Fleet": "f"}), 200, []),
        (query(0, 180, dims={"Fleet": "f", "InstanceId": "i-2"}), 200, []),
        (query(0, 180, dims={"InstanceId": "i-1", "Fleet": "f"}), 200, [(120, 70.0), (60, 40.0), (0, 15.0)]),
    ],
)
def test_get_metric_data(params: dict[str, Any], now: float, expected: list[tuple[float, float]]) -> None:
    assert answer(_store(), params, now) == expected


def test_a_late_datapoint_stored_out_of_order_lands_in_its_period() -> None:
    store = _store()
    store.put(KEY, 15, 90.0, visible_at=300)
    assert answer(store, query(0, 60), 200) == [(0, 15.0)]
    assert answer(store, query(0, 60), 300) == [(0, 40.0)]


def test_metric_math_is_answered_with_no_datapoints_and_every_result_is_complete() -> None:
    params = query(0, 180)
    params["MetricDataQueries"].append({"Id": "e", "Expression": "q * 2", "Label": "double"})
    results = get_metric_data(_store(), params, 200, seconds, wall)["MetricDataResults"]
    assert [(r["Id"], r["Label"], r["Values"], r["StatusCode"]) for r in results] == [
        ("q", "CPUUtilization", [70.0, 40.0, 15.0], "Complete"),
        ("e", "double", [], "Complete"),
    ]
