"""The shedding arithmetic (worker/shedding.py): expected wait, the budget, Retry-After, the EWMA."""

from __future__ import annotations

import pytest

from worker.shedding import (
    EWMA_ALPHA,
    NOMINAL_SERVICE_SECONDS,
    ServiceTimeEwma,
    backlog_seconds,
    expected_wait,
    retry_after_seconds,
    should_shed,
)


def test_expected_wait_counts_the_queue_ahead_and_the_request_itself() -> None:
    assert expected_wait(0, 0.5, 1) == pytest.approx(0.5)
    assert expected_wait(3, 0.5, 1) == pytest.approx(2.0)
    assert expected_wait(3, 0.5, 2) == pytest.approx(1.0)  # two processes drain twice as fast
    assert expected_wait(39, 0.5, 2) == pytest.approx(10.0)


def test_backlog_is_zero_when_nothing_waits() -> None:
    assert backlog_seconds(0, 0.5, 2) == 0.0
    assert backlog_seconds(8, 0.5, 2) == pytest.approx(2.0)
    assert backlog_seconds(8, 0.5, 0) == pytest.approx(4.0)  # no live process: counted as one
    assert backlog_seconds(-1, 0.5, 1) == 0.0


@pytest.mark.parametrize(
    ("ahead", "mean", "processes", "budget", "shed"),
    [
        (39, 0.5, 2, 10.0, False),  # exactly the budget: still served
        (40, 0.5, 2, 10.0, True),  # 10.25 s > 10 s
        (19, 0.5, 1, 10.0, False),
        (20, 0.5, 1, 10.0, True),
        (20, 0.25, 1, 10.0, False),  # faster service: the same queue fits
        (0, 0.5, 1, 0.4, True),  # a budget shorter than one service time sheds even an empty queue
    ],
)
def test_should_shed_when_the_expected_wait_exceeds_the_budget(
    ahead: int, mean: float, processes: int, budget: float, shed: bool
) -> None:
    assert should_shed(ahead, mean, processes, budget) is shed


@pytest.mark.parametrize(
    ("ahead", "mean", "processes", "budget", "retry_after"),
    [
        (40, 0.5, 2, 10.0, 1),  # 0.25 s over the budget: at least 1 s
        (59, 0.5, 2, 10.0, 5),  # 15 s expected, 5 s over
        (60, 0.5, 2, 10.0, 6),  # 15.25 s expected: rounded up, an earlier retry is shed again
        (119, 0.5, 1, 10.0, 50),  # 60 s expected on one process
    ],
)
def test_retry_after_is_the_time_until_the_queue_drains_to_the_budget(
    ahead: int, mean: float, processes: int, budget: float, retry_after: int
) -> None:
    value = retry_after_seconds(ahead, mean, processes, budget)
    assert value == retry_after
    assert isinstance(value, int)
    # After waiting that long, the queue (draining at processes / mean per second) fits the budget.
    drained = max(0, ahead - round(value * processes / mean))
    assert not should_shed(drained, mean, processes, budget)


def test_retry_after_is_at_least_one_second_even_when_no_queue_fits_the_budget() -> None:
    assert retry_after_seconds(0, 0.5, 1, 0.4) == 1


def test_ewma_starts_at_the_nominal_service_time_and_follows_the_measurements() -> None:
    ewma = ServiceTimeEwma()
    assert ewma.value == NOMINAL_SERVICE_SECONDS == 0.5
    assert ewma.samples == 0
    assert ewma.observe(1.5) == pytest.approx(0.5 + EWMA_ALPHA * 1.0)
    assert ewma.samples == 1
    for _ in range(200):
        ewma.observe(0.3)
    assert ewma.value == pytest.approx(0.3, abs=1e-6)
    ewma.observe(-1.0)  # a clock oddity is a zero, not a negative time
    assert ewma.value == pytest.approx(0.3 * (1 - EWMA_ALPHA))


def test_ewma_weights() -> None:
    ewma = ServiceTimeEwma(alpha=0.5, seed=1.0)
    assert ewma.observe(0.0) == 0.5
    assert ewma.observe(0.0) == 0.25
    assert ServiceTimeEwma(alpha=1.0).observe(0.7) == 0.7  # alpha 1: the last sample only
    with pytest.raises(ValueError, match="alpha"):
        ServiceTimeEwma(alpha=0.0)
    with pytest.raises(ValueError, match="seed"):
        ServiceTimeEwma(seed=0.0)
