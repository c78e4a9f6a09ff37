"""Stack discovery: one ``DescribeStacks`` call gives the outputs and parameters fleetctl needs.

Settings come from the stack itself, never from a local config file:

* outputs carry the resource names and ids (``FleetName``, ``StateTableName``,
  ``LaunchTemplateId``, ``SubnetIds``, ``TargetGroupArn``, ``TargetGroupDimension``, the alarm
  names, ``LoadBalancerUrl``);
* parameters carry the tunables that are not outputs (``MinSize``, ``MaxSize``,
  ``WarmPoolSize``, ``CpuTarget``, ...).

The template maps the same outputs and parameters into the functions' environment, so the
``Settings`` built here equal the functions' own (see docs/fleetctl.md).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autoscaler.settings import Settings, SettingsError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

SAMCONFIG = "samconfig.toml"
# The project's own samconfig.toml, next to the fleetctl package (an editable install).
PROJECT_DIRECTORY = Path(__file__).resolve().parent.parent

# Settings field (upper-cased, as in the functions' environment) -> stack output.
OUTPUT_SETTINGS = {
    "FLEET_NAME": "FleetName",
    "TABLE_NAME": "StateTableName",
    "LAUNCH_TEMPLATE_ID": "LaunchTemplateId",
    "LAUNCH_TEMPLATE_VERSION": "LaunchTemplateVersion",
    "SUBNET_IDS": "SubnetIds",
    "TARGET_GROUP_ARN": "TargetGroupArn",
    "TARGET_GROUP_DIMENSION": "TargetGroupDimension",
    "LOAD_BALANCER_DIMENSION": "LoadBalancerDimension",
    "SCALE_OUT_ALARM_NAMES": "ScaleOutAlarmNames",
    "SCALE_IN_ALARM_NAMES": "ScaleInAlarmNames",
}
# Settings field -> stack parameter (tunables that are not outputs).
PARAMETER_SETTINGS = {
    "MIN_SIZE": "MinSize",
    "MAX_SIZE": "MaxSize",
    "WARM_POOL_SIZE": "WarmPoolSize",
    "MAX_PREPARED_CAPACITY": "WarmPoolMaxPreparedCapacity",
    "CPU_TARGET": "CpuTarget",
    "REQUESTS_PER_TARGET_TARGET": "RequestsPerTargetTarget",
    "SCALE_IN_STABILIZATION_SECONDS": "ScaleInStabilizationSeconds",
    "TOLERANCE": "Tolerance",
    "MIN_STEP_FRACTION": "MinStepFraction",
    "METRIC_WINDOW_SECONDS": "MetricWindowSeconds",
    "SCALE_OUT_WINDOW_SECONDS": "ScaleOutWindowSeconds",
}
# Outputs naming further alarms of the fleet (shown by ``fleetctl alarms``).
ALARM_NAME_OUTPUTS = ("ScaleOutAlarmNames", "ScaleInAlarmNames", "CpuLowAlarmName", "RequestsLowAlarmName")


def default_stack_name(directories: Iterable[Path] | None = None) -> str | None:
    """The stack ``sam deploy`` creates: ``stack_name`` of the default environment in
    samconfig.toml (deploy, else global parameters), from the current directory as SAM CLI reads
    it, else from the project's own. None when there is no samconfig.toml to read."""
    for directory in directories if directories is not None else (Path.cwd(), PROJECT_DIRECTORY):
        path = directory / SAMCONFIG
        if not path.is_file():
            continue
        default = tomllib.loads(path.read_text(encoding="utf-8")).get("default", {})
        for command in ("deploy", "global"):
            name = default.get(command, {}).get("parameters", {}).get("stack_name")
            if name:
                return str(name)
    return None


class StackError(Exception):
    """The stack is missing, not ready, or not an autoscaler stack."""


@dataclass(frozen=True)
class Stack:
    name: str
    status: str
    outputs: dict[str, str]
    parameters: dict[str, str]

    def output(self, key: str) -> str:
        value = self.outputs.get(key)
        if not value:
            raise StackError(f"stack {self.name!r} has no output {key!r} (is it an ec2-fleet-autoscaler stack?)")
        return value

    def environment(self) -> dict[str, str]:
        """The functions' environment variables, as far as the stack's outputs and parameters tell."""
        env = {var: self.outputs[out] for var, out in OUTPUT_SETTINGS.items() if self.outputs.get(out)}
        env.update({var: self.parameters[p] for var, p in PARAMETER_SETTINGS.items() if self.parameters.get(p)})
        return env

    def settings(self) -> Settings:
        try:
            return Settings.from_env(self.environment())
        except SettingsError as exc:
            raise StackError(f"stack {self.name!r} does not describe a fleet: {exc}") from exc

    def alarm_names(self) -> list[str]:
        names: list[str] = []
        for key in ALARM_NAME_OUTPUTS:
            names.extend(n.strip() for n in self.outputs.get(key, "").split(",") if n.strip())
        return list(dict.fromkeys(names))


def describe(cloudformation: CloudFormationClient, name: str) -> Stack:
    """Find the stack by name; ``StackError`` when it does not exist."""
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in str(error.get("Message", "")):
            raise StackError(f"stack {name!r} not found (check --stack, --region and --profile)") from exc
        raise
    if not stacks:
        raise StackError(f"stack {name!r} not found (check --stack, --region and --profile)")
    raw = stacks[0]
    return Stack(
        name=raw["StackName"],
        status=raw.get("StackStatus", ""),
        outputs={o["OutputKey"]: o.get("OutputValue", "") for o in raw.get("Outputs", [])},
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in raw.get("Parameters", [])},
    )
