"""The twin end to end: the real control plane, moto and the models; one run, a sweep, the baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli import main

pytestmark = [pytest.mark.simulation, pytest.mark.slow]
ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "template.yaml"  # the deployed one, parameters at their defaults
SHORT = """
name: short
seed: 5
warmup: 300
stages:
  - {duration: 240, clients: 1, expect_instances: 1}
  - {duration: 300, clients: 3, expect_instances: 2}
"""


def run(tmp_path: Path, scenario: Path, *args: str, out: str = "out") -> tuple[int, dict]:
    code = main(["run", str(scenario), "--out", str(tmp_path / out), "--quiet", *args])
    return code, json.loads((tmp_path / out / "report.json").read_text())


@pytest.fixture(scope="module")
def short_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "short.yaml"
    path.write_text(SHORT)
    return path


def test_report_schema_chart_and_function_log(tmp_path: Path, short_scenario: Path):
    code, report = run(tmp_path, short_scenario, "--template", str(TEMPLATE))
    assert code == (0 if report["passed"] else 1)
    assert (tmp_path / "out" / "timeline.png").stat().st_size > 10_000
    stage_keys = {
        "index", "duration", "clients", "rate", "expect_instances", "instances_at_end", "seconds_to_expected",
        "requests", "errors", "shed", "timeouts", "latency_p50", "latency_p95", "latency_p99", "need",
        "seconds_to_need", "error_ratio",
    }  # fmt: skip
    assert stage_keys <= set(report["stages"][0])
    total_keys = {
        "requests", "errors", "shed", "timeouts", "slo_attainment", "instance_seconds", "oracle_instance_seconds",
        "scale_out_actions", "scale_in_actions", "flaps", "error_ratio", "peak_instances", "peak_need",
    }  # fmt: skip
    assert total_keys <= set(report["totals"])
    # Three clients with 1 s think need 3 x 0.5006 / 1.5006 = 1.0 vCPU: two instances at 80 %.
    assert [s["need"] for s in report["stages"]] == [1, 2]
    assert report["stages"][1]["seconds_to_need"] == report["stages"][1]["seconds_to_expected"]
    assert report["totals"]["peak_need"] == 2 == report["totals"]["peak_instances"]
    assert {"start", "schedule", "alarms"} <= set(report["phases"])
    assert report["stages"][0]["instances_at_end"] == 1
    assert report["stages"][1]["instances_at_end"] == 2  # three clients need a second instance
    assert report["totals"]["scale_out_actions"] == 1
    assert report["totals"]["function_errors"] == 0
    assert report["speed"]["simulated_per_wall_second"] > 0
    # The functions log at the template's level, stamped with virtual time.
    first = json.loads((tmp_path / "out" / "functions.log").read_text().splitlines()[0])
    assert first["message"] == "decision"
    assert first["timestamp"].startswith("2026-01-01")


def test_same_seed_same_report(tmp_path: Path, short_scenario: Path):
    _, first = run(tmp_path, short_scenario, "--template", str(TEMPLATE), out="a")
    _, second = run(tmp_path, short_scenario, "--template", str(TEMPLATE), out="b")
    for report in (first, second):
        report.pop("speed")
    assert first == second


def test_unknown_template_parameter_is_bad_input(tmp_path: Path, short_scenario: Path, capsys):
    code = main(["run", str(short_scenario), "--template", str(TEMPLATE), "--param", "Nope=1", "--out", str(tmp_path)])
    assert code == 2
    assert "Nope" in capsys.readouterr().err


def test_bad_sweep_size_is_bad_input(tmp_path: Path, short_scenario: Path, capsys):
    code = main(["sweep", str(short_scenario), "--template", str(TEMPLATE), "--runs", "0", "--out", str(tmp_path)])
    assert code == 2
    assert "--runs" in capsys.readouterr().err


def test_sweep_summarises_its_runs_and_a_run_reproduces_any_of_them(tmp_path: Path, short_scenario: Path):
    out = tmp_path / "sweep"
    code = main(["sweep", str(short_scenario), "--template", str(TEMPLATE), "--runs", "3", "--jobs", "2",
                 "--out", str(out), "--quiet"])  # fmt: skip
    doc = json.loads((out / "sweep.json").read_text())
    summary = doc["summary"]
    assert code == (0 if summary["pass_rate"] >= 0.95 else 1)
    assert summary["runs"] == 3 and len(doc["runs"]) == 3
    assert (out / "sweep.png").stat().st_size > 10_000
    assert [r["seed"] for r in doc["runs"]] == [5000, 5001, 5002]
    drawn = [r["drawn"]["background_cpu_percent"] for r in doc["runs"]]
    assert len(set(drawn)) == 3  # every run draws its own per-run parameters
    stage = summary["stages"][1]
    assert sum(stage["instances_at_end"].values()) == 3
    assert stage["seconds_to_expected"]["p95"] >= stage["seconds_to_expected"]["p50"]

    code, report = run(tmp_path, short_scenario, "--template", str(TEMPLATE), "--sweep-run", "1", out="again")
    again = [(s["instances_at_end"], s["seconds_to_expected"]) for s in report["stages"]]
    assert again == [(s["instances_at_end"], s["seconds_to_expected"]) for s in doc["runs"][1]["stages"]]


@pytest.mark.parametrize("policy", ["prototype", "target-tracking"])
def test_baselines_run_through_the_same_controller(tmp_path: Path, policy: str):
    # A warm-up long enough for the installs to leave EC2's own 5-minute CPU figures.
    scenario = tmp_path / "baseline.yaml"
    scenario.write_text(SHORT.replace("warmup: 300", "warmup: 900"))
    code, report = run(tmp_path, scenario, "--template", str(TEMPLATE), "--policy", policy)
    assert code in (0, 1)
    assert report["policy"] == policy
    assert report["totals"]["function_errors"] == 0
    assert report["stages"][0]["instances_at_end"] == 1


def test_nine_stage_passes_with_the_template_defaults(tmp_path: Path):
    """The headline: the acceptance scenario, as deployed, meets every stage."""
    code, report = run(tmp_path, ROOT / "scenarios" / "nine-stage.yaml", "--template", str(TEMPLATE))
    assert [s["instances_at_end"] for s in report["stages"]] == [1, 1, 2, 2, 2, 1, 1, 1, 1]
    assert report["stages"][2]["seconds_to_expected"] <= 120  # the second instance in service
    assert report["stages"][5]["seconds_to_expected"] <= 240  # and gone again
    totals = report["totals"]
    assert (totals["scale_out_actions"], totals["scale_in_actions"], totals["flaps"]) == (1, 1, 0)
    assert totals["function_errors"] == 0
    assert report["passed"] and code == 0


def test_a_flap_is_judged_on_the_scenarios_window_not_on_the_configuration_under_test(short_scenario: Path):
    from dataclasses import replace

    from simulator.cli import environment
    from simulator.harness import Action, Simulation
    from simulator.report import build_report
    from simulator.scenario import load_scenario

    environment()
    result = Simulation(load_scenario(short_scenario), str(TEMPLATE), {}, "ours").run()
    reversed_after_100_s = [Action(300.0, "out", 1, 2), Action(400.0, "in", 2, 1)]
    for stabilization in (0, 60, 300):
        settings = {**result.settings, "scale_in_stabilization_seconds": stabilization}
        report = build_report(replace(result, actions=reversed_after_100_s, settings=settings))
        assert (report["totals"]["flaps"], report["totals"]["flap_window_seconds"]) == (1, 180.0)


BURST = """
name: burst
seed: 3
warmup: 300
stages:
  - {duration: 900, rate: 5.0}
