"""Calibration of the worker host for the twin: CPU-seconds accounting on the real processes.

Started by ``python -m benchmarks.worker --calibrate``. The host stack is started the way
``worker/bootstrap.sh`` configures it (tests/helpers_worker.py): the worker package installed
from a layer zip by the user-data stub and the sandboxed boot script, ``python -m worker`` from
its unit's ``ExecStart``/``Environment=`` (``WORKER_PROCESSES=0``: one process per vCPU), nginx with the
boot script's server block inside a main ``nginx.conf`` modelled on the one of the Fedora /
Amazon Linux 2023 nginx package (master + one worker per vCPU, ``main`` access log,
``keepalive_timeout 65``), and ``python -m worker.metrics_publisher`` from its unit, talking to
a local IMDSv2 (lifecycle tag ``service``, instance-profile credentials for botocore) and to
CloudWatch played by ``moto_server`` over TLS. The stack is pinned to ``--vcpus`` CPUs
(default 1: the template's c7g.medium), so "one per vCPU" gives the host's process counts.

CPU is read from ``/proc/<pid>/stat`` (utime + stime + cutime + cstime, clock ticks) summed
over each process tree (supervisor + worker processes, nginx master + workers, publisher);
``/proc/<pid>/task/*/schedstat`` (run time in ns, the quantity the kernel scales utime + stime
to) is read beside it: the same CPU time at a resolution that sub-millisecond per-request costs
need. Phases, each repeated ``--reps`` times:

1. no traffic at all: the floor of supervisor + workers and nginx (subtracted below);
2. ``/ping`` through nginx, back to back, a fresh connection each (the ALB health check's way);
3. sequential ``/work`` through nginx, a fresh connection each; 4. the same on one HTTP/1.1
   keep-alive connection. Overhead = (CPU of supervisor + workers + nginx - floor x wall -
   sum of the ``duration`` the worker reports) / requests; service time = client latency -
   ``duration``;
5. idle host: publisher every 10 s + health checks (2 load-balancer nodes, every 5 s each) in
   windows of whole publisher periods placed half a period after a tick; once with a CloudWatch
   endpoint that keeps the publisher's TLS connection open between calls, once with one that
   closes it after every call (moto_server's own behaviour). The health checks' cost at that
   cadence is derived from the same windows.

Everything printed is measured; nothing is asserted about time.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import platform
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from loadtest.stages import percentile
from tests.helpers_worker import (
    NGINX,
    RENDER_VALUES,
    RunningNginx,
    RunningWorker,
    Sandbox,
    install_sandbox,
    nginx_process,
    parse_unit,
    publisher_from_unit,
    worker_from_unit,
)
from tests.support.host_endpoints import (
    FAKE_CREDENTIALS,
    FakeImds,
    keepalive_tls_front,
    running_moto_server,
    self_signed_cert,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")
LIFECYCLE_PATH = FakeImds.TAGS + "AutoscalerLifecycle"
HOST_PORT = 30000  # the Host header the ALB sends carries the target's port
# Headers the ALB adds to a forwarded request (X-Forwarded-*, X-Amzn-Trace-Id), documented in
# "HTTP headers and Application Load Balancers"; the client's own headers are a load-test client's.
CLIENT_HEADERS = {
    "Host": f"10.0.1.23:{HOST_PORT}",
    "User-Agent": "python-requests/2.32.3",
    "Accept": "*/*",
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Port": "80",
}
# ALB health check: a fresh connection per check, closed after it ("Health checks for
# Application Load Balancer target groups"); ELB-HealthChecker/2.0 is its User-Agent.
HEALTH_CHECK_HEADERS = {"Host": f"10.0.1.23:{HOST_PORT}", "User-Agent": "ELB-HealthChecker/2.0", "Connection": "close"}


# -- CPU accounting ---------------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (children of every thread, recursively)."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo += [int(child) for child in (task / "children").read_text().split()]
    return pids


@dataclass(frozen=True)
class Cpu:
    """CPU used so far by a process tree: clock ticks from ``stat``, nanoseconds from ``schedstat``."""

    ticks: int
    ns: int
    pids: frozenset[int]

    @staticmethod
    def read(root: int) -> Cpu:
        ticks = ns = 0
        pids = process_tree(root)
        for pid in pids:
            with contextlib.suppress(OSError, ValueError, IndexError):
                # Fields after the command: state is [0], utime [11], stime [12], cutime [13], cstime [14].
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += sum(int(v) for v in fields[11:15])
                for task in Path(f"/proc/{pid}/task").iterdir():
                    with contextlib.suppress(OSError, ValueError):
                        ns += int((task / "schedstat").read_text().split()[0])
        return Cpu(ticks, ns, frozenset(pids))


@dataclass(frozen=True)
class Used:
    """CPU seconds a process tree used over a window (stat and schedstat)."""

    stat: float
    sched: float
    same_processes: bool


class Meter:
    """Samples named process trees together."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots

    def sample(self) -> dict[str, Cpu]:
        return {name: Cpu.read(pid) for name, pid in self.roots.items()}

    @staticmethod
    def used(before: dict[str, Cpu], after: dict[str, Cpu]) -> dict[str, Used]:
        return {
            name: Used(
                (after[name].ticks - before[name].ticks) / CLK_TCK,
                (after[name].ns - before[name].ns) / 1e9,
                after[name].pids == before[name].pids,
            )
            for name in before
        }


