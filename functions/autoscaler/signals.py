"""The scaling signals: one table row per signal, and the demand each one measures.

Like the Kubernetes HPA's replica calculator (a table of metric types, each turned into a
replica count), every signal names its metric query, its target per in-service instance, its
windows, and whether it may only scale out (a guard). ``decide`` takes the maximum across them.

Per-instance signals are read for the instances in service only, and measured as *demand*: the
sum over those instances, period by period. Summing per period is what keeps a reading taken
while one host carried the load from being multiplied by a larger fleet: before a new host
served, its share of every period was zero, and that is exactly what it contributes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autoscaler.settings import Settings

Point = tuple[datetime, float]  # (period start, value)

# A reading at this share of its ceiling is saturated (decide.py); a target needs headroom below
# it, or every on-target reading would look saturated (settings.py).
SATURATED = 0.95

# Published by every host beside CPUUtilization, in the same call (docs/contracts.md).
OFFERED_LOAD_METRIC = "OfferedLoad"
BACKLOG_METRIC = "BacklogSeconds"


@dataclass(frozen=True)
class MetricQuery:
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    period: int
    # One series per in-service instance, with the InstanceId dimension added.
    per_instance: bool = False
    # A fleet series that is an average per instance (demand = value x instances in service),
    # rather than a fleet total.
    fleet_average: bool = False


@dataclass(frozen=True)
class SignalSpec:
    name: str
    query: MetricQuery
    target: float  # per in-service instance, in the metric's unit
    window_seconds: int  # scale-in and the stabilization history read this long window
    scale_out_window_seconds: int  # a scale-out is confirmed on this shorter, fresher window
    # A guard may raise the capacity but never holds a scale-in back (it is slow or coarse).
    scale_out_only: bool = False
    # The most one instance can report (CPU: 100 %). At it, the reading is censored: the demand
    # is at least what the fleet serves, by an unknown amount.
    ceiling: float | None = None
    # Demand that does not saturate (what arrives, served or not): it may start panic mode.
    # ``host_capacity`` is what one host serves flat out in its unit (OfferedLoad: 100 %).
    panic: bool = False
    host_capacity: float | None = None
    # A backlog, in host-seconds of queued work: not sized on its own, but added in panic mode
    # to the panic signals' demand (one host-second drained per second is one host_capacity).
    backlog: bool = False
    # The metric counts requests a minute: over the long window it is a count of arrivals, whose
    # Poisson noise bounds what the arrival rate may really be (decide.py).
    counts_arrivals: bool = False


@dataclass(frozen=True)
class SignalData:
    """What GetMetricData returned for one signal: a series per instance, or one for the fleet."""

    per_instance: Mapping[str, Sequence[Point]] = field(default_factory=dict)
    fleet: Sequence[Point] = ()


@dataclass(frozen=True)
class HostReport:
    """One period of one host's metrics, sent by the host itself through SNS when its offered load
    reached the panic line (docs/contracts.md, "Host demand reports"): the same datapoints its
    PutMetricData call carried, before CloudWatch shows them."""

    instance_id: str
    at: datetime  # the timestamp the host gave the period's PutMetricData
    namespace: str
    metrics: Mapping[str, float]  # metric name -> value, as published

    def to_json(self) -> list[object]:
        return [self.instance_id, self.at.isoformat(), self.namespace, dict(self.metrics)]

    @classmethod
    def from_json(cls, raw: list[object]) -> HostReport:
        instance_id, at, namespace, metrics = raw
        if not isinstance(metrics, dict):
            raise ValueError(f"a stored report's metrics are not an object: {metrics!r}")
        return cls(str(instance_id), datetime.fromisoformat(str(at)), str(namespace),
                   {str(k): float(v) for k, v in metrics.items()})  # fmt: skip


# Reports kept in the state table at most (the newest): a bound on the item's size (400 KB).
MAX_KEPT_REPORTS = 500


def recent_reports(reports: Iterable[HostReport], now: datetime, seconds: float) -> tuple[HostReport, ...]:
    """The reports of the last ``seconds``, one per host and timestamp, oldest first, at most
    ``MAX_KEPT_REPORTS``."""
    horizon = now - timedelta(seconds=seconds)
    unique = {(r.instance_id, r.at): r for r in reports if r.at > horizon}
    return tuple(sorted(unique.values(), key=lambda r: r.at))[-MAX_KEPT_REPORTS:]


@dataclass(frozen=True)
class Demand:
    """A signal's reading in the metric's unit, summed over the instances in service."""

    recent: float | None  # the latest complete periods, as many as the scale-out window holds
    settled: float | None  # every complete period of the long window
    silent: int = 0  # instances in service without a single datapoint in the long window
    peak: float | None = None  # the highest period among ``recent``'s
    seconds: float = 0.0  # how long the periods ``settled`` averages cover


@dataclass(frozen=True)
class Signal:
    """A row of the table: what one signal reads and how it sizes, before settings fill it in."""

    name: str
    # The environment variable (set from a template parameter) that holds the signal's target.
    target_variable: str
    query: Callable[[Settings], MetricQuery]
    # None: the settings' METRIC_WINDOW_SECONDS / SCALE_OUT_WINDOW_SECONDS.
    window_seconds: int | None = None
    scale_out_window_seconds: int | None = None
    scale_out_only: bool = False
    # A number, or one computed from the settings (from other targets, say).
    ceiling: float | Callable[[Settings], float] | None = None
    panic: bool = False
    host_capacity: float | None = None
    backlog: bool = False
    counts_arrivals: bool = False

    def spec(self, settings: Settings) -> SignalSpec:
        ceiling = self.ceiling(settings) if callable(self.ceiling) else self.ceiling
        return SignalSpec(
            self.name,
            self.query(settings),
            settings.targets[self.target_variable],
            self.window_seconds or settings.metric_window_seconds,
            self.scale_out_window_seconds or settings.scale_out_window_seconds,
            self.scale_out_only,
            ceiling,
            self.panic,
            self.host_capacity,
            self.backlog,
            self.counts_arrivals,
        )


def host_metric(name: Callable[[Settings], str]) -> Callable[[Settings], MetricQuery]:
    """A metric every host publishes (worker/): one series per instance in service."""

    def query(s: Settings) -> MetricQuery:
        fleet = (("Fleet", s.fleet_name),)
        return MetricQuery(s.cpu_metric_namespace, name(s), fleet, "Average", s.cpu_metric_period_seconds, True)

    return query


def load_balancer_metric(name: str, stat: str) -> Callable[[Settings], MetricQuery]:
    """A metric of the fleet's target group, as the ALB publishes it: one minute per datapoint."""

    def query(s: Settings) -> MetricQuery:
        dimensions = (("TargetGroup", s.target_group_dimension), ("LoadBalancer", s.load_balancer_dimension))
        return MetricQuery("AWS/ApplicationELB", name, dimensions, stat, 60)

    return query


