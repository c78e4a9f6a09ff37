"""The unit of work behind ``GET /work``: burn a given amount of CPU time on one core."""

from __future__ import annotations

import time
from dataclasses import dataclass

_CHUNK = 5_000  # iterations between two clock reads (~0.5 ms of CPU)
_MODULUS = 0x7FFFFFFF


@dataclass(frozen=True)
class WorkResult:
    """What one unit of work produced and how long it took."""

    result: int
    iterations: int
    target_seconds: float
    cpu_seconds: float
    wall_seconds: float


def burn(seconds: float) -> WorkResult:
    """Spin a pure-Python loop until this thread has used ``seconds`` of CPU time.

    The loop holds the GIL and one core, like the original worker. The duration is measured with
    ``time.thread_time`` (CPU time of this thread), so a preempted process still does the full
    amount of work; the wall-clock time is reported beside it.
    """
    start_cpu = time.thread_time()
    start_wall = time.perf_counter()
    deadline = start_cpu + max(0.0, seconds)
    value = 36867
    iterations = 0
    while True:
        for _ in range(_CHUNK):
            value = (value * 1103515245 + 12345) & _MODULUS
        iterations += _CHUNK
        now = time.thread_time()
        if now >= deadline:
            break
    return WorkResult(
        result=value,
        iterations=iterations,
        target_seconds=seconds,
        cpu_seconds=now - start_cpu,
        wall_seconds=time.perf_counter() - start_wall,
    )