# -- clients ----------------------------------------------------------------------------------


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"


def get_fresh(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes, float]:
    """One GET on its own TCP connection: status, body, seconds from connect to last byte."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - start
    finally:
        conn.close()


class KeepAlive:
    """One HTTP/1.1 connection reused for every request, like the ALB's connections to a target."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.connections = 0

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, float]:
        start = time.perf_counter()
        if self.conn.sock is None:
            self.connections += 1
        self.conn.request("GET", path, headers=headers)
        response = self.conn.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - start

    def close(self) -> None:
        self.conn.close()


class HealthChecks:
    """``nodes`` load-balancer nodes, each GET /ping every ``interval`` s, evenly staggered."""

    def __init__(self, port: int, interval: float = 5.0, nodes: int = 2) -> None:
        self.port = port
        self.step = interval / nodes
        self.base = time.monotonic()
        self.done: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            at = self.base + self.step * math.ceil((now - self.base) / self.step)
            if self._stop.wait(max(0.0, at - now)):
                return
            try:
                status, body, _ = get_fresh(self.port, "/ping", HEALTH_CHECK_HEADERS)
                ok = status == 200 and body == b"pong"
            except OSError:
                ok = False
            self.done.append((at, ok))

    def __enter__(self) -> HealthChecks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def between(self, start: float, end: float) -> tuple[int, int]:
        """(checks, failed checks) scheduled in [start, end)."""
        inside = [ok for at, ok in list(self.done) if start <= at < end]
        return len(inside), inside.count(False)


def endpoint_connections(pid: int, port: int) -> set[int]:
    """Local ports of ``pid``'s established TCP connections to 127.0.0.1:``port``."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = str(fd.readlink())
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    ports = set()
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
            cols = line.split()
            local, remote, state, inode = cols[1], cols[2], cols[3], cols[9]
            if state == "01" and inode in inodes and int(remote.split(":")[1], 16) == port:
                ports.add(int(local.split(":")[1], 16))
    return ports


# -- statistics -------------------------------------------------------------------------------


def spread(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "mean": statistics.fmean(values) if values else None,
        "sd": statistics.stdev(values) if len(values) > 1 else None,
        "min": min(values) if values else None,
        "max": max(values) if values else None,
    }


@dataclass
class Figure:
    """One calibration figure: a value per repetition from ``stat``, and from ``schedstat``."""

    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    fine: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {
            "name": self.name.strip(),
            "unit": self.unit,
            "n": len(self.values),
            "stat": {**spread(self.values), "values": self.values},
            "schedstat": {**spread(self.fine), "values": self.fine},
        }


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(figures: Sequence[Figure]) -> None:
    """mean, sd, min, max per source; ``schedstat`` is empty for figures that are not CPU."""
    width = max(len(f.name) for f in figures) + 2
    cols = "".join(f"{c:>9}" for c in ("mean", "sd", "min", "max"))
    print(f"{'':<{width}}{'':<13}{'/proc/<pid>/stat':^36} |{'/proc/<pid>/task/*/schedstat':^36}{'':>4}")
    print(f"{'figure':<{width}}{'unit':<13}{cols} |{cols}{'n':>4}")
    for figure in figures:
        row = figure.row()
        digits = 1 if figure.unit == "ms" or figure.name.startswith("burned") else 3
        cells = [
            "".join(f"{_fmt(row[source][k], digits):>9}" for k in ("mean", "sd", "min", "max"))
            for source in ("stat", "schedstat")
        ]
        print(f"{figure.name:<{width}}{figure.unit:<13}{cells[0]} |{cells[1]}{row['n']:>4}")


# -- the stack --------------------------------------------------------------------------------


@dataclass
class Host:
    sandbox: Sandbox
    worker: RunningWorker
    nginx: RunningNginx
    cpus: set[int]

    @property
    def port(self) -> int:
        return self.sandbox.nginx_port


@contextlib.contextmanager
def pinned(cpus: set[int]) -> Iterator[None]:
    """Processes started inside inherit ``cpus`` as their affinity; ours is restored after."""
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, mine)


@contextlib.contextmanager
def host_stack(tmp: Path, vcpus: int) -> Iterator[Host]:
    """The user-data install, the worker from its unit and nginx in the host's layout, pinned."""
    if NGINX is None:
        raise RuntimeError("nginx is not installed")
    available = sorted(os.sched_getaffinity(0))
    cpus = set(available[:vcpus]) if 0 < vcpus < len(available) else set(available)
    sandbox = install_sandbox(tmp)
    with contextlib.ExitStack() as stack:
        with pinned(cpus):
            # WORKER_PROCESSES=0 as in the unit: one worker process per CPU of the affinity mask.
            worker = stack.enter_context(worker_from_unit(sandbox))
            nginx = stack.enter_context(
                nginx_process(tmp, sandbox.nginx_conf, sandbox.nginx_port, "al2023", worker_processes=len(cpus))
            )
        yield Host(sandbox, worker, nginx, cpus)


