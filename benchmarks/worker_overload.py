"""The worker under 3x overload behind a real nginx: it sheds, it does not time out.

``python -m benchmarks.worker --overload`` (see ``benchmarks/worker.py``). The host stack as
``worker/bootstrap.sh`` installs it (the user-data stub runs the layer's boot script in a
sandbox; the worker starts from its unit, nginx runs its server block in the host's layout),
pinned to ``--vcpus`` CPUs (default 1, the template's c7g.medium), so the load generator runs on
the others. Open-loop arrivals: Poisson, at ``--factor`` (3) times what the host serves
(processes / 0.5 s nominal service time), each on a fresh connection through nginx, whatever
the earlier ones got, for a warm-up (the queue fills to the budget) and then a measured window.
Meanwhile one client pings through nginx every 100 ms, and the metric publisher's own
``Publisher.tick`` reads the worker's ``/stats`` every 10 s and hands its figures to a sink that
records them (what ``PutMetricData`` would carry).

Printed: /ping p50 / p99; latency of accepted (200) requests p50 / p95 (expected: about the
budget plus a service time, flat, not growing); response time of shed (503) requests p50 / p99;
the shed fraction; the publisher's OfferedLoad per tick (expected ~300 at 3x).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from benchmarks.worker_calibration import host_stack
from loadtest.stages import percentile
from tests.helpers_worker import RunningWorker
from worker.metrics_publisher import Publisher, Reading, WorkerStats, read_stats
from worker.server import Config
from worker.shedding import NOMINAL_SERVICE_SECONDS


@dataclass(frozen=True)
class Outcome:
    sent: float  # monotonic
    status: int  # 0: no answer (connection error)
    seconds: float
    retry_after: str | None


@dataclass
class Tick:
    at: float
    reading: Reading
    mean_service_seconds: float  # the worker's moving average the tick used


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    pings: list[tuple[float, float]] = field(default_factory=list)  # (sent, seconds)
    ticks: list[Tick] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _get(port: int, path: str) -> tuple[int, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After")
    finally:
        conn.close()


def _work(port: int, run: Run) -> None:
    sent = time.monotonic()
    try:
        status, retry_after = _get(port, "/work")
    except OSError:
        status, retry_after = 0, None
    outcome = Outcome(sent, status, time.monotonic() - sent, retry_after)
    with run.lock:
        run.outcomes.append(outcome)


def _pinger(port: int, run: Run, stop: threading.Event) -> None:
    while not stop.is_set():
        sent = time.monotonic()
        with contextlib.suppress(OSError):
            _get(port, "/ping")
            run.pings.append((sent, time.monotonic() - sent))
        stop.wait(0.1)


def _publisher(worker: RunningWorker, run: Run, stop: threading.Event, period: float) -> None:
    last: list[WorkerStats | None] = [None]

    def stats() -> WorkerStats | None:
        last[0] = read_stats(f"{worker.url}/stats")
        return last[0]

    def record(reading: Reading, timestamp: datetime) -> None:
        mean = last[0].mean_service_seconds if last[0] is not None else float("nan")
        run.ticks.append(Tick(time.monotonic(), reading, mean))

    publisher = Publisher(sink=record, lifecycle=lambda: "service", stats=stats)
    deadline = time.monotonic()
    publisher.tick()
    while not stop.is_set():
        deadline += period
        if stop.wait(max(0.0, deadline - time.monotonic())):
            return
        publisher.tick()


def _ms(values: list[float], fraction: float) -> str:
    value = percentile(sorted(values), fraction)
    return "-" if value is None else f"{1000 * value:.1f} ms"


def _s(values: list[float], fraction: float) -> str:
    value = percentile(sorted(values), fraction)
    return "-" if value is None else f"{value:.2f} s"


def overload(factor: float, warmup: float, seconds: float, vcpus: int, period: float, seed: int) -> int:
    with tempfile.TemporaryDirectory(prefix="worker-overload-") as tmp, host_stack(Path(tmp), vcpus) as host:
        port, worker, cpus = host.port, host.worker, host.cpus
        processes = len(cpus)
        rate = factor * processes / NOMINAL_SERVICE_SECONDS
        print(
            f"worker overload benchmark: stack pinned to {processes} CPU(s) {sorted(cpus)} of {os.cpu_count()}, "
            f"{processes} worker process(es), queue budget {Config.queue_budget:.0f} s (the default)"
        )
        print(
            f"open-loop Poisson arrivals {rate:.1f}/s = {factor:g} x {processes} / {NOMINAL_SERVICE_SECONDS} s, "
            f"warm-up {warmup:.0f} s, measured {seconds:.0f} s; load average before: "
            f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}"
        )
        run, stop = Run(), threading.Event()
        helpers = [
            threading.Thread(target=_pinger, args=(port, run, stop), daemon=True),
            threading.Thread(target=_publisher, args=(worker, run, stop, period), daemon=True),
        ]
        for helper in helpers:
            helper.start()
        rng = random.Random(seed)
        start = time.monotonic()
        window = (start + warmup, start + warmup + seconds)
        clients: list[threading.Thread] = []
        next_at = start
        while next_at < window[1]:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            client = threading.Thread(target=_work, args=(port, run), daemon=True)
            client.start()
            clients.append(client)
            next_at += rng.expovariate(rate)
        for client in clients:
            client.join(max(0.1, window[1] + 120 - time.monotonic()))
        stop.set()
        for helper in helpers:
            helper.join(15)
        load_after = os.getloadavg()

    def inside(sent: float) -> bool:
        return window[0] <= sent < window[1]

    measured = [o for o in run.outcomes if inside(o.sent)]
    accepted = [o.seconds for o in measured if o.status == 200]
    shed = [o.seconds for o in measured if o.status == 503 and o.retry_after is not None]
    full = [o for o in measured if o.status == 503 and o.retry_after is None]
    other = [o for o in measured if o.status not in (200, 503)]
    pings = [seconds for sent, seconds in run.pings if inside(sent)]
    # Accepted latency, first and second half of the window: flat, not growing.
    middle = (window[0] + window[1]) / 2
    first = [o.seconds for o in measured if o.status == 200 and o.sent < middle]
    second = [o.seconds for o in measured if o.status == 200 and o.sent >= middle]
    print(f"arrivals in the window: {len(measured)} ({len(measured) / seconds:.2f}/s)")
    print(f"/ping through nginx:        n={len(pings)}  p50 {_ms(pings, 0.5)}  p99 {_ms(pings, 0.99)}")
    print(
        f"accepted (200):             n={len(accepted)} ({len(accepted) / seconds:.2f}/s served)  "
        f"p50 {_s(accepted, 0.5)}  p95 {_s(accepted, 0.95)}  max {_s(accepted, 1.0)}"
    )
    print(f"  first / second half p50:  {_s(first, 0.5)} / {_s(second, 0.5)}")
    retry = [int(o.retry_after) for o in measured if o.status == 503 and o.retry_after is not None]
    print(
        f"shed (503 + Retry-After):   n={len(shed)}  p50 {_ms(shed, 0.5)}  p99 {_ms(shed, 0.99)}  "
        f"max {_ms(shed, 1.0)}  Retry-After p50 {percentile(sorted(retry), 0.5)} s"
    )
    fraction = (len(shed) + len(full)) / len(measured) if measured else 0.0
    print(f"shed fraction:              {fraction:.3f} (queue full: {len(full)}, other statuses: {len(other)})")
    print("publisher ticks (what PutMetricData would carry; CPU % of the whole machine), seconds from the start:")
    print(
        f"  {'t':>6}{'CPU %':>8}{'req/min':>9}{'OfferedLoad':>13}{'BacklogSeconds':>16}{'ShedRequests':>14}"
        f"{'mean service s':>16}"
    )
    offered = []
    for tick in run.ticks:
        r = tick.reading
        in_window = window[0] + period <= tick.at <= window[1] + 1
        if in_window:
            offered.append(r.offered_load_percent)
        print(
            f"  {tick.at - start:>6.1f}{r.cpu_percent:>8.1f}{r.requests_per_minute:>9.1f}"
            f"{r.offered_load_percent:>13.1f}{r.backlog_seconds:>16.2f}{r.shed_requests:>14.0f}"
            f"{tick.mean_service_seconds:>16.3f}{'  (window)' if in_window else ''}"
        )
    if offered:
        print(f"OfferedLoad over the window's ticks: mean {statistics.fmean(offered):.1f} %")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in load_after)}")
    return 0
