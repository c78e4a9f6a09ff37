"""The worker on each instance: ``/work`` requests share the instance's vCPUs (processor sharing).

No process per request: with ``n`` requests in service on ``c`` vCPUs every request progresses at
rate ``min(1, c / n)``, so all progress together along one "virtual work" clock ``V``. A request
arriving when the clock reads ``V`` with ``s`` seconds of work finishes when ``V`` reaches
``V + s``: completions come in tag order (a heap), and the next one is computed, not simulated.
"""

from __future__ import annotations

import heapq

Job = tuple[float, int, float, int]  # (finish tag, sequence, send time, client id or -1)


class PSWorker:
    """Processor-sharing server with ``vcpus`` servers and exact CPU-seconds accounting."""

    __slots__ = ("busy", "jobs", "last", "seq", "up", "vcpus", "version", "virtual")

    def __init__(self, vcpus: int, now: float = 0.0) -> None:
        self.vcpus = vcpus
        self.jobs: list[Job] = []
        self.virtual = 0.0
        self.last = now
        self.busy = 0.0  # CPU-seconds used since creation
        self.up = False  # the worker answers (booted, not failed, not stopping)
        self.seq = 0
        self.version = 0  # bumped whenever the next completion time changes

    def advance(self, now: float) -> None:
        n = len(self.jobs)
        dt = now - self.last
        if n and dt > 0:
            c = self.vcpus
            if n <= c:
                self.virtual += dt
                self.busy += dt * n
            else:
                self.virtual += dt * c / n
                self.busy += dt * c
        self.last = now

    def add(self, now: float, work: float, sent: float, client: int) -> None:
        self.advance(now)
        self.seq += 1
        heapq.heappush(self.jobs, (self.virtual + work, self.seq, sent, client))
        self.version += 1

    def next_completion(self) -> float | None:
        if not self.jobs:
            return None
        n = len(self.jobs)
        rate = 1.0 if n <= self.vcpus else self.vcpus / n
        remaining = self.jobs[0][0] - self.virtual
        return self.last + (remaining if remaining > 0 else 0.0) / rate

    def complete(self, now: float) -> Job:
        self.advance(now)
        self.version += 1
        return heapq.heappop(self.jobs)

    def drop_all(self, now: float) -> list[Job]:
        self.advance(now)
        jobs, self.jobs = self.jobs, []
        self.version += 1
        return jobs

    def cpu_seconds(self, now: float) -> float:
        self.advance(now)
        return self.busy

    @property
    def in_flight(self) -> int:
        return len(self.jobs)
