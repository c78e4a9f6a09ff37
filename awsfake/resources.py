"""What a fleet needs around it, created in moto the same way for the tests and the twin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from awsfake.moto_backends import ACCOUNT, REGION

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.literals import InstanceTypeType
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

__all__ = ["ACCOUNT", "REGION", "LaunchTemplate", "Network", "create_launch_template", "create_network",
           "create_state_table", "create_target_group"]  # fmt: skip

WORKER_PORT = 30000


@dataclass(frozen=True)
class Network:
    vpc: str
    subnets: tuple[str, ...]
    zones: tuple[str, ...]


@dataclass(frozen=True)
class LaunchTemplate:
    template_id: str
    latest_version: int
    default_version: int


def create_network(ec2: EC2Client) -> Network:
    """A VPC with one subnet in each of two Availability Zones: enough to spread a fleet."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    zones = (f"{REGION}a", f"{REGION}b")
    subnets = tuple(
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for n, zone in enumerate(zones)
    )
    return Network(vpc, subnets, zones)


def create_launch_template(ec2: EC2Client, name: str, image_id: str, instance_type: InstanceTypeType) -> LaunchTemplate:
    created = ec2.create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData={"ImageId": image_id, "InstanceType": instance_type}
    )["LaunchTemplate"]
    return LaunchTemplate(created["LaunchTemplateId"], created["LatestVersionNumber"], created["DefaultVersionNumber"])


def create_target_group(
    elbv2: ElasticLoadBalancingv2Client, name: str, vpc: str, deregistration_delay: int | None = None
) -> tuple[str, str]:
    """The workers' target group (HTTP on the worker port, instance targets): its ARN and name.
    ``deregistration_delay`` sets the attribute as the template does; None leaves ELB's 300 s."""
    group = elbv2.create_target_group(
        Name=name[:32], Protocol="HTTP", Port=WORKER_PORT, VpcId=vpc, TargetType="instance"
    )["TargetGroups"][0]
    arn = group["TargetGroupArn"]
    if deregistration_delay is not None:
        elbv2.modify_target_group_attributes(
            TargetGroupArn=arn,
            Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(deregistration_delay)}],
        )
    return arn, group["TargetGroupName"]


def create_state_table(dynamodb: DynamoDBClient, name: str) -> None:
    """The state table's key schema, as template.yaml declares it."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
