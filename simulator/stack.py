"""What a ``sam deploy`` of a changed worker does to the running stack, as CloudFormation does it.

CloudFormation updates a resource after the resources it refers to (Ref, GetAtt: CloudFormation
user guide, "DependsOn attribute"):
1. the launch template gets a new version with the changed data (an ``AWS::EC2::LaunchTemplate``
   is immutable: EC2 user guide, "Modify a launch template (manage launch template
   versions)"), and ``LatestVersionNumber`` follows it;
2. every function whose environment refers to it gets the new configuration
   (UpdateFunctionConfiguration: later invocations run in new execution environments with it);
3. the custom resource that refers to it gets an **Update** request with the new and the old
   properties (CloudFormation user guide, "Update request for CloudFormation custom
   resources").

This module holds the pieces that are plain data: the launch template version in moto, the
custom resource's resolved properties and its request. ``harness.py`` carries the deploy out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fleet_template.cfn import Template
from simulator.deployment import SIM_PSEUDO

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

CUSTOM_RESOURCE_TYPES = ("AWS::CloudFormation::CustomResource",)
LATEST = "LatestVersionNumber"
RESPONSE_URL = "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/sim"


@dataclass(frozen=True)
class Deploy:
    """One deploy as it happened in the run (scenario seconds)."""

    at: float
    version: str  # the launch template version it created
    previous: str  # the version the functions launched before it
    healthy: bool
    install_seconds: tuple[float, float] | None


def new_launch_template_version(ec2: EC2Client, template_id: str) -> int:
    """CreateLaunchTemplateVersion with the latest version's data (the deploy changes what the
    twin does not model: the AMI, the worker layer); its number."""
    latest = ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=["$Latest"])
    data: Any = latest["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    created = ec2.create_launch_template_version(
        LaunchTemplateId=template_id,
        SourceVersion=str(latest["LaunchTemplateVersions"][0]["VersionNumber"]),
        LaunchTemplateData=data,
        VersionDescription="sam deploy (simulated)",
    )
    return int(created["LaunchTemplateVersion"]["VersionNumber"])


def launch_template_of(template: Template) -> str | None:
    """The logical id of the template's launch template (the one the functions launch from)."""
    return next(iter(template.resources("AWS::EC2::LaunchTemplate")), None)


def custom_resource_of(template: Template, service_token: str) -> tuple[str, str] | None:
    """(logical id, type) of the custom resource served by the function ``service_token``."""
    for logical_id, resource in template.declared_resources.items():
        kind = str(resource.get("Type", ""))
        if not (kind.startswith("Custom::") or kind in CUSTOM_RESOURCE_TYPES):
            continue
        props = template.resolve((resource.get("Properties") or {}).get("ServiceToken"))
        if props == service_token:
            return logical_id, kind
    return None


def resource_properties(template: Template, logical_id: str) -> dict[str, Any]:
    """The custom resource's properties as the request carries them: resolved, and scalars as
    strings (a Ref to a Number parameter and a GetAtt of a version number are strings)."""
    props = template.resolve(template.declared_resources[logical_id].get("Properties") or {})
    return {str(k): _stringify(v) for k, v in props.items()}


def _stringify(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _stringify(v) for k, v in value.items()}
    return value


def physical_id(properties: dict[str, Any], logical_id: str) -> str:
    """The Fleet resource's physical id as the lifecycle handler returns it: ``fleet-<FleetName>``."""
    return f"fleet-{properties.get('FleetName') or logical_id}"


def custom_resource_request(
    request_type: str,
    logical_id: str,
    resource_type: str,
    properties: dict[str, Any],
    old_properties: dict[str, Any] | None = None,
    *,
    seed: str = "",
) -> dict[str, Any]:
    """A CloudFormation custom resource request (Create or Update), shaped like the real one."""
    request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{request_type}:{logical_id}:{seed}"))
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": properties.get("ServiceToken", ""),
        "ResponseURL": f"{RESPONSE_URL}/{request_id}",
        "StackId": SIM_PSEUDO["AWS::StackId"],
        "RequestId": request_id,
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "ResourceProperties": dict(properties),
    }
    if request_type != "Create":
        # The id the Create returned, from the properties it was created with.
        event["PhysicalResourceId"] = physical_id(old_properties or properties, logical_id)
    if request_type == "Update":
        event["OldResourceProperties"] = dict(old_properties or {})
    return event