"""


def test_a_run_does_not_depend_on_the_interpreters_hash_seed(tmp_path: Path):
    """`run --sweep-run K` must replay run K of a sweep, which ran in another process: a set of
    instance ids iterated in hash order once changed the order of RegisterTargets, and with it
    the registration delays each target drew."""
    import os
    import subprocess
    import sys

    scenario = tmp_path / "burst.yaml"
    scenario.write_text(BURST)
    reports = []
    for hash_seed in ("1", "5"):
        out = tmp_path / f"seed-{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        command = [sys.executable, "-m", "simulator", "run", str(scenario), "--out", str(out), "--quiet"]
        subprocess.run(command, env=env, cwd=ROOT, check=False, capture_output=True, timeout=300)
        report = json.loads((out / "report.json").read_text())
        reports.append((report["actions"], report["totals"]["requests"], report["totals"]["instance_seconds"]))
    assert reports[0][0][0]["to"] - reports[0][0][0]["from"] >= 2  # several instances started at once
    assert reports[0] == reports[1]


def test_a_run_does_not_depend_on_the_runs_before_it_in_the_process(tmp_path: Path):
    """A sweep runs many scenarios in one worker process: moto's ids were seeded before its
    default VPC drew some, so run K there and `run --sweep-run K` alone named (and ordered)
    their instances differently. The reference is a fresh interpreter: earlier tests in this
    process may already have run the twin, so two in-process runs alone could agree by luck."""
    import subprocess
    import sys

    scenario = tmp_path / "burst.yaml"
    scenario.write_text(BURST)

    def outcome(out: Path) -> tuple[object, ...]:
        report = json.loads((out / "report.json").read_text())
        return report["actions"], report["totals"]["requests"], report["totals"]["instance_seconds"]

    runs = []
    for k in range(2):
        main(["run", str(scenario), "--out", str(tmp_path / f"in-process-{k}"), "--quiet"])
        runs.append(outcome(tmp_path / f"in-process-{k}"))
    fresh = tmp_path / "fresh"
    command = [sys.executable, "-m", "simulator", "run", str(scenario), "--out", str(fresh), "--quiet"]
    subprocess.run(command, cwd=ROOT, check=False, capture_output=True, timeout=300)
    assert runs[0] == runs[1]
    assert runs[1] == outcome(fresh)


def test_each_function_logs_under_its_own_service_name(tmp_path: Path, short_scenario: Path):
    """As in Lambda, where each function has its own POWERTOOLS_SERVICE_NAME: the twin runs them
    all in one process, with one module-level logger."""
    from simulator.deployment import build_deployment, load_template

    supplied = {"VpcId": "vpc-twin", "SubnetIds": ["subnet-a", "subnet-b"]}
    deployment = build_deployment(load_template(ROOT / "template.yaml", {}, supplied))
    service = {fn.role: fn.environment["POWERTOOLS_SERVICE_NAME"] for fn in deployment.functions}
    run(tmp_path, short_scenario)
    lines = [json.loads(line) for line in (tmp_path / "out" / "functions.log").read_text().splitlines()]
    by_cause = {line["cause"]: line["service"] for line in lines if line.get("message") == "decision"}
    assert by_cause["lifecycle"] == service["lifecycle"]
    assert by_cause["schedule"] == service["reconcile"]
    assert "service_undefined" not in {line["service"] for line in lines}


def test_a_burst_enters_panic_and_sizes_the_fleet_in_one_step(tmp_path: Path):
    """Open-loop 0.5 -> 5 requests/s on the template's defaults: one host's offered load reads
    ~250 % (3 hosts' worth at the 80 % target), over the panic threshold; its worker sheds what
    would wait past the budget, so the clients see 503s at once and no 504."""
    code, report = run(tmp_path, ROOT / "scenarios" / "burst-10x.yaml", "--template", str(TEMPLATE))
    log = [json.loads(line) for line in (tmp_path / "out" / "functions.log").read_text().splitlines()]
    decisions = [line for line in log if line.get("message") == "decision"]
    # Panic may end while instances are still booting and start again on a noisy reading; the
    # fleet is sized once, by the step that entered it first.
    entered = [d for d in decisions if d["reason"] == "panic-entered" and d["desired"] > d["previous"]]
    assert len(entered) == 1
    assert entered[0]["previous"] == 1 and entered[0]["desired"] >= 3  # sized for the burst at once
    assert "panic demand" in entered[0]["explanation"]
    calm, burst, after = report["stages"]
    first = report["actions"][0]
    assert (first["direction"], first["from"], first["to"]) == ("out", 1, entered[0]["desired"])
    assert burst["start"] < first["t"] < burst["start"] + 120  # the panic step, early in the burst
    assert burst["instances_at_end"] in (4, 5) and burst["passed"]
    assert calm["errors"] == 0 and after["errors"] == 0
    assert burst["shed"] > 0 and burst["timeouts"] == 0 and burst["errors"] == burst["shed"]
    assert report["totals"]["shed"] == burst["shed"]
    assert code == 0 and report["passed"]


def test_after_a_burst_what_the_panic_added_beyond_the_arrivals_is_released(tmp_path: Path):
    """burst-20x, sweep run 7 (in the tests' moto): the panic entry sizes on its highest 10 s
    period, 1 -> 6, where 7 requests/s need 5 (4.4 hosts at the 80 % target); a 10 s count is
    Poisson-noisy, and no backlog share is in that step. Six hosts then read about 60 %, above the
    scale-in alarms' lines: before the release they kept the sixth for the whole burst."""
    args = ("--template", str(TEMPLATE), "--sweep-run", "7")
    code, report = run(tmp_path, ROOT / "scenarios" / "burst-20x.yaml", *args)
    log = [json.loads(line) for line in (tmp_path / "out" / "functions.log").read_text().splitlines()]
    decisions = [line for line in log if line.get("message") == "decision"]
    reasons = [line["reason"] for line in decisions]
    entered = next(line for line in decisions if line["reason"] == "panic-entered")
    assert (entered["previous"], entered["desired"]) == (1, 6)
    assert "the backlog adds" not in entered["explanation"]
    released = [line for line in decisions if line["reason"] == "panic-release"]
    assert [(line["previous"], line["desired"]) for line in released] == [(6, 5)]
    assert "the panic added 5: released" in released[0]["explanation"]
    assert "the arrivals may need up to 5" in released[0]["explanation"]
    assert reasons.index("panic-over") < reasons.index("panic-release")
    _calm, burst, after = report["stages"]
    release = next(a for a in report["actions"] if a["direction"] == "in")
    assert burst["start"] < release["t"] < after["start"] and (release["from"], release["to"]) == (6, 5)
    assert burst["instances_at_end"] == 5 and after["instances_at_end"] == 1
    assert report["totals"]["flaps"] == 0 and code == 0 and report["passed"]


def test_a_flash_crowd_keeps_a_late_step_for_the_reversal_window(tmp_path: Path):
    """Flash crowd, sweep run 19 in the tests' moto: a panic step 4 -> 5 at 707.6 s, 72 s before
    the three-minute crowd ends at 780 s, was scaled in at 867 s, 159 s after it (f0eedda): a
    flap. Now the scale-in waits out the reversal window (240 s from the decision) and says so."""
    code, report = run(tmp_path, ROOT / "scenarios" / "flash-crowd.yaml", "--template", str(TEMPLATE),
                       "--sweep-run", "19")  # fmt: skip
    log = [json.loads(line) for line in (tmp_path / "out" / "functions.log").read_text().splitlines()]
    reasons = [line["reason"] for line in log if line.get("message") == "decision"]
    assert "scale-in-held-after-scale-out" in reasons
    outs = [a for a in report["actions"] if a["direction"] == "out"]
    first_in = next(a for a in report["actions"] if a["direction"] == "in")
    assert (outs[-1]["from"], outs[-1]["to"]) == (4, 5) and outs[-1]["t"] < report["stages"][2]["start"]
    assert first_in["t"] - outs[-1]["t"] > 180
    assert report["totals"]["flaps"] == 0 and code == 0 and report["passed"]


def test_a_closed_loop_spike_is_followed_through_to_its_need(tmp_path: Path):
    """Spike sweep run 27 (in the tests, whose moto loads one AMI: its instance ids, and so the
    run, differ from the command line's): eight closed-loop clients hide their demand; the second
    step went to 3, whose hosts then read 257 % (86 % each), under the CPU-high alarm's line (88 %),
    so no alarm. The decision that follows the scale-out through brings the fourth 270 s after the
    step (bound 300), without waiting for the alarm."""
    code, report = run(tmp_path, ROOT / "scenarios" / "spike.yaml", "--template", str(TEMPLATE), "--sweep-run", "27")
    log = [json.loads(line) for line in (tmp_path / "out" / "functions.log").read_text().splitlines()]
    reasons = [line["reason"] for line in log if line.get("message") == "decision"]
    assert "scale-out-follow-through" in reasons
    spike = report["stages"][1]
    assert spike["instances_at_end"] == 4 and spike["seconds_to_expected"] <= 300
    assert report["totals"]["flaps"] == 0 and code == 0 and report["passed"]


def test_the_timeline_draws_a_ramp_where_it_has_reached():
    """The chart's load panel plots the samples' load: a ramp's rate at each moment, not the rate
    it started from."""
    from simulator.cli import environment
    from simulator.harness import Simulation
    from simulator.scenario import parse_scenario

    ramp = "name: ramp\nseed: 8\nwarmup: 300\nstages:\n  - {duration: 120, rate: 0.5, rate_end: 2.5}\n"
    environment()
    result = Simulation(parse_scenario(ramp), str(TEMPLATE), {}, "ours").run()
    inside = [s for s in result.samples if 0 <= s.t < 120]
    assert inside and all(s.load == pytest.approx(0.5 + 2.0 * s.t / 120) for s in inside)


def test_paired_draws_let_two_policies_compare_run_for_run(tmp_path: Path):
    """burst-10x's sweep run 2: the ideal and the stabilized ideal decide the step's scale-out at
    the same moment, yet reach the need 36 s apart on the shared streams (the test's premise).
    With ``--paired-draws`` each instance keeps its own draws, and the two land together."""
    scenario = ROOT / "scenarios" / "burst-10x.yaml"

    def to_need(policy: str, *paired: str) -> float:
        _, report = run(tmp_path, scenario, "--template", str(TEMPLATE), "--sweep-run", "2", "--policy", policy,
                        *paired, out=f"{policy}{len(paired)}")  # fmt: skip
        assert report["paired_draws"] is bool(paired)
        return float(report["stages"][1]["seconds_to_need"])

    assert abs(to_need("ideal") - to_need("ideal-stabilized")) > 30
    assert abs(to_need("ideal", "--paired-draws") - to_need("ideal-stabilized", "--paired-draws")) < 5