def _one_host_at_full_cpu(s: Settings) -> float:
    # What one host serves at 100 % CPU, from the two targets (the same fact twice).
    return s.target("requests") * 100.0 / s.target("cpu")


SIGNALS: tuple[Signal, ...] = (
    Signal("cpu", "CPU_TARGET", host_metric(lambda s: s.cpu_metric_name), ceiling=100.0),
    Signal("requests", "REQUESTS_PER_TARGET_TARGET", host_metric(lambda s: s.request_metric_name),
           ceiling=_one_host_at_full_cpu, counts_arrivals=True),
    # The load balancer's own count: independent of the hosts' publishers, but one minute coarse
    # and minutes late, so it may only push capacity up.
    Signal("alb_requests", "REQUESTS_PER_TARGET_TARGET", load_balancer_metric("RequestCount", "Sum"),
           window_seconds=180, scale_out_window_seconds=180, scale_out_only=True),
    # What arrives at the hosts, in CPU they would need (worker/: every /work request that
    # reached the host, served or shed, x its mean service time): not capped at 100 %, so it
    # sizes a burst in one step and may start panic mode (read then over PANIC_WINDOW_SECONDS).
    Signal("offered_load", "CPU_TARGET", host_metric(lambda s: OFFERED_LOAD_METRIC),
           panic=True, host_capacity=100.0),
    # The hosts' queues, in host-seconds of work (worker/): drained within BACKLOG_DRAIN_SECONDS
    # in panic mode.
    Signal("backlog", "CPU_TARGET", host_metric(lambda s: BACKLOG_METRIC),
           backlog=True),
)  # fmt: skip
"""The deployed signals. Adding one is a row here plus its template parameter and variable."""

