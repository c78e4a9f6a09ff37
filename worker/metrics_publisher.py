"""Host metric publisher (``python -m worker.metrics_publisher``).

Every period (10 s) it measures, over the last period, the host CPU utilisation (``/proc/stat``
deltas) and, from the worker's ``/stats`` (cumulative counters, deltas taken here), the demand
that reached the host, and publishes all of it to CloudWatch in one ``PutMetricData`` call:
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

CloudWatch is reached through botocore (AL2023: ``dnf install python3-botocore``), imported
lazily so that the serving side of the package stays standard-library only; spawning the aws CLI
every 10 s would cost more CPU than the metric is worth. IMDS, CloudWatch, the stats probe, the
CPU reader and the clock are all injectable, so the decision and the arithmetic are unit-tested
without AWS.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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


class CloudWatchSink:
    """``PutMetricData`` through botocore (or boto3), imported only when first used."""

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

    def _get_client(self) -> Any:
        if self._client is None:
            try:
                import botocore.session  # optional dependency, host side only
            except ImportError as exc:  # pragma: no cover - depends on the host
                raise RuntimeError("botocore is required: dnf install -y python3-botocore") from exc
            session = botocore.session.get_session()
            self._client = session.create_client("cloudwatch", region_name=self.region)
        return self._client

    def __call__(self, reading: Reading, timestamp: datetime) -> None:
        fleet = [{"Name": "Fleet", "Value": self.fleet}]
        host = [*fleet, {"Name": "InstanceId", "Value": self.instance_id}]
        data = [
            {
                "MetricName": name,
                "Dimensions": dimensions,
                "Timestamp": timestamp,
                "Value": round(value, 3),
                "Unit": unit,
                "StorageResolution": 1,
            }
            for name, value, unit in (
                (self.metric, reading.cpu_percent, "Percent"),
                (self.request_metric, reading.requests_per_minute, "None"),
                (OFFERED_LOAD_METRIC, reading.offered_load_percent, "Percent"),
                (BACKLOG_METRIC, reading.backlog_seconds, "Seconds"),
                (SHED_METRIC, reading.shed_requests, "Count"),
            )
            for dimensions in (fleet, host)
        ]
        self._get_client().put_metric_data(Namespace=self.namespace, MetricData=data)


# -- the loop ---------------------------------------------------------------------------------


def should_publish(lifecycle: str | None, worker_healthy: bool) -> bool:
    """The contract: publish only for an in-service host whose worker is healthy."""
    return lifecycle == SERVICE_LIFECYCLE and worker_healthy


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)  # datetime.UTC is 3.11+: the host runs 3.9


@dataclass
class Publisher:
    """One ``tick()`` per period: sample, decide, publish. Every collaborator is injected."""

    sink: MetricSink
    lifecycle: Callable[[], str | None]
    stats: Callable[[], WorkerStats | None]
    read_cpu: Callable[[], CpuTimes] = read_proc_stat
    now: Callable[[], datetime] = _utcnow
    monotonic: Callable[[], float] = time.monotonic
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
        try:
            self.sink(reading, self.now())
        except Exception as exc:  # network, throttling, credentials: log and try next period
            LOG.warning("PutMetricData failed: %s", exc)
            return None
        LOG.debug(
            "published %.1f%%, %.1f requests/min, offered %.1f%%, backlog %.1f s, %d shed",
            reading.cpu_percent, reading.requests_per_minute, reading.offered_load_percent,
            reading.backlog_seconds, reading.shed_requests,
        )  # fmt: skip
        return reading


def run_forever(
    publisher: Publisher,
    period: float = DEFAULT_PERIOD,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    iterations: int | None = None,
) -> None:
    """Tick every ``period`` seconds on a fixed schedule (no drift), ``iterations`` times."""
    deadline = monotonic()
    done = 0
    publisher.tick()  # first sample: the baseline of the first delta
    while iterations is None or done < iterations:
        deadline += period
        delay = deadline - monotonic()
        if delay > 0:
            sleep(delay)
        else:
            deadline = monotonic()  # fell behind (suspended host): restart the schedule
        publisher.tick()
        done += 1


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m worker.metrics_publisher",
        description="Publish host CPU %% and demand to CloudWatch while this host is in service and healthy.",
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
    parser.add_argument("--region", default=env("AWS_REGION", env("AWS_DEFAULT_REGION")), help="[AWS_REGION]")
    parser.add_argument(
        "--stats-url", default=env("WORKER_STATS_URL", "http://127.0.0.1:30001/stats"), help="[WORKER_STATS_URL]"
    )
    parser.add_argument("--imds-url", default=env("IMDS_URL", IMDS_URL), help="[IMDS_URL]")
    parser.add_argument("--log-level", default=env("PUBLISHER_LOG_LEVEL", "INFO"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if not args.fleet:
        LOG.error("--fleet (or FLEET_NAME) is required")
        return 2
    imds = Imds(args.imds_url)
    region = args.region or imds.get("latest/meta-data/placement/region")
    instance_id = imds.instance_id()
    if not instance_id:
        LOG.error("cannot read this instance's id from IMDS (%s)", args.imds_url)
        return 3  # systemd restarts the publisher (Restart=always)
    publisher = Publisher(
        sink=CloudWatchSink(args.fleet, instance_id, args.namespace, args.metric, args.request_metric, region),
        lifecycle=imds.lifecycle,
        stats=lambda: read_stats(args.stats_url),
    )
    LOG.info(
        "publishing %s/%s, %s, %s, %s and %s Fleet=%s InstanceId=%s every %.0f s",
        args.namespace, args.metric, args.request_metric, OFFERED_LOAD_METRIC, BACKLOG_METRIC, SHED_METRIC,
        args.fleet, instance_id, args.period,
    )  # fmt: skip
    try:
        run_forever(publisher, args.period)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
