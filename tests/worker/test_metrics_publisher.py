"""The host CPU metric publisher: CPU arithmetic, the publish decision, IMDSv2, CloudWatch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.support.host_endpoints import FakeImds
from worker import metrics_publisher as mp
from worker.metrics_publisher import (
    CloudWatchSink,
    CpuTimes,
    Imds,
    Publisher,
    Reading,
    WorkerStats,
    cpu_percent,
    parse_proc_stat,
)

UTC = timezone.utc  # datetime.UTC is 3.11+: these tests also run on the hosts' Python 3.9

PROC_STAT = """cpu  100 20 30 800 50 0 0 0 7 0
cpu0 50 10 15 400 25 0 0 0 0 0
intr 12345
"""
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_parse_proc_stat_counts_iowait_as_idle_and_ignores_guest() -> None:
    assert parse_proc_stat(PROC_STAT) == CpuTimes(busy=150, total=1000)
    assert parse_proc_stat("cpu 1 2 3 4\n") == CpuTimes(busy=6, total=10)  # old kernels
    with pytest.raises(ValueError, match="cpu"):
        parse_proc_stat("intr 1\n")
    live = mp.read_proc_stat()
    assert 0 <= live.busy <= live.total


def test_cpu_percent_from_deltas() -> None:
    assert cpu_percent(CpuTimes(150, 1000), CpuTimes(220, 1100)) == pytest.approx(70.0)
    assert cpu_percent(CpuTimes(150, 1000), CpuTimes(150, 1000)) is None
    assert cpu_percent(CpuTimes(150, 1000), CpuTimes(150, 1200)) == 0.0
    assert cpu_percent(CpuTimes(150, 1000), CpuTimes(400, 1100)) == 100.0  # clamped


@pytest.mark.parametrize(
    ("lifecycle", "healthy", "expected"),
    [
        ("service", True, True),
        ("service", False, False),
        ("warming", True, False),
        ("pool", True, False),
        ("draining", True, False),
        (None, True, False),
    ],
)
def test_should_publish(lifecycle: str | None, healthy: bool, expected: bool) -> None:
    assert mp.should_publish(lifecycle, healthy) is expected


class FakeCpu:
    def __init__(self, samples: list[CpuTimes]) -> None:
        self.samples = samples

    def __call__(self) -> CpuTimes:
        return self.samples.pop(0)


class Sequence:
    """Hands out the next value on each call."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def __call__(self) -> Any:
        return self.values.pop(0)


def make_publisher(
    lifecycle: str | None,
    healthy: bool,
    sent: list[Reading],
    requests: tuple[int, ...] = (0, 10, 25),
    stats: list[WorkerStats] | None = None,
) -> Publisher:
    return Publisher(
        sink=lambda reading, ts: sent.append(reading),
        lifecycle=lambda: lifecycle,
        stats=Sequence(stats or [WorkerStats(healthy, n) for n in requests]),
        read_cpu=FakeCpu([CpuTimes(0, 100), CpuTimes(50, 200), CpuTimes(80, 300)]),
        now=lambda: NOW,
        monotonic=Sequence([0.0, 10.0, 20.0]),
    )


def test_publisher_publishes_cpu_and_request_rate_only_in_service_and_healthy() -> None:
    sent: list[Reading] = []
    publisher = make_publisher("service", True, sent)
    assert publisher.tick() is None  # first sample is the baseline
    # 10 requests in 10 s on one process at the nominal 0.5 s: 50 % of the host offered.
    assert publisher.tick() == Reading(pytest.approx(50.0), pytest.approx(60.0), pytest.approx(50.0))
    assert publisher.tick() == Reading(pytest.approx(30.0), pytest.approx(90.0), pytest.approx(75.0))
    assert len(sent) == 2


