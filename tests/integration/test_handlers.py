"""The Lambda handlers themselves, run with the template's environment (log level and service names
included): environment -> settings, context, metrics, custom resource replies."""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from autoscaler.lambda_runtime import lambda_runtime
from autoscaler.observability import logger

from fleet_template.cfn import load_template
from tests.support.aws import PENDING_SECONDS
from tests.support.events import (
    alarm_time,
    cfn_event,
    host_demand_event,
    load_event,
    sns_alarm_event,
    sns_batch,
    sns_event,
)
from tests.support.lambda_env import (
    LOG_LEVEL_VARIABLES,
    ROOT,
    TEMPLATE,
    template_environment,
    template_parameters,
)

pytestmark = pytest.mark.integration


@dataclass
class FakeContext:
    function_name: str = "fleet-scale-out"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:fleet-scale-out"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"
    remaining_ms: int = 100_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def deploy(fleet, monkeypatch) -> Iterator[Callable[[str], dict[str, str]]]:
    """``deploy("ScaleOutFunction", MaxSize="3")`` gives the process that function's environment
    from template.yaml (parameter defaults unless given), as Lambda does before the cold start,
    and returns it."""
    previous = logger.log_level

    def apply(logical_id: str, **parameters: str) -> dict[str, str]:
        env = template_environment(fleet, logical_id, parameters)
        for key in LOG_LEVEL_VARIABLES:
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        # powertools picks the level from the environment when the Logger is built, at import in
        # Lambda; here the module is already imported, so pick it again the same way.
        logger.setLevel(None)
        lambda_runtime.cache_clear()
        return env

    yield apply
    logger.setLevel(previous)
    lambda_runtime.cache_clear()


def test_handlers_log_at_the_templates_level(fleet, deploy):
    level = template_parameters(fleet)["LogLevel"]
    env = deploy("ReconcileFunction")
    assert logger.log_level == logging.getLevelName(level)
    assert env["POWERTOOLS_SERVICE_NAME"] == "reconcile"


def _alarm_in_moto(name: str, state: str = "ALARM") -> None:
    """The handlers build their own clients, so they read moto's CloudWatch: the alarm must exist
    there in the state its notification announces."""
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="Autoscaler",
        MetricName="CPUUtilization",
        Dimensions=[{"Name": "Fleet", "Value": "fleet"}],
        Statistic="Average",
        Period=10,
        EvaluationPeriods=2,
        Threshold=70.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


def test_scale_out_handler_acts(fleet, deploy):
    """The metrics the handlers emit are checked after a real cold start (test_cold_start.py):
    powertools reads their namespace from the environment at import."""
    from handlers import reconcile, scale_out

    deploy("ReconcileFunction")
    reconcile.handler(load_event("scheduled-event"), FakeContext(function_name="fleet-reconcile"))
    # The handler builds its own clients, so it reads moto's CloudWatch for real: publish there
    # what the worker hosts and the ALB would.
    now = lambda_runtime().clock.now()
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    serving = [
        i["InstanceId"]
        for r in boto3.client("ec2", region_name="eu-west-1").describe_instances()["Reservations"]
        for i in r["Instances"]
        if {"Key": "AutoscalerLifecycle", "Value": "service"} in i.get("Tags", [])
    ]
    cloudwatch.put_metric_data(
        Namespace="Autoscaler",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "Fleet", "Value": "fleet"}, *instance],
                "Timestamp": now - timedelta(seconds=age),
                "Value": 90.0,
                "Unit": "Percent",
                "StorageResolution": 1,
            }
            for age in (35, 25, 15)
            for instance in ([], *([{"Name": "InstanceId", "Value": i}] for i in serving))
        ],
    )
    _alarm_in_moto("fleet-cpu-high")
    event = sns_alarm_event("fleet-cpu-high", time=alarm_time(now))
    deploy("ScaleOutFunction")
    result = scale_out.handler(event, FakeContext())

    (outcome,) = result["results"]
    assert outcome["reason"] == "scale-out" and outcome["desired"] == 2


