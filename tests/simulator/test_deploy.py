"""A deploy in the twin: the scenario event, what it does to the stack, the workers of each
launch template version, and the refresh figures the report draws from the fleet."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
import simpy

from simulator.ec2 import Ec2Model, VersionProfile
from simulator.params import ModelParams, Span
from simulator.refresh import FleetPoint, deploy_checks, deploy_lines, refresh_figures
from simulator.scenario import Expectations, ScenarioError, parse_scenario
from simulator.stack import Deploy, custom_resource_request
from simulator.traffic import TrafficEngine

pytestmark = pytest.mark.simulation
ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "template.yaml"
STAGES = "stages:\n  - {duration: 600, clients: 1}\n"


# --- the scenario event ------------------------------------------------------------------------


def test_a_deploy_event_and_its_expectations_parse():
    scenario = parse_scenario(
        STAGES
        + """events:
  - {at: 100, action: deploy}
  - {at: 200, action: deploy, install_seconds: 90, healthy: false}
  - {at: 300, action: deploy, install_seconds: [30, 60]}
expect: {expect_all_new_within: 900, expect_failed_requests: 0, expect_min_headroom: -1, expect_rolled_back: true}
"""
    )
    first, bad, ranged = scenario.events
    assert (first.action, first.install_seconds, first.healthy) == ("deploy", None, True)
    assert (bad.install_seconds, bad.healthy) == ((90.0, 90.0), False)
    assert ranged.install_seconds == (30.0, 60.0)
    expect = scenario.expect
    assert (expect.expect_all_new_within, expect.expect_failed_requests) == (900.0, 0)
    assert (expect.expect_min_headroom, expect.expect_rolled_back) == (-1, True)
    assert expect.deploy_checks == (
        "expect_all_new_within", "expect_failed_requests", "expect_min_headroom", "expect_rolled_back",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("events", "expect", "line", "field", "says"),
    [
        ("  - {at: 100, action: deploy, seconds: 30}\n", "", 4, "events[0].seconds", "unknown field for action deploy"),
        ("  - {at: 100, action: deploy, install_seconds: fast}\n", "", 4, "events[0].install_seconds",
         "expected a number"),
        ("  - {at: 100, action: deploy, install_seconds: -5}\n", "", 4, "events[0].install_seconds", "must be >= 0"),
        ("  - {at: 100, action: deploy, install_seconds: [60, 30]}\n", "", 4, "events[0].install_seconds",
         "low <= high"),
        ("  - {at: 100, action: deploy, install_seconds: [1, 2, 3]}\n", "", 4, "events[0].install_seconds",
         "a range is [low, high]"),
        ("  - {at: 100, action: deploy, healthy: maybe}\n", "", 4, "events[0].healthy", "expected true or false"),
        ("  - {at: 600, action: deploy}\n", "", 4, "events[0].at", "before the scenario's end (600 s)"),
        ("  - {at: 100, action: fail_instance, healthy: false}\n", "", 4, "events[0].healthy",
         "unknown field for action fail_instance"),
        ("  - {at: 100, action: deploy}\n", "expect: {expect_rolled_back: 1}\n", 5, "expect.expect_rolled_back",
         "expected true or false"),
        ("  - {at: 100, action: deploy}\n", "expect: {expect_min_headroom: 0.5}\n", 5, "expect.expect_min_headroom",
         "expected an integer"),
        ("  - {at: 100, action: deploy}\n", "expect: {expect_failed_requests: -1}\n", 5,
         "expect.expect_failed_requests", "must be >= 0"),
        ("  - {at: 100, action: fail_instance}\n", "expect: {expect_all_new_within: 600}\n", 5,
         "expect.expect_all_new_within", "needs a deploy event"),
    ],
)  # fmt: skip
def test_a_bad_deploy_names_its_field_and_line(events: str, expect: str, line: int, field: str, says: str):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(STAGES + "events:\n" + events + expect, "bad.yaml")
    message = str(caught.value)
    assert message.startswith(f"bad.yaml:{line}: {field}: "), message
    assert says in message, message


# --- the workers of each version ---------------------------------------------------------------

PINNED = ModelParams().with_overrides(
    {"launch_pending_seconds": 10, "boot_seconds": 5, "install_seconds": 100, "ec2_consistency_seconds": 0}
)


def ec2(env: simpy.Environment, ready: list[str]) -> Ec2Model:
    traffic = TrafficEngine(random.Random(1), lambda _r: 0.5)
    return Ec2Model(env, traffic, PINNED, random.Random(1), 1, ready.append, lambda _m: None)


def test_each_version_installs_in_its_own_time():
    env = simpy.Environment()
    ready: list[str] = []
    model = ec2(env, ready)
    model.versions["2"] = VersionProfile(Span(30, 30))
    model.launched("i-old", "service", "1")  # a version no deploy described: the modelled install
    model.launched("i-new", "service", "2")
    env.run(until=10 + 5 + 30 + 0.1)
    assert ready == ["i-new"] and model.machines["i-new"].worker_up
    env.run(until=10 + 5 + 100 + 0.1)
    assert ready == ["i-new", "i-old"]


def test_a_broken_version_boots_and_bills_but_its_worker_never_answers():
    env = simpy.Environment()
    ready: list[str] = []
    booted: list[str] = []
    model = Ec2Model(env, TrafficEngine(random.Random(1), lambda _r: 0.5), PINNED, random.Random(1), 1,
                     ready.append, lambda m: booted.append(m.instance_id))  # fmt: skip
    model.versions["2"] = VersionProfile(healthy=False)
    model.launched("i-bad", "service", "2")
    env.run(until=3600)
    machine = model.machines["i-bad"]
    assert machine.state == "running" and booted == ["i-bad"] and machine.installed
    assert not machine.worker_up and ready == []  # never tags itself ready: /ping never answers
    assert model.engine.hosts["i-bad"].host.up is False  # the load balancer finds no worker there
    assert model.billed_seconds(3600) == pytest.approx(3600 - 10)
    model.stopped("i-bad")
    env.run(until=4000)
    model.started("i-bad")  # from the pool: still the same broken version
    env.run(until=5000)
    assert not machine.worker_up


# --- the Fleet custom resource's requests -------------------------------------------------------


def test_an_update_request_is_shaped_like_cloudformations():
    old = {"ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:life", "FleetName": "web",
           "LaunchTemplateVersion": "1", "MinSize": "1"}  # fmt: skip
    new = {**old, "LaunchTemplateVersion": "2"}
    event = custom_resource_request("Update", "Fleet", "Custom::Fleet", new, old, seed="x")
    assert event["RequestType"] == "Update"
    assert event["ResourceProperties"]["LaunchTemplateVersion"] == "2"
    assert event["OldResourceProperties"]["LaunchTemplateVersion"] == "1"
    assert event["PhysicalResourceId"] == "fleet-web"
    assert event["ServiceToken"] == old["ServiceToken"] and event["ResourceType"] == "Custom::Fleet"
    assert {"ResponseURL", "StackId", "RequestId", "LogicalResourceId"} <= set(event)
    create = custom_resource_request("Create", "Fleet", "Custom::Fleet", old)
    assert "PhysicalResourceId" not in create and "OldResourceProperties" not in create


# --- a deploy in the twin ----------------------------------------------------------------------

SHORT = """
name: deploy-short
seed: 3
warmup: 300
stages:
  - {duration: 900, clients: 1, expect_instances: 1}
