"""Clients, the load balancer's routing and the worker hosts' queues, on one exact event heap.

Closed-loop clients send, wait for the answer (or the load balancer's timeout), think, and send
again; open-loop arrivals are Poisson at a rate that may ramp within a stage. The engine is
advanced to the SimPy clock by whoever needs its state (metrics, health checks, routing changes);
no SimPy process per request.

Hosts serve FIFO with one process per vCPU (``workers.Host``). Service times are drawn at
arrival, so a request's start and finish are known the moment it is queued: each host keeps the
times its processes become free, and one event per request reports the answer (plus a second,
host-side one when the client gave up first). A host refuses a request at once (503) when its
queue is full or the request's expected wait, by the worker's own estimate, exceeds its budget.
"""

from __future__ import annotations

import heapq
import math
import random
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from simulator.workers import QUEUE_BUDGET_SECONDS, Host

OPEN, SEND, ANSWER, RELEASE = 0, 1, 2, 3
OK_STATUS, BAD_GATEWAY, UNAVAILABLE, GATEWAY_TIMEOUT = 200, 502, 503, 504


@dataclass
class RequestLog:
    """One entry per request: send time, latency, HTTP status (200 or the error the client saw)."""

    sent: array[float] = field(default_factory=lambda: array("d"))
    latency: array[float] = field(default_factory=lambda: array("d"))
    status: array[int] = field(default_factory=lambda: array("h"))
    per_minute: dict[int, int] = field(default_factory=dict)  # requests the ALB received per minute

    def add(self, sent: float, latency: float, status: int) -> None:
        self.sent.append(sent)
        self.latency.append(latency)
        self.status.append(status)


@dataclass(eq=False)
class _Flight:
    """A request accepted by a host: when it started and finishes, and who waits for it."""

    sent: float
    client: int
    start: float
    finish: float
    generation: int
    key: int


@dataclass
class _HostState:
    host: Host
    free_at: list[float]  # when each process becomes free (a heap)
    flights: dict[int, _Flight] = field(default_factory=dict)  # accepted, not finished, by arrival
    scheduled_busy: float = 0.0  # process-seconds of every accepted request, as scheduled
    last_active: float = -math.inf  # last time a request finished (keep-alive connections)


