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

from collections import deque

Request = tuple[float, int, float]  # (send time, client id or -1, CPU seconds it costs)

# The worker's configuration the twin models (worker/server.py, worker/shedding.py): one place.
QUEUE_BUDGET_SECONDS = 10.0  # --queue-budget; a template's WorkerQueueBudgetSeconds overrides it
MAX_QUEUE = 1024  # --max-queue
NOMINAL_SERVICE_SECONDS = 0.5  # the mean service time before any /work has completed
EWMA_ALPHA = 0.1  # weight of the newest completed request in the mean service time


class Host:
    """A worker host's request queue and processes, with exact CPU-seconds accounting."""

    __slots__ = (
        "active",
        "arrivals",
        "background",
        "budget_shed",
        "busy_done",
        "generation",
        "max_queue",
        "mean_service",
        "processes",
        "queue",
        "queue_budget",
        "rejected",
        "start_sum",
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
        self.mean_service = NOMINAL_SERVICE_SECONDS  # the worker's EWMA of completed service times
        self.rejected = 0  # /work answered 503 "queue full"
        self.budget_shed = 0  # /work answered 503 over the queue budget
        self.queue: deque[Request] = deque()
        self.active = 0  # requests being served (one per busy process)
        self.start_sum = 0.0  # sum of the start times of the active requests
        self.busy_done = 0.0  # process-seconds of finished (or dropped) service
        self.up = False  # the worker answers (booted, not failed, not stopping)
        self.generation = 0  # bumped when everything in flight is dropped
        self.arrivals = 0  # /work requests that reached this host

    def restarted(self) -> None:
        """A new worker process: its estimate starts again from the nominal service time."""
        self.mean_service = NOMINAL_SERVICE_SECONDS

    def observe(self, service_seconds: float) -> None:
        """A /work completed after ``service_seconds`` in a process: fold it into the mean."""
        self.mean_service += EWMA_ALPHA * (max(0.0, service_seconds) - self.mean_service)

    def expected_wait(self, queued: int) -> float:
        """Expected wait of a new /work with ``queued`` requests waiting ahead of it."""
        return self.backlog_seconds(queued + 1)

    def refuses(self, queued: int) -> bool:
        """Answer a new /work 503 at once (queue full, or over the budget); counts the refusal."""
        if queued >= self.max_queue:
            self.rejected += 1
            return True
        if self.expected_wait(queued) > self.queue_budget:
            self.budget_shed += 1
            return True
        return False

    @property
    def shed(self) -> int:
        """/work requests answered 503 by the worker (over the budget or queue full)."""
        return self.rejected + self.budget_shed

    def backlog_seconds(self, queued: int) -> float:
        """Seconds the processes need to clear ``queued`` requests not yet started (BacklogSeconds)."""
        return max(0, queued) * self.mean_service / max(1, self.processes)

    def offered_load_percent(self, arrivals: int, seconds: float) -> float:
        """CPU ``arrivals`` in ``seconds`` need, in percent of the processes (OfferedLoad): not capped."""
        return 100.0 * arrivals * self.mean_service / (seconds * max(1, self.processes)) if seconds > 0 else 0.0

    def wall(self, cpu_seconds: float) -> float:
        return cpu_seconds / (1.0 - self.background)

    def offer(self) -> bool:
        """Room for one more request (a free process or a queue slot)."""
        return self.active < self.processes or len(self.queue) < self.max_queue

    def start(self, now: float) -> None:
        self.active += 1
        self.start_sum += now

    def finish(self, now: float, started: float) -> None:
        self.active -= 1
        self.start_sum -= started
        self.busy_done += now - started

    def drop_all(self, now: float) -> list[Request]:
        """The worker went down: what was queued is lost, the active requests' time is spent."""
        self.busy_done += self.active * now - self.start_sum
        self.active = 0
        self.start_sum = 0.0
        self.generation += 1
        lost = list(self.queue)
        self.queue.clear()
        return lost

    def busy_seconds(self, now: float) -> float:
        """Process-seconds of service so far (each active process occupies one vCPU)."""
        return self.busy_done + self.active * now - self.start_sum

    def cpu_percent(self, busy_delta: float, seconds: float, vcpus: int) -> float:
        """Host CPU over ``seconds`` as /proc/stat would report it, from the service time in it."""
        share = min(1.0, busy_delta / (seconds * vcpus)) if seconds > 0 else 0.0
        return 100.0 * (self.background + (1.0 - self.background) * share)

    @property
    def outstanding(self) -> int:
        return self.active + len(self.queue)