events:
  - {at: 60, action: deploy, install_seconds: 40, healthy: HEALTHY}
model: {launch_pending_seconds: 10, boot_seconds: 5, ec2_consistency_seconds: 0}
"""


@pytest.fixture
def twin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Build a run inside moto (``_Run``), let the test add to it, run it; the events sent to
    the lifecycle function are kept in ``run.sent``."""
    from moto import mock_aws

    from awsfake.moto_backends import seed_ids
    from simulator.cli import environment
    from simulator.harness import Simulation, _Run
    from simulator.lambdas import LambdaModel

    environment()
    sent: list[tuple[str, dict[str, Any]]] = []
    original = LambdaModel.invoke_async

    def recording(self: LambdaModel, arn: str, event: dict[str, Any], delay: float = 0.0) -> Any:
        sent.append((arn, event))
        return original(self, arn, event, delay)

    monkeypatch.setattr(LambdaModel, "invoke_async", recording)
    with mock_aws():

        def build(healthy: bool = True, duration: int = 900) -> Any:
            text = SHORT.replace("HEALTHY", str(healthy).lower()).replace("duration: 900", f"duration: {duration}")
            scenario = parse_scenario(text, "short.yaml")
            seed_ids(scenario.seed)
            run: Any = _Run(Simulation(scenario, TEMPLATE))
            run.sent = sent
            return run

        yield build


