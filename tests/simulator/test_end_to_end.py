"""The twin end to end: the real control plane, moto and the models, on the nine-stage scenario."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli import main

pytestmark = [pytest.mark.simulation, pytest.mark.slow]
ROOT = Path(__file__).parents[2]
FIXTURE = Path(__file__).parent / "fixture-template.yaml"
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


def test_report_schema_and_chart(tmp_path: Path, short_scenario: Path):
    code, report = run(tmp_path, short_scenario, "--template", str(FIXTURE))
    assert code in (0, 1)
    assert code == (0 if report["passed"] else 1)
    assert (tmp_path / "out" / "timeline.png").stat().st_size > 10_000
    stage_keys = {
        "index", "duration", "clients", "rate", "expect_instances", "instances_at_end", "seconds_to_expected",
        "requests", "errors", "latency_p50", "latency_p95", "latency_p99",
    }  # fmt: skip
    assert stage_keys <= set(report["stages"][0])
    total_keys = {
        "requests", "errors", "slo_attainment", "instance_seconds", "oracle_instance_seconds",
        "scale_out_actions", "scale_in_actions", "flaps",
    }  # fmt: skip
    assert total_keys <= set(report["totals"])
    assert report["stages"][0]["instances_at_end"] == 1
    assert report["stages"][1]["instances_at_end"] == 2  # three clients need a second instance
    assert report["totals"]["scale_out_actions"] == 1
    assert report["totals"]["function_errors"] == 0
    assert report["speed"]["simulated_per_wall_second"] > 0


def test_same_seed_same_report(tmp_path: Path, short_scenario: Path):
    _, first = run(tmp_path, short_scenario, "--template", str(FIXTURE), out="a")
    _, second = run(tmp_path, short_scenario, "--template", str(FIXTURE), out="b")
    for report in (first, second):
        report.pop("speed")
    assert first == second


def test_unknown_template_parameter_is_bad_input(tmp_path: Path, short_scenario: Path, capsys):
    code = main(["run", str(short_scenario), "--template", str(FIXTURE), "--param", "Nope=1", "--out", str(tmp_path)])
    assert code == 2
    assert "Nope" in capsys.readouterr().err


@pytest.mark.skipif(not (ROOT / "template.yaml").is_file(), reason="template.yaml not there yet")
def test_nine_stage_with_the_template(tmp_path: Path):
    code, report = run(tmp_path, ROOT / "scenarios" / "nine-stage.yaml", "--template", str(ROOT / "template.yaml"))
    got = [s["instances_at_end"] for s in report["stages"]]
    assert got == [1, 1, 2, 2, 2, 1, 1, 1, 1]
    assert report["totals"]["flaps"] == 0
    assert report["totals"]["function_errors"] == 0
    assert code == (0 if report["passed"] else 1)
