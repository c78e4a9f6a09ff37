"""A fleet's AWS surroundings in moto, and the knobs tests turn (clock, target health, faults)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from autoscaler.adapters.state import StateStore
from autoscaler.runtime import AwsClients, Runtime
from autoscaler.settings import Settings
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError

from simulator.aws import create_table  # the state table's key schema, as template.yaml declares it
from tests.support.template_settings import template_settings

REGION = "eu-west-1"
START = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
OUT_ALARMS = ("fleet-cpu-high", "fleet-requests-high")
IN_ALARMS = ("fleet-scale-in",)


class FakeClock:
    """Virtual time: ``sleep`` advances it instead of blocking. ``at`` schedules what others
    (a concurrent invocation, an operator) do at a given time; it runs when time passes it."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start
        self.slept = 0.0
        self._scheduled: list[tuple[datetime, int, Callable[[], object]]] = []

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self._pass(seconds)

    def advance(self, seconds: float) -> None:
        self._pass(seconds)

    def at(self, when: datetime, action: Callable[[], object]) -> None:
        self._scheduled.append((when, len(self._scheduled), action))
        self._scheduled.sort(key=lambda item: item[:2])

    def _pass(self, seconds: float) -> None:
        target = self.current + timedelta(seconds=seconds)
        while self._scheduled and self._scheduled[0][0] <= target:
            when, _, action = self._scheduled.pop(0)
            self.current = max(self.current, when)
            action()
        self.current = target


@dataclass
class Knobs:
    """Modelled AWS behaviour moto does not have: health, metrics, alarm states, injected faults."""

    health: dict[str, str] = field(default_factory=dict)
    default_health: str = "healthy"
    # Per-host figures, as every instance in service publishes them (CPU %, requests per minute),
    # and the load balancer's RequestCount per minute (None: no datapoint).
    cpu: float | None = 50.0
    requests: float | None = 60.0
    alb_requests: float | None = None
    # (metric name, instance id) -> a different figure for one instance (None: it is silent).
    per_instance: dict[tuple[str, str], float | None] = field(default_factory=dict)
    alarms: dict[str, str] = field(default_factory=dict)
    # operation name -> list of error codes to raise, consumed one per call
    faults: dict[str, list[str]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)


@dataclass
class Fleet:
    runtime: Runtime
    clock: FakeClock
    knobs: Knobs
    settings: Settings
    subnets: tuple[str, ...]
    zones: tuple[str, ...]

    @property
    def ec2(self) -> Any:
        return self.runtime.clients.ec2

    @property
    def store(self) -> StateStore:
        """The fleet's state table, read and written as the functions do."""
        s = self.settings
        return StateStore(self.runtime.clients.dynamodb, s.table_name, s.fleet_name, s.history_ttl_days)

    def with_settings(self, **changes: Any) -> Fleet:
        settings = replace(self.settings, **changes)
        runtime = replace(self.runtime, settings=settings)
        return replace(self, runtime=runtime, settings=settings)

    def instances(
        self, states: tuple[str, ...] = ("pending", "running", "stopping", "stopped")
    ) -> list[dict[str, Any]]:
        response = self.ec2.describe_instances(
            Filters=[
                {"Name": "tag:AutoscalerFleet", "Values": [self.settings.fleet_name]},
                {"Name": "instance-state-name", "Values": list(states)},
            ]
        )
        return [i for r in response["Reservations"] for i in r["Instances"]]

    def lifecycle_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for instance in self.instances():
            tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
            key = f"{tags.get('AutoscalerLifecycle')}:{instance['State']['Name']}"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def mark_ready(self, instance_ids: list[str] | None = None) -> None:
        """What the instance's user-data does once /ping answers through nginx."""
        ids = instance_ids or [i["InstanceId"] for i in self.instances()]
        if ids:
            self.ec2.create_tags(Resources=ids, Tags=[{"Key": "AutoscalerReady", "Value": "true"}])

    def registered(self) -> set[str]:
        response = self.runtime.clients.elbv2.describe_target_health(TargetGroupArn=self.settings.target_group_arn)
        return {d["Target"]["Id"] for d in response["TargetHealthDescriptions"]}


