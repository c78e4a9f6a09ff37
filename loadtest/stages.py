"""The nine-stage acceptance scenario as data (no Locust import, so tests can read it).

Clients per stage and the instance count the autoscaler is expected to reach in that stage;
``closed_loop`` gives the textbook closed-loop figures (loadtest/README.md compares them with the
twin's model of these clients' exact one-second sleeps).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_STAGE_SECONDS = 300.0


@dataclass(frozen=True)
class Stage:
    index: int  # 1-based, as in the scenario
    clients: int
    expected_instances: int
    what: str


STAGES: tuple[Stage, ...] = (
    Stage(1, 1, 1, "A starts"),
    Stage(2, 2, 1, "B starts"),
    Stage(3, 3, 2, "C starts: a second instance must be started"),
    Stage(4, 4, 2, "D starts"),
    Stage(5, 3, 2, "D stops"),
    Stage(6, 2, 1, "B stops: the second instance must be shut down"),
    Stage(7, 2, 1, "no change"),
    Stage(8, 1, 1, "C stops"),
    Stage(9, 0, 1, "A stops"),
)


def stage_seconds() -> float:
    """Stage length: ``LOADTEST_STAGE_SECONDS`` (default 300 s, the scenario's minimum)."""
    value = float(os.environ.get("LOADTEST_STAGE_SECONDS", DEFAULT_STAGE_SECONDS))
    if value <= 0:
        raise ValueError("LOADTEST_STAGE_SECONDS must be positive")
    return value


def selected_stages() -> tuple[Stage, ...]:
    """The first ``LOADTEST_STAGES`` stages (default all nine), for short rehearsals."""
    count = int(os.environ.get("LOADTEST_STAGES", len(STAGES)))
    if not 1 <= count <= len(STAGES):
        raise ValueError(f"LOADTEST_STAGES must be 1..{len(STAGES)}")
    return STAGES[:count]


def stage_at(elapsed: float, length: float, stages: tuple[Stage, ...] = STAGES) -> Stage | None:
    """The stage running ``elapsed`` seconds into the test, None once every stage is over."""
    if elapsed < 0:
        return stages[0]
    position = int(elapsed // length)
    return stages[position] if position < len(stages) else None


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), int(-(-fraction * len(sorted_values) // 1))))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class ClosedLoop:
    """Steady state of closed-loop clients on one vCPU."""

    clients: int
    utilisation: float  # of the vCPU, 0..1
    response_seconds: float  # mean time from request to answer
    requests_per_minute: float  # of all clients together


def closed_loop(clients: int, service_seconds: float = 0.5, think_seconds: float = 1.0) -> ClosedLoop:
    """Exact mean-value analysis of ``clients`` that each send a request, wait for the answer and
    think ``think_seconds``, against one vCPU serving each request in ``service_seconds`` on
    average (processor sharing): R(n) = S (1 + Q(n-1)), X(n) = n / (R(n) + Z), Q(n) = X(n) R(n).
    Exact for think times that vary (a product-form network); constant sleeps that fall into step
    load the vCPU more (loadtest/README.md)."""
    queue = 0.0
    response = throughput = 0.0
    for n in range(1, clients + 1):
        response = service_seconds * (1 + queue)
        throughput = n / (response + think_seconds)
        queue = throughput * response
    return ClosedLoop(clients, throughput * service_seconds, response, throughput * 60)