def test_a_deploy_makes_a_version_configures_the_functions_and_updates_the_fleet(twin: Callable[..., Any]):
    run = twin()
    before = {fn.arn: fn.environment["LAUNCH_TEMPLATE_VERSION"] for fn in run.deployment.functions}
    assert set(before.values()) == {"1"}
    result = run.execute(time.perf_counter())
    template_id = run.settings.launch_template_id
    versions = run.raw.ec2.describe_launch_template_versions(LaunchTemplateId=template_id)["LaunchTemplateVersions"]
    assert sorted(v["VersionNumber"] for v in versions) == [1, 2]
    assert versions[0]["LaunchTemplateData"] == versions[1]["LaunchTemplateData"]  # the same data
    # Every function's configuration and each later invocation's Settings follow the deploy.
    assert {fn.environment["LAUNCH_TEMPLATE_VERSION"] for fn in run.deployment.functions} == {"2"}
    assert {fn.spec.environment["LAUNCH_TEMPLATE_VERSION"] for fn in run.lambdas.functions.values()} == {"2"}
    assert {r.settings.launch_template_version for r in run.runtimes.values()} == {"2"}
    assert run.settings.launch_template_version == "2" and result.settings["launch_template_version"] == "2"
    # The Fleet resource got a Create at the start and an Update at the deploy, the real shapes.
    lifecycle = run.deployment.function("lifecycle").arn
    requests = [e for arn, e in run.sent if arn == lifecycle]
    assert [e["RequestType"] for e in requests] == ["Create", "Update"]
    create, update = requests
    assert create["ResourceProperties"]["LaunchTemplateVersion"] == "1"
    assert update["ResourceProperties"]["LaunchTemplateVersion"] == "2"
    assert update["OldResourceProperties"]["LaunchTemplateVersion"] == "1"
    assert update["PhysicalResourceId"] == "fleet-" + run.settings.fleet_name
    assert update["LogicalResourceId"] == "Fleet" and update["ResourceType"] == "Custom::Fleet"
    assert update["ResourceProperties"]["ServiceToken"] == lifecycle
    # The lifecycle function ran it as its handler does, and answered SUCCESS.
    assert [(r.request_type, r.status) for r in result.responses] == [("Create", "SUCCESS"), ("Update", "SUCCESS")]
    # After the update, the functions ran in new execution environments: the next one is cold.
    after = [i for i in result.invocations if i["t"] >= 60.0]
    assert after and after[0]["cold"]
    assert result.deploys == [Deploy(60.0, "2", "1", True, (40.0, 40.0))]


def test_the_control_plane_launches_the_deployed_version_after_the_deploy(tmp_path: Path):
    """A scale-out after the deploy starts the pool's (old) instance and refills the pool with a
    launch: the functions' new LAUNCH_TEMPLATE_VERSION, so the new version."""
    from simulator.cli import environment
    from simulator.harness import Simulation

    environment()
    scenario = parse_scenario(
        """
seed: 4
warmup: 300
stages:
  - {duration: 120, clients: 1}
  - {duration: 600, clients: 3}
events:
  - {at: 100, action: deploy}
""",
        "step.yaml",
    )
    result = Simulation(scenario, TEMPLATE).run()
    launches = [(p.t, v) for p in result.fleet for v, n, _ in p.versions if n]
    assert ("2" in {v for _, v in launches}) and all(t >= 100 for t, v in launches if v == "2")
    assert result.responses[-1].request_type == "Update" and result.responses[-1].status == "SUCCESS"


