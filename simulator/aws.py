"""moto for what it models (EC2 bookkeeping, ELB registration, DynamoDB), botocore hooks for the rest.

The hooks, resources and moto access are ``awsfake``'s, shared with the tests; this module wires
them to the twin's models. Hooks on the very clients the control plane uses:
- every call first costs its service's latency in virtual time (the invocation sleeps);
- before-call checks that answer the way AWS does when moto would not: instances that are not
  visible yet (eventual consistency), calls in the wrong instance state, registering a target
  that is not running, capacity errors;
- before-call answers from the models (DescribeInstances, DescribeTargetHealth, GetMetricData,
  DescribeAlarms);
- after-call observers that start the physical models (boots, stops, registrations, tags).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from autoscaler.runtime import AwsClients

from awsfake.fleet_instances import describe_instances, instance_resources, not_found, wrong_state
from awsfake.hooks import Params, answer, error, observe
from awsfake.instances import RUNNING
from awsfake.metrics import MetricStore, get_metric_data
from awsfake.resources import (
    ACCOUNT,
    REGION,
    WORKER_PORT,
    create_launch_template,
    create_network,
    create_target_group,
)
from fleet_template.cfn import Template
from simulator.alarms import AlarmEngine
from simulator.balancer import Balancer
from simulator.ec2 import Ec2Model

if TYPE_CHECKING:
    from botocore.model import OperationModel
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

__all__ = ["Provisioned", "Twin", "install_hooks", "provision"]

FLEET_TAG = "AutoscalerFleet"
LIFECYCLE_TAG = "AutoscalerLifecycle"
# EC2 tags every instance launched from a launch template with its id and version (EC2 user
# guide, "Launch an instance from a launch template"); moto does too.
VERSION_TAG = "aws:ec2launchtemplate:version"


class Twin(Protocol):
    """What the hooks need from the simulation."""

    ec2_model: Ec2Model
    balancer: Balancer
    store: MetricStore
    alarms: AlarmEngine
    target_group_arn: str

    def now(self) -> float: ...
    def sim_time(self, when: datetime) -> float: ...
    def wall(self, t: float) -> datetime: ...
    def advance_traffic(self) -> None: ...
    def api_latency(self, service: str, operation: str) -> None: ...


@dataclass(frozen=True)
class Provisioned:
    clients: AwsClients
    raw: AwsClients  # the same services without the twin's hooks, for the twin's own calls
    physical: dict[str, str]
    attributes: dict[tuple[str, str], Any]
    supplied: Params
    target_group_arn: str


def provision(template: Template) -> Provisioned:
    """Create in moto what the template's resources stand for (must run inside ``mock_aws``)."""
    session = boto3.session.Session(region_name=REGION)
    clients = AwsClients.create(session=session, region=REGION)
    raw = AwsClients.create(session=session, region=REGION)
    network = create_network(raw.ec2)
    vpc, subnets = network.vpc, list(network.subnets)
    image = "ami-0123456789abcdef0"  # moto accepts any id; describing its catalogue costs seconds
    physical: dict[str, str] = {}
    attributes: dict[tuple[str, str], Any] = {}
    resources: Params = template.data.get("Resources") or {}
    target_group_arn = ""
    for logical_id, resource in resources.items():
        kind = resource.get("Type")
        if kind == "AWS::EC2::LaunchTemplate":
            data = template.resolve((resource.get("Properties") or {}).get("LaunchTemplateData") or {})
            # The template's value as it stands (CloudFormation checks it against the parameter's
            # AllowedValues, moto takes any): resolved template data is untyped.
            lt = create_launch_template(raw.ec2, f"sim-{logical_id}", image, data.get("InstanceType", "c7g.medium"))
            physical[logical_id] = lt.template_id
            attributes[(logical_id, "LatestVersionNumber")] = str(lt.latest_version)
            attributes[(logical_id, "DefaultVersionNumber")] = str(lt.default_version)
        elif kind == "AWS::ElasticLoadBalancingV2::TargetGroup" and not target_group_arn:
            # The twin's Balancer keeps its own deregistration delay (from the template), so the
            # group in moto keeps ELB's default.
            target_group_arn, group_name = create_target_group(raw.elbv2, f"sim-{logical_id}", vpc)
            physical[logical_id] = target_group_arn
            full = target_group_arn.split(":", 5)[5]
            attributes[(logical_id, "TargetGroupFullName")] = full
            attributes[(logical_id, "TargetGroupName")] = group_name
        elif kind == "AWS::EC2::VPC":
            physical[logical_id] = vpc
        elif kind == "AWS::EC2::Subnet":
            index = sum(1 for v in physical.values() if v in subnets)
            physical[logical_id] = subnets[index % len(subnets)]
    supplied: Params = {}
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


SERVICES = {"ec2": "ec2", "elbv2": "elb", "cloudwatch": "cloudwatch", "dynamodb": "dynamodb"}


