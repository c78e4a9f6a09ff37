"""Host demand reports in the twin: read from the template's user-data as the hosts get them, sent
by the modelled hosts through SNS to the functions that subscribe, and acted on by the real code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleet_template.cfn import TemplateError
from simulator.deployment import HostReports, build_deployment, host_reports_of, load_template
from simulator.harness import _placeholders
from tests.simulator.test_bursts import STEP

pytestmark = pytest.mark.simulation
ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "template.yaml"


def _deployment(**overrides: str):
    return build_deployment(load_template(TEMPLATE, overrides, supplied=_placeholders(TEMPLATE)))


def test_the_hosts_report_to_the_demand_topic_from_the_panic_line():
    deployment = _deployment()
    assert deployment.host_reports == HostReports("arn:aws:sns:eu-west-1:123456789012:DemandTopic", 160.0)
    (scale_out,) = [fn for fn in deployment.functions if deployment.host_reports.topic_arn in fn.topics]
    assert scale_out.role == "scale_out"
    changed = _deployment(PanicThreshold="3", CpuTarget="70")
    assert changed.host_reports is not None and changed.host_reports.line == pytest.approx(210.0)
    assert _deployment(HostDemandReports="Disabled").host_reports is None


def test_user_data_without_a_line_is_refused():
    assert host_reports_of("bash bootstrap.sh --demand-topic-arn '' --cpu-target '80'") is None
    with pytest.raises(TemplateError, match="--panic-threshold"):
        host_reports_of("bash bootstrap.sh --demand-topic-arn 'arn:aws:sns:x:1:t' --cpu-target '80'")


def _first_panic(tmp_path: Path, *params: str) -> tuple[dict[str, object], dict[str, object]]:
    from simulator.cli import main

    scenario = tmp_path / "step.yaml"
    scenario.write_text(STEP)
    out = tmp_path / ("out" + "".join(params))
    args = ["run", str(scenario), "--template", str(TEMPLATE), "--out", str(out), "--quiet"]
    for param in params:
        args += ["--param", param]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    decisions = [json.loads(line) for line in (out / "functions.log").read_text().splitlines()
                 if '"decision"' in line]  # fmt: skip
    (entered, *_) = [d for d in decisions if d["reason"] == "panic-entered"]
    return report, entered


@pytest.mark.slow
def test_a_report_starts_panic_before_the_alarms_and_without_reports_it_waits_for_them(tmp_path: Path):
    report, entered = _first_panic(tmp_path)
    assert entered["cause"].startswith("host-report:i-")
    burst = report["stages"][1]
    first_out = next(a for a in report["actions"] if a["direction"] == "out")
    without, entered_without = _first_panic(tmp_path, "HostDemandReports=Disabled")
    assert not entered_without["cause"].startswith("host-report")
    first_out_without = next(a for a in without["actions"] if a["direction"] == "out")
    # Same seed, same arrivals: the reports act sooner than CloudWatch's delay and the alarm allow.
    assert first_out["t"] < first_out_without["t"]
    assert first_out["t"] - burst["start"] < 45.0


def test_the_twins_report_is_the_one_the_hosts_publisher_builds():
    """The twin cannot import worker/ (it ships to the hosts): its copy of the message is checked
    against the publisher's, field by field, for the same period."""
    from datetime import UTC, datetime

    from simulator.lambdas import host_demand_event
    from worker.metrics_publisher import Reading, demand_report

    at = datetime(2026, 1, 1, 0, 10, 7, 123000, tzinfo=UTC)
    reading = Reading(99.9994, 312.0, 251.23456, 12.5, 3.0)
    names = ("CPUUtilization", "RequestsPerMinute", "OfferedLoad", "BacklogSeconds", "ShedRequests")
    event = host_demand_event("arn:aws:sns:eu-west-1:123456789012:t", "fleet", "i-0123456789abcdef0", at,
                              "Autoscaler", dict(zip(names, reading.__dict__.values(), strict=True)))  # fmt: skip
    (record,) = event["Records"]
    assert json.loads(record["Sns"]["Message"]) == demand_report("fleet", "i-0123456789abcdef0", reading, at, 10.0)
    assert record["Sns"]["MessageAttributes"] == {"Fleet": {"Type": "String", "Value": "fleet"}}
