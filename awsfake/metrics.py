"""CloudWatch metrics: datapoints that become visible late, period statistics, GetMetricData.

Times are seconds on the caller's clock (``to_sim`` and ``to_wall`` convert the API's datetimes);
a clock whose 0 is a whole hour of wall-clock time (the twin's, Unix time) starts a period that
divides 3600 on the same boundaries as CloudWatch's own. Sources: CloudWatch API reference,
GetMetricData (StartTime rounded down to the period, ScanBy, statistics); CloudWatch user guide
"CloudWatch concepts" (a metric is its namespace, name and exact set of dimensions).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MetricKey = tuple[str, str, tuple[tuple[str, str], ...]]


def metric_key(namespace: str, name: str, dimensions: Iterable[tuple[str, str]]) -> MetricKey:
    """CloudWatch matches a metric on namespace, name and the exact set of dimensions."""
    return (namespace, name, tuple(sorted(dimensions)))


@dataclass
class Series:
    """Datapoints of one metric in timestamp order; each becomes visible at ``visible`` time."""

    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    visible: list[float] = field(default_factory=list)


class MetricStore:
    """Every datapoint published during the run, by metric."""

    def __init__(self) -> None:
        self.series: dict[MetricKey, Series] = {}

    def put(self, key: MetricKey, timestamp: float, value: float, visible_at: float) -> None:
        series = self.series.setdefault(key, Series())
        i = len(series.times)
        if i and timestamp < series.times[-1]:
            i = bisect.bisect_right(series.times, timestamp)
        series.times.insert(i, timestamp)
        series.values.insert(i, value)
        series.visible.insert(i, visible_at)

    def samples(self, key: MetricKey, start: float, end: float, now: float) -> list[float]:
        """Values with ``start <= timestamp < end`` already visible at ``now``."""
        series = self.series.get(key)
        if series is None:
            return []
        lo = bisect.bisect_left(series.times, start)
        hi = bisect.bisect_left(series.times, end)
        visible = series.visible
        values = series.values
        return [values[i] for i in range(lo, hi) if visible[i] <= now]

    def statistic(self, key: MetricKey, start: float, end: float, now: float, stat: str) -> float | None:
        return aggregate(self.samples(key, start, end, now), stat)

    def periods(
        self, key: MetricKey, start: float, end: float, period: float, now: float, stat: str
    ) -> list[tuple[float, float]]:
        """(period start, value) for every period in [start, end) that has visible data, oldest first.

        Periods are aligned to multiples of ``period`` (CloudWatch's own boundaries)."""
        out = []
        t = math.floor(start / period) * period
        while t < end:
            value = self.statistic(key, t, t + period, now, stat)
            if value is not None:
                out.append((t, value))
            t += period
        return out


def aggregate(values: list[float], stat: str) -> float | None:
    if not values:
        return None
    lowered = stat.lower()
    if lowered == "average":
        return sum(values) / len(values)
    if lowered == "sum":
        return sum(values)
    if lowered == "maximum":
        return max(values)
    if lowered == "minimum":
        return min(values)
    if lowered == "samplecount":
        return float(len(values))
    if lowered.startswith("p"):
        ordered = sorted(values)
        rank = max(0, min(len(ordered) - 1, math.ceil(float(lowered[1:]) / 100 * len(ordered)) - 1))
        return ordered[rank]
    raise ValueError(f"unsupported statistic {stat}")


def get_metric_data(
    store: MetricStore,
    params: dict[str, Any],
    now: float,
    to_sim: Callable[[datetime], float],
    to_wall: Callable[[float], datetime],
) -> dict[str, Any]:
    """A GetMetricData answer from ``store`` as visible at ``now``.

    Honours each query's namespace, metric name, exact dimension set, statistic and period, the
    time range (StartTime rounded down to the period) and ScanBy; period timestamps are period starts, newest first
    by default. Metric math expressions are not modelled (they answer no datapoints)."""
    start = to_sim(params["StartTime"])
    end = to_sim(params["EndTime"])
    ascending = params.get("ScanBy") == "TimestampAscending"
    results = []
    for query in params.get("MetricDataQueries") or ():
        stat = query.get("MetricStat")
        if stat is None:
            results.append({"Id": query["Id"], "Label": query.get("Label", ""), "Timestamps": [], "Values": [],
                            "StatusCode": "Complete"})  # fmt: skip
            continue
        metric = stat["Metric"]
        key = metric_key(
            str(metric["Namespace"]),
            str(metric["MetricName"]),
            ((str(d["Name"]), str(d["Value"])) for d in metric.get("Dimensions") or ()),
        )
        # GetMetricData rounds StartTime down to the period (API reference, StartTime).
        points = store.periods(key, start, end, float(stat["Period"]), now, str(stat["Stat"]))
        if not ascending:
            points.reverse()
        results.append(
            {
                "Id": query["Id"],
                "Label": query.get("Label") or str(metric["MetricName"]),
                "Timestamps": [to_wall(t) for t, _ in points],
                "Values": [v for _, v in points],
                "StatusCode": "Complete",
            }
        )
    return {"MetricDataResults": results, "Messages": []}