def check_ok(status: int, body: bytes, path: str) -> None:
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {body[:200]!r}")


# -- phases -----------------------------------------------------------------------------------


def quiet_floor(meter: Meter, seconds: float) -> dict[str, Used]:
    before = meter.sample()
    start = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    used = Meter.used(before, meter.sample())
    return {name: Used(u.stat / elapsed, u.sched / elapsed, u.same_processes) for name, u in used.items()}


@dataclass
class RequestRun:
    requests: int
    wall: float
    used: dict[str, Used]
    durations: list[float]
    latencies: list[float]
    burn_walls: list[float]


def run_requests(meter: Meter, count: int, send: Callable[[], tuple[int, bytes, float]], path: str) -> RequestRun:
    durations: list[float] = []
    latencies: list[float] = []
    burn_walls: list[float] = []
    before = meter.sample()
    start = time.monotonic()
    for _ in range(count):
        status, body, seconds = send()
        check_ok(status, body, path)
        latencies.append(seconds)
        if path == "/work":
            answer = json.loads(body)
            durations.append(float(answer["duration"]))
            burn_walls.append(float(answer["wall"]))
    wall = time.monotonic() - start
    return RequestRun(count, wall, Meter.used(before, meter.sample()), durations, latencies, burn_walls)


def cpu_per_request_ms(run: RequestRun, floor: dict[str, Used], names: Sequence[str], fine: bool) -> float:
    """CPU of the named trees per request, beyond their no-traffic floor, ms (burn included)."""
    total = 0.0
    for name in names:
        used, rate = (run.used[name].sched, floor[name].sched) if fine else (run.used[name].stat, floor[name].stat)
        total += used - rate * run.wall
    return 1000 * total / run.requests


def overhead_ms(run: RequestRun, floor: dict[str, Used], names: Sequence[str], fine: bool) -> float:
    """:func:`cpu_per_request_ms` minus the CPU the worker reports as burned (``duration``)."""
    return cpu_per_request_ms(run, floor, names, fine) - 1000 * sum(run.durations) / run.requests


SUPERVISOR, NGINX_TREE, PUBLISHER = "supervisor + workers", "nginx", "metrics publisher"
SERVER = (SUPERVISOR, NGINX_TREE)


@dataclass
class Calibration:
    reps: int
    quiet_seconds: float
    pings: int
    work_requests: int
    idle_seconds: float
    vcpus: int
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, name: str, unit: str, value: float, fine: float | None = None) -> None:
        figure = next((f for f in self.figures if f.name == name), None)
        if figure is None:
            figure = Figure(name, unit)
            self.figures.append(figure)
        figure.values.append(value)
        if fine is not None:
            figure.fine.append(fine)

    def check(self, name: str, value: Any) -> None:
        self.checks.setdefault(name, []).append(value)


