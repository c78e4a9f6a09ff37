"""Clients and request routing: closed-loop clients with think time, open-loop Poisson arrivals.

The traffic engine keeps its own event heap of request events (arrivals, client sends,
completions) and is advanced to the SimPy clock by whoever needs its state (metrics, health
checks, lifecycle changes). Request events are exact in time; no SimPy process per request.
"""

from __future__ import annotations

import heapq
import math
import random
from array import array
from dataclasses import dataclass, field

from simulator.workers import PSWorker

OPEN = 0
SEND = 1
DONE = 2
ERROR_LATENCY = -1.0


@dataclass
class RequestLog:
    """One entry per request: when it was sent, its latency (``-1`` for an error), the target."""

    sent: array[float] = field(default_factory=lambda: array("d"))
    latency: array[float] = field(default_factory=lambda: array("d"))
    per_minute: dict[int, int] = field(default_factory=dict)  # requests the ALB received per minute

    def add(self, sent: float, latency: float) -> None:
        self.sent.append(sent)
        self.latency.append(latency)


class TrafficEngine:
    """Routes requests to workers (round robin or least outstanding) and serves them by PS."""

    def __init__(
        self,
        rng: random.Random,
        work_min: float = 0.45,
        work_max: float = 0.55,
        algorithm: str = "round_robin",
        request_timeout: float = 60.0,
    ) -> None:
        self.rng = rng
        self.work_min = work_min
        self.work_max = work_max
        self.algorithm = algorithm
        self.request_timeout = request_timeout
        self.now = 0.0
        self.heap: list[tuple[float, int, int, object, int]] = []
        self.seq = 0
        self.workers: dict[str, PSWorker] = {}
        self.routable: list[str] = []
        self.rr = 0
        self.log = RequestLog()
        # Closed loop: client id -> generation (a stopped client has no entry).
        self.clients: dict[int, int] = {}
        self.client_order: list[int] = []
        self.next_client = 0
        self.think = 1.0
        # Open loop: rate from (t0, r0) to (t1, r1) linearly; thinning against the maximum.
        self.open_gen = 0
        self.open_span = (0.0, 0.0, 0.0, 0.0)

    # -- schedule ---------------------------------------------------------------------------
    def _push(self, t: float, kind: int, a: object, b: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))

    def _schedule_worker(self, worker_id: str, worker: PSWorker) -> None:
        t = worker.next_completion()
        if t is not None:
            self._push(t, DONE, worker_id, worker.version)

    # -- control ----------------------------------------------------------------------------
    def set_clients(self, now: float, count: int, think: float) -> None:
        """Start or stop closed-loop clients; the last started stop first (after their request)."""
        self.advance_to(now)
        self.think = think
        while len(self.client_order) < count:
            cid = self.next_client
            self.next_client += 1
            self.clients[cid] = 0
            self.client_order.append(cid)
            self._push(now + self.rng.uniform(0.0, think), SEND, cid, 0)
        while len(self.client_order) > count:
            cid = self.client_order.pop()
            del self.clients[cid]

    def set_rate(self, now: float, rate: float, end: float, rate_end: float) -> None:
        """Open-loop Poisson arrivals from ``now`` to ``end``, rate moving linearly to ``rate_end``."""
        self.advance_to(now)
        self.open_gen += 1
        self.open_span = (now, rate, end, rate_end)
        self._next_open(now)

    def _next_open(self, t: float) -> None:
        t0, r0, t1, r1 = self.open_span
        peak = max(r0, r1)
        if peak <= 0:
            return
        while True:
            t += self.rng.expovariate(peak)
            if t >= t1:
                return
            rate = r0 + (r1 - r0) * (t - t0) / (t1 - t0) if t1 > t0 else r0
            if r0 == r1 or self.rng.random() * peak <= rate:
                self._push(t, OPEN, None, self.open_gen)
                return

    def add_worker(self, worker_id: str, vcpus: int) -> PSWorker:
        worker = self.workers.get(worker_id)
        if worker is None:
            worker = PSWorker(vcpus, self.now)
            self.workers[worker_id] = worker
        return worker

    def set_worker_up(self, now: float, worker_id: str, up: bool) -> None:
        """Bring a worker up or down; a worker going down fails its requests in flight (502)."""
        self.advance_to(now)
        worker = self.workers[worker_id]
        worker.up = up
        if not up:
            for _, _, sent, client in worker.drop_all(now):
                self._finish(now, sent, client, ERROR_LATENCY)

    def set_routable(self, now: float, targets: list[str]) -> None:
        self.advance_to(now)
        self.routable = targets

    def in_flight(self, worker_id: str) -> int:
        worker = self.workers.get(worker_id)
        return 0 if worker is None else worker.in_flight

    def cpu_seconds(self, now: float, worker_id: str) -> float:
        self.advance_to(now)
        return self.workers[worker_id].cpu_seconds(now)

    # -- run --------------------------------------------------------------------------------
    def advance_to(self, until: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= until:
            t, _, kind, a, b = heapq.heappop(heap)
            self.now = t
            if kind == DONE:
                worker = self.workers[a]  # type: ignore[index]
                if worker.version != b or not worker.jobs:
                    continue
                _, _, sent, client = worker.complete(t)
                latency = t - sent
                self._finish(t, sent, client, latency if latency <= self.request_timeout else ERROR_LATENCY)
                self._schedule_worker(a, worker)  # type: ignore[arg-type]
            elif kind == SEND:
                if self.clients.get(a) == b:  # type: ignore[call-overload]
                    self._route(t, t, a)  # type: ignore[arg-type]
            elif b == self.open_gen:
                self._route(t, t, -1)
                self._next_open(t)
        self.now = max(self.now, until)

    def _route(self, t: float, sent: float, client: int) -> None:
        minute = int(t // 60)
        per_minute = self.log.per_minute
        per_minute[minute] = per_minute.get(minute, 0) + 1
        routable = self.routable
        if not routable:
            self._finish(t, sent, client, ERROR_LATENCY)  # 503: no registered target
            return
        if self.algorithm == "least_outstanding_requests":
            best = min(routable, key=lambda w: self.workers[w].in_flight)
            worker_id = best
        else:
            self.rr = (self.rr + 1) % len(routable)
            worker_id = routable[self.rr]
        worker = self.workers[worker_id]
        if not worker.up:
            self._finish(t, sent, client, ERROR_LATENCY)  # 502: target does not answer
            return
        worker.add(t, self.rng.uniform(self.work_min, self.work_max), sent, client)
        self._schedule_worker(worker_id, worker)

    def _finish(self, t: float, sent: float, client: int, latency: float) -> None:
        self.log.add(sent, latency)
        if client >= 0 and client in self.clients:
            gen = self.clients[client] + 1
            self.clients[client] = gen
            self._push(t + self.think, SEND, client, gen)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (already sorted), ``nan`` when empty."""
    if not values:
        return math.nan
    rank = max(0, min(len(values) - 1, math.ceil(q / 100.0 * len(values)) - 1))
    return values[rank]
