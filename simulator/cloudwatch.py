"""CloudWatch metrics: datapoints with publication delay, period statistics, GetMetricData answers."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

MetricKey = tuple[str, str, tuple[tuple[str, str], ...]]


def metric_key(namespace: str, name: str, dimensions: Iterable[tuple[str, str]]) -> MetricKey:
    return (namespace, name, tuple(sorted(dimensions)))


@dataclass
class Series:
    """Datapoints of one metric in timestamp order; each becomes visible at ``visible`` time."""

    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    visible: list[float] = field(default_factory=list)


class MetricStore:
    """Every datapoint published during the run, by metric; times are simulation seconds."""

    def __init__(self) -> None:
        self.series: dict[MetricKey, Series] = {}

    def put(self, key: MetricKey, timestamp: float, value: float, visible_at: float) -> None:
        series = self.series.setdefault(key, Series())
        if series.times and timestamp < series.times[-1]:
            i = bisect.bisect_right(series.times, timestamp)
            series.times.insert(i, timestamp)
            series.values.insert(i, value)
            series.visible.insert(i, visible_at)
            return
        series.times.append(timestamp)
        series.values.append(value)
        series.visible.append(visible_at)

    def samples(self, key: MetricKey, start: float, end: float, now: float) -> list[float]:
        """Values with ``start <= timestamp < end`` already visible at ``now``."""
        series = self.series.get(key)
        if series is None:
            return []
        lo = bisect.bisect_left(series.times, start)
        hi = bisect.bisect_left(series.times, end)
        return [series.values[i] for i in range(lo, hi) if series.visible[i] <= now]

    def statistic(self, key: MetricKey, start: float, end: float, now: float, stat: str) -> float | None:
        return aggregate(self.samples(key, start, end, now), stat)

    def query(
        self, key: MetricKey, start: float, end: float, period: float, now: float, stat: str
    ) -> list[tuple[float, float]]:
        """Period datapoints (period start, value) over [start, end), newest first like GetMetricData."""
        out = []
        t = math.floor(start / period) * period
        while t < end:
            value = self.statistic(key, max(t, start), min(t + period, end), now, stat)
            if value is not None:
                out.append((t, value))
            t += period
        out.reverse()
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