def test_scale_in_handler_acknowledges_an_ok_transition(deploy):
    from handlers import scale_in

    deploy("ScaleInFunction")
    event = sns_alarm_event("fleet-scale-in", new_state="OK", old_state="ALARM")
    result = scale_in.handler(event, FakeContext(function_name="fleet-scale-in"))
    assert result["results"][0]["reason"] == "irrelevant-transition ALARM->OK"


def test_missing_environment_fails_loudly_naming_the_variable(deploy, monkeypatch):
    from autoscaler.settings import SettingsError
    from handlers import scale_out

    deploy("ScaleOutFunction")
    monkeypatch.delenv("TARGET_GROUP_ARN")
    with pytest.raises(SettingsError, match="TARGET_GROUP_ARN is required"):
        scale_out.handler(sns_alarm_event(), FakeContext())


class Replies:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request, timeout):  # urllib.request.urlopen's signature
        assert request.get_method() == "PUT"
        self.bodies.append(json.loads(request.data))

        class Response:
            status = 200

            def __enter__(self):
                return self

            def __exit__(self, *args):
                return False

        return Response()


def test_custom_resource_creates_then_deletes_every_instance(fleet, deploy, monkeypatch):
    from handlers import lifecycle

    deploy("LifecycleFunction")
    replies = Replies()
    monkeypatch.setattr(lifecycle.urllib.request, "urlopen", replies)
    context = FakeContext(function_name="fleet-lifecycle")

    lifecycle.handler(cfn_event("Create", "fleet"), context)
    assert replies.bodies[-1]["Status"] == "SUCCESS"
    assert replies.bodies[-1]["PhysicalResourceId"] == "fleet-fleet"
    assert fleet.lifecycle_counts() == {"service:running": 1, "warming:running": 1}

    lifecycle.handler(cfn_event("Delete", "fleet"), context)
    assert replies.bodies[-1]["Status"] == "SUCCESS", replies.bodies[-1]
    assert fleet.instances() == []  # nothing pending, running, stopping or stopped is left
    assert fleet.registered() == set()


def test_custom_resource_reports_failure_instead_of_hanging(deploy, monkeypatch):
    from handlers import lifecycle

    deploy("LifecycleFunction")
    replies = Replies()
    monkeypatch.setattr(lifecycle.urllib.request, "urlopen", replies)
    monkeypatch.setenv("LAUNCH_TEMPLATE_ID", "lt-0000000000deleted")
    lifecycle.handler(cfn_event("Create", "fleet"), FakeContext(function_name="fleet-lifecycle"))
    assert replies.bodies[-1]["Status"] == "FAILED"
    assert replies.bodies[-1]["Reason"]  # the exception, for the stack events


# ---------------------------------------------------------------------------------- every log line

LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})


