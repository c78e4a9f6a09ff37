"""benchmarks/control_plane.py still drives what it claims to measure (its figures are not
checked here: these machines are shared and noisy)."""

from __future__ import annotations

import pytest

from benchmarks import control_plane

pytestmark = pytest.mark.integration


def test_the_scale_out_it_times_is_a_scale_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control_plane, "SCALE_RUNS", 1)
    assert control_plane.scale_out_wall_time() > 0  # it asserts the outcome's reason itself


def test_it_counts_the_calls_of_a_scale_out_and_of_a_converged_reconcile() -> None:
    scale_out, reconcile = control_plane.api_calls(2)
    assert scale_out["ec2:StartInstances"] == 1
    assert "ec2:StartInstances" not in reconcile
    assert sum(reconcile.values()) > 0
