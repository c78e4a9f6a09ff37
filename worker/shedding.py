"""Load shedding by a time budget: the arithmetic, pure and shared by the server and the publisher.

A ``/work`` request whose expected wait before a worker process starts it exceeds the budget is
answered at once with ``503`` and ``Retry-After`` instead of waiting in the queue and timing out
(upstream, at nginx or the load balancer) after its client has given up. The expected wait is
the queue ahead of it, plus itself, times the mean service time, shared by the processes::

    expected_wait = (ahead + 1) * mean_service_seconds / processes

The mean service time is an exponentially weighted moving average of the measured service times
of completed ``/work`` requests (:class:`ServiceTimeEwma`). The same product over the queue gives
the host's backlog (:func:`backlog_seconds`), the ``BacklogSeconds`` metric.
"""

from __future__ import annotations

import math

# What a /work costs before any has been measured: the middle of the 0.45-0.55 s burn
# (docs/worker.md). The first completions replace it within a few seconds.
NOMINAL_SERVICE_SECONDS = 0.5

# Weight of the newest sample. The burn is uniform on 0.45-0.55 s (sd 0.029 s); with alpha 0.1
# the average's own sd is 0.029 * sqrt(alpha / (2 - alpha)) = 0.0066 s (1.3 %), so the shedding
# threshold does not flicker request by request, while a real change (CPU contention, a larger
# burn) is followed within ~10-20 completions: a few seconds at a host's 2 requests/s per vCPU.
EWMA_ALPHA = 0.1


class ServiceTimeEwma:
    """Mean service time of completed requests, seeded with :data:`NOMINAL_SERVICE_SECONDS`."""

    def __init__(self, alpha: float = EWMA_ALPHA, seed: float = NOMINAL_SERVICE_SECONDS) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if seed <= 0:
            raise ValueError(f"seed must be positive, got {seed}")
        self.alpha = alpha
        self.value = seed
        self.samples = 0

    def observe(self, seconds: float) -> float:
        """Fold one measured service time in; returns the new mean. Negative samples count as 0."""
        self.value += self.alpha * (max(0.0, seconds) - self.value)
        self.samples += 1
        return self.value


def backlog_seconds(queued: int, mean_service_seconds: float, processes: int) -> float:
    """Seconds the host needs to clear ``queued`` requests not yet started (0 when none wait)."""
    return max(0, queued) * mean_service_seconds / max(1, processes)


def expected_wait(ahead: int, mean_service_seconds: float, processes: int) -> float:
    """Expected wait of a new request with ``ahead`` requests queued before it."""
    return backlog_seconds(ahead + 1, mean_service_seconds, processes)


def should_shed(ahead: int, mean_service_seconds: float, processes: int, budget: float) -> bool:
    """True when the new request's expected wait exceeds the budget."""
    return expected_wait(ahead, mean_service_seconds, processes) > budget


def retry_after_seconds(ahead: int, mean_service_seconds: float, processes: int, budget: float) -> int:
    """``Retry-After`` for a shed request, in whole seconds, at least 1.

    The queue drains at ``processes / mean`` requests per second, so the expected wait falls by
    one second per second: a request sent ``expected_wait - budget`` seconds later is expected
    to fit the budget again (if nothing else arrives meanwhile). Rounded up, because the header
    takes a non-negative integer (RFC 9110, section 10.2.3, "Retry-After") and an earlier retry
    would be shed again.
    """
    excess = expected_wait(ahead, mean_service_seconds, processes) - budget
    return max(1, math.ceil(excess))
