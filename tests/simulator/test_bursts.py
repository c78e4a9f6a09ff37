"""Open-loop bursts: the scenarios' expectations follow from the arithmetic; the oracle's need;
the ideal policy runs through the same controller and meets each need as fast as the fleet can."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from fleet_template.cfn import load_template
from simulator.oracle import STEP_SECONDS, Need, change_points, step_load
from simulator.params import ModelParams, vcpus_for
from simulator.scenario import Stage, load_scenario, parse_scenario

pytestmark = pytest.mark.simulation
ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "template.yaml"
BURSTS = ("burst-10x", "burst-10x-cold", "burst-20x", "burst-20x-cold", "flash-crowd", "sawtooth")
DEFAULTS = {name: spec.get("Default") for name, spec in load_template(TEMPLATE)["Parameters"].items()}
MIN_SIZE, MAX_SIZE, TARGET = int(DEFAULTS["MinSize"]), int(DEFAULTS["MaxSize"]), float(DEFAULTS["CpuTarget"])
VCPUS = vcpus_for(str(DEFAULTS["InstanceType"]))
HEALTH_CHECKS = int(DEFAULTS["HealthyThresholdCount"]) * float(DEFAULTS["HealthCheckIntervalSeconds"])
P = ModelParams()
# Seconds of CPU per request: the work's middle plus the per-request overhead.
S = P.work_seconds.mid + P.request_overhead_ms / 1000.0
SLOWEST_LAUNCH = (P.run_instances_api_seconds.high + P.launch_pending_seconds.high + P.boot_seconds.high
                  + P.install_seconds.high + HEALTH_CHECKS)  # fmt: skip
SLOWEST_START = (P.ec2_api_seconds.high + P.start_pending_seconds.high + P.boot_seconds.high
                 + P.worker_start_seconds.high + HEALTH_CHECKS)  # fmt: skip
TO_NOTICE = 60.0  # what the scenarios allow for seeing a step


def need_for(rate: float) -> int:
    """Instances at the CPU target for an open-loop rate: rate x S / (vCPUs x target)."""
    return max(MIN_SIZE, math.ceil(rate * S / (VCPUS * TARGET / 100.0)))


def test_the_arithmetic_the_scenario_comments_use():
    assert (VCPUS, TARGET, MAX_SIZE) == (1, 80.0, 10)
    assert pytest.approx(0.5006) == S
    assert [need_for(r) for r in (0.35, 0.5, 5.0, 6.0, 7.0)] == [1, 1, 4, 4, 5]
    assert need_for(8.0) == 6  # 5.006: why burst-20x steps to 7/s and not 8/s
    assert pytest.approx(236.0) == SLOWEST_LAUNCH
    assert SLOWEST_START + TO_NOTICE <= 120.0


@pytest.mark.parametrize("name", BURSTS)
def test_burst_expectations_are_the_need(name: str):
    scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    need = Need(P, VCPUS, TARGET, MIN_SIZE)
    assert any(s.rate_end is None for s in scenario.stages) and all(s.clients is None for s in scenario.stages)
    peaks = [need_for(max(s.rate or 0.0, s.rate_end or 0.0)) for s in scenario.stages]
    for stage, peak in zip(scenario.stages, peaks, strict=True):
        assert need.stage_peak(stage) == peak <= MAX_SIZE
        if stage.expect_instances is None:
            assert stage.rate_end is not None  # only ramps carry no count
            continue
        low, high = stage.expect_instances
        assert low == peak
        if stage.expect_within is not None:  # a step up: the need, or one above it
            assert high == min(MAX_SIZE, peak + 1)
            pool = int(scenario.parameters.get("WarmPoolSize", DEFAULTS["WarmPoolSize"]))
            more = peak - need_for(scenario.stages[stage.index - 2].rate or 0.0)
            slowest = SLOWEST_START if pool >= more else SLOWEST_LAUNCH
            assert slowest + TO_NOTICE <= stage.expect_within <= slowest + TO_NOTICE + 5
        elif high != low:  # a sawtooth's trough may keep the tooth's fleet
            assert high == max(peaks)


def test_a_ramp_is_sized_in_steps_at_their_middle_and_the_need_changes_at_each():
    stage = Stage(index=1, start=100.0, duration=30.0, rate=0.5, rate_end=3.5)
    assert step_load(stage, 100.0) == pytest.approx(1.0)
    assert step_load(stage, 119.9) == pytest.approx(2.0)
    assert step_load(stage, 125.0) == pytest.approx(3.0)
    closed = Stage(index=2, start=130.0, duration=60.0, clients=3, think=1.0)
    assert step_load(closed, 150.0) == 3.0
    scenario = parse_scenario(
        "stages:\n  - {duration: 30, rate: 1}\n  - {duration: 30, rate: 0.5, rate_end: 3.5}\n"
        "  - {duration: 60, clients: 3}\n"
    )
    assert change_points(scenario) == [0.0, 30.0, 30.0 + STEP_SECONDS, 30.0 + 2 * STEP_SECONDS, 60.0]
    need = Need(P, VCPUS, TARGET, MIN_SIZE)
    assert need.scenario_at(scenario, -5.0) == MIN_SIZE == need.scenario_at(scenario, 500.0)
    # Three clients with 1 s think: 3 x 0.5006 / 1.5006 = 1.0 vCPU -> 2 instances at 80 %.
    assert need.scenario_at(scenario, 70.0) == 2


def test_the_ideal_decision_is_the_need_within_the_bounds_either_way():
    from autoscaler.model import FleetState, Snapshot

    from simulator.policies import ideal_decide
    from tests.unit.builders import policy as deployed_policy

    policy = deployed_policy(min_size=MIN_SIZE, max_size=MAX_SIZE)  # the template's, bounds aside
    at = Snapshot((), FleetState(desired=3))
    assert [(d.desired, d.reason) for d in (ideal_decide(at, policy, n) for n in (5, 3, 1))] == [
        (5, "scale-out"), (3, "within-tolerance"), (1, "scale-in"),
    ]  # fmt: skip
    bounded = ideal_decide(at, policy, MAX_SIZE + 4)
    assert bounded.desired == MAX_SIZE and "bounded" in bounded.message


STEP = """
name: step
seed: 21
warmup: 300
parameters: {WarmPoolSize: 3}
stages:
  - {duration: 240, rate: 0.5}
  - {duration: 300, rate: 5.0}
  - {duration: 300, rate: 0.5}