class TrafficEngine:
    """Routes requests to hosts (round robin, or least outstanding requests) and serves them FIFO."""

    def __init__(
        self,
        rng: random.Random,
        work: Callable[[random.Random], float],
        overhead_seconds: float = 0.0,
        algorithm: str = "round_robin",
        request_timeout: float = 60.0,
        queue_budget: float = QUEUE_BUDGET_SECONDS,
    ) -> None:
        self.rng = rng
        self.work = work
        self.overhead = overhead_seconds
        self.algorithm = algorithm
        self.request_timeout = request_timeout
        self.queue_budget = queue_budget
        self.now = 0.0
        self.heap: list[tuple[float, int, int, object, int]] = []
        self.seq = 0
        self.hosts: dict[str, _HostState] = {}
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

    def add_host(self, host_id: str, processes: int, background: float) -> Host:
        state = self.hosts.get(host_id)
        if state is None:
            state = _HostState(Host(processes, background, queue_budget=self.queue_budget), [0.0] * processes)
            self.hosts[host_id] = state
        return state.host

    def set_host_up(self, now: float, host_id: str, up: bool) -> None:
        """Bring a worker up or down; going down fails what it holds (502)."""
        self.advance_to(now)
        state = self.hosts[host_id]
        state.host.up = up
        if up:
            return
        state.host.restarted()  # the next worker process measures afresh
        state.host.generation += 1
        for flight in state.flights.values():
            state.scheduled_busy -= flight.finish - max(flight.start, now)
            if flight.client != -2:  # -2: the client already gave up (timeout)
                self._answer(now, flight.sent, flight.client, BAD_GATEWAY)
        state.flights.clear()
        state.free_at = [now] * state.host.processes

    def set_routable(self, now: float, targets: list[str]) -> None:
        self.advance_to(now)
        self.routable = targets

    def outstanding(self, host_id: str) -> int:
        state = self.hosts.get(host_id)
        return 0 if state is None else len(state.flights)

    def last_active(self, host_id: str) -> float:
        state = self.hosts.get(host_id)
        return -math.inf if state is None else state.last_active

    def busy_seconds(self, now: float, host_id: str) -> float:
        """Process-seconds of service on ``host_id`` up to ``now``."""
        self.advance_to(now)
        state = self.hosts[host_id]
        future = sum(f.finish - max(f.start, now) for f in state.flights.values() if f.finish > now)
        return state.scheduled_busy - future

    def arrivals(self, host_id: str) -> int:
        state = self.hosts.get(host_id)
        return 0 if state is None else state.host.arrivals

    def queued(self, now: float, host_id: str) -> int:
        """Requests on ``host_id`` waiting for a process at ``now`` (accepted, not started)."""
        self.advance_to(now)
        return _queued(self.hosts[host_id], now)

    # -- run --------------------------------------------------------------------------------
    def advance_to(self, until: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= until:
            t, _, kind, a, b = heapq.heappop(heap)
            self.now = t
            if kind in (ANSWER, RELEASE):
                self._finish(t, a, b, answer=kind == ANSWER)  # type: ignore[arg-type]
            elif kind == SEND:
                if self.clients.get(a) == b:  # type: ignore[call-overload]
                    self._route(t, a)  # type: ignore[arg-type]
            elif b == self.open_gen:
                self._route(t, -1)
                self._next_open(t)
        self.now = max(self.now, until)

    def _route(self, t: float, client: int) -> None:
        minute = int(t // 60)
        per_minute = self.log.per_minute
        per_minute[minute] = per_minute.get(minute, 0) + 1
        routable = self.routable
        if not routable:
            self._answer(t, t, client, UNAVAILABLE)  # no registered target
            return
        if self.algorithm == "least_outstanding_requests":
            host_id = self._least_outstanding(routable)
        else:
            self.rr = (self.rr + 1) % len(routable)
            host_id = routable[self.rr]
        state = self.hosts[host_id]
        host = state.host
        if not host.up:
            self._answer(t, t, client, BAD_GATEWAY)  # target does not answer
            return
        host.arrivals += 1
        if host.refuses(_queued(state, t)):
            self._answer(t, t, client, UNAVAILABLE)  # queue full, or its expected wait over the budget
            return
        free = heapq.heappop(state.free_at)
        start = max(t, free)
        finish = start + host.wall(self.work(self.rng) + self.overhead)
        heapq.heappush(state.free_at, finish)
        state.scheduled_busy += finish - start
        self.seq += 1
        flight = _Flight(t, client, start, finish, host.generation, self.seq)
        state.flights[flight.key] = flight
        deadline = t + self.request_timeout
        if finish <= deadline:
            self._push(finish, ANSWER, (host_id, flight), 0)
        else:
            self._push(deadline, ANSWER, (host_id, flight), 1)  # the client gets a 504 first
            self._push(finish, RELEASE, (host_id, flight), 0)

    def _finish(self, t: float, payload: tuple[str, _Flight], timed_out: int, *, answer: bool) -> None:
        host_id, flight = payload
        state = self.hosts[host_id]
        if flight.generation != state.host.generation:
            return  # dropped when the worker went down
        if answer:
            status = GATEWAY_TIMEOUT if timed_out else OK_STATUS
            self._answer(t, flight.sent, flight.client, status)
            if not timed_out:
                self._release(state, flight, t)
            else:
                flight.client = -2
        else:
            self._release(state, flight, t)

    def _least_outstanding(self, routable: list[str]) -> str:
        """The target with the fewest requests in flight; the ALB does not document its
        tie-break, so ties are broken at random (reservoir sampling, one pass)."""
        best = routable[0]
        fewest = math.inf
        ties = 0
        hosts = self.hosts
        for host_id in routable:
            n = len(hosts[host_id].flights)
            if n < fewest:
                best, fewest, ties = host_id, n, 1
            elif n == fewest:
                ties += 1
                if self.rng.random() * ties < 1.0:
                    best = host_id
        return best

    @staticmethod
    def _release(state: _HostState, flight: _Flight, t: float) -> None:
        del state.flights[flight.key]
        state.last_active = t
        state.host.observe(flight.finish - flight.start)  # the worker measures every completion

    def _answer(self, t: float, sent: float, client: int, status: int) -> None:
        self.log.add(sent, t - sent, status)
        if client >= 0 and client in self.clients:
            gen = self.clients[client] + 1
            self.clients[client] = gen
            self._push(t + self.think, SEND, client, gen)


def _queued(state: _HostState, t: float) -> int:
    """Accepted requests not started at ``t``: FIFO starts follow arrival order, so they are the
    newest flights."""
    count = 0
    for flight in reversed(state.flights.values()):
        if flight.start <= t:
            break
        count += 1
    return count


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (already sorted), ``nan`` when empty."""
    if not values:
        return math.nan
    rank = max(0, min(len(values) - 1, math.ceil(q / 100.0 * len(values)) - 1))
    return values[rank]
