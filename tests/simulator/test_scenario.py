"""Scenario parsing: good files load, bad ones name the field and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.scenario import ScenarioError, load_scenario, parse_scenario

pytestmark = pytest.mark.simulation
SCENARIOS = sorted((Path(__file__).parents[2] / "scenarios").glob("*.yaml"))


def test_full_format_parses():
    scenario = parse_scenario(
        """
name: demo
seed: 7
stages:
  - {duration: 300, clients: 1, think: 1.0, expect_instances: 1}
  - {duration: 600, rate: 4.0, rate_end: 8.0, expect_instances: [1, 3], expect_within: 120}
events:
  - {at: 1200, action: fail_instance}
  - {at: 1500, action: capacity_error, seconds: 300}
parameters: {WarmPoolSize: 0}
model: {start_pending_seconds: 25, install_seconds: [100, 200]}
expect: {scale_out_actions: 1, max_flaps: 0}
"""
    )
    assert scenario.name == "demo" and scenario.seed == 7
    assert [s.start for s in scenario.stages] == [0, 300]
    assert scenario.duration == 900
    assert scenario.stages[1].expect_instances == (1, 3)
    assert scenario.stages[1].rate_at(600) == pytest.approx(6.0)
    assert scenario.events[1].seconds == 300
    assert scenario.parameters == {"WarmPoolSize": "0"}
    assert scenario.model == {"start_pending_seconds": 25.0, "install_seconds": [100.0, 200.0]}
    assert scenario.expect.max_flaps == 0


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_parse(path: Path):
    scenario = load_scenario(path)
    assert scenario.stages


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("stages:\n  - {duration: 300, clients: 1}\n  - {duration: -3, clients: 1}\n", 3, "stages[1].duration"),
        ("stages:\n  - {duration: 300}\n", 2, "stages[0].clients"),
        ("stages:\n  - {duration: 300, clients: 1, rate: 2}\n", 2, "stages[0].clients"),
        ("stages:\n  - {duration: 300, clients: two}\n", 2, "stages[0].clients"),
        ("stages:\n  - duration: 300\n    clients: 1\n    colour: red\n", 4, "stages[0].colour"),
        ("name: x\nstagez: []\n", 2, "stagez"),
        ("name: x\n", 1, "stages"),
        ("stages:\n  - {duration: 60, clients: 1}\nevents:\n  - {at: 10, action: explode}\n", 4, "events[0].action"),
        (
            "stages:\n  - {duration: 60, clients: 1}\nevents:\n  - {at: 10, action: capacity_error}\n",
            4,
            "events[0].seconds",
        ),
        ("stages:\n  - {duration: 60, clients: 1, expect_instances: [3, 1]}\n", 2, "stages[0].expect_instances"),
        ("stages: [\n", 2, "<yaml>"),
        ("stages:\n  - {duration: 60, clients: 1}\nmodel: {boot_secs: 3}\n", 3, "model.boot_secs"),
        ("stages:\n  - {duration: 60, clients: 1}\nmodel: {boot_seconds: [9, 3]}\n", 3, "model.boot_seconds"),
        ("stages:\n  - {duration: 60, clients: 1}\nmodel: {boot_seconds: [1, 2, 3]}\n", 3, "model.boot_seconds"),
    ],
)
def test_bad_scenarios_name_field_and_line(text: str, line: int, field: str):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "bad.yaml")
    message = str(caught.value)
    assert message.startswith(f"bad.yaml:{line}: {field}"), message


def test_cli_exits_2_on_bad_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from simulator.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - {duration: 0, clients: 1}\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "bad.yaml:2: stages[0].duration" in capsys.readouterr().err
