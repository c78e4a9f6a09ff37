"""Host metric publisher (``python -m worker.metrics_publisher``).

At every multiple of the period (10 s) on the UTC clock, the same instants on every host, it
measures, over the last period, the host CPU utilisation (``/proc/stat`` deltas) and, from the
worker's ``/stats`` (cumulative counters, deltas taken here), the demand that reached the host,
and publishes all of it to CloudWatch in one ``PutMetricData`` call, stamped at that instant and
sent within a tenth of the period after it:
namespace ``Autoscaler``, ``StorageResolution=1``, metrics

* ``CPUUtilization`` (Percent): host CPU over the period;
* ``RequestsPerMinute`` (None): /work requests that reached the host, per minute;
* ``OfferedLoad`` (Percent): the CPU the period's arrivals need, in percent of the host,
  ``arrivals * mean_service_seconds / (period_seconds * processes) * 100``, not capped at 100;
* ``BacklogSeconds`` (Seconds): now, ``queued * mean_service_seconds / processes``;
* ``ShedRequests`` (Count): /work requests answered 503 in the period (shed over the queue
  budget, or rejected with a full queue),

each twice: with the dimension ``Fleet=<fleet>`` (what the alarms watch) and with ``Fleet`` and
``InstanceId`` (what the control plane sums over the instances in service). It publishes only
while

* the instance's lifecycle tag (IMDSv2 ``/latest/meta-data/tags/instance/AutoscalerLifecycle``)
  is ``service``, and
* the local worker reports itself healthy (the ``/ping`` rule),

so booting, warming and draining hosts neither dilute nor inflate the fleet's figures.

**Host demand reports** (docs/contracts.md): CloudWatch makes a datapoint visible to alarms and
to the control plane only after a publication delay, and the alarm adds its evaluation. So when
a period's ``OfferedLoad`` (as published, 3 decimals) is at or above the panic line
(``--panic-threshold`` x ``--cpu-target``, the template's PanicThreshold and CpuTarget), the host
also publishes that same period's figures, with the same timestamp, as one JSON message to the
SNS topic ``--demand-topic-arn``, which invokes the scale-out function directly. It does so every
period at or over the line (the function looks for consecutive periods), under the same gate as
the metrics, and before ``PutMetricData`` (the report is the urgent one); a failed report is
logged and the metrics still go out. Without a topic no report is ever sent.

CloudWatch and SNS are reached through botocore (AL2023: ``dnf install python3-botocore``),
imported lazily so that the serving side of the package stays standard-library only; spawning the
aws CLI every 10 s would cost more CPU than the metric is worth. IMDS, CloudWatch, SNS, the stats probe,
the CPU reader and the clock are all injectable, so the decisions and the arithmetic are
unit-tested without AWS.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from worker.shedding import NOMINAL_SERVICE_SECONDS, backlog_seconds

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

LOG = logging.getLogger("worker.metrics_publisher")

IMDS_URL = "http://169.254.169.254"
LIFECYCLE_TAG = "AutoscalerLifecycle"
SERVICE_LIFECYCLE = "service"
DEFAULT_NAMESPACE = "Autoscaler"
DEFAULT_METRIC = "CPUUtilization"
DEFAULT_REQUEST_METRIC = "RequestsPerMinute"
OFFERED_LOAD_METRIC = "OfferedLoad"
BACKLOG_METRIC = "BacklogSeconds"
SHED_METRIC = "ShedRequests"
DEFAULT_PERIOD = 10.0
PUT_SPREAD_SHARE = 0.1  # of the period: see Publisher.spread_seconds
# The marker of a host demand report (docs/contracts.md, "Host demand reports").
DEMAND_REPORT_MARKER = "AutoscalerHostDemand"


# -- CPU --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuTimes:
    """Aggregate jiffies of the first ``cpu`` line of /proc/stat."""

    busy: int
    total: int


def parse_proc_stat(text: str) -> CpuTimes:
    """Parse the aggregate ``cpu`` line: user nice system idle iowait irq softirq steal [guest...].

    guest and guest_nice are already counted in user and nice, so only the first eight fields
    make up the total; idle and iowait are the non-busy part.
    """
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:9]]
            values += [0] * (8 - len(values))
            total = sum(values)
            idle = values[3] + values[4]
            return CpuTimes(busy=total - idle, total=total)
    raise ValueError("no aggregate 'cpu' line in /proc/stat")


def cpu_percent(before: CpuTimes, after: CpuTimes) -> float | None:
    """Utilisation between two samples in percent (0-100), None if no time elapsed."""
    total = after.total - before.total
    if total <= 0:
        return None
    busy = after.busy - before.busy
    return max(0.0, min(100.0, 100.0 * busy / total))


def read_proc_stat(path: str = "/proc/stat") -> CpuTimes:
    return parse_proc_stat(Path(path).read_text(encoding="ascii"))


# -- IMDSv2 -----------------------------------------------------------------------------------


class Imds:
    """Minimal IMDSv2 client (token PUT, then GET with the token); stdlib only."""

    def __init__(self, base_url: str = IMDS_URL, timeout: float = 1.0, token_ttl: int = 21600) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.token_ttl = token_ttl
        self._token: str | None = None
        self._token_expires = 0.0

    def _fetch_token(self) -> str:
        now = time.monotonic()
        if self._token is None or now >= self._token_expires:
            request = urllib.request.Request(  # noqa: S310 - fixed http URL of the IMDS
                f"{self.base_url}/latest/api/token",
                method="PUT",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": str(self.token_ttl)},
            )
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                self._token = response.read().decode()
            self._token_expires = now + self.token_ttl - 60
        return self._token

    def get(self, path: str) -> str | None:
        """Body of a metadata path, None when it does not exist (404) or IMDS is unreachable."""
        try:
            token = self._fetch_token()
            request = urllib.request.Request(  # noqa: S310
                f"{self.base_url}/{path.lstrip('/')}", headers={"X-aws-ec2-metadata-token": token}
            )
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return str(response.read().decode().strip())
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                self._token = None
            return None
        except (OSError, ValueError):
            return None

    def lifecycle(self) -> str | None:
        return self.get(f"latest/meta-data/tags/instance/{LIFECYCLE_TAG}")

    def instance_id(self) -> str | None:
        return self.get("latest/meta-data/instance-id")


@dataclass(frozen=True)
class WorkerStats:
    """What the worker's ``/stats`` says (``worker.server.Supervisor.stats``).

    ``work_requests`` (every /work that reached the host), ``shed`` and ``rejected`` are
    cumulative since the worker started; ``queued``, ``processes`` and ``mean_service_seconds``
    (the worker's moving average of completed /work requests) describe the moment of the read.
    """

    healthy: bool
    work_requests: int
    shed: int = 0
    rejected: int = 0
    queued: int = 0
    processes: int = 1
    mean_service_seconds: float = NOMINAL_SERVICE_SECONDS

    def refused(self) -> int:
        """/work requests answered 503: shed over the budget or rejected with a full queue."""
        return self.shed + self.rejected


def read_stats(url: str, timeout: float = 2.0) -> WorkerStats | None:
    """The worker's counters, None when it does not answer (or answers something else)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local URL
            body = json.loads(response.read())
        return WorkerStats(
            healthy=bool(body["healthy"]),
            work_requests=int(body["work_requests"]),
            shed=int(body["shed"]),
            rejected=int(body["rejected"]),
            queued=int(body["queued"]),
            processes=int(body["processes"]),
            mean_service_seconds=float(body["mean_service_seconds"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def offered_load_percent(arrivals: int, mean_service_seconds: float, period_seconds: float, processes: int) -> float:
    """CPU the period's arrivals need, in percent of the host's processes; not capped at 100."""
    return 100.0 * arrivals * mean_service_seconds / (period_seconds * max(1, processes))


def demand(before: WorkerStats, after: WorkerStats, elapsed: float) -> tuple[float, float, float, float] | None:
    """(requests per minute, offered load %, backlog s, requests refused) over one period, or None
    when there is no rate: no time elapsed, or the worker restarted (a counter went backwards)."""
    arrivals = after.work_requests - before.work_requests
    refused = after.refused() - before.refused()
    if elapsed <= 0 or arrivals < 0 or after.shed < before.shed or after.rejected < before.rejected:
        return None
    return (
        arrivals * 60.0 / elapsed,
        offered_load_percent(arrivals, after.mean_service_seconds, elapsed, after.processes),
        backlog_seconds(after.queued, after.mean_service_seconds, after.processes),
        float(refused),
    )


# -- CloudWatch -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One period's figures for this host (docs/contracts.md, "The hosts' metrics")."""

    cpu_percent: float
    requests_per_minute: float
    offered_load_percent: float = 0.0
    backlog_seconds: float = 0.0
    shed_requests: float = 0.0


class MetricSink(Protocol):
    def __call__(self, reading: Reading, timestamp: datetime) -> None: ...


class AlertSink(Protocol):
    def __call__(self, reading: Reading, timestamp: datetime, period_seconds: float) -> None: ...


def metric_values(
    reading: Reading, metric: str = DEFAULT_METRIC, request_metric: str = DEFAULT_REQUEST_METRIC
) -> list[tuple[str, float, str]]:
    """(metric name, value as published, unit) of one period, in publishing order: the one place
    that names and rounds the figures, for PutMetricData and the demand report alike."""
    return [
        (name, round(value, 3), unit)
        for name, value, unit in (
            (metric, reading.cpu_percent, "Percent"),
            (request_metric, reading.requests_per_minute, "None"),
            (OFFERED_LOAD_METRIC, reading.offered_load_percent, "Percent"),
            (BACKLOG_METRIC, reading.backlog_seconds, "Seconds"),
            (SHED_METRIC, reading.shed_requests, "Count"),
        )
    ]


def _botocore_client(service: str, region: str | None, config: Any = None) -> Any:
    try:
        import botocore.session  # optional dependency, host side only
    except ImportError as exc:  # pragma: no cover - depends on the host
        raise RuntimeError("botocore is required: dnf install -y python3-botocore") from exc
    return botocore.session.get_session().create_client(service, region_name=region, config=config)


class _HostSink:
    """What a sink says of this host: its fleet and instance, the namespace and metric names it
    publishes under; the botocore client, made when first used (injectable for tests)."""

    def __init__(
        self,
        fleet: str,
        instance_id: str,
        namespace: str = DEFAULT_NAMESPACE,
        metric: str = DEFAULT_METRIC,
        request_metric: str = DEFAULT_REQUEST_METRIC,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        self.fleet = fleet
        self.instance_id = instance_id
        self.namespace = namespace
        self.metric = metric
        self.request_metric = request_metric
        self.region = region
        self._client = client


class CloudWatchSink(_HostSink):
    """``PutMetricData`` through botocore (or boto3), imported only when first used."""

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = _botocore_client("cloudwatch", self.region)
        return self._client

    def __call__(self, reading: Reading, timestamp: datetime) -> None:
        fleet = [{"Name": "Fleet", "Value": self.fleet}]
        host = [*fleet, {"Name": "InstanceId", "Value": self.instance_id}]
        data = [
            {
                "MetricName": name,
                "Dimensions": dimensions,
                "Timestamp": timestamp,
                "Value": value,
                "Unit": unit,
                "StorageResolution": 1,
            }
            for name, value, unit in metric_values(reading, self.metric, self.request_metric)
            for dimensions in (fleet, host)
        ]
        self._get_client().put_metric_data(Namespace=self.namespace, MetricData=data)


# -- host demand reports ----------------------------------------------------------------------


def iso_timestamp(timestamp: datetime) -> str:
    """UTC, ISO 8601, milliseconds, ``Z``: ``2026-01-01T00:10:07.123Z``."""
    utc = timestamp.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def demand_report(
    fleet: str,
    instance_id: str,
    reading: Reading,
    timestamp: datetime,
    period_seconds: float,
    namespace: str = DEFAULT_NAMESPACE,
    metric: str = DEFAULT_METRIC,
    request_metric: str = DEFAULT_REQUEST_METRIC,
) -> dict[str, Any]:
    """The report of one period (docs/contracts.md, "Host demand reports")."""
    return {
        DEMAND_REPORT_MARKER: 1,
        "Fleet": fleet,
        "InstanceId": instance_id,
        "Timestamp": iso_timestamp(timestamp),
        "PeriodSeconds": round(float(period_seconds), 3),
        "Namespace": namespace,
        "Metrics": {name: value for name, value, _unit in metric_values(reading, metric, request_metric)},
    }


class DemandAlertSink(_HostSink):
    """SNS ``Publish`` of a host demand report through botocore, imported only when first used."""

    def __init__(self, topic_arn: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.topic_arn = topic_arn

    def _get_client(self) -> Any:
        if self._client is None:
            from botocore.config import Config

            # A report is worth something only within the control plane's panic window (20 s by
            # default) and it goes out before the period's PutMetricData: fail fast rather than
            # hold the metrics behind botocore's default 60 s timeouts and retries.
            config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 2})
            self._client = _botocore_client("sns", self.region, config)
        return self._client

    def message(self, reading: Reading, timestamp: datetime, period_seconds: float) -> str:
        report = demand_report(
            self.fleet, self.instance_id, reading, timestamp, period_seconds,
            self.namespace, self.metric, self.request_metric,
        )  # fmt: skip
        return json.dumps(report, separators=(",", ":"))

    def __call__(self, reading: Reading, timestamp: datetime, period_seconds: float) -> None:
        self._get_client().publish(
            TopicArn=self.topic_arn,
            Message=self.message(reading, timestamp, period_seconds),
            MessageAttributes={"Fleet": {"DataType": "String", "StringValue": self.fleet}},
        )


def alert_line(panic_threshold: float, cpu_target: float) -> float:
    """The panic line in percent of a host (PanicThreshold x CpuTarget), to the 3 decimals the
    figures are published with: 2 x 80 = 160."""
    return round(panic_threshold * cpu_target, 3)


# -- the loop ---------------------------------------------------------------------------------


def should_publish(lifecycle: str | None, worker_healthy: bool) -> bool:
    """The contract: publish only for an in-service host whose worker is healthy."""
    return lifecycle == SERVICE_LIFECYCLE and worker_healthy


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)  # datetime.UTC is 3.11+: the host runs 3.9


@dataclass
class Publisher:
    """One ``tick()`` per period: sample, decide, publish. Every collaborator is injected.

    ``alert`` (None: no reports) gets the period's reading when its ``OfferedLoad``, as
    published, is at or above ``alert_line`` (percent; docs/contracts.md, "Host demand reports").
    """

    sink: MetricSink
    lifecycle: Callable[[], str | None]
    stats: Callable[[], WorkerStats | None]
    read_cpu: Callable[[], CpuTimes] = read_proc_stat
    now: Callable[[], datetime] = _utcnow
    monotonic: Callable[[], float] = time.monotonic
    alert: AlertSink | None = None
    alert_line: float = math.inf
    # PutMetricData waits a random share of this after the tick: every host ticks at the same
    # instant, and CloudWatch asks for calls spread in time, not bunched (AWS re:Post Knowledge
    # Center, repost.aws/knowledge-center/cloudwatch-400-error-throttling). The timestamp stays
    # the tick's.
    spread_seconds: float = 0.0
    pause: Callable[[float], None] = time.sleep
    draw: Callable[[], float] = random.random
    _last: tuple[CpuTimes, WorkerStats | None, float] | None = None

    def tick(self) -> Reading | None:
        """Returns what was published, or None when nothing was published."""
        cpu, stats, at = self.read_cpu(), self.stats(), self.monotonic()
        previous, self._last = self._last, (cpu, stats, at)
        if previous is None:
            return None
        value = cpu_percent(previous[0], cpu)
        if value is None:
            return None
        lifecycle = self.lifecycle()
        healthy = stats is not None and stats.healthy
        if not should_publish(lifecycle, healthy):
            LOG.debug("not publishing: lifecycle=%s healthy=%s", lifecycle, healthy)
            return None
        assert stats is not None
        before = previous[1]
        elapsed = at - previous[2]
        # A restarted worker starts counting from zero: no rate for that period.
        rates = None if before is None else demand(before, stats, elapsed)
        if rates is None:
            return None
        reading = Reading(value, *rates)
        # Whole milliseconds, the report's resolution: both carry exactly the same instant.
        now = self.now()
        timestamp = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._report(reading, timestamp, elapsed)
        if self.spread_seconds > 0:
            self.pause(self.spread_seconds * self.draw())
        try:
            self.sink(reading, timestamp)
        except Exception as exc:  # network, throttling, credentials: log and try next period
            LOG.warning("PutMetricData failed: %s", exc)
            return None
        LOG.debug(
            "published %.1f%%, %.1f requests/min, offered %.1f%%, backlog %.1f s, %d shed",
            reading.cpu_percent, reading.requests_per_minute, reading.offered_load_percent,
            reading.backlog_seconds, reading.shed_requests,
        )  # fmt: skip
        return reading

    def _report(self, reading: Reading, timestamp: datetime, elapsed: float) -> None:
        """The host demand report, for a period at or over the panic line; never raises."""
        offered = round(reading.offered_load_percent, 3)
        if self.alert is None or offered < self.alert_line:
            return
        try:
            self.alert(reading, timestamp, elapsed)
        except Exception as exc:  # as for PutMetricData: log, the metrics still go out
            LOG.warning("host demand report failed (offered %.1f%%): %s", offered, exc)
            return
        LOG.info("host demand report: offered %.1f%% >= panic line %.1f%%", offered, self.alert_line)


def next_boundary(now: float, period: float) -> float:
    """The first multiple of ``period`` seconds of the UTC epoch at least half a period after
    ``now``: where the next period ends (a shorter one would give rates of a few arrivals)."""
    return math.ceil((now + period / 2) / period) * period


def run_forever(
    publisher: Publisher,
    period: float = DEFAULT_PERIOD,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    iterations: int | None = None,
) -> None:
    """Tick at the UTC clock's multiples of ``period`` (no drift), ``iterations`` times.

    Every host then measures the same interval, and CloudWatch files each host's datapoint of it
    (stamped at the tick) under the same period. The control plane sums the hosts' datapoints
    per period: on schedules of their own, a period summed intervals up to ``period`` apart, and
    a load moving to new hosts counted twice (the twin's flash crowd: 567 % over four hosts where
    300 % arrived, which bought a sixth instance where 4 serve). EC2 keeps the clock with the
    Amazon Time Sync Service (EC2 user guide, "Set the time for your Amazon EC2 instance").
    """
    publisher.tick()  # first sample: the baseline of the first delta
    done = 0
    while iterations is None or done < iterations:
        boundary = next_boundary(clock(), period)
        # A host suspended past it ticks on waking, then on the schedule again.
        while (delay := boundary - clock()) > 0:
            sleep(delay)
        publisher.tick()
        done += 1


# An SNS topic ARN (SNS API reference, "CreateTopic": names of up to 256 letters, digits,
# hyphens and underscores; a FIFO topic's ends in .fifo).
_TOPIC_ARN = re.compile(r"arn:[a-z-]+:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")


def topic_arn(text: str) -> str:
    """``--demand-topic-arn``: an SNS topic ARN, or empty (no reports)."""
    text = text.strip()
    if text and not _TOPIC_ARN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"not an SNS topic ARN: {text!r}")
    return text


def _number(text: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def panic_threshold(text: str) -> float | None:
    """``--panic-threshold``: above 1 (the template's PanicThreshold), or empty (not given)."""
    value = _number(text)
    if value is not None and value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 1 (a multiple of the CPU target): {text!r}")
    return value


def cpu_target(text: str) -> float | None:
    """``--cpu-target``: a percentage in (0, 100] (the template's CpuTarget), or empty (not given)."""
    value = _number(text)
    if value is not None and not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"must be a percentage above 0 and at most 100: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m worker.metrics_publisher",
        description="Publish host CPU %% and demand to CloudWatch while this host is in service and healthy; "
        "with --demand-topic-arn, also report each period at or over the panic line to that SNS topic.",
    )
    parser.add_argument("--fleet", default=env("FLEET_NAME"), help="fleet name [FLEET_NAME]")
    parser.add_argument(
        "--namespace", default=env("CPU_METRIC_NAMESPACE", DEFAULT_NAMESPACE), help="[CPU_METRIC_NAMESPACE]"
    )
    parser.add_argument("--metric", default=env("CPU_METRIC_NAME", DEFAULT_METRIC), help="[CPU_METRIC_NAME]")
    parser.add_argument(
        "--request-metric", default=env("REQUEST_METRIC_NAME", DEFAULT_REQUEST_METRIC), help="[REQUEST_METRIC_NAME]"
    )
    parser.add_argument(
        "--period",
        type=float,
        default=float(env("CPU_METRIC_PERIOD_SECONDS", str(DEFAULT_PERIOD))),
        help="[CPU_METRIC_PERIOD_SECONDS]",
    )
    parser.add_argument(
        "--demand-topic-arn",
        type=topic_arn,
        default=env("DEMAND_TOPIC_ARN", ""),
        help="SNS topic for host demand reports; empty: none [DEMAND_TOPIC_ARN]",
    )
    # The panic line is their product; both come from the template's parameters, so that the
    # line is written down in one place only (PanicThreshold, CpuTarget).
    parser.add_argument(
        "--panic-threshold",
        type=panic_threshold,
        default=env("PANIC_THRESHOLD", ""),
        help="the template's PanicThreshold (> 1) [PANIC_THRESHOLD]",
    )
    parser.add_argument(
        "--cpu-target",
        type=cpu_target,
        default=env("CPU_TARGET", ""),
        help="the template's CpuTarget, percent [CPU_TARGET]",
    )
    parser.add_argument("--region", default=env("AWS_REGION", env("AWS_DEFAULT_REGION")), help="[AWS_REGION]")
    parser.add_argument(
        "--stats-url", default=env("WORKER_STATS_URL", "http://127.0.0.1:30001/stats"), help="[WORKER_STATS_URL]"
    )
    parser.add_argument("--imds-url", default=env("IMDS_URL", IMDS_URL), help="[IMDS_URL]")
    parser.add_argument("--log-level", default=env("PUBLISHER_LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="check the configuration and exit: 0 when it is valid, 2 with the reason otherwise",
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (and environment); a bad value stops with argparse's usage error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.demand_topic_arn and (args.panic_threshold is None or args.cpu_target is None):
        parser.error(
            "--demand-topic-arn needs --panic-threshold and --cpu-target (PANIC_THRESHOLD, CPU_TARGET): "
            "the panic line is their product"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if not args.fleet:
        LOG.error("--fleet (or FLEET_NAME) is required")
        return 2
    if args.check_config:
        return 0
    imds = Imds(args.imds_url)
    region = args.region or imds.get("latest/meta-data/placement/region")
    instance_id = imds.instance_id()
    if not instance_id:
        LOG.error("cannot read this instance's id from IMDS (%s)", args.imds_url)
        return 3  # systemd restarts the publisher (Restart=always)
    alert, line = None, math.inf
    if args.demand_topic_arn:
        alert = DemandAlertSink(
            args.demand_topic_arn, args.fleet, instance_id, args.namespace, args.metric, args.request_metric, region
        )
        line = alert_line(args.panic_threshold, args.cpu_target)
    publisher = Publisher(
        sink=CloudWatchSink(args.fleet, instance_id, args.namespace, args.metric, args.request_metric, region),
        lifecycle=imds.lifecycle,
        stats=lambda: read_stats(args.stats_url),
        alert=alert,
        alert_line=line,
        spread_seconds=PUT_SPREAD_SHARE * args.period,
    )
    LOG.info(
        "publishing %s/%s, %s, %s, %s and %s Fleet=%s InstanceId=%s every %.0f s",
        args.namespace, args.metric, args.request_metric, OFFERED_LOAD_METRIC, BACKLOG_METRIC, SHED_METRIC,
        args.fleet, instance_id, args.period,
    )  # fmt: skip
    if alert is None:
        LOG.info("host demand reports off (no --demand-topic-arn)")
    else:
        LOG.info("host demand reports to %s for every period with OfferedLoad >= %.3f%%", alert.topic_arn, line)
    try:
        run_forever(publisher, args.period)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
