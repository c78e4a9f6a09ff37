"""Run one function the way Lambda does after a cold start, in a fresh interpreter.

``python -m tests.support.cold_start ScaleOutFunction`` builds a fleet in moto, gives the
process the function's environment from template.yaml (log level, service name and metrics
namespace included) *before* the handler module is imported, and invokes the handler with
real-shaped events, metrics flushed as in Lambda (POWERTOOLS_METRICS_DISABLED unset). stdout
carries what the function prints (JSON logs, EMF); the last line is ``RESULT <json>``.

In-process tests cannot show this: powertools reads the environment when its Logger and Metrics
objects are built, at import, and the test process imported them long before.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULT_PREFIX = "RESULT "


class _Context:
    """The LambdaContext attributes powertools reads."""

    def __init__(self, name: str) -> None:
        self.function_name = name
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{name}"
        self.aws_request_id = "0f0e0d0c-0b0a-4909-8807-060504030201"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


class _Replies:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: Any, timeout: float) -> Any:
        self.bodies.append(json.loads(request.data))

        class Response:
            status = 200

            def __enter__(self) -> Response:
                return self

            def __exit__(self, *args: object) -> None:
                return None

        return Response()


def _process_environment() -> None:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_REGION": "eu-west-1",
            # No X-Ray daemon here; everything else as in Lambda.
            "POWERTOOLS_TRACE_DISABLED": "true",
            "MOTO_AMIS_PATH": str(ROOT / "tests" / "support" / "moto_amis.json"),
        }
    )
    for key in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_LOG_LEVEL", "LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL"):
        os.environ.pop(key, None)


def _publish_load(fleet_name: str, cpu: float, now: datetime) -> None:
    """What each worker host in service puts in CloudWatch, through the publisher's own sink."""
    import boto3

    from worker.metrics_publisher import CloudWatchSink, Reading

    ec2 = boto3.client("ec2", region_name="eu-west-1")
    serving = [
        i["InstanceId"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if {"Key": "AutoscalerLifecycle", "Value": "service"} in i.get("Tags", [])
    ]
    for instance_id in serving:
        sink = CloudWatchSink(fleet_name, instance_id, region="eu-west-1")
        for age in (55, 45, 35, 25, 15):
            # A /work costs about half a second of CPU: requests per minute follow the CPU.
            sink(Reading(cpu, cpu * 60 / 50), now - timedelta(seconds=age))


def _alarm(name: str, fleet_name: str, state: str) -> None:
    import boto3

    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="Autoscaler",
        MetricName="CPUUtilization",
        Dimensions=[{"Name": "Fleet", "Value": fleet_name}],
        Statistic="Average",
        Period=10,
        EvaluationPeriods=2,
        Threshold=70.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="cold-start run")


def run(logical_id: str) -> dict[str, Any]:
    from moto import mock_aws

    from tests.support.aws import build_fleet
    from tests.support.events import alarm_time, cfn_event, load_event, sns_alarm_event
    from tests.support.lambda_env import FUNCTIONS, template_environment

    with mock_aws():
        fleet = build_fleet()
        name = fleet.settings.fleet_name
        if "autoscaler.observability" in sys.modules:
            raise RuntimeError("powertools objects were built before the template's environment was set")
        os.environ.update(template_environment(fleet, logical_id))

        import importlib

        from autoscaler import entrypoints

        handler = importlib.import_module(FUNCTIONS[logical_id]).handler
        context = _Context(f"{name}-{logical_id}")
        now = datetime.now(UTC)
        if logical_id == "LifecycleFunction":
            from handlers import lifecycle

            replies = _Replies()
            lifecycle.urllib.request.urlopen = replies  # type: ignore[assignment]
            handler(cfn_event("Create", name), context)
            return {"reply": replies.bodies[-1]}
        entrypoints.create_fleet(fleet.runtime)
        fleet.mark_ready()
        if logical_id == "ReconcileFunction":
            _publish_load(name, 60.0, now)
            return dict(handler(load_event("scheduled-event"), context))
        if logical_id == "ScaleOutFunction":
            _publish_load(name, 90.0, now)
            _alarm(f"{name}-cpu-high", name, "ALARM")
            return dict(handler(sns_alarm_event(f"{name}-cpu-high", time=alarm_time(now)), context))
        _publish_load(name, 5.0, now)
        _alarm(f"{name}-scale-in", name, "ALARM")
        return dict(handler(sns_alarm_event(f"{name}-scale-in", time=alarm_time(now)), context))


def main(argv: list[str]) -> int:
    (logical_id,) = argv
    _process_environment()
    result = run(logical_id)
    sys.stdout.write(RESULT_PREFIX + json.dumps(result, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