def install_hooks(clients: AwsClients, twin: Twin) -> None:
    def latency(model: OperationModel, **_: Any) -> None:
        twin.api_latency(SERVICES[model.service_model.service_name], model.name)

    # answer() and observe() keep the API parameters for the hooks that read them; the latency
    # hook needs only the operation.
    for client in (clients.ec2, clients.elbv2, clients.cloudwatch, clients.dynamodb):
        client.meta.events.register_first("before-call.*.*", latency)

    _install_ec2(clients.ec2, twin)
    _install_elb(clients.elbv2, twin)

    def metric_data(params: Params) -> Params:
        twin.advance_traffic()
        return get_metric_data(twin.store, params, twin.now(), twin.sim_time, twin.wall)

    def describe_alarms(params: Params) -> Params:
        names = params.get("AlarmNames")
        types = params.get("AlarmTypes") or ["MetricAlarm"]
        metric: list[Params] = []
        composite: list[Params] = []
        for name, state in twin.alarms.states.items():
            if names is not None and name not in names:
                continue
            entry = {
                "AlarmName": name,
                "AlarmArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
                "StateValue": state.value,
                "StateReason": state.reason,
                "StateUpdatedTimestamp": twin.wall(state.changed_at),
            }
            (composite if name in twin.alarms.composites else metric).append(entry)
        return {
            "MetricAlarms": metric if "MetricAlarm" in types else [],
            "CompositeAlarms": composite if "CompositeAlarm" in types else [],
        }

    answer(clients.cloudwatch, "cloudwatch.GetMetricData", metric_data)
    answer(clients.cloudwatch, "cloudwatch.DescribeAlarms", describe_alarms)


def _install_ec2(ec2: EC2Client, twin: Twin) -> None:
    model = twin.ec2_model

    def capacity() -> Params | None:
        if model.capacity_error():
            return error(
                "InsufficientInstanceCapacity",
                "We currently do not have sufficient capacity in the Availability Zone you requested (simulated).",
            )
        return None

    def check(operation: str) -> Callable[[Params], Params | None]:
        def respond(params: Params) -> Params | None:
            ids = [str(i) for i in params.get("InstanceIds") or ()]
            now = twin.now()
            return (
                not_found(model.states, ids, now)
                or (capacity() if operation == "start" else None)
                or wrong_state(model.states, operation, ids)
            )

        return respond

    def launched(params: Params, parsed: Params) -> None:
        lifecycle = "service"
        for spec in params.get("TagSpecifications") or ():
            for tag in spec.get("Tags") or ():
                if tag.get("Key") == LIFECYCLE_TAG:
                    lifecycle = str(tag["Value"])
        for instance in parsed.get("Instances", []):
            tags = {str(t.get("Key")): str(t.get("Value")) for t in instance.get("Tags") or ()}
            model.launched(instance["InstanceId"], lifecycle, tags.get(VERSION_TAG, ""))

    def each(action: Callable[[str], None]) -> Callable[[Params, Params], None]:
        def seen(params: Params, _: Params) -> None:
            for instance_id in params.get("InstanceIds") or ():
                action(str(instance_id))

        return seen

    def tagged(params: Params, _: Params) -> None:
        for tag in params.get("Tags") or ():
            if tag.get("Key") == LIFECYCLE_TAG:
                for instance_id in params.get("Resources") or ():
                    model.set_lifecycle(str(instance_id), str(tag["Value"]))

    answer(ec2, "ec2.RunInstances", lambda _: capacity())
    answer(ec2, "ec2.StartInstances", check("start"))
    answer(ec2, "ec2.StopInstances", check("stop"))
    answer(ec2, "ec2.TerminateInstances", check("terminate"))
    answer(ec2, "ec2.CreateTags", lambda params: not_found(model.states, instance_resources(params), twin.now()))
    answer(ec2, "ec2.DescribeInstances", lambda params: describe_instances(model.states, params, twin.now(), twin.wall))
    observe(ec2, "ec2.RunInstances", launched)
    observe(ec2, "ec2.StartInstances", each(model.started))
    observe(ec2, "ec2.StopInstances", each(model.stopped))
    observe(ec2, "ec2.TerminateInstances", each(model.terminated))
    observe(ec2, "ec2.CreateTags", tagged)


def _install_elb(elbv2: ElasticLoadBalancingv2Client, twin: Twin) -> None:
    def ours(params: Params) -> list[str]:
        if params.get("TargetGroupArn") != twin.target_group_arn:
            return []
        return [str(t["Id"]) for t in params.get("Targets") or ()]

    def register_check(params: Params) -> Params | None:
        machines = twin.ec2_model.machines
        stopped = [i for i in ours(params) if i in machines and machines[i].state != RUNNING]
        if stopped:
            return error(
                "InvalidTarget",
                "The following targets are not in a running state and cannot be registered: "
                + ", ".join(f"'{i}'" for i in stopped),
            )
        return None

    def registered(params: Params, _: Params) -> None:
        for instance_id in ours(params):
            twin.balancer.register(instance_id, WORKER_PORT)

    def deregistered(params: Params, _: Params) -> None:
        for instance_id in ours(params):
            twin.balancer.deregister(instance_id)

    def target_health(params: Params) -> Params | None:
        if params.get("TargetGroupArn") != twin.target_group_arn:
            return None
        twin.advance_traffic()
        asked = params.get("Targets")
        ids = None if asked is None else [str(t["Id"]) for t in asked]
        return {"TargetHealthDescriptions": twin.balancer.describe(ids)}

    answer(elbv2, "elastic-load-balancing-v2.RegisterTargets", register_check)
    observe(elbv2, "elastic-load-balancing-v2.RegisterTargets", registered)
    observe(elbv2, "elastic-load-balancing-v2.DeregisterTargets", deregistered)
    answer(elbv2, "elastic-load-balancing-v2.DescribeTargetHealth", target_health)
