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

from worker.metrics_publisher import offered_load_percent
from worker.server import Config
from worker.shedding import ServiceTimeEwma, backlog_seconds, should_shed

# The worker's own defaults (worker/server.py): a template's WorkerQueueBudgetSeconds overrides
# the budget (simulator/deployment.py).
QUEUE_BUDGET_SECONDS = Config.queue_budget
MAX_QUEUE = Config.max_queue


class Host:
    """A worker host's processes, its queue-time budget and its counters, as the worker keeps them.

    The shedding rule, the moving average of service times and the published figures are the
    worker's own functions (worker/shedding.py, worker/metrics_publisher.py), not a copy."""

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