def measure_floor(cal: Calibration, meter: Meter) -> dict[str, Used]:
    """No traffic at all: the rate each tree burns by itself (supervisor's 0.5 s select timeout)."""
    rates: list[dict[str, Used]] = []
    for _ in range(cal.reps):
        rate = quiet_floor(meter, cal.quiet_seconds)
        rates.append(rate)
        for name in SERVER:
            cal.add(f"no-traffic floor: {name}", "% of 1 vCPU", 100 * rate[name].stat, 100 * rate[name].sched)
            cal.check(f"floor window: same {name} processes", rate[name].same_processes)
    return {
        name: Used(statistics.fmean(r[name].stat for r in rates), statistics.fmean(r[name].sched for r in rates), True)
        for name in SERVER
    }


def measure_pings(cal: Calibration, port: int, meter: Meter, floor: dict[str, Used]) -> None:
    for _ in range(cal.reps):
        run = run_requests(meter, cal.pings, lambda: get_fresh(port, "/ping", HEALTH_CHECK_HEADERS), "/ping")
        name = "/ping via nginx, fresh connection: CPU per request"
        cal.add(
            name, "ms CPU", cpu_per_request_ms(run, floor, SERVER, False), cpu_per_request_ms(run, floor, SERVER, True)
        )
        cal.add(
            "  of which nginx (/ping)",
            "ms CPU",
            cpu_per_request_ms(run, floor, (NGINX_TREE,), False),
            cpu_per_request_ms(run, floor, (NGINX_TREE,), True),
        )


def measure_work(cal: Calibration, port: int, meter: Meter, floor: dict[str, Used], mode: str) -> None:
    service: list[float] = []
    beyond_burn: list[float] = []
    for _ in range(cal.reps):
        client = KeepAlive(port) if mode == "keep-alive" else None

        def send(client: KeepAlive | None = client) -> tuple[int, bytes, float]:
            headers = {**CLIENT_HEADERS, "X-Amzn-Trace-Id": _trace_id()}
            return client.get("/work", headers) if client else get_fresh(port, "/work", headers)

        try:
            run = run_requests(meter, cal.work_requests, send, "/work")
        finally:
            if client is not None:
                client.close()
                cal.check("keep-alive: TCP connections opened per repetition", client.connections)
        cal.add(
            f"/work via nginx, {mode}: CPU overhead per request",
            "ms CPU",
            overhead_ms(run, floor, SERVER, False),
            overhead_ms(run, floor, SERVER, True),
        )
        cal.add(
            f"  of which nginx (/work, {mode})",
            "ms CPU",
            cpu_per_request_ms(run, floor, (NGINX_TREE,), False),
            cpu_per_request_ms(run, floor, (NGINX_TREE,), True),
        )
        cal.add("burned CPU per /work (the worker's duration)", "ms CPU", 1000 * statistics.fmean(run.durations))
        times = sorted(1000 * (lat - dur) for lat, dur in zip(run.latencies, run.durations, strict=True))
        cal.add(f"service time, {mode}: p50 of latency - duration", "ms", percentile(times, 0.50) or 0.0)
        cal.add(f"service time, {mode}: p95 of latency - duration", "ms", percentile(times, 0.95) or 0.0)
        outside = sorted(1000 * (lat - bw) for lat, bw in zip(run.latencies, run.burn_walls, strict=True))
        cal.add(
            f"service time outside the burn, {mode}: p50 of latency - burn wall", "ms", percentile(outside, 0.5) or 0
        )
        cal.add(
            f"service time outside the burn, {mode}: p95 of latency - burn wall", "ms", percentile(outside, 0.95) or 0
        )
        for name in SERVER:
            cal.check(f"/work {mode}: same {name} processes", run.used[name].same_processes)
        cal.check(f"/work {mode}: CPU pressure after each repetition", _cpu_pressure().split(" avg60")[0])
        service += times
        beyond_burn += outside
    service.sort()
    beyond_burn.sort()
    cal.notes.append(
        f"service time, {mode}, all {len(service)} requests pooled: p50 {percentile(service, 0.5):.1f} ms, "
        f"p95 {percentile(service, 0.95):.1f} ms; latency minus the burn's own wall time (without the "
        f"preemption other load inflicted on the burn): p50 {percentile(beyond_burn, 0.5):.1f} ms, "
        f"p95 {percentile(beyond_burn, 0.95):.1f} ms"
    )