def _log_calls_with_extra() -> set[tuple[str, int, int]]:
    """(file, first line, last line) of every ``logger.<level>(..., extra=...)`` in functions/."""
    sites = set()
    for path in sorted((ROOT / "functions").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOG_METHODS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "logger"
                and any(keyword.arg == "extra" for keyword in node.keywords)
            ):
                sites.add((str(path), node.lineno, node.end_lineno or node.lineno))
    return sites


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_every_handler_path_logs_at_debug(fleet, deploy, monkeypatch):
    """Python's logging refuses some ``extra=`` keys (``message``, ``asctime``, LogRecord's own
    attributes) with a KeyError, but only when the call's level is enabled. Run every handler
    path at DEBUG and check that every logging call that passes ``extra=`` ran."""
    from autoscaler import decide as decide_module
    from handlers import lifecycle, reconcile, scale_in, scale_out

    replies = Replies()
    monkeypatch.setattr(lifecycle.urllib.request, "urlopen", replies)
    recorder = Recorder()
    logging.getLogger(logger.name).addHandler(recorder)

    def invoke(logical_id: str, handler: Callable[..., Any], event: Any, pending: bool = False) -> Any:
        deploy(logical_id)
        monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
        logger.setLevel(None)
        assert logger.log_level == logging.DEBUG
        runtime = lambda_runtime()
        runtime.clock = fleet.clock  # waits for instances and polls pass in virtual time
        fleet.fake_instances.install(runtime.clients.ec2)
        if pending:  # still booting when the function stops waiting for it (its settings' wait)
            fleet.fake_instances.launch_pending_seconds = runtime.settings.running_wait_seconds + 60
        try:
            return handler(event, FakeContext(function_name=logical_id))
        finally:
            fleet.fake_instances.launch_pending_seconds = PENDING_SECONDS

    try:
        name = fleet.settings.fleet_name
        create = cfn_event("Create", name)
        invoke("LifecycleFunction", lifecycle.handler, create, pending=True)  # "not running yet"
        assert replies.bodies[-1]["Status"] == "SUCCESS", replies.bodies[-1]
        fleet.mark_ready()
        fleet.clock.advance(60)
        invoke("ReconcileFunction", reconcile.handler, load_event("scheduled-event"))
        now = fleet.clock.now()
        _alarm_in_moto("fleet-cpu-high")
        batch = sns_batch(
            sns_event("{not json"),
            sns_alarm_event(
                "fleet-cpu-high", new_state="OK", old_state="ALARM", time=alarm_time(now - timedelta(seconds=30))
            ),
            sns_alarm_event("fleet-cpu-high", time=alarm_time(now)),
            host_demand_event(name, "i-0123456789abcdef0", now - timedelta(seconds=60)),  # stale
        )
        results = invoke("ScaleOutFunction", scale_out.handler, batch)["results"]
        assert [r["reason"] for r in results][:2] == ["malformed-json", "irrelevant-transition ALARM->OK"]
        assert results[2]["status"] == "acted", results
        assert results[3]["reason"].startswith("stale-report"), results
        # The same transition delivered again while its first delivery is still deciding.
        fleet.clock.advance(60)
        _alarm_in_moto("fleet-cpu-high")
        again = sns_alarm_event("fleet-cpu-high", time=alarm_time(fleet.clock.now()))
        nested: list[Any] = []
        real_decide = decide_module.decide

        def decide_while_a_copy_arrives(*args: Any) -> Any:
            if not nested:
                nested.append(invoke("ScaleOutFunction", scale_out.handler, again)["results"])
                # A host's report meanwhile: it waits a period for the lease, then gives up.
                report = host_demand_event(name, "i-0123456789abcdef0", fleet.clock.now())
                nested.append(invoke("ScaleOutFunction", scale_out.handler, report)["results"])
            return real_decide(*args)

        monkeypatch.setattr(decide_module, "decide", decide_while_a_copy_arrives)
        invoke("ScaleOutFunction", scale_out.handler, again)
        monkeypatch.setattr(decide_module, "decide", real_decide)
        assert nested == [
            [{"status": "ignored", "reason": "in-progress-elsewhere", "alarm": "fleet-cpu-high"}],
            [{"status": "ignored", "reason": "lease-busy", "instance": "i-0123456789abcdef0"}],
        ]
        invoke("ScaleInFunction", scale_in.handler, sns_alarm_event("fleet-scale-in", time=alarm_time(now)))
        # A deploy with a new launch-template version: the Update starts a refresh.
        fleet.ec2.create_launch_template_version(
            LaunchTemplateId=fleet.settings.launch_template_id, SourceVersion="1", LaunchTemplateData={}
        )
        invoke("LifecycleFunction", lifecycle.handler, cfn_event("Update", name))
        assert replies.bodies[-1]["Status"] == "SUCCESS", replies.bodies[-1]
        rename = cfn_event("Update", "renamed", old_fleet=name, physical_id=f"fleet-{name}")
        invoke("LifecycleFunction", lifecycle.handler, rename)  # refused
        invoke("LifecycleFunction", lifecycle.handler, cfn_event("Delete", name))
        assert replies.bodies[-1]["Status"] == "SUCCESS", replies.bodies[-1]
    finally:
        logging.getLogger(logger.name).removeHandler(recorder)

    logged = {(r.pathname, r.lineno) for r in recorder.records}
    missed = [
        f"{Path(path).relative_to(ROOT)}:{first}"
        for path, first, last in _log_calls_with_extra()
        if not any(p == path and first <= line <= last for p, line in logged)
    ]
    assert not missed, f"logging calls with extra= that no handler path reached: {missed}"