def test_the_control_plane_replaces_every_instance_and_the_figures_say_so(twin: Callable[..., Any]):
    from simulator.report import build_report

    run = twin()
    result = run.execute(time.perf_counter())
    alive = [m for m in run.ec2_model.machines.values() if m.state != "terminated"]
    assert alive and {m.version for m in alive} == {"2"}
    assert all(not m.broken for m in alive)
    report = build_report(result, baseline_instance_seconds=result.instance_seconds - 123.0)
    (deploy,) = report["deploys"]
    # Pool first (a warm-up: pending 10, boot 5, install 40), then a surge that warms up 60 s
    # before the old one drains: minutes, not seconds.
    assert deploy["seconds_to_all_new"] is not None and 10 + 5 + 40 + 60 < deploy["seconds_to_all_new"] < 840
    assert not deploy["rolled_back"] and deploy["new_instances_seen"]
    assert deploy["min_headroom"] == 0 and deploy["seconds_below_desired"] == 0  # surge first
    assert deploy["failed_requests"] == 0 and deploy["requests"] > 0
    assert deploy["extra_instance_seconds"] == 123.0
    assert deploy["refresh_seconds"] == deploy["seconds_to_all_new"]
    last = deploy["timeline"][-1]
    assert last["versions"] == {"2": [2, 1]} and last["desired"] == 1  # one serving, one in the pool


def test_a_broken_version_never_serves_and_the_fleet_goes_back(twin: Callable[..., Any]):
    from simulator.report import build_report

    run = twin(healthy=False, duration=1500)
    result = run.execute(time.perf_counter())
    bad = [m for m in run.ec2_model.machines.values() if m.version == "2"]
    assert bad and all(m.broken and not m.worker_up and not m.ready_tagged for m in bad)
    assert {m.state for m in bad} <= {"terminated", "shutting-down"}
    (deploy,) = build_report(result)["deploys"]
    # The pool's new warm-up never reports ready: given up after the warm-up timeout, rolled back.
    assert deploy["rolled_back"] and deploy["seconds_to_all_new"] is None
    assert 900 <= deploy["seconds_to_rolled_back"] < 1100
    assert deploy["min_headroom"] == 0 and deploy["failed_requests"] == 0
    assert deploy["extra_instance_seconds"] is None  # no run without the deploy to compare with


# --- the refresh figures on hand-made fleets ----------------------------------------------------


def point(t: float, in_service: int, desired: int | None, **versions: tuple[int, int]) -> FleetPoint:
    return FleetPoint(t, in_service, desired, tuple((v.lstrip("v"), n, s) for v, (n, s) in sorted(versions.items())))


DEPLOY = Deploy(100.0, "2", "1", True, None)
# Two in service and one in the pool on v1; the refresh replaces the pool, then surges.
FLEET = [
    point(-50, 2, 2, v1=(3, 2)),
    point(100, 2, 2, v1=(3, 2)),  # the deploy records a point
    point(130, 2, 2, v1=(3, 2), v2=(1, 0)),  # a new pool instance warming
    point(400, 2, 2, v1=(2, 2), v2=(1, 0)),  # the old pool instance gone
    point(450, 3, 2, v1=(2, 2), v2=(1, 1)),  # surge: the new one serves
    point(460, 2, 2, v1=(1, 1), v2=(1, 1)),  # an old one drains
    point(460, 1, 2, v1=(1, 1), v2=(1, 1)),  # (a state that lasts no time does not count)
    point(460, 2, 2, v1=(1, 1), v2=(1, 1)),
    point(500, 1, 2, v1=(1, 1), v2=(1, 0)),  # ... a crash: one below for 50 s
    point(550, 2, 2, v1=(1, 1), v2=(1, 1)),
    point(700, 2, 2, v2=(2, 2)),  # the last old one drains: all new, 600 s after the deploy
    point(900, 1, 1, v2=(2, 1)),
]
SENT = np.array([50.0, 99.0, 100.0, 300.0, 520.0, 699.0, 700.0, 800.0])
STATUS = np.array([503, 200, 504, 200, 502, 503, 503, 200], dtype=np.int16)