def _install_knobs(clients: AwsClients, knobs: Knobs) -> None:
    def record(model: Any, **_: Any) -> None:
        knobs.calls.append(f"{model.service_model.service_name}:{model.name}")

    def state(target: str) -> str:
        return knobs.health.get(target, knobs.default_health)

    def target_health(params: dict[str, Any]) -> dict[str, Any]:
        targets = _moto_targets(params["TargetGroupArn"])
        return {
            "TargetHealthDescriptions": [
                {"Target": {"Id": t, "Port": 30000}, "TargetHealth": {"State": state(t)}} for t in targets
            ],
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    by_metric = {"CPUUtilization": "cpu", "RequestsPerMinute": "requests", "RequestCount": "alb_requests"}

    def metric_data(params: dict[str, Any]) -> dict[str, Any]:
        """Each query answered by the knob of its own metric: one datapoint per period from the
        range's start to the last complete period; a metric without a knob has no data."""
        start, end = params["StartTime"], params["EndTime"]
        results = []
        for query in params["MetricDataQueries"]:
            stat = query["MetricStat"]
            name = stat["Metric"]["MetricName"]
            instance = next((d["Value"] for d in stat["Metric"]["Dimensions"] if d["Name"] == "InstanceId"), None)
            knob = by_metric.get(name)
            value = getattr(knobs, knob) if knob else None
            if instance is not None and (name, instance) in knobs.per_instance:
                value = knobs.per_instance[(name, instance)]
            period = timedelta(seconds=stat["Period"])
            stamps: list[datetime] = []
            stamp = datetime.fromtimestamp(end.timestamp() // period.seconds * period.seconds, end.tzinfo) - period
            while value is not None and stamp >= start:
                stamps.append(stamp)
                stamp -= period
            results.append({"Id": query["Id"], "Timestamps": stamps, "Values": [value] * len(stamps),
                            "StatusCode": "Complete"})  # fmt: skip
        return {"MetricDataResults": results, "ResponseMetadata": {"HTTPStatusCode": 200}}

    def describe_alarms(params: dict[str, Any]) -> dict[str, Any]:
        names = params.get("AlarmNames", [])
        alarms = [{"AlarmName": n, "StateValue": knobs.alarms.get(n, "OK")} for n in names]
        return {"MetricAlarms": alarms, "CompositeAlarms": [], "ResponseMetadata": {"HTTPStatusCode": 200}}

    def fault(model: Any, **_: Any) -> None:
        pending = knobs.faults.get(model.name)
        if pending:
            code = pending.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": f"injected {code}"}}, model.name)

    for client in (clients.ec2, clients.elbv2, clients.cloudwatch, clients.dynamodb):
        client.meta.events.register("before-call.*.*", fault)
        client.meta.events.register("before-call.*.*", record)
    answer(clients.elbv2, "elastic-load-balancing-v2.DescribeTargetHealth", target_health)
    answer(clients.cloudwatch, "cloudwatch.GetMetricData", metric_data)
    answer(clients.cloudwatch, "cloudwatch.DescribeAlarms", describe_alarms)


def _stash_params(client: Any, operation: str) -> None:
    """Keep the API parameters of ``operation`` in the request context: later events (before-call,
    after-call) see only the serialized request."""

    def stash(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["api_params"] = dict(params)

    client.meta.events.register(f"before-parameter-build.{operation}", stash)


def answer(client: Any, operation: str, respond: Callable[..., dict[str, Any]]) -> None:
    """Answer ``operation`` (``service-id.Operation``) with ``respond(api_params)`` instead of moto."""

    def call(context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://modelled", 200, HTTPHeaders(), None), respond(context["api_params"])

    _stash_params(client, operation)
    client.meta.events.register(f"before-call.{operation}", call)


def keep_pending(ec2: Any) -> None:
    """DescribeInstances by instance id reports every instance ``pending``, as EC2 does for a few
    seconds after RunInstances or StartInstances (moto has them running at once)."""

    def pending(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get("api_params", {}).get("InstanceIds"):
            for reservation in parsed.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    instance["State"] = {"Code": 0, "Name": "pending"}

    _stash_params(ec2, "ec2.DescribeInstances")
    ec2.meta.events.register("after-call.ec2.DescribeInstances", pending)


@dataclass
class Invisible:
    """New instances EC2 does not show yet: ``times`` more refusals to come, the ids of each."""

    times: int
    refused: list[list[str]] = field(default_factory=list)


def not_yet_visible(ec2: Any, times: int) -> Invisible:
    """The next ``times`` DescribeInstances calls by instance id answer InvalidInstanceID.NotFound,
    as EC2 may for a few seconds after RunInstances ("Eventual consistency in the Amazon EC2 API",
    https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html). Set ``times`` to
    0 on the result when EC2 has caught up."""
    invisible = Invisible(times)

    def refuse(context: dict[str, Any], **_: Any) -> None:
        ids = context.get("api_params", {}).get("InstanceIds")
        if ids and invisible.times > 0:
            invisible.times -= 1
            invisible.refused.append(list(ids))
            message = f"The instance ID '{ids[0]}' does not exist"
            raise ClientError(
                {"Error": {"Code": "InvalidInstanceID.NotFound", "Message": message}}, "DescribeInstances"
            )

    _stash_params(ec2, "ec2.DescribeInstances")
    ec2.meta.events.register("before-call.ec2.DescribeInstances", refuse)
    return invisible


def _moto_targets(arn: str) -> list[str]:
    from moto.backends import get_backend

    backend = get_backend("elbv2")["123456789012"][REGION]
    group = backend.target_groups[arn]
    return list(group.targets)


def build_fleet(clock: FakeClock | None = None, **overrides: Any) -> Fleet:
    """Inside ``mock_aws``: a VPC with two subnets in two AZs, a launch template, a target group
    and the state table, plus a Runtime wired to them."""
    clock = clock or FakeClock()
    session = boto3.session.Session(region_name=REGION)
    clients = AwsClients.create(session=session, region=REGION)
    ec2 = clients.ec2
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    zones = (f"{REGION}a", f"{REGION}b")
    subnets = tuple(
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for n, zone in enumerate(zones)
    )
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    template = ec2.create_launch_template(
        LaunchTemplateName="fleet-workers",
        LaunchTemplateData={"ImageId": image, "InstanceType": "c7g.medium"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    group = clients.elbv2.create_target_group(
        Name="fleet-workers", Protocol="HTTP", Port=30000, VpcId=vpc, TargetType="instance"
    )["TargetGroups"][0]
    create_table(clients.dynamodb, "fleet-state")
    values: dict[str, Any] = {
        "fleet_name": "fleet",
        "table_name": "fleet-state",
        "launch_template_id": template,
        "launch_template_version": "$Latest",
        "subnet_ids": subnets,
        "target_group_arn": group["TargetGroupArn"],
        "target_group_dimension": "targetgroup/fleet-workers/0123456789abcdef",
        "load_balancer_dimension": "app/fleet-lb/0123456789abcdef",
        "scale_out_alarm_names": OUT_ALARMS,
        "scale_in_alarm_names": IN_ALARMS,
        "running_wait_seconds": 10,
        "lease_wait_seconds": 5,
    }
    settings = template_settings(**{**values, **overrides})
    knobs = Knobs()
    _install_knobs(clients, knobs)
    runtime = Runtime(settings=settings, clients=clients, clock=clock)
    return Fleet(runtime, clock, knobs, settings, subnets, zones)


def throttle(ec2: Any, operation: str, times: int, code: str = "RequestLimitExceeded") -> list[int]:
    """Answer the next ``times`` HTTP attempts of an EC2 ``operation`` (``ec2.RunInstances``) with
    a throttling error. Returns a list that counts the attempts seen.

    Hooked at before-send, the only event botocore emits for every retried attempt, so its retry
    handler sees a real error response and retries. botocore emits before-send to every handler
    (moto's included) and uses the first response; so that moto, which answers after us, does not
    carry out a throttled attempt, the attempt is turned into a DryRun: EC2 checks it and changes
    nothing (EC2 API reference, "DryRun").
    """
    attempts: list[int] = []

    def send(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(1)
        if len(attempts) > times:
            return None
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        request.body = f"{body}&DryRun=true".encode()
        request.headers["Content-Length"] = str(len(request.body))
        xml = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>Request limit exceeded.</Message></Error>"
            "</Errors><RequestID>throttled</RequestID></Response>"
        )
        return AWSResponse(request.url, 400, HTTPHeaders(), _Raw(xml.encode()))

    ec2.meta.events.register_first(f"before-send.{operation}", send)
    return attempts


class _Raw:
    """The minimal raw body botocore reads from an AWSResponse."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self, *_: Any) -> bytes:
        return self._data
