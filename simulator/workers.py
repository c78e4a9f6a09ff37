"""The worker on each instance, as built (worker/server.py): one process per vCPU, a FIFO queue.

The supervisor accepts every ``/work`` connection and hands it to an *idle* worker process, so
with ``p`` processes at most ``p`` requests run at once, each on its own vCPU, and the rest wait
in arrival order. ``/ping`` never queues (the supervisor answers it), so health checks only ask
whether the worker is up.

A request costs its work plus the per-request overhead of nginx and the supervisor (measured by
``python -m benchmarks.worker --calibrate``). The host's background (OS, nginx, the metric publisher)
takes a share ``b`` of the vCPUs, so a request's wall time is its CPU time / (1 - b), and the CPU
the host reports is the busy share of the rest plus ``b``.
"""

from __future__ import annotations

import math

# The worker's configuration and arithmetic the twin models. The worker (worker/) ships to the
# hosts and is not an installed package of the twin, so the twin cannot import it when run from
# elsewhere: tests/simulator/test_workers.py checks these against worker/server.py,
# worker/shedding.py and worker/metrics_publisher.py, input by input.
QUEUE_BUDGET_SECONDS = 10.0  # --queue-budget; a template's WorkerQueueBudgetSeconds overrides it
MAX_QUEUE = 1024  # --max-queue
NOMINAL_SERVICE_SECONDS = 0.5  # the mean service time before any /work has completed
EWMA_ALPHA = 0.1  # weight of the newest completed request in the mean service time
PUT_SPREAD_SHARE = 0.1  # the publisher's PutMetricData goes out within this share of the period


def next_boundary(now: float, period: float) -> float:
    """The publisher's next tick: the first multiple of ``period`` at least half a period on."""
    return math.ceil((now + period / 2) / period) * period


def backlog_seconds(queued: int, mean_service_seconds: float, processes: int) -> float:
    """Seconds the processes need to clear ``queued`` requests not yet started (BacklogSeconds)."""
    return max(0, queued) * mean_service_seconds / max(1, processes)


def should_shed(ahead: int, mean_service_seconds: float, processes: int, budget: float) -> bool:
    """The worker's rule: a new request whose expected wait exceeds the budget is refused."""
    return backlog_seconds(ahead + 1, mean_service_seconds, processes) > budget


def offered_load_percent(arrivals: int, mean_service_seconds: float, period_seconds: float, processes: int) -> float:
    """CPU a period's arrivals need, in percent of the processes (OfferedLoad): not capped."""
    return 100.0 * arrivals * mean_service_seconds / (period_seconds * max(1, processes))


class ServiceTimeEwma:
    """The worker's moving average of completed service times."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = NOMINAL_SERVICE_SECONDS

    def observe(self, seconds: float) -> float:
        self.value += EWMA_ALPHA * (max(0.0, seconds) - self.value)
        return self.value


class Host:
    """A worker host's processes, its queue-time budget and its counters, as the worker keeps them.

    The shedding rule, the moving average of service times and the published figures follow
    the worker's (see the module's constants)."""

    __slots__ = (
        "arrivals",
        "background",
        "budget_shed",
        "generation",
        "max_queue",
        "mean",
        "processes",
        "queue_budget",
        "rejected",
        "up",
    )

    def __init__(
        self,
        processes: int,
        background: float = 0.0,
        max_queue: int = MAX_QUEUE,
        queue_budget: float = QUEUE_BUDGET_SECONDS,
    ) -> None:
        self.processes = processes
        self.background = min(max(background, 0.0), 0.9)
        self.max_queue = max_queue
        self.queue_budget = queue_budget
        self.mean = ServiceTimeEwma()  # the worker's moving average of completed service times
        self.rejected = 0  # /work answered 503 "queue full"
        self.budget_shed = 0  # /work answered 503 over the queue budget
        self.up = False  # the worker answers (booted, not failed, not stopping)
        self.generation = 0  # bumped when everything in flight is dropped
        self.arrivals = 0  # /work requests that reached this host

    @property
    def mean_service(self) -> float:
        return self.mean.value

    def restarted(self) -> None:
        """A new worker process: its estimate starts again from the nominal service time."""
        self.mean = ServiceTimeEwma()

    def observe(self, service_seconds: float) -> None:
        """A /work completed after ``service_seconds`` in a process: fold it into the mean."""
        self.mean.observe(service_seconds)

    def refuses(self, queued: int) -> bool:
        """Answer a new /work 503 at once (queue full, or over the budget); counts the refusal."""
        if queued >= self.max_queue:
            self.rejected += 1
            return True
        if should_shed(queued, self.mean.value, self.processes, self.queue_budget):
            self.budget_shed += 1
            return True
        return False

    @property
    def shed(self) -> int:
        """/work requests answered 503 by the worker (over the budget or queue full)."""
        return self.rejected + self.budget_shed

    def backlog_seconds(self, queued: int) -> float:
        """Seconds the processes need to clear ``queued`` requests not yet started (BacklogSeconds)."""
        return backlog_seconds(queued, self.mean.value, self.processes)

    def offered_load_percent(self, arrivals: int, seconds: float) -> float:
        """CPU ``arrivals`` in ``seconds`` need, in percent of the processes (OfferedLoad): not capped."""
        return offered_load_percent(arrivals, self.mean.value, seconds, self.processes)

    def wall(self, cpu_seconds: float) -> float:
        return cpu_seconds / (1.0 - self.background)

    def cpu_percent(self, busy_delta: float, seconds: float, vcpus: int) -> float:
        """Host CPU over ``seconds`` as /proc/stat would report it, from the service time in it."""
        share = min(1.0, busy_delta / (seconds * vcpus)) if seconds > 0 else 0.0
        return 100.0 * (self.background + (1.0 - self.background) * share)