TARGET_VARIABLES = tuple(dict.fromkeys(row.target_variable for row in SIGNALS))
"""The environment variables holding the signals' targets (Settings reads them)."""


def signal_table(settings: Settings) -> tuple[SignalSpec, ...]:
    """The table's rows with the settings filled in: what ``decide`` sizes with."""
    return tuple(row.spec(settings) for row in SIGNALS)


def report_horizon(specs: Sequence[SignalSpec]) -> float:
    """How long a report can count: the longest window of a per-instance signal."""
    return float(max((s.window_seconds for s in specs if s.query.per_instance), default=0))


def with_reports(
    data: Mapping[str, SignalData], specs: Sequence[SignalSpec], reports: Iterable[HostReport]
) -> dict[str, SignalData]:
    """``data`` with the reported datapoints added where CloudWatch has none yet.

    A report lands in the period CloudWatch would put its datapoint in (the period start at or
    before its timestamp), for every per-instance signal it carries a metric of. A datapoint
    CloudWatch already returned for that period wins: it is the same value, or an aggregate.
    """
    merged = dict(data)
    for spec in specs:
        q = spec.query
        if not q.per_instance:
            continue
        points = {i: list(p) for i, p in merged.get(spec.name, SignalData()).per_instance.items()}
        added = False
        for report in reports:
            value = report.metrics.get(q.metric)
            if value is None or report.namespace != q.namespace:
                continue
            start = _period_start(report.at, q.period)
            series = points.setdefault(report.instance_id, [])
            if all(t != start for t, _ in series):
                series.append((start, value))
                added = True
        if added:
            fleet = merged.get(spec.name, SignalData()).fleet
            merged[spec.name] = SignalData({i: tuple(sorted(p)) for i, p in points.items()}, fleet)
    return merged


def _period_start(at: datetime, period: int) -> datetime:
    # GetMetricData's periods start at multiples of the period (UTC epoch).
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    seconds = (at - epoch).total_seconds()
    return epoch + timedelta(seconds=seconds - seconds % period)


def demand(spec: SignalSpec, data: SignalData, in_service: Sequence[str], now: datetime) -> Demand:
    """Total demand for ``spec`` (see the module docstring); None where nothing was read."""
    if not spec.query.per_instance:
        latest = _latest_complete(data.fleet, now, spec.query.period)
        if latest is not None and spec.query.fleet_average:
            latest *= len(in_service)
        return Demand(latest, latest, peak=latest)
    series = {i: data.per_instance.get(i, ()) for i in in_service}
    start = now - timedelta(seconds=spec.window_seconds)
    silent = sum(1 for points in series.values() if not any(t >= start for t, _ in points))
    complete, partial = _period_sums(series, start, now)
    recent_periods = max(1, spec.scale_out_window_seconds // spec.query.period)
    # No complete period yet (every one still misses a late datapoint): the partial sums are
    # the best, lower, estimate there is.
    periods = complete or partial
    recent = periods[-recent_periods:]
    return Demand(_mean(recent), _mean(periods), silent, max(recent, default=None), len(periods) * spec.query.period)


def _period_sums(
    series: Mapping[str, Sequence[Point]], start: datetime, now: datetime
) -> tuple[list[float], list[float]]:
    """Per-period sums across instances over [start, now], oldest first: the complete ones and all.

    A period is *complete* when every instance that had reported by then reported in it. A later
    period missing an instance's datapoint is one still on its way to CloudWatch (the metric
    arrives seconds late), and summing it would under-count.
    """
    first = {i: min(t for t, _ in points) for i, points in series.items() if points}
    by_period: dict[datetime, dict[str, float]] = {}
    for instance, points in series.items():
        for t, value in points:
            if start <= t <= now:
                by_period.setdefault(t, {})[instance] = value
    complete: list[float] = []
    partial: list[float] = []
    for t in sorted(by_period):
        values = by_period[t]
        total = sum(values.values())
        partial.append(total)
        if all(i in values for i, since in first.items() if since <= t):
            complete.append(total)
    return complete, partial


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _latest_complete(points: Sequence[Point], now: datetime, period: int) -> float | None:
    complete = [(t, v) for t, v in points if t + timedelta(seconds=period) <= now]
    return max(complete)[1] if complete else None
