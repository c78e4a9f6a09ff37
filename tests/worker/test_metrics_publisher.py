"""The host CPU metric publisher: CPU arithmetic, the publish decision, IMDSv2, CloudWatch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
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


def test_run_forever_ticks_on_the_clocks_multiples_of_the_period() -> None:
    """Every host measures the same 10 s: started at 3.0 s, the ticks come at 10, 20 and 30 s
    (each sleep overshoots by 0.2 s), not at 13, 23 and 33."""
    clock = [3.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds + 0.2

    ticks: list[float] = []
    publisher = Publisher(sink=lambda v, t: None, lifecycle=lambda: None, stats=lambda: None)
    publisher.tick = lambda: ticks.append(clock[0])  # type: ignore[method-assign]
    mp.run_forever(publisher, period=10.0, sleep=sleep, clock=lambda: clock[0], iterations=3)
    assert ticks == [3.0, pytest.approx(10.2), pytest.approx(20.2), pytest.approx(30.2)]
    assert sleeps == [pytest.approx(7.0), pytest.approx(9.8), pytest.approx(9.8)]


@pytest.mark.parametrize(
    ("now", "boundary"), [(3.0, 10.0), (5.0, 10.0), (5.1, 20.0), (10.2, 20.0), (15.0, 20.0), (15.2, 30.0)]
)
def test_the_next_tick_is_at_least_half_a_period_away(now: float, boundary: float) -> None:
    # A first period of a second or two would give rates of a few arrivals.
    assert mp.next_boundary(now, 10.0) == pytest.approx(boundary)


def test_run_forever_waits_again_when_a_sleep_ends_early_and_resumes_after_a_suspension() -> None:
    clock = [0.0]
    steps = iter([4.0, 6.0, 30.0, 0.0])  # 4 s of a 10 s sleep; then a host suspended for 30 s

    def sleep(seconds: float) -> None:
        clock[0] += next(steps) or seconds

    ticks: list[float] = []
    publisher = Publisher(sink=lambda v, t: None, lifecycle=lambda: None, stats=lambda: None)
    publisher.tick = lambda: ticks.append(clock[0])  # type: ignore[method-assign]
    mp.run_forever(publisher, period=10.0, sleep=sleep, clock=lambda: clock[0], iterations=3)
    assert ticks == [0.0, 10.0, 40.0, 50.0]  # woken at 40 s, 20 s late: a tick, then the schedule


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


# -- host demand reports ----------------------------------------------------------------------

# 2 x 80: the template's PanicThreshold and CpuTarget defaults.
LINE = mp.alert_line(2.0, 80.0)
# One process at the nominal 0.5 s, 10 s periods: each arrival is 5 % of the host offered.
PER_ARRIVAL = 5.0


class Recorder:
    """The CloudWatch sink and the alert sink of one publisher, in the order they were called."""

    def __init__(self, fail_alert: bool = False, fail_put: bool = False) -> None:
        self.calls: list[tuple[str, Reading, datetime, float | None]] = []
        self.fail_alert = fail_alert
        self.fail_put = fail_put

    def put(self, reading: Reading, timestamp: datetime) -> None:
        self.calls.append(("put", reading, timestamp, None))
        if self.fail_put:
            raise RuntimeError("throttled")

    def alert(self, reading: Reading, timestamp: datetime, period_seconds: float) -> None:
        self.calls.append(("alert", reading, timestamp, period_seconds))
        if self.fail_alert:
            raise RuntimeError("sns unreachable")

    def kinds(self) -> list[str]:
        return [call[0] for call in self.calls]


def alerting_publisher(
    arrivals: list[int],
    recorder: Recorder,
    lifecycle: str | None = "service",
    healthy: bool = True,
    alert: bool = True,
    line: float = LINE,
) -> Publisher:
    """A publisher whose periods (10 s each) see ``arrivals`` /work requests, one process."""
    counts = [0]
    for n in arrivals:
        counts.append(counts[-1] + n)
    ticks = len(counts)
    return Publisher(
        sink=recorder.put,
        lifecycle=lambda: lifecycle,
        stats=Sequence([WorkerStats(healthy, n, processes=1) for n in counts]),
        read_cpu=FakeCpu([CpuTimes(50 * i, 100 * i) for i in range(ticks)]),
        now=lambda: NOW,
        monotonic=Sequence([10.0 * i for i in range(ticks)]),
        alert=recorder.alert if alert else None,
        alert_line=line,
    )


def run_ticks(publisher: Publisher, periods: int) -> list[Reading | None]:
    publisher.tick()  # the baseline
    return [publisher.tick() for _ in range(periods)]


def test_the_panic_line_is_the_threshold_times_the_target() -> None:
    assert LINE == 160.0
    assert mp.alert_line(1.1, 70.0) == 77.0  # not 77.00000000000001: the line of a published figure
    assert mp.alert_line(1.5, 33.3333) == 50.0


def test_a_report_for_every_period_at_or_over_the_line_and_none_below() -> None:
    """31 arrivals: 155 % (below 160); 32: exactly the line; 40: over it; then calm again."""
    recorder = Recorder()
    publisher = alerting_publisher([31, 32, 40, 40, 2], recorder)
    readings = run_ticks(publisher, 5)
    offered = [r.offered_load_percent for r in readings if r is not None]
    assert offered == pytest.approx([155.0, 160.0, 200.0, 200.0, 10.0])
    alerts = [(r.offered_load_percent, period) for kind, r, _ts, period in recorder.calls if kind == "alert"]
    assert alerts == [(pytest.approx(160.0), 10.0), (pytest.approx(200.0), 10.0), (pytest.approx(200.0), 10.0)]
    # Every period still goes to CloudWatch, the report first.
    assert recorder.kinds() == ["put", "alert", "put", "alert", "put", "alert", "put", "put"]


def test_put_metric_data_waits_its_spread_after_the_report() -> None:
    """Every host ticks at the same instant: the report goes at once, PutMetricData a random
    share of a second later, with the tick's timestamp."""
    recorder = Recorder()
    order: list[str] = []

    def pause(seconds: float) -> None:
        order.append(f"pause {seconds:g}")

    def alert(reading: Reading, timestamp: datetime, period_seconds: float) -> None:
        order.append("alert")
        recorder.alert(reading, timestamp, period_seconds)

    def put(reading: Reading, timestamp: datetime) -> None:
        order.append("put")
        recorder.put(reading, timestamp)

    publisher = replace(alerting_publisher([40], recorder), sink=put, alert=alert, spread_seconds=1.0, pause=pause,
                        draw=lambda: 0.25)  # fmt: skip
    run_ticks(publisher, 1)
    assert order == ["alert", "pause 0.25", "put"]
    assert recorder.calls[0][2] == recorder.calls[1][2] == NOW