def test_custom_resource_create_succeeds_while_ec2_does_not_show_its_instances_yet(fleet, deploy, monkeypatch):
    from handlers import lifecycle

    deploy("LifecycleFunction")
    replies = Replies()
    monkeypatch.setattr(lifecycle.urllib.request, "urlopen", replies)
    runtime = lambda_runtime()
    runtime.clock = fleet.clock  # the backoff passes in virtual time
    fleet.fake_instances.install(runtime.clients.ec2)
    fleet.fake_instances.visibility_seconds = 3  # unknown at 0 and 1 s; known after the 2 s backoff
    lifecycle.handler(cfn_event("Create", "fleet"), FakeContext(function_name="fleet-lifecycle"))
    assert replies.bodies[-1]["Status"] == "SUCCESS", replies.bodies[-1]
    assert len(fleet.fake_instances.refused) == 2
    # The warm-up, launched once the first instance was known, is not listed until EC2 knows it.
    assert fleet.lifecycle_counts() == {"service:running": 1}
    fleet.clock.advance(3)
    assert fleet.lifecycle_counts() == {"service:running": 1, "warming:pending": 1}


# ---------------------------------------------------------------------------------- renaming the fleet


@pytest.fixture
def custom_resource(fleet, deploy, monkeypatch) -> Callable[..., dict[str, Any]]:
    """``custom_resource(event, fleet_name)`` sends a CloudFormation request to the lifecycle
    function deployed with ``FleetName=fleet_name`` and returns its reply."""
    from handlers import lifecycle

    replies = Replies()
    monkeypatch.setattr(lifecycle.urllib.request, "urlopen", replies)

    def send(event: dict[str, Any], fleet_name: str | None = None) -> dict[str, Any]:
        deploy("LifecycleFunction", FleetName=fleet_name or fleet.settings.fleet_name)
        lambda_runtime().clock = fleet.clock
        # A fresh invocation has the function's whole timeout ahead of it.
        timeout = load_template(TEMPLATE)["Resources"]["LifecycleFunction"]["Properties"]["Timeout"]
        lifecycle.handler(event, FakeContext(function_name="fleet-lifecycle", remaining_ms=timeout * 1000))
        return replies.bodies[-1]

    return send


def test_renaming_the_fleet_is_refused_and_a_delete_of_the_old_id_removes_only_that_fleet(fleet, custom_resource):
    renamed = fleet.with_settings(fleet_name="renamed")
    created = custom_resource(cfn_event("Create", "fleet"))
    assert (created["Status"], created["PhysicalResourceId"]) == ("SUCCESS", "fleet-fleet")
    before = fleet.lifecycle_counts()

    # sam deploy with FleetName=renamed: the functions get the new name, then the resource its Update.
    update = cfn_event("Update", "renamed", physical_id="fleet-fleet", old_fleet="fleet")
    reply = custom_resource(update, "renamed")
    assert reply["Status"] == "FAILED"
    assert "FleetName cannot change" in reply["Reason"] and "'fleet' -> 'renamed'" in reply["Reason"]
    assert reply["PhysicalResourceId"] == "fleet-fleet"  # no replacement
    assert renamed.instances() == [] and fleet.lifecycle_counts() == before

    # CloudFormation rolls the update back: the old properties, the same physical id.
    rollback = cfn_event("Update", "fleet", physical_id="fleet-fleet", old_fleet="renamed")
    reply = custom_resource(rollback, "renamed")
    assert (reply["Status"], reply["PhysicalResourceId"]) == ("SUCCESS", "fleet-fleet")
    assert renamed.instances() == [] and fleet.lifecycle_counts() == before

    # A Delete of the old physical id (what CloudFormation sends after a replacement) removes that
    # fleet, whatever FLEET_NAME the function has by then.
    reply = custom_resource(cfn_event("Delete", "fleet", physical_id="fleet-fleet"), "renamed")
    assert reply["Status"] == "SUCCESS", reply
    assert fleet.instances() == [] and renamed.instances() == []