def _sleep_until(at: float) -> None:
    delay = at - time.monotonic()
    if delay > 0:
        time.sleep(delay)


@dataclass(frozen=True)
class Endpoint:
    """Where the publisher sends PutMetricData, and how that endpoint treats connections."""

    label: str
    url: str
    slug: str


def measure_idle(cal: Calibration, host: Host, tmp: Path, floor: dict[str, Used]) -> None:
    """Idle host, once per CloudWatch connection behaviour (see :func:`idle_windows`)."""
    cert = self_signed_cert(tmp / "tls")
    with contextlib.ExitStack() as stack:
        imds = stack.enter_context(FakeImds())
        moto = stack.enter_context(running_moto_server(tmp / "moto_server.log", cert))
        front = stack.enter_context(keepalive_tls_front(tmp, moto, cert))
        endpoints = (
            Endpoint("CloudWatch connection kept alive", front, "kept-alive"),
            Endpoint("new TLS connection per datapoint", moto, "closing"),
        )
        for endpoint in endpoints:
            idle_windows(cal, host, tmp, imds, endpoint, cert[0], floor)
        published = datapoints(moto, cert[0])
        cal.check(
            "publisher: datapoints in CloudWatch (moto) / ticks in service",
            f"{published} / {len(imds.reads(LIFECYCLE_PATH))}",
        )


def idle_windows(
    cal: Calibration, host: Host, tmp: Path, imds: FakeImds, endpoint: Endpoint, ca: Path, floor: dict[str, Used]
) -> None:
    """The publisher's real code path + ALB health checks, no /work, for whole publisher periods.

    The publisher is started from its unit (pinned like the host); once it has sent a datapoint
    and ticked again, ``--reps`` windows of whole periods start half a period after a tick, and
    the health checks (2 nodes, every 5 s each) are phased so none falls on a window boundary.
    """
    unit_env, _argv, _keys = parse_unit(host.sandbox.publisher_unit)
    period = float(unit_env["CPU_METRIC_PERIOD_SECONDS"])
    if cal.idle_seconds < period:
        raise ValueError(f"--idle-seconds must cover at least one publisher period ({period:g} s)")
    window = period * round(cal.idle_seconds / period)
    absent = str(tmp / "no-such-aws-file")
    env = {
        "IMDS_URL": imds.url,  # the publisher's lifecycle tag
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url,  # botocore's instance-profile credentials
        "AWS_ENDPOINT_URL_CLOUDWATCH": endpoint.url,
        "AWS_CA_BUNDLE": str(ca),
        "AWS_CONFIG_FILE": absent,
        "AWS_SHARED_CREDENTIALS_FILE": absent,
    }
    log = tmp / f"publisher-{endpoint.slug}.log"
    label = endpoint.label
    endpoint_port = int(endpoint.url.rsplit(":", 1)[1])
    with contextlib.ExitStack() as stack:
        with pinned(host.cpus):
            publisher = stack.enter_context(publisher_from_unit(host.sandbox, env, log))
        checks = stack.enter_context(HealthChecks(host.port))
        meter = Meter({SUPERVISOR: host.worker.proc.pid, NGINX_TREE: host.nginx.proc.pid, PUBLISHER: publisher.pid})
        seen = len(imds.reads(LIFECYCLE_PATH))
        deadline = time.monotonic() + 4 * period + 30
        while len(imds.reads(LIFECYCLE_PATH)) < seen + 2:  # first datapoint sent, the next tick seen
            if publisher.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the publisher did not tick: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        start = imds.reads(LIFECYCLE_PATH)[-1] + period / 2
        checks.base = start + checks.step / 2  # no health check on a window boundary
        _sleep_until(start)
        startup = Cpu.read(publisher.pid)
        cal.notes.append(
            f"metrics publisher start-up ({label}): process start to its second tick, the first PutMetricData "
            f"with botocore's import, client creation and credentials from IMDS included (n=1): "
            f"{1000 * startup.ticks / CLK_TCK:.0f} ms CPU (schedstat {startup.ns / 1e6:.0f} ms)"
        )
        ports_seen: set[int] = set()
        connected = samples = 0
        for rep in range(cal.reps):
            begin, end = start + rep * window, start + (rep + 1) * window
            _sleep_until(begin)
            before, t0 = meter.sample(), time.monotonic()
            while time.monotonic() < end - 1.0:
                time.sleep(1.0)
                ports = endpoint_connections(publisher.pid, endpoint_port)
                ports_seen |= ports
                connected += bool(ports)
                samples += 1
            _sleep_until(end)
            after, t1 = meter.sample(), time.monotonic()
            used, elapsed = Meter.used(before, after), t1 - t0
            for name in (SUPERVISOR, NGINX_TREE, PUBLISHER):
                cal.add(
                    f"idle, {label}: {name}",
                    "% of 1 vCPU",
                    100 * used[name].stat / elapsed,
                    100 * used[name].sched / elapsed,
                )
                cal.check(f"idle, {label}: same {name} processes", used[name].same_processes)
            cal.add(
                f"idle, {label}: TOTAL",
                "% of 1 vCPU",
                100 * sum(u.stat for u in used.values()) / elapsed,
                100 * sum(u.sched for u in used.values()) / elapsed,
            )
            ticks = len([at for at in imds.reads(LIFECYCLE_PATH) if begin <= at < end])
            health, failed = checks.between(begin, end)
            cal.check(f"idle, {label}: window seconds", round(elapsed, 3))
            cal.check(f"idle, {label}: publisher ticks (IMDS lifecycle reads) per window", ticks)
            cal.check(f"idle, {label}: health checks (failed) per window", f"{health} ({failed})")
            if health:
                # At the ALB's cadence, not back to back: nginx serves only the health checks here,
                # the supervisor the health checks and the publisher's own /stats (one per tick).
                stat = ping_at_cadence(used, floor, elapsed, health, ticks, fine=False)
                fine = ping_at_cadence(used, floor, elapsed, health, ticks, fine=True)
                name = "/ping via nginx at the ALB cadence (idle windows): CPU per health check"
                cal.add(name, "ms CPU", stat[0], fine[0])
                cal.add("  of which nginx (/ping at the ALB cadence)", "ms CPU", stat[1], fine[1])
            if ticks:
                cal.add(
                    f"metrics publisher CPU per 10 s tick, {label}",
                    "ms CPU",
                    1000 * used[PUBLISHER].stat / ticks,
                    1000 * used[PUBLISHER].sched / ticks,
                )
        cal.check(
            f"idle, {label}: publisher's TLS connections to the endpoint (distinct, 1 s sampling; samples connected)",
            f"{len(ports_seen)}; {connected}/{samples}",
        )
        cal.check(f"idle, {label}: publisher log (last lines)", log.read_text().strip().splitlines()[-3:])


