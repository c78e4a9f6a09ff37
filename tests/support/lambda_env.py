"""The environment template.yaml gives a function, resolved against a moto fleet.

Handler tests run the code as it is deployed: every variable (log level and service name
included) comes from the template through the one template reader, fleet_template/cfn.py;
only the values that need a deployed stack (table name, launch template, target group, alarm
names) are taken from the fleet the test built in moto.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3

from awsfake.resources import REGION
from fleet_template.cfn import Template, function_environment, load_template, parameter_values
from tests.support.aws import Fleet

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

# Logical id -> handler module, as template.yaml declares them.
FUNCTIONS = {
    "ScaleOutFunction": "handlers.scale_out",
    "ScaleInFunction": "handlers.scale_in",
    "ReconcileFunction": "handlers.reconcile",
    "LifecycleFunction": "handlers.lifecycle",
}
# Variables that select powertools' log level; the template sets one of them, the test runner
# sets another (tests/conftest.py): cleared before the template's environment is applied.
LOG_LEVEL_VARIABLES = ("POWERTOOLS_LOG_LEVEL", "LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL")


def template_parameters(fleet: Fleet, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The template's parameter defaults, with the fleet's name and subnets."""
    template = load_template(TEMPLATE)
    values = {"FleetName": fleet.settings.fleet_name, **(overrides or {})}
    supplied = {"VpcId": "vpc-moto", "SubnetIds": ",".join(fleet.subnets)}
    return parameter_values(template, values, supplied=supplied, require_all=True)


def stack_resources(fleet: Fleet, params: Mapping[str, Any]) -> dict[str, str]:
    """Ref and GetAtt values of the resources the functions' environment names, from moto."""
    s = fleet.settings
    template = Template(load_template(TEMPLATE), dict(params))
    values = {
        "StateTable": s.table_name,
        "LaunchTemplate": s.launch_template_id,
        # What GetAtt answers: the template's latest version, as EC2 (moto) has it now. CloudFormation
        # asks, not the functions: a client of its own, outside the IAM test's recording.
        "LaunchTemplate.LatestVersionNumber": str(
            boto3.client("ec2", region_name=REGION).describe_launch_templates(LaunchTemplateIds=[s.launch_template_id])[
                "LaunchTemplates"
            ][0]["LatestVersionNumber"]
        ),
        "TargetGroup": s.target_group_arn,
        "TargetGroup.TargetGroupFullName": s.target_group_dimension,
        "LoadBalancer.LoadBalancerFullName": s.load_balancer_dimension,
    }
    # Ref of an alarm is its name, which the template derives from the fleet name.
    for logical_id, resource in template.resources("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm").items():
        values[logical_id] = str(template.resolve(resource["Properties"]["AlarmName"]))
    return values


def template_environment(fleet: Fleet, logical_id: str, overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """What Lambda puts in the environment of ``logical_id``, for a stack around ``fleet``."""
    params = template_parameters(fleet, overrides)
    resources = stack_resources(fleet, params)

    def ref(name: str) -> str:
        if name not in resources:
            raise AssertionError(f"the template's environment names {name}, which the test fleet does not model")
        return resources[name]

    return function_environment(load_template(TEMPLATE), logical_id, params, resource_ref=ref)