def test_all_new_headroom_and_failures_over_the_refresh_window():
    f = refresh_figures(DEPLOY, FLEET, 1000.0, SENT, STATUS)
    assert f["seconds_to_all_new"] == 600.0 and f["window_end"] == 700.0 and f["refresh_seconds"] == 600.0
    assert not f["rolled_back"] and f["new_instances_seen"]
    assert f["min_headroom"] == -1 and f["seconds_below_desired"] == 50.0
    # Sent in [100, 700): at 100 (504), 300, 520 (502), 699 (503); not 50, 99, 700, 800.
    assert (f["requests"], f["failed_requests"]) == (4, 3)
    assert (f["bad_gateway"], f["shed"], f["timeouts"]) == (1, 1, 1)
    assert [p["t"] for p in f["timeline"]][:3] == [100.0, 130.0, 400.0]
    assert f["timeline"][-1]["versions"] == {"2": [2, 2]}


def test_a_refresh_that_never_ends_runs_to_the_window_limit():
    stuck = [p for p in FLEET if p.t < 700]
    f = refresh_figures(DEPLOY, stuck, 1000.0, SENT, STATUS)
    assert f["seconds_to_all_new"] is None and not f["rolled_back"]
    assert f["window_end"] == 1000.0 and f["refresh_seconds"] == 900.0
    assert f["failed_requests"] == 4  # 100, 520, 699 and 700; 800 succeeded
    untouched = refresh_figures(DEPLOY, FLEET[:2], 1000.0, SENT, STATUS)
    assert not untouched["new_instances_seen"] and untouched["min_headroom"] == 0


def test_a_fleet_back_on_the_old_version_is_rolled_back():
    fleet = [
        point(0, 2, 2, v1=(3, 2)),
        point(150, 2, 2, v1=(3, 2), v2=(1, 0)),
        point(400, 2, 2, v1=(3, 2), v2=(1, 0)),
        point(420, 2, 2, v1=(3, 2)),  # the broken one terminated
    ]
    f = refresh_figures(replace(DEPLOY, healthy=False), fleet, 1000.0, SENT, STATUS)
    assert f["rolled_back"] and f["seconds_to_rolled_back"] == 320.0 and f["window_end"] == 420.0
    assert f["seconds_to_all_new"] is None and f["min_headroom"] == 0


def test_the_verdicts_and_the_table_line():
    f = refresh_figures(DEPLOY, FLEET, 1000.0, SENT, STATUS)
    f["extra_instance_seconds"] = 640.4
    expect = Expectations(expect_all_new_within=600, expect_failed_requests=0, expect_min_headroom=0,
                          expect_rolled_back=False)  # fmt: skip
    checks = {c["check"]: (c["actual"], c["passed"]) for c in deploy_checks([f], expect)}
    assert checks == {
        "deploy@100 all_new_within": (600.0, True),
        "deploy@100 failed_requests": (3, False),
        "deploy@100 min_headroom": (-1, False),
        "deploy@100 rolled_back": (False, True),
    }
    never = refresh_figures(DEPLOY, FLEET[:3], 1000.0, SENT, STATUS)
    (check,) = deploy_checks([never], Expectations(expect_all_new_within=600))
    assert (check["actual"], check["passed"]) == ("never", False)
    (line,) = deploy_lines([f])
    assert "v1 -> v2" in line and "all on v2 after 600 s" in line and "failed requests 3" in line
    assert "min in service - desired -1 (50 s below)" in line and "extra instance-s 640" in line


