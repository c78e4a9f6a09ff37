"""The Lambda handlers themselves: environment -> settings, context, metrics, custom resource replies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest
from autoscaler.lambda_runtime import lambda_runtime

from tests.support.aws import settings_env
from tests.support.events import alarm_time, load_event, sns_alarm_event

pytestmark = pytest.mark.integration


@dataclass
class FakeContext:
    function_name: str = "fleet-scale-out"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:fleet-scale-out"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"

    def get_remaining_time_in_millis(self) -> int:
        return 100_000


@pytest.fixture
def lambda_env(fleet, monkeypatch):
    for key, value in settings_env(fleet.settings).items():
        monkeypatch.setenv(key, value)
    lambda_runtime.cache_clear()
    yield fleet
    lambda_runtime.cache_clear()


def _emf(output: str) -> list[dict[str, Any]]:
    blobs = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blobs.append(json.loads(line))
    return blobs


def test_scale_out_handler_acts_and_publishes_metrics(lambda_env, monkeypatch, capsys):
    from handlers import reconcile, scale_out

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    reconcile.handler(load_event("scheduled-event"), FakeContext(function_name="fleet-reconcile"))
    # The handler builds its own clients, so it reads moto's CloudWatch for real: publish there
    # what the worker hosts and the ALB would.
    now = lambda_runtime().clock.now()
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    cloudwatch.put_metric_data(
        Namespace="Autoscaler",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "Fleet", "Value": "fleet"}],
                "Timestamp": now - timedelta(seconds=age),
                "Value": 79.0,
                "Unit": "Percent",
                "StorageResolution": 1,
            }
            for age in (35, 25, 15)
        ],
    )
    event = sns_alarm_event("fleet-cpu-high", time=alarm_time(now))
    result = scale_out.handler(event, FakeContext())

    (outcome,) = result["results"]
    assert outcome["reason"] == "scale-out" and outcome["desired"] == 2
    metrics = _emf(capsys.readouterr().out)
    names = {m["Name"] for blob in metrics for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"Desired", "InService", "Booting", "Pool", "Decisions", "DecisionLatency", "DecisionsByReason"} <= names
    by_reason = [b for b in metrics if "Reason" in b]
    assert {b["Reason"] for b in by_reason} >= {"scale-out"}
    assert all(b["Fleet"] == "fleet" for b in metrics)


def test_scale_in_handler_acknowledges_an_ok_transition(lambda_env):
    from handlers import scale_in

    event = sns_alarm_event("fleet-scale-in", new_state="OK", old_state="ALARM")
    result = scale_in.handler(event, FakeContext(function_name="fleet-scale-in"))
    assert result["results"][0]["reason"] == "irrelevant-transition ALARM->OK"


def test_missing_environment_fails_loudly_naming_the_variable(lambda_env, monkeypatch):
    from autoscaler.settings import SettingsError
    from handlers import scale_out

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


def test_custom_resource_creates_then_deletes_every_instance(lambda_env, monkeypatch):
    from handlers import lifecycle

    replies = Replies()
    monkeypatch.setattr(lifecycle.urllib.request, "urlopen", replies)
    context = FakeContext(function_name="fleet-lifecycle")

    lifecycle.handler(load_event("cfn-create"), context)
    assert replies.bodies[-1]["Status"] == "SUCCESS"
    assert replies.bodies[-1]["PhysicalResourceId"] == "fleet-fleet"
    assert lambda_env.lifecycle_counts() == {"service:running": 1, "warming:running": 1}

    delete = load_event("cfn-delete")
    delete["PhysicalResourceId"] = "fleet-fleet"
    lifecycle.handler(delete, context)
    assert replies.bodies[-1]["Status"] == "SUCCESS", replies.bodies[-1]
    assert lambda_env.instances() == []  # nothing pending, running, stopping or stopped is left
    assert lambda_env.registered() == set()


def test_custom_resource_reports_failure_instead_of_hanging(lambda_env, monkeypatch):
    from handlers import lifecycle

    replies = Replies()
    monkeypatch.setattr(lifecycle.urllib.request, "urlopen", replies)
    monkeypatch.setenv("LAUNCH_TEMPLATE_ID", "lt-0000000000deleted")
    lifecycle.handler(load_event("cfn-create"), FakeContext(function_name="fleet-lifecycle"))
    assert replies.bodies[-1]["Status"] == "FAILED"
    assert replies.bodies[-1]["Reason"]  # the exception, for the stack events
