"""moto for what it models (EC2 API state, ELB registration, DynamoDB), botocore hooks for the rest.

Hooks on the very clients the control plane uses: before-call answers that short-circuit moto
(DescribeTargetHealth, GetMetricData, DescribeAlarms, capacity errors), after-call observers
that start the physical models (boots, stops, registrations, lifecycle tags).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import boto3
from autoscaler.runtime import AwsClients
from botocore.awsrequest import AWSResponse

from simulator.balancer import Balancer
from simulator.cloudwatch import MetricStore, metric_key
from simulator.ec2 import Ec2Model
from tools.cfn_template import Template

REGION = "eu-west-1"
FLEET_TAG = "AutoscalerFleet"
LIFECYCLE_TAG = "AutoscalerLifecycle"


class Twin(Protocol):
    """What the hooks need from the simulation."""

    ec2_model: Ec2Model
    balancer: Balancer
    store: MetricStore
    target_group_arn: str

    def offset(self) -> float: ...
    def current(self) -> float: ...
    def sim_time(self, when: datetime) -> float: ...
    def wall(self, t: float) -> datetime: ...
    def capacity_error(self) -> bool: ...
    def alarm_descriptions(self, names: list[str] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]: ...
    def advance_traffic(self) -> None: ...


@dataclass(frozen=True)
class Provisioned:
    clients: AwsClients
    raw: AwsClients  # the same services without the twin's hooks, for the twin's own calls
    physical: dict[str, str]
    attributes: dict[tuple[str, str], Any]
    supplied: dict[str, Any]
    target_group_arn: str


def provision(template: Template) -> Provisioned:
    """Create in moto what the template's resources stand for (must run inside ``mock_aws``)."""
    session = boto3.session.Session(region_name=REGION)
    clients = AwsClients.create(session=session, region=REGION)
    raw = AwsClients.create(session=session, region=REGION)
    ec2 = raw.ec2
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    zones = (f"{REGION}a", f"{REGION}b")
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for n, zone in enumerate(zones)
    ]
    image = "ami-0123456789abcdef0"  # moto accepts any id; describing its catalogue costs seconds
    physical: dict[str, str] = {}
    attributes: dict[tuple[str, str], Any] = {}
    resources: dict[str, Any] = template.data.get("Resources") or {}
    target_group_arn = ""
    for logical_id, resource in resources.items():
        kind = resource.get("Type")
        if kind == "AWS::EC2::LaunchTemplate":
            data = template.resolve((resource.get("Properties") or {}).get("LaunchTemplateData") or {})
            lt = ec2.create_launch_template(
                LaunchTemplateName=f"sim-{logical_id}",
                LaunchTemplateData={"ImageId": image, "InstanceType": str(data.get("InstanceType", "c7g.medium"))},
            )["LaunchTemplate"]
            physical[logical_id] = lt["LaunchTemplateId"]
            attributes[(logical_id, "LatestVersionNumber")] = str(lt["LatestVersionNumber"])
            attributes[(logical_id, "DefaultVersionNumber")] = str(lt["DefaultVersionNumber"])
        elif kind == "AWS::ElasticLoadBalancingV2::TargetGroup" and not target_group_arn:
            group = raw.elbv2.create_target_group(
                Name=f"sim-{logical_id}"[:32], Protocol="HTTP", Port=30000, VpcId=vpc, TargetType="instance"
            )["TargetGroups"][0]
            target_group_arn = group["TargetGroupArn"]
            physical[logical_id] = target_group_arn
            full = target_group_arn.split(":", 5)[5]
            attributes[(logical_id, "TargetGroupFullName")] = full
            attributes[(logical_id, "TargetGroupName")] = group["TargetGroupName"]
        elif kind == "AWS::EC2::VPC":
            physical[logical_id] = vpc
        elif kind == "AWS::EC2::Subnet":
            index = sum(1 for v in physical.values() if v in subnets)
            physical[logical_id] = subnets[index % len(subnets)]
    supplied: dict[str, Any] = {}
    for name, spec in (template.data.get("Parameters") or {}).items():
        kind = str(spec.get("Type", ""))
        if kind == "List<AWS::EC2::Subnet::Id>":
            supplied[name] = subnets
        elif kind == "AWS::EC2::Subnet::Id":
            supplied[name] = subnets[0]
        elif kind == "AWS::EC2::VPC::Id":
            supplied[name] = vpc
        elif kind == "AWS::EC2::Image::Id" or kind.startswith("AWS::SSM::Parameter::Value<AWS::EC2::Image::Id"):
            supplied[name] = image
    if not target_group_arn:
        raise ValueError("the template has no AWS::ElasticLoadBalancingV2::TargetGroup")
    return Provisioned(clients, raw, physical, attributes, supplied, target_group_arn)