def test_the_extra_cost_is_charged_to_a_lone_deploy_only():
    from simulator.report import deploy_figures

    result = SimpleNamespace(deploys=[DEPLOY], fleet=FLEET, scenario=SimpleNamespace(duration=1000.0), settings={},
                             responses=[], instance_seconds=5000.0)  # fmt: skip
    (f,) = deploy_figures(cast(Any, result), SENT, STATUS, 4400.0)
    assert f["extra_instance_seconds"] == 600.0 and f["update_response"] is None
    result.deploys = [DEPLOY, Deploy(800.0, "3", "2", True, None)]
    first, second = deploy_figures(cast(Any, result), SENT, STATUS, 4400.0)
    assert first["extra_instance_seconds"] is None and second["extra_instance_seconds"] is None
    assert first["window_end"] == 700.0 and second["window_end"] == 1000.0  # each to its own limit


def test_the_envelope_summarises_each_deploy_over_the_runs():
    from simulator.sweep import summarize_deploys

    def run(done: float | None, failed: int, headroom: int, extra: float) -> dict[str, Any]:
        return {"deploys": [{"at": 100.0, "healthy": True, "seconds_to_all_new": done, "rolled_back": False,
                             "seconds_to_rolled_back": None, "failed_requests": failed, "min_headroom": headroom,
                             "extra_instance_seconds": extra, "refresh_seconds": done or 900.0}]}  # fmt: skip

    (summary,) = summarize_deploys([run(500.0, 0, 0, 480.0), run(None, 4, -1, 900.0), run(700.0, 1, 0, 650.0)])
    assert summary["never_all_new"] == 1 and summary["seconds_to_all_new"]["max"] == 700.0
    assert summary["failed_requests"] == {"p50": 1.0, "p95": 4.0, "max": 4.0}
    assert summary["min_headroom"] == -1 and summary["runs_below_desired"] == 1
    assert summary["extra_instance_seconds"]["p50"] == 650.0