"""


def run_step(tmp_path: Path, policy: str, text: str = STEP) -> dict[str, Any]:
    """The STEP scenario (or ``text``) under ``policy``: its report, once the run passed."""
    from simulator.cli import main

    scenario = tmp_path / "step.yaml"
    scenario.write_text(text)
    code = main(["run", str(scenario), "--template", str(TEMPLATE), "--policy", policy,
                 "--out", str(tmp_path / "out"), "--quiet"])  # fmt: skip
    report: dict[str, Any] = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == 0 and report["policy"] == policy
    return report


@pytest.mark.slow
def test_the_ideal_meets_each_need_within_a_start_from_the_pool(tmp_path: Path):
    report = run_step(tmp_path, "ideal")
    assert [s["need"] for s in report["stages"]] == [1, 4, 1]
    calm, burst, after = report["stages"]
    assert calm["seconds_to_need"] == 0.0
    # The three come from the pool: a start, a boot, the worker, health checks; a Lambda start
    # and the API calls on top.
    assert 0 < burst["seconds_to_need"] <= SLOWEST_START + 10
    assert burst["instances_at_end"] == 4 and after["instances_at_end"] == 1
    # One decision each way, each at once: the scale-in is counted when its run ends (it does
    # not wait for the drain), within seconds of the drop.
    assert [(a["direction"], a["from"], a["to"]) for a in report["actions"]] == [("out", 1, 4), ("in", 4, 1)]
    assert report["actions"][1]["t"] - after["start"] < 10
    assert report["alarm_transitions"] == []  # it needs no alarm
    totals = report["totals"]
    assert (totals["peak_instances"], totals["peak_need"], totals["flaps"]) == (4, 4, 0)
    assert totals["function_errors"] == 0
    assert totals["error_ratio"] == pytest.approx(totals["errors"] / totals["requests"], abs=1e-5)


def test_the_stabilized_ideal_holds_the_highest_need_of_its_window():
    from simulator.policies import held_need

    scenario = parse_scenario(STEP)
    need = Need(P, VCPUS, TARGET, MIN_SIZE)
    points = change_points(scenario)
    burst, after = scenario.stages[1].start, scenario.stages[2].start
    assert held_need(need, scenario, points, after + 1, 0.0) == 1  # the ideal: at once
    assert held_need(need, scenario, points, after + 89, 90.0) == 4  # the burst is in the window
    assert held_need(need, scenario, points, after + 90, 90.0) == 1  # the window has let it go
    assert held_need(need, scenario, points, burst, 90.0) == 4  # a rise is never held back


@pytest.mark.slow
def test_the_stabilized_ideal_scales_in_when_the_window_lets_go(tmp_path: Path):
    report = run_step(tmp_path, "ideal-stabilized")
    after = report["stages"][2]
    assert [(a["direction"], a["from"], a["to"]) for a in report["actions"]] == [("out", 1, 4), ("in", 4, 1)]
    held = float(DEFAULTS["ScaleInStabilizationSeconds"])
    assert held <= report["actions"][1]["t"] - after["start"] < held + 10


@pytest.mark.parametrize(
    ("name", "parsed"), [("ideal", ("ideal", 0.0)), ("ideal-lagged:30", ("ideal-lagged", 30.0)),
                         ("ideal-lagged:0", ("ideal-lagged", 0.0)), ("ideal-lagged:12.5", ("ideal-lagged", 12.5))],
)  # fmt: skip
def test_a_lagged_ideal_is_named_with_its_lag(name: str, parsed: tuple[str, float]):
    from simulator.policies import parse_policy

    assert parse_policy(name) == parsed


@pytest.mark.parametrize(
    ("name", "says"), [("ideal-lagged", "needs its lag"), ("ideal-lagged:", "needs its lag"),
                       ("ideal-lagged:soon", "needs its lag"), ("ideal-lagged:-5", "needs its lag"),
                       ("ideal-lagged:nan", "needs its lag"), ("ideal-lagged:inf", "needs its lag"),
                       ("ideal:30", "unknown policy"), ("idle", "unknown policy")],
)  # fmt: skip
def test_a_policy_name_that_does_not_parse_is_refused_before_anything_runs(
    name: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from simulator.cli import main
    from simulator.policies import parse_policy

    with pytest.raises(ValueError, match=says):
        parse_policy(name)
    with pytest.raises(SystemExit) as exited:
        main(["run", str(ROOT / "scenarios" / "sawtooth.yaml"), "--policy", name, "--out", str(tmp_path / "out")])
    assert exited.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_lagged_ideal_acts_its_lag_after_each_change(tmp_path: Path):
    report = run_step(tmp_path, "ideal-lagged:30")
    _, burst, after = report["stages"]
    out, back = report["actions"]
    assert [(a["direction"], a["from"], a["to"]) for a in (out, back)] == [("out", 1, 4), ("in", 4, 1)]
    # It learns of each change 30 s late, then acts as the ideal does (within seconds).
    assert 30 <= out["t"] - burst["start"] < 40
    assert 30 <= back["t"] - after["start"] < 40
    assert burst["seconds_to_need"] >= 30 and report["alarm_transitions"] == []


@pytest.mark.slow
def test_before_the_scenario_the_lagged_ideal_sees_no_load(tmp_path: Path):
    # A scenario that opens at its peak: 30 s into it the lagged ideal first learns of the load;
    # during the warm-up before it, there was none to know of.
    opens_at_the_peak = STEP.replace("{duration: 240, rate: 0.5}", "{duration: 240, rate: 5.0, expect_instances: 4}")
    report = run_step(tmp_path, "ideal-lagged:30", opens_at_the_peak)
    out = report["actions"][0]
    assert (out["direction"], out["from"], out["to"]) == ("out", 1, 4)
    assert 30 <= out["t"] < 40


def test_the_delay_a_bar_leaves_is_read_between_the_measured_lags():
    from benchmarks.detection_lag import lag_at

    points = [(0.0, 1.0), (30.0, 1.37), (45.0, 1.82), (60.0, 3.12)]
    assert lag_at(1.5, points) == pytest.approx(30 + 15 * 0.13 / 0.45)
    assert lag_at(1.37, points) == 30.0 and lag_at(0.9, points) == 0.0
    assert lag_at(3.12, points) == pytest.approx(60.0)
    assert lag_at(4.0, points) is None  # beyond the longest lag measured
    assert lag_at(1.5, [(0.0, 1.0), (15.0, 1.6), (30.0, 1.4)]) == pytest.approx(12.5)  # the first crossing


def test_the_rises_are_where_the_demand_goes_up():
    from benchmarks.detection_lag import rises

    saw = load_scenario(ROOT / "scenarios" / "sawtooth.yaml")
    assert rises(saw) == [(0.0, 300.0), (600.0, 900.0), (1200.0, 1500.0)]  # the ramps; not the troughs
    flash = load_scenario(ROOT / "scenarios" / "flash-crowd.yaml")
    crowd = next(s for s in flash.stages if s.rate == max(t.rate or 0.0 for t in flash.stages))
    assert rises(flash) == [(crowd.start, crowd.start + crowd.duration)]  # not the calm it starts in


def test_a_first_scale_out_is_set_against_the_ideals_of_the_same_seed():
    from benchmarks.detection_lag import behind

    def doc(*firsts: float) -> dict[str, Any]:
        runs = [{"actions": [{"t": t, "direction": "out"}, {"t": t + 700, "direction": "out"},
                             {"t": t + 50, "direction": "in"}]} for t in firsts]  # fmt: skip
        return {"runs": runs}

    spans = [(0.0, 300.0), (600.0, 900.0)]
    # 10, 20 and 50 s behind on each ramp: p50 20, p95 50 on both, so no range.
    assert behind(doc(90, 100, 130), doc(80, 80, 80), spans) == "20 / 50"
    assert behind(doc(90, 100, 130), doc(80, 80, 120), spans) == "10 / 20"
    assert behind(doc(90), doc(80), [(1000.0, 1100.0)]) == "-"  # no scale-out in the span


SAWTOOTH = str(ROOT / "scenarios" / "sawtooth.yaml")


@pytest.mark.parametrize(
    ("args", "says"), [(["nope.yaml"], "nope.yaml"), ([SAWTOOTH, "--lags", "0"], "--lags"),
                       ([SAWTOOTH, "--runs", "0"], "--runs"), ([SAWTOOTH, "--bar", "0.5"], "--bar"),
                       ([SAWTOOTH, "--template", "nope.yaml"], "no such template")],
)  # fmt: skip
def test_the_delay_benchmark_refuses_bad_input_before_it_runs(args: list[str], says: str,
                                                               capsys: pytest.CaptureFixture[str]):  # fmt: skip
    from benchmarks.detection_lag import main

    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2 and says in capsys.readouterr().err


def _run(needs: list[int], reached: list[float | None], errors: int, peak: int) -> dict[str, object]:
    stages = [{"need": n, "seconds_to_need": t} for n, t in zip(needs, reached, strict=True)]
    totals = {"requests": 1000, "errors": errors, "instance_seconds_vs_oracle": 1.5, "peak_instances": peak,
              "peak_need": max(needs), "flaps": 0}  # fmt: skip
    return {"stages": stages, "totals": totals}


def test_the_benchmark_sets_ours_against_the_ideal_on_the_steps_up():
    from benchmarks.policies import against_ideal, time_to_need

    # Only steps up count; the slowest of them is the run's figure; a step never met is None.
    assert time_to_need(_run([1, 4, 1, 5], [0.0, 120.0, 0.0, 200.0], 0, 5)) == 200.0
    assert time_to_need(_run([1, 4, 1], [0.0, None, 0.0], 0, 3)) is None
    assert time_to_need(_run([1, 1], [0.0, 0.0], 0, 1)) == 0.0
    ours = {
        "scenario": "b",
        "runs": [_run([1, 4, 1], [0.0, 400.0, 0.0], 40, 5), _run([1, 4, 1], [0.0, None, 0], 60, 3)],
    }
    ideal = {
        "scenario": "b",
        "runs": [_run([1, 4, 1], [0.0, 190.0, 0.0], 10, 4), _run([1, 4, 1], [0.0, 60.0, 0], 10, 4)],
    }
    row = against_ideal(ours, ideal)
    assert row[:6] == ["b", "400 / 400 (1 never)", "60 / 190", "5.00 %", "1.00 %", "5.0"]
    assert row[8:] == ["5 / 4 / 4", "0 / 0"]