@pytest.mark.parametrize(
    ("lifecycle", "healthy"), [("warming", True), ("pool", True), ("draining", True), (None, True), ("service", False)]
)
def test_no_report_from_a_host_that_may_not_publish(lifecycle: str | None, healthy: bool) -> None:
    recorder = Recorder()
    assert run_ticks(alerting_publisher([60, 60], recorder, lifecycle, healthy), 2) == [None, None]
    assert recorder.calls == []


def test_no_report_without_a_topic() -> None:
    recorder = Recorder()
    readings = run_ticks(alerting_publisher([60, 60], recorder, alert=False), 2)
    assert all(r is not None and r.offered_load_percent == pytest.approx(300.0) for r in readings)
    assert recorder.kinds() == ["put", "put"]


def test_a_failed_report_does_not_stop_the_metrics(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(fail_alert=True)
    publisher = alerting_publisher([60, 60], recorder)
    with caplog.at_level("WARNING", logger="worker.metrics_publisher"):
        readings = run_ticks(publisher, 2)
    assert all(r is not None for r in readings)  # published to CloudWatch both times
    assert recorder.kinds() == ["alert", "put", "alert", "put"]
    assert "host demand report failed" in caplog.text and "sns unreachable" in caplog.text


def test_the_report_goes_out_when_cloudwatch_fails() -> None:
    recorder = Recorder(fail_put=True)
    assert run_ticks(alerting_publisher([60], recorder), 1) == [None]
    assert recorder.kinds() == ["alert", "put"]


class FakeSns:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> dict[str, str]:
        self.calls.append(kwargs)
        return {"MessageId": "m-1"}


CONTRACT_KEYS = {"AutoscalerHostDemand", "Fleet", "InstanceId", "Timestamp", "PeriodSeconds", "Namespace", "Metrics"}
TOPIC = "arn:aws:sns:eu-west-1:123456789012:autoscaler-DemandTopic-0123ABCD"


def test_the_report_message_is_the_contract_with_the_timestamp_of_the_put() -> None:
    """Through the real sinks: one compact JSON object, exactly the contract's fields, the figures
    as PutMetricData carries them, and the very instant of that period's PutMetricData."""
    sns, cloudwatch = FakeSns(), FakeCloudWatch()
    now = datetime(2026, 1, 1, 0, 10, 7, 123456, tzinfo=UTC)
    stats = [
        WorkerStats(True, work_requests=100, shed=5, rejected=1, queued=3, processes=2, mean_service_seconds=0.5),
        WorkerStats(True, work_requests=200, shed=30, rejected=1, queued=50, processes=2, mean_service_seconds=0.5),
    ]
    publisher = Publisher(
        sink=CloudWatchSink("blue", "i-0abc", "Autoscaler", "HostCpu", "HostRequests", client=cloudwatch),
        lifecycle=lambda: "service",
        stats=Sequence(stats),
        read_cpu=FakeCpu([CpuTimes(0, 300), CpuTimes(299, 600)]),
        now=lambda: now,
        monotonic=Sequence([0.0, 9.987654]),
        alert=mp.DemandAlertSink(TOPIC, "blue", "i-0abc", "Autoscaler", "HostCpu", "HostRequests", client=sns),
        alert_line=LINE,
    )
    publisher.tick()
    assert publisher.tick() is not None
    (call,) = sns.calls
    assert set(call) == {"TopicArn", "Message", "MessageAttributes"}  # no Subject
    assert call["TopicArn"] == TOPIC
    assert call["MessageAttributes"] == {"Fleet": {"DataType": "String", "StringValue": "blue"}}
    message = call["Message"]
    report = json.loads(message)
    assert message == json.dumps(report, separators=(",", ":"))  # compact, one object
    assert set(report) == CONTRACT_KEYS
    assert report["AutoscalerHostDemand"] == 1
    assert (report["Fleet"], report["InstanceId"], report["Namespace"]) == ("blue", "i-0abc", "Autoscaler")
    assert report["Timestamp"] == "2026-01-01T00:10:07.123Z"
    assert report["PeriodSeconds"] == 9.988
    # The configured metric names first, in publishing order; 100 arrivals x 0.5 s over 9.99 s
    # on 2 processes; 50 queued x 0.5 s / 2; 25 shed.
    assert list(report["Metrics"]) == ["HostCpu", "HostRequests", "OfferedLoad", "BacklogSeconds", "ShedRequests"]
    assert report["Metrics"] == {
        "HostCpu": 99.667,
        "HostRequests": 600.742,
        "OfferedLoad": 250.309,
        "BacklogSeconds": 12.5,
        "ShedRequests": 25.0,
    }
    # The same figures and the same instant as the PutMetricData of that period.
    (put,) = cloudwatch.calls
    host_data = [d for d in put["MetricData"] if len(d["Dimensions"]) == 2]
    assert {d["MetricName"]: d["Value"] for d in host_data} == report["Metrics"]
    assert {d["Timestamp"] for d in put["MetricData"]} == {datetime(2026, 1, 1, 0, 10, 7, 123000, tzinfo=UTC)}
    assert put["Namespace"] == report["Namespace"]


def test_report_timestamps_are_utc_milliseconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert mp.iso_timestamp(datetime(2026, 1, 1, 2, 0, 0, 999999, tzinfo=plus_two)) == "2026-01-01T00:00:00.999Z"
    assert mp.iso_timestamp(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000Z"


@pytest.mark.integration
def test_demand_alert_sink_against_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """SNS Publish through botocore to a topic with an SQS subscriber: the envelope carries the
    report as its Message and the Fleet attribute."""
    moto = pytest.importorskip("moto")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with moto.mock_aws():
        import boto3

        sns = boto3.client("sns", region_name="eu-west-1")
        sqs = boto3.client("sqs", region_name="eu-west-1")
        topic = sns.create_topic(Name="demand")["TopicArn"]
        queue = sqs.create_queue(QueueName="reports")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        sink = mp.DemandAlertSink(topic, "blue", "i-0abc", region="eu-west-1")
        sink(Reading(100.0, 300.0, 250.0, 12.5, 0.0), datetime(2026, 1, 1, 0, 10, 7, 123000, tzinfo=UTC), 10.0)
        (received,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        envelope = json.loads(received["Body"])
        assert envelope["TopicArn"] == topic
        assert envelope["MessageAttributes"] == {"Fleet": {"Type": "String", "Value": "blue"}}
        assert json.loads(envelope["Message"]) == {
            "AutoscalerHostDemand": 1,
            "Fleet": "blue",
            "InstanceId": "i-0abc",
            "Timestamp": "2026-01-01T00:10:07.123Z",
            "PeriodSeconds": 10.0,
            "Namespace": "Autoscaler",
            "Metrics": {
                "CPUUtilization": 100.0,
                "RequestsPerMinute": 300.0,
                "OfferedLoad": 250.0,
                "BacklogSeconds": 12.5,
                "ShedRequests": 0.0,
            },
        }


# -- the command line -------------------------------------------------------------------------

PUBLISHER_VARIABLES = ("FLEET_NAME", "DEMAND_TOPIC_ARN", "PANIC_THRESHOLD", "CPU_TARGET")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PUBLISHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_reports_are_off_without_a_topic(clean_env: pytest.MonkeyPatch) -> None:
    args = mp.parse_args(["--fleet", "blue"])
    assert (args.demand_topic_arn, args.panic_threshold, args.cpu_target) == ("", None, None)
    clean_env.setenv("DEMAND_TOPIC_ARN", "")  # what the unit says when HostDemandReports is Disabled
    clean_env.setenv("PANIC_THRESHOLD", "2")
    clean_env.setenv("CPU_TARGET", "80")
    args = mp.parse_args(["--fleet", "blue"])
    assert (args.demand_topic_arn, args.panic_threshold, args.cpu_target) == ("", 2.0, 80.0)


def test_the_topic_and_the_line_come_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DEMAND_TOPIC_ARN", TOPIC)
    clean_env.setenv("PANIC_THRESHOLD", "2.5")
    clean_env.setenv("CPU_TARGET", "70")
    args = mp.parse_args(["--fleet", "blue"])
    assert (args.demand_topic_arn, args.panic_threshold, args.cpu_target) == (TOPIC, 2.5, 70.0)
    args = mp.parse_args(["--fleet", "blue", "--cpu-target", "100"])  # the flag wins
    assert args.cpu_target == 100.0


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--panic-threshold", "two"], {}, "argument --panic-threshold: not a number: 'two'"),
        (["--panic-threshold", "1"], {}, "argument --panic-threshold: must be above 1"),
        (["--panic-threshold", "0.5"], {}, "argument --panic-threshold: must be above 1"),
        (["--panic-threshold", "inf"], {}, "argument --panic-threshold: not a finite number"),
        (["--cpu-target", "0"], {}, "argument --cpu-target: must be a percentage above 0 and at most 100"),
        (["--cpu-target", "100.5"], {}, "argument --cpu-target: must be a percentage above 0 and at most 100"),
        (["--cpu-target", "nan"], {}, "argument --cpu-target: not a finite number"),
        (["--cpu-target", "80%"], {}, "argument --cpu-target: not a number: '80%'"),
        (["--demand-topic-arn", "demand"], {}, "argument --demand-topic-arn: not an SNS topic ARN: 'demand'"),
        (
            ["--demand-topic-arn", "arn:aws:sqs:eu-west-1:123456789012:demand"],
            {},
            "argument --demand-topic-arn: not an SNS topic ARN",
        ),
        ([], {"PANIC_THRESHOLD": "x"}, "argument --panic-threshold: not a number: 'x'"),
        ([], {"CPU_TARGET": "-5"}, "argument --cpu-target: must be a percentage above 0 and at most 100"),
        (
            ["--demand-topic-arn", TOPIC, "--cpu-target", "80"],
            {},
            "--demand-topic-arn needs --panic-threshold and --cpu-target",
        ),
        ([], {"DEMAND_TOPIC_ARN": TOPIC, "PANIC_THRESHOLD": "2"}, "--demand-topic-arn needs --panic-threshold"),
    ],
)
def test_bad_values_stop_at_start_with_a_clear_error(
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        mp.main(["--fleet", "blue", *argv])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_check_config_validates_and_exits(clean_env: pytest.MonkeyPatch, fake_imds: FakeImds) -> None:
    """--check-config (the boot script runs it with the unit's environment) reads nothing else."""
    ok = ["--fleet", "blue", "--demand-topic-arn", TOPIC, "--panic-threshold", "2", "--cpu-target", "80"]
    assert mp.main([*ok, "--imds-url", fake_imds.url, "--check-config"]) == 0
    assert fake_imds.reads(FakeImds.TAGS + "AutoscalerLifecycle") == []
    assert mp.main(["--check-config"]) == 2  # no fleet


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--demand-topic-arn", TOPIC, "--panic-threshold", "2", "--cpu-target", "80"], 160.0),
        (["--demand-topic-arn", "", "--panic-threshold", "2", "--cpu-target", "80"], None),
        ([], None),
    ],
)
def test_main_wires_the_report_sink_and_the_line(
    clean_env: pytest.MonkeyPatch, fake_imds: FakeImds, argv: list[str], line: float | None
) -> None:
    started: list[Publisher] = []
    clean_env.setattr(mp, "run_forever", lambda publisher, period: started.append(publisher))
    assert mp.main(["--fleet", "blue", "--region", "eu-west-1", "--imds-url", fake_imds.url, *argv]) == 0
    (publisher,) = started
    assert publisher.spread_seconds == pytest.approx(1.0)  # a tenth of the 10 s period
    if line is None:
        assert publisher.alert is None
        return
    assert isinstance(publisher.alert, mp.DemandAlertSink)
    assert publisher.alert_line == line
    assert (publisher.alert.topic_arn, publisher.alert.fleet) == (TOPIC, "blue")
    assert publisher.alert.instance_id == FakeImds.INSTANCE_ID
    assert publisher.alert.region == "eu-west-1"
