"""The nine-stage scenario as data, and the stage arithmetic used by the Locust shape."""

from __future__ import annotations

import pytest

from loadtest.stages import STAGES, closed_loop, percentile, selected_stages, stage_at, stage_seconds


def test_nine_stages_match_the_scenario() -> None:
    assert [s.index for s in STAGES] == list(range(1, 10))
    assert [s.clients for s in STAGES] == [1, 2, 3, 4, 3, 2, 2, 1, 0]
    assert [s.expected_instances for s in STAGES] == [1, 1, 2, 2, 2, 1, 1, 1, 1]


def test_stage_length_and_selection_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOADTEST_STAGE_SECONDS", raising=False)
    monkeypatch.delenv("LOADTEST_STAGES", raising=False)
    assert stage_seconds() == 300.0
    assert selected_stages() == STAGES
    monkeypatch.setenv("LOADTEST_STAGE_SECONDS", "3")
    monkeypatch.setenv("LOADTEST_STAGES", "4")
    assert stage_seconds() == 3.0
    assert [s.clients for s in selected_stages()] == [1, 2, 3, 4]
    monkeypatch.setenv("LOADTEST_STAGES", "10")
    with pytest.raises(ValueError, match="LOADTEST_STAGES"):
        selected_stages()
    monkeypatch.setenv("LOADTEST_STAGE_SECONDS", "0")
    with pytest.raises(ValueError, match="positive"):
        stage_seconds()


def test_stage_at() -> None:
    assert stage_at(-1, 300) == STAGES[0]
    assert stage_at(0, 300) == STAGES[0]
    assert stage_at(299.9, 300) == STAGES[0]
    assert stage_at(300, 300) == STAGES[1]
    assert stage_at(8 * 300 + 1, 300) == STAGES[8]
    assert stage_at(9 * 300, 300) is None
    assert stage_at(7, 3, STAGES[:2]) is None


def test_percentile() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0], 0.95) == 1.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0


def test_closed_loop_arithmetic_behind_the_expectations() -> None:
    figures = [closed_loop(n) for n in (1, 2, 3, 4)]
    assert [round(f.utilisation * 100) for f in figures] == [33, 60, 79, 90]
    assert [round(f.response_seconds, 2) for f in figures] == [0.5, 0.67, 0.9, 1.21]
    assert [round(f.requests_per_minute / f.clients) for f in figures] == [40, 36, 32, 27]