@pytest.mark.slow
def test_run_and_sweep_report_each_deploy_against_the_same_run_without_it(tmp_path: Path, capsys: Any):
    import json

    from simulator.cli import main

    path = tmp_path / "deploy.yaml"
    path.write_text(
        SHORT.replace("HEALTHY", "true") + "expect: {expect_failed_requests: 0, expect_all_new_within: 600}\n"
    )
    code = main(["run", str(path), "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    (deploy,) = report["deploys"]
    # Until the control plane replaces instances, none of v2 runs: the verdict says so.
    assert deploy["extra_instance_seconds"] == pytest.approx(
        report["totals"]["instance_seconds"] - report["totals"]["instance_seconds_without_deploys"], abs=0.11
    )
    assert "deploy at 60 s (v1 -> v2, healthy)" in out and "the Fleet resource answered the Update SUCCESS" in out
    assert "check deploy@60 failed_requests: expected <= 0, actual 0 -> PASS" in out
    verdict = {c["check"]: c["passed"] for c in report["checks"]}
    assert code == (0 if report["passed"] else 1) and set(verdict) == {
        "deploy@60 failed_requests", "deploy@60 all_new_within"}  # fmt: skip
    assert main(["sweep", str(path), "--out", str(tmp_path / "sweep"), "--runs", "2", "--jobs", "1"]) in (0, 1)
    doc = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    (summary,) = doc["summary"]["deploys"]
    assert summary["at"] == 60.0 and "timeline" not in doc["runs"][0]["deploys"][0]
    assert summary["extra_instance_seconds"]["max"] is not None
    assert "deploy at 60 s (healthy): all new" in capsys.readouterr().out


def test_the_desired_capacity_is_read_from_the_decisions_own_write():
    from autoscaler.adapters.state import StateStore
    from autoscaler.model import FleetState

    from simulator.harness import desired_set_by

    calls: list[dict[str, Any]] = []

    class Recorder:  # the UpdateItem calls the state adapter makes, as the twin observes them
        def update_item(self, **params: Any) -> dict[str, Any]:
            calls.append(params)
            return {}

    store = StateStore(Recorder(), "table", "fleet")  # type: ignore[arg-type]
    store.save_decision(FleetState(desired=3, last_reason="scale-out"))
    store.set_suspended(True)
    store.remember_cleared("fleet-cpu-high", datetime(2026, 1, 1, tzinfo=UTC))
    assert [desired_set_by(c) for c in calls] == [3, None, None]


def test_the_fleet_resource_answers_failed_as_its_handler_does():
    """A refused request or any failure is a FAILED response, never a function error (which
    Lambda would retry): the handler reports every failure to CloudFormation."""
    from simulator.deployment import build_deployment, load_template
    from simulator.lifecycle import CustomResource, handler_module

    supplied = {"VpcId": "vpc-twin", "SubnetIds": ["subnet-a", "subnet-b"]}
    lifecycle = build_deployment(load_template(TEMPLATE, {}, supplied)).function("lifecycle")
    assert lifecycle is not None
    resource = CustomResource(handler_module(TEMPLATE, lifecycle), lambda: 42.0)
    runtime = SimpleNamespace(settings=SimpleNamespace(fleet_name="web", lease_wait_seconds=20.0))
    props = {"ServiceToken": lifecycle.arn, "FleetName": "shop", "LaunchTemplateVersion": "2"}
    rename = custom_resource_request("Update", "Fleet", "Custom::Fleet", props, {**props, "FleetName": "web"})
    answer = resource(rename, runtime, 900.0)
    assert answer["Status"] == "FAILED" and "FleetName cannot change" in answer["Reason"]
    assert answer["PhysicalResourceId"] == "fleet-web"
    # Any other failure too (here: a runtime without clients, on a Delete the handler acts on).
    delete = {**rename, "RequestType": "Delete"}
    failed = resource(delete, runtime, 900.0)
    assert failed["Status"] == "FAILED" and failed["Reason"].startswith("AttributeError")
    assert [(r.t, r.request_type, r.status) for r in resource.responses] == [(42.0, "Update", "FAILED"),
                                                                             (42.0, "Delete", "FAILED")]  # fmt: skip
    with pytest.raises(ValueError, match=r"cannot import its handler module 'handlers\.nowhere'"):
        handler_module(TEMPLATE, replace(lifecycle, handler="handlers.nowhere.handler"))


def test_all_new_waits_for_the_pool_to_hold_its_seats_again():
    """Found running deploy-at-peak: 'all new' came while the pool's seat was still empty."""
    from simulator.refresh import refresh_figures

    fleet = [
        FleetPoint(0, 2, 2, (("1", 3, 2),), 0, 1),
        FleetPoint(300, 2, 2, (("2", 2, 2),), 0, 0),  # in service all new, the pool empty
        FleetPoint(360, 2, 2, (("2", 3, 2),), 1, 0),  # its warm-up installing
        FleetPoint(500, 2, 2, (("2", 3, 2),), 0, 1),  # seated
    ]
    sent, status = np.array([]), np.array([])
    seats = refresh_figures(DEPLOY, fleet, 1000.0, sent, status, lambda _desired: 1)
    assert seats["seconds_to_all_new"] == 400.0
    without_pool = refresh_figures(DEPLOY, fleet, 1000.0, sent, status, lambda _desired: 0)
    assert without_pool["seconds_to_all_new"] == 200.0


def test_the_extra_instances_expectation_bounds_the_extra_cost_by_the_window():
    from simulator.refresh import deploy_checks
    from simulator.scenario import Expectations

    figure = {"at": 900.0, "seconds_to_all_new": 800.0, "failed_requests": 0, "min_headroom": 0,
              "rolled_back": False, "refresh_seconds": 800.0}  # fmt: skip
    expect = Expectations(expect_extra_instances=1)
    (within,) = deploy_checks([{**figure, "extra_instance_seconds": 790.0}], expect)
    (beyond,) = deploy_checks([{**figure, "extra_instance_seconds": 810.0}], expect)
    (unmeasured,) = deploy_checks([{**figure, "extra_instance_seconds": None}], expect)
    assert within["passed"] and not beyond["passed"] and not unmeasured["passed"]