def test_publisher_reports_offered_load_backlog_and_shed_requests() -> None:
    """3x overload on 2 processes: 120 arrivals in 10 s at 0.5 s each need 6 CPU-seconds per
    second of a 2-process host, 300 %; 70 of them were answered 503 (60 shed, 10 queue full)."""
    sent: list[Reading] = []
    stats = [
        WorkerStats(True, work_requests=100, shed=5, rejected=1, queued=3, processes=2, mean_service_seconds=0.5),
        WorkerStats(True, work_requests=220, shed=65, rejected=11, queued=40, processes=2, mean_service_seconds=0.5),
        WorkerStats(True, work_requests=220, shed=65, rejected=11, queued=0, processes=2, mean_service_seconds=0.6),
    ]
    publisher = make_publisher("service", True, sent, stats=stats)
    publisher.tick()
    reading = publisher.tick()
    assert reading == Reading(
        cpu_percent=pytest.approx(50.0),
        requests_per_minute=pytest.approx(720.0),
        offered_load_percent=pytest.approx(300.0),  # not capped at 100
        backlog_seconds=pytest.approx(10.0),  # 40 queued x 0.5 s / 2 processes
        shed_requests=70,
    )
    # A quiet period: nothing arrived, nothing waits, nothing refused.
    assert publisher.tick() == Reading(pytest.approx(30.0), 0.0, 0.0, 0.0, 0.0)
    assert sent == [reading, Reading(pytest.approx(30.0), 0.0, 0.0, 0.0, 0.0)]


@pytest.mark.parametrize(
    ("arrivals", "mean", "period", "processes", "percent"),
    [
        (20, 0.5, 10.0, 1, 100.0),  # exactly what one process serves
        (40, 0.5, 10.0, 2, 100.0),
        (120, 0.5, 10.0, 2, 300.0),
        (0, 0.5, 10.0, 2, 0.0),
        (30, 0.4, 12.0, 1, 100.0),  # the measured period, not the nominal 10 s
        (10, 0.5, 10.0, 0, 50.0),  # no live process: counted as one
    ],
)
def test_offered_load_percent(arrivals: int, mean: float, period: float, processes: int, percent: float) -> None:
    assert mp.offered_load_percent(arrivals, mean, period, processes) == pytest.approx(percent)


def test_demand_has_no_rate_across_a_worker_restart_or_without_time() -> None:
    before = WorkerStats(True, work_requests=50, shed=5, rejected=2)
    assert mp.demand(before, WorkerStats(True, work_requests=60, shed=0, rejected=2), 10.0) is None
    assert mp.demand(before, WorkerStats(True, work_requests=60, shed=5, rejected=0), 10.0) is None
    assert mp.demand(before, WorkerStats(True, work_requests=40, shed=5, rejected=2), 10.0) is None
    assert mp.demand(before, WorkerStats(True, work_requests=60, shed=6, rejected=3), 0.0) is None
    assert mp.demand(before, WorkerStats(True, work_requests=60, shed=6, rejected=3), 10.0) == (
        pytest.approx(60.0),
        pytest.approx(50.0),
        0.0,
        2.0,
    )


@pytest.mark.parametrize(("lifecycle", "healthy"), [("pool", True), ("warming", True), ("service", False)])
def test_publisher_stays_silent_otherwise(lifecycle: str, healthy: bool) -> None:
    sent: list[Reading] = []
    publisher = make_publisher(lifecycle, healthy, sent)
    publisher.tick()
    assert publisher.tick() is None
    assert sent == []


def test_publisher_skips_the_period_of_a_worker_restart() -> None:
    sent: list[Reading] = []
    publisher = make_publisher("service", True, sent, requests=(40, 3, 13))  # counters restarted at 0
    publisher.tick()
    assert publisher.tick() is None
    assert publisher.tick() == Reading(pytest.approx(30.0), pytest.approx(60.0), pytest.approx(50.0))


def test_publisher_survives_cloudwatch_errors() -> None:
    def failing(reading: Reading, ts: datetime) -> None:
        raise RuntimeError("throttled")

    publisher = Publisher(
        sink=failing,
        lifecycle=lambda: "service",
        stats=lambda: WorkerStats(True, 0),
        read_cpu=FakeCpu([CpuTimes(0, 1), CpuTimes(1, 2)]),
    )
    publisher.tick()
    assert publisher.tick() is None