def ping_at_cadence(
    used: dict[str, Used], floor: dict[str, Used], elapsed: float, checks: int, ticks: int, fine: bool
) -> tuple[float, float]:
    """(ms per health check through nginx, of which nginx) from an idle window, beyond the floor."""
    beyond = {
        name: (used[name].sched - floor[name].sched * elapsed)
        if fine
        else (used[name].stat - floor[name].stat * elapsed)
        for name in SERVER
    }
    nginx_ms = 1000 * beyond[NGINX_TREE] / checks
    return nginx_ms + 1000 * beyond[SUPERVISOR] / (checks + ticks), nginx_ms


def datapoints(endpoint: str, ca_bundle: Path) -> int:
    """CPUUtilization datapoints the fleet has in the CloudWatch endpoint (moto)."""
    import boto3

    cloudwatch = boto3.client(
        "cloudwatch",
        region_name=RENDER_VALUES["AWS::Region"],
        endpoint_url=endpoint,
        verify=str(ca_bundle),
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    now = datetime.now(UTC)
    stats = cloudwatch.get_metric_statistics(
        Namespace=RENDER_VALUES["CpuMetricNamespace"],
        MetricName="CPUUtilization",
        Dimensions=[{"Name": "Fleet", "Value": RENDER_VALUES["FleetName"]}],
        StartTime=now - timedelta(hours=2),
        EndTime=now + timedelta(minutes=5),
        Period=3600,
        Statistics=["SampleCount"],
    )
    return int(sum(point["SampleCount"] for point in stats["Datapoints"]))


# -- the run ----------------------------------------------------------------------------------


def _cpu_pressure() -> str:
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return "n/a"
    return line.replace("some ", "")


def _machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "cpu model")):
                model = line.split(":", 1)[1].strip()
                break
    nginx = subprocess.run([str(NGINX), "-v"], capture_output=True, text=True, check=False).stderr.strip()
    return (
        f"{model}, {os.cpu_count()} CPUs, kernel {platform.release()}, Python {platform.python_version()}, "
        f"{nginx.replace('nginx version: ', '')}"
    )