def create_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def _ok() -> AWSResponse:
    return AWSResponse("https://twin.invalid", 200, {}, None)


def _answer(client: Any, operation: str, respond: Callable[[dict[str, Any]], Any]) -> None:
    """Answer ``service-id.Operation`` with ``respond(api_params)`` (a dict) instead of moto;
    ``respond`` returns None to let moto answer."""

    def call(context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        result = respond(context.get("twin_params", {}))
        if result is None:
            return None
        if "Error" in result:
            return AWSResponse("https://twin.invalid", 400, {}, None), result
        result.setdefault("ResponseMetadata", {"HTTPStatusCode": 200})
        return _ok(), result

    client.meta.events.register(f"before-call.{operation}", call)


def _observe(client: Any, operation: str, seen: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
    def after(http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if http_response is not None and http_response.status_code < 300:
            seen(context.get("twin_params", {}), parsed)

    client.meta.events.register(f"after-call.{operation}", after)


def install_hooks(clients: AwsClients, twin: Twin) -> None:
    def stash(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["twin_params"] = dict(params)

    for client in (clients.ec2, clients.elbv2, clients.cloudwatch, clients.dynamodb):
        client.meta.events.register("before-parameter-build.*.*", stash)

    # -- EC2 ------------------------------------------------------------------------------------
    def capacity(_: dict[str, Any]) -> dict[str, Any] | None:
        if twin.capacity_error():
            return {
                "Error": {
                    "Code": "InsufficientInstanceCapacity",
                    "Message": "We currently do not have "
                    "sufficient capacity in the Availability Zone you requested (simulated).",
                }
            }
        return None

    _answer(clients.ec2, "ec2.RunInstances", capacity)
    _answer(clients.ec2, "ec2.StartInstances", capacity)

    def launched(params: dict[str, Any], parsed: dict[str, Any]) -> None:
        lifecycle = "service"
        for spec in params.get("TagSpecifications") or ():
            for tag in spec.get("Tags") or ():
                if tag.get("Key") == LIFECYCLE_TAG:
                    lifecycle = str(tag["Value"])
        for instance in parsed.get("Instances", []):
            twin.ec2_model.launched(instance["InstanceId"], lifecycle, twin.offset())

    def each(action: Callable[[str, float], None]) -> Callable[[dict[str, Any], dict[str, Any]], None]:
        def seen(params: dict[str, Any], _: dict[str, Any]) -> None:
            for instance_id in params.get("InstanceIds") or ():
                action(instance_id, twin.offset())

        return seen

    def tagged(params: dict[str, Any], _: dict[str, Any]) -> None:
        for tag in params.get("Tags") or ():
            if tag.get("Key") == LIFECYCLE_TAG:
                for instance_id in params.get("Resources") or ():
                    twin.ec2_model.set_lifecycle(instance_id, str(tag["Value"]))

    _answer(clients.ec2, "ec2.DescribeInstances", lambda params: describe_instances(params, twin))
    _observe(clients.ec2, "ec2.RunInstances", launched)
    _observe(clients.ec2, "ec2.StartInstances", each(twin.ec2_model.started))
    _observe(clients.ec2, "ec2.StopInstances", each(twin.ec2_model.stopped))
    _observe(clients.ec2, "ec2.TerminateInstances", each(twin.ec2_model.terminated))
    _observe(clients.ec2, "ec2.CreateTags", tagged)

    # -- ELBv2 ----------------------------------------------------------------------------------
    def targets(action: Callable[[str, float], None]) -> Callable[[dict[str, Any], dict[str, Any]], None]:
        def seen(params: dict[str, Any], _: dict[str, Any]) -> None:
            if params.get("TargetGroupArn") == twin.target_group_arn:
                for target in params.get("Targets") or ():
                    action(str(target["Id"]), twin.offset())

        return seen

    _observe(
        clients.elbv2,
        "elastic-load-balancing-v2.RegisterTargets",
        targets(lambda i, d: twin.balancer.register(i, 30000, d)),
    )
    _observe(clients.elbv2, "elastic-load-balancing-v2.DeregisterTargets", targets(twin.balancer.deregister))

    def target_health(params: dict[str, Any]) -> dict[str, Any] | None:
        if params.get("TargetGroupArn") != twin.target_group_arn:
            return None
        twin.advance_traffic()
        asked = params.get("Targets")
        ids = None if asked is None else [str(t["Id"]) for t in asked]
        return {"TargetHealthDescriptions": twin.balancer.describe(ids)}

    _answer(clients.elbv2, "elastic-load-balancing-v2.DescribeTargetHealth", target_health)

    # -- CloudWatch -----------------------------------------------------------------------------
    def metric_data(params: dict[str, Any]) -> dict[str, Any]:
        twin.advance_traffic()
        start = twin.sim_time(params["StartTime"])
        end = twin.sim_time(params["EndTime"])
        current = twin.current()
        results = []
        for query in params.get("MetricDataQueries") or ():
            stat = query.get("MetricStat")
            if stat is None:
                results.append({"Id": query["Id"], "Timestamps": [], "Values": [], "StatusCode": "Complete"})
                continue
            metric = stat["Metric"]
            key = metric_key(
                metric["Namespace"],
                metric["MetricName"],
                ((str(d["Name"]), str(d["Value"])) for d in metric.get("Dimensions") or ()),
            )
            points = twin.store.query(key, start, end, float(stat["Period"]), current, str(stat["Stat"]))
            if params.get("ScanBy") == "TimestampAscending":
                points.reverse()
            results.append(
                {
                    "Id": query["Id"],
                    "Label": metric["MetricName"],
                    "Timestamps": [twin.wall(t) for t, _ in points],
                    "Values": [v for _, v in points],
                    "StatusCode": "Complete",
                }
            )
        return {"MetricDataResults": results, "Messages": []}

    def describe_alarms(params: dict[str, Any]) -> dict[str, Any]:
        names = params.get("AlarmNames")
        metric, composite = twin.alarm_descriptions(None if names is None else list(names))
        types = params.get("AlarmTypes") or ["MetricAlarm"]
        return {
            "MetricAlarms": metric if "MetricAlarm" in types else [],
            "CompositeAlarms": composite if "CompositeAlarm" in types else [],
        }

    _answer(clients.cloudwatch, "cloudwatch.GetMetricData", metric_data)
    _answer(clients.cloudwatch, "cloudwatch.DescribeAlarms", describe_alarms)


STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
SUPPORTED_FILTERS = ("instance-state-name", "instance-id")


def describe_instances(params: dict[str, Any], twin: Twin) -> dict[str, Any] | None:
    """DescribeInstances from moto's own EC2 state, without moto's (slow) serializer.

    moto's answer costs ~0.2 s with 40 instances, and the reconcile asks every minute; the state
    is moto's all the same. Launch times are the virtual ones. Unknown filters fall back to moto.
    """
    from moto.backends import get_backend

    filters = {str(f["Name"]): {str(v) for v in f.get("Values") or ()} for f in params.get("Filters") or ()}
    if any(not (name.startswith("tag:") or name in SUPPORTED_FILTERS) for name in filters):
        return None
    if params.get("NextToken"):
        return {"Reservations": []}
    backend = get_backend("ec2")["123456789012"][REGION]
    wanted_ids = set(params.get("InstanceIds") or ()) | filters.get("instance-id", set())
    reservations = []
    for reservation in backend.reservations.values():
        found = []
        for instance in reservation.instances:
            if wanted_ids and instance.id not in wanted_ids:
                continue
            state = instance._state.name  # moto's model is the source of truth
            if "instance-state-name" in filters and state not in filters["instance-state-name"]:
                continue
            tags: dict[str, str] = backend.tags.get(instance.id, {})
            if any(tags.get(name[4:]) not in values for name, values in filters.items() if name.startswith("tag:")):
                continue
            machine = twin.ec2_model.machines.get(instance.id)
            launched = twin.wall(machine.history[0][0]) if machine and machine.history else instance.launch_time
            found.append(
                {
                    "InstanceId": instance.id,
                    "InstanceType": instance.instance_type,
                    "ImageId": instance.image_id,
                    "State": {"Name": state, "Code": STATE_CODES.get(state, 0)},
                    "LaunchTime": launched,
                    "SubnetId": instance.subnet_id,
                    "Placement": {"AvailabilityZone": instance.placement.zone},
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            )
        if found:
            reservations.append({"ReservationId": reservation.id, "OwnerId": "123456789012", "Instances": found})
    if wanted_ids and not reservations and params.get("InstanceIds"):
        return None  # let moto raise InvalidInstanceID.NotFound
    return {"Reservations": reservations}


def to_wall(epoch: datetime, t: float) -> datetime:
    return epoch + timedelta(seconds=t)
