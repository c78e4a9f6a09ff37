"""The demand a scenario puts on the fleet, in instances at the CPU target: one rule for the
report's oracle, its time to sufficient capacity, and the ``ideal`` policy's decisions."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from simulator.params import ModelParams
from simulator.scenario import Scenario, Stage

# The oracle sizes open-loop ramps in steps this long, each for the rate at its middle.
STEP_SECONDS = 10.0


def oracle_instances(
    load: float, closed: bool, think: float, params: ModelParams, vcpus: int, target: float, minimum: int
) -> int:
    """Instances that exactly carry ``load`` at the CPU target (demand in vCPU-seconds per second)."""
    work = params.work_seconds.mid + params.request_overhead_ms / 1000.0
    demand = load * work / (work + think) if closed else load * work
    return max(minimum, math.ceil(demand / (vcpus * target / 100.0) - 1e-9))


def step_starts(stage: Stage) -> Iterator[float]:
    """The starts of the oracle's steps in ``stage`` (scenario time)."""
    t = stage.start
    while t < stage.end:
        yield t
        t += STEP_SECONDS


def step_load(stage: Stage, t: float) -> float:
    """The load the oracle sizes for at scenario time ``t``: the clients, or the rate at the
    middle of ``t``'s step."""
    if stage.clients is not None:
        return float(stage.clients)
    start = stage.start + math.floor((t - stage.start) / STEP_SECONDS) * STEP_SECONDS
    return stage.rate_at(start + STEP_SECONDS / 2)


@dataclass(frozen=True)
class Need:
    """The fewest instances that carry a scenario's demand at the CPU target (``target`` in %)."""

    params: ModelParams
    vcpus: int
    target: float
    minimum: int

    def at(self, stage: Stage, t: float) -> int:
        load = step_load(stage, t)
        return oracle_instances(load, stage.clients is not None, stage.think, self.params, self.vcpus, self.target,
                                self.minimum)  # fmt: skip

    def stage_peak(self, stage: Stage) -> int:
        """The most the stage needs at any of its steps."""
        return max(self.at(stage, t) for t in step_starts(stage))

    def scenario_at(self, scenario: Scenario, t: float) -> int:
        """The need at scenario time ``t``; the minimum outside the scenario (no load)."""
        stage = scenario.stage_at(t)
        return self.minimum if stage is None else self.at(stage, t)


def change_points(scenario: Scenario) -> list[float]:
    """Scenario times at which the demand may change: every stage start, and every step of an
    open-loop ramp."""
    points: list[float] = []
    for stage in scenario.stages:
        ramp = stage.clients is None and stage.rate_end is not None and stage.rate_end != stage.rate
        points.extend(step_starts(stage) if ramp else [stage.start])
    return points