def _load() -> str:
    return f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; CPU pressure {_cpu_pressure()}"


def calibrate(cal: Calibration, json_path: Path | None = None) -> Calibration:
    print(f"worker host calibration, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {_machine()}")
    print(
        f"{cal.reps} repetitions; floor {cal.quiet_seconds:g} s, {cal.pings} pings, {cal.work_requests} /work per "
        f"mode, idle windows of {cal.idle_seconds:g} s; host stack pinned to {cal.vcpus} vCPU(s)"
    )
    before = _load()
    print(f"before: {before}", flush=True)
    with tempfile.TemporaryDirectory(prefix="worker-calibration-") as tmpdir:
        tmp = Path(tmpdir)
        with host_stack(tmp, cal.vcpus) as host:
            cal.check("worker processes (one per vCPU)", len(process_tree(host.worker.proc.pid)) - 1)
            cal.check("nginx worker processes", len(process_tree(host.nginx.proc.pid)) - 1)
            meter = Meter({SUPERVISOR: host.worker.proc.pid, NGINX_TREE: host.nginx.proc.pid})
            first = meter.sample()
            floor = measure_floor(cal, meter)
            measure_pings(cal, host.port, meter, floor)
            for mode in ("fresh connection", "keep-alive"):
                measure_work(cal, host.port, meter, floor, mode)
            for name, used in Meter.used(first, meter.sample()).items():
                # The two sources agree on large totals: schedstat is the same CPU time, finer.
                cal.check(
                    f"{name}, floor to keep-alive phases: stat s / schedstat s", f"{used.stat:.2f} / {used.sched:.3f}"
                )
            measure_idle(cal, host, tmp, floor)
    after = _load()
    print()
    print_table(sorted(cal.figures, key=_order))
    print()
    for note in cal.notes:
        print(f"note: {note}")
    for name, values in cal.checks.items():
        print(f"check: {name}: {values}")
    print(f"stat resolution: 1/{CLK_TCK} s per process per reading; schedstat: ns")
    print(f"before: {before}")
    print(f"after:  {after}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(
            json.dumps(
                {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": _machine(),
                    "load_before": before,
                    "load_after": after,
                    "settings": {
                        "reps": cal.reps,
                        "quiet_seconds": cal.quiet_seconds,
                        "pings": cal.pings,
                        "work_requests": cal.work_requests,
                        "idle_seconds": cal.idle_seconds,
                        "vcpus": cal.vcpus,
                    },
                    "figures": [f.row() for f in sorted(cal.figures, key=_order)],
                    "notes": cal.notes,
                    "checks": cal.checks,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        print(f"wrote {json_path}")
    return cal


_ORDER = (
    "idle, CloudWatch connection kept alive: TOTAL",
    "idle, CloudWatch connection kept alive:",
    "idle, new TLS connection per datapoint: TOTAL",
    "idle, new TLS connection per datapoint:",
    "metrics publisher CPU per 10 s tick, CloudWatch",
    "metrics publisher CPU per 10 s tick, new",
    "no-traffic floor",
    "/ping",
    "  of which nginx (/ping)",
    "/ping via nginx at the ALB cadence",
    "  of which nginx (/ping at the ALB cadence",
    "/work via nginx, fresh",
    "  of which nginx (/work, fresh",
    "/work via nginx, keep",
    "  of which nginx (/work, keep",
    "burned",
    "service time, fresh connection: p50",
    "service time, fresh connection: p95",
    "service time, keep-alive: p50",
    "service time, keep-alive: p95",
    "service time outside the burn, fresh connection: p50",
    "service time outside the burn, fresh connection: p95",
    "service time outside the burn, keep-alive: p50",
    "service time outside the burn, keep-alive: p95",
)


def _order(figure: Figure) -> int:
    """Table order; figures with the same key keep the order they were measured in."""
    matches = [(len(prefix), i) for i, prefix in enumerate(_ORDER) if figure.name.startswith(prefix)]
    return max(matches)[1] if matches else len(_ORDER)