def test_delete_acts_only_on_the_fleet_its_request_names(fleet, custom_resource):
    from autoscaler import entrypoints

    old = fleet.with_settings(fleet_name="old")
    entrypoints.create_fleet(old.runtime)
    assert custom_resource(cfn_event("Create", "fleet"))["Status"] == "SUCCESS"
    serving = fleet.lifecycle_counts()

    reply = custom_resource(cfn_event("Delete", "old", physical_id="fleet-old"))
    assert reply["Status"] == "SUCCESS", reply
    assert old.instances() == []
    assert fleet.lifecycle_counts() == serving  # the fleet the functions manage is untouched


def test_create_refuses_a_fleet_the_functions_do_not_manage(fleet, custom_resource):
    reply = custom_resource(cfn_event("Create", "elsewhere"))
    assert reply["Status"] == "FAILED"
    assert "'elsewhere'" in reply["Reason"] and "'fleet'" in reply["Reason"]
    assert reply["PhysicalResourceId"] == "fleet-elsewhere"  # the rollback's Delete names nothing of ours
    assert fleet.instances() == []


# ---------------------------------------------------------------------------------- lease contention


def test_custom_resource_update_waits_for_a_scaling_run_that_holds_the_lease(fleet, custom_resource):
    """LaunchTemplateVersion changes on almost every deploy, so the Fleet resource updates on
    almost every deploy, often while a scaling run holds the lease for most of a minute."""

    assert custom_resource(cfn_event("Create", "fleet"))["Status"] == "SUCCESS"
    store = fleet.store
    assert store.acquire_lease("scaling-run", fleet.clock.now(), fleet.settings.lease_seconds)
    fleet.clock.at(fleet.clock.now() + timedelta(seconds=55), lambda: store.release_lease("scaling-run"))
    slept = fleet.clock.slept

    reply = custom_resource(cfn_event("Update", "fleet"))
    assert reply["Status"] == "SUCCESS", reply
    assert fleet.clock.slept - slept >= 55


def test_custom_resource_outwaits_the_lease_of_a_crashed_run(fleet, custom_resource):

    assert custom_resource(cfn_event("Create", "fleet"))["Status"] == "SUCCESS"
    store = fleet.store
    assert store.acquire_lease("crashed-run", fleet.clock.now(), fleet.settings.lease_seconds)
    reply = custom_resource(cfn_event("Update", "fleet"))
    assert reply["Status"] == "SUCCESS", reply


def test_a_deploy_that_changes_the_launch_template_starts_a_refresh_and_returns_at_once(fleet, custom_resource):
    """The Update's run starts the refresh and takes its first step; the refresh goes on with
    every later run, so CloudFormation never waits on it (Lambda's 15-minute limit)."""
    from autoscaler import entrypoints

    assert custom_resource(cfn_event("Create", "fleet"))["Status"] == "SUCCESS"
    fleet.mark_ready()
    entrypoints.reconcile(fleet.runtime)
    fleet.ec2.create_launch_template_version(
        LaunchTemplateId=fleet.settings.launch_template_id, SourceVersion="1", LaunchTemplateData={}
    )
    slept = fleet.clock.slept
    reply = custom_resource(cfn_event("Update", "fleet"))
    assert reply["Status"] == "SUCCESS", reply
    assert fleet.clock.slept - slept < 120  # one run: no waiting for the replacements
    refresh = entrypoints.refresh_status(fleet.runtime)["refresh"]
    assert (refresh["status"], refresh["target_version"], refresh["previous_version"]) == ("InProgress", "2", "1")
    assert refresh["cause"] == "deploy" and refresh["refresh_id"] in reply["Reason"]
