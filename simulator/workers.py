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


class Host:
    """A worker host's request queue and processes, with exact CPU-seconds accounting."""

    __slots__ = (
        "active",
        "arrivals",
        "background",
        "busy_done",
        "generation",
        "max_queue",
        "processes",
        "queue",
        "start_sum",
        "up",
    )

    def __init__(self, processes: int, background: float = 0.0, max_queue: int = 1024) -> None:
        self.processes = processes
        self.background = min(max(background, 0.0), 0.9)
        self.max_queue = max_queue
        self.queue: deque[Request] = deque()
        self.active = 0  # requests being served (one per busy process)
        self.start_sum = 0.0  # sum of the start times of the active requests
        self.busy_done = 0.0  # process-seconds of finished (or dropped) service
        self.up = False  # the worker answers (booted, not failed, not stopping)
        self.generation = 0  # bumped when everything in flight is dropped
        self.arrivals = 0  # /work requests that reached this host

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