def test_run_forever_keeps_a_fixed_schedule() -> None:
    clock = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds + 0.2  # each tick overshoots a little

    ticks: list[int] = []
    publisher = Publisher(sink=lambda v, t: None, lifecycle=lambda: None, stats=lambda: None)
    publisher.tick = lambda: ticks.append(1)  # type: ignore[method-assign]
    mp.run_forever(publisher, period=10.0, sleep=sleep, monotonic=lambda: clock[0], iterations=3)
    assert len(ticks) == 4
    assert sleeps == [pytest.approx(10.0), pytest.approx(9.8), pytest.approx(9.8)]


class FakeCloudWatch:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def put_metric_data(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


def test_cloudwatch_sink_sends_the_contract_shape() -> None:
    client = FakeCloudWatch()
    CloudWatchSink("blue", "i-0abc", client=client)(Reading(71.23456, 84.0, 287.5, 9.87654, 31), NOW)
    assert len(client.calls) == 1  # one call per period, whatever it carries
    call = client.calls[0]
    assert call["Namespace"] == "Autoscaler"
    fleet = [{"Name": "Fleet", "Value": "blue"}]
    host = [*fleet, {"Name": "InstanceId", "Value": "i-0abc"}]
    common = {"Timestamp": NOW, "StorageResolution": 1}
    assert call["MetricData"] == [
        {"MetricName": "CPUUtilization", "Dimensions": fleet, "Value": 71.235, "Unit": "Percent", **common},
        {"MetricName": "CPUUtilization", "Dimensions": host, "Value": 71.235, "Unit": "Percent", **common},
        {"MetricName": "RequestsPerMinute", "Dimensions": fleet, "Value": 84.0, "Unit": "None", **common},
        {"MetricName": "RequestsPerMinute", "Dimensions": host, "Value": 84.0, "Unit": "None", **common},
        {"MetricName": "OfferedLoad", "Dimensions": fleet, "Value": 287.5, "Unit": "Percent", **common},
        {"MetricName": "OfferedLoad", "Dimensions": host, "Value": 287.5, "Unit": "Percent", **common},
        {"MetricName": "BacklogSeconds", "Dimensions": fleet, "Value": 9.877, "Unit": "Seconds", **common},
        {"MetricName": "BacklogSeconds", "Dimensions": host, "Value": 9.877, "Unit": "Seconds", **common},
        {"MetricName": "ShedRequests", "Dimensions": fleet, "Value": 31, "Unit": "Count", **common},
        {"MetricName": "ShedRequests", "Dimensions": host, "Value": 31, "Unit": "Count", **common},
    ]


@pytest.mark.integration
def test_cloudwatch_sink_against_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with moto.mock_aws():
        import boto3

        CloudWatchSink("blue", "i-0abc", region="eu-west-1")(Reading(42.0, 30.0, 25.0, 1.5, 2), datetime.now(UTC))
        metrics = boto3.client("cloudwatch", region_name="eu-west-1").list_metrics(Namespace="Autoscaler")
        found = sorted((m["MetricName"], len(m["Dimensions"])) for m in metrics["Metrics"])
        names = ["BacklogSeconds", "CPUUtilization", "OfferedLoad", "RequestsPerMinute", "ShedRequests"]
        assert found == [(name, dims) for name in names for dims in (1, 2)]


@pytest.fixture
def fake_imds() -> Iterator[FakeImds]:
    with FakeImds() as imds:
        yield imds


def test_imds_v2_reads_the_lifecycle_tag(fake_imds: FakeImds) -> None:
    imds = Imds(fake_imds.url)
    assert imds.lifecycle() == "service"
    fake_imds.tags["AutoscalerLifecycle"] = "pool"
    assert imds.lifecycle() == "pool"
    assert imds.get("latest/meta-data/tags/instance/Missing") is None
    assert Imds("http://127.0.0.1:1", timeout=0.2).lifecycle() is None  # no IMDS: never publish


def test_imds_reads_the_instance_id(fake_imds: FakeImds) -> None:
    assert Imds(fake_imds.url).instance_id() == FakeImds.INSTANCE_ID


def test_read_stats_of_a_worker_that_does_not_answer(fake_imds: FakeImds) -> None:
    assert mp.read_stats("http://127.0.0.1:1/stats", timeout=0.2) is None  # worker down: not healthy
    assert mp.read_stats(f"{fake_imds.url}/missing") is None


def test_main_requires_a_fleet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEET_NAME", raising=False)
    assert mp.main([]) == 2
