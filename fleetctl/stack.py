"""Stack discovery: the stack's outputs, and the functions' own settings.

* ``DescribeStacks`` gives the outputs: resource names and ids, the alarm names,
  ``LoadBalancerUrl``, and ``ReconcileFunctionName``;
* ``GetFunctionConfiguration`` of that function gives its environment, from which ``Settings``
  are built exactly as the function builds them (every function of the stack has the same
  settings; a template contract test checks it). There is no second map of parameters to
  variables that a new setting could be missing from (see docs/fleetctl.md).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autoscaler.settings import Settings
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_lambda import LambdaClient

SAMCONFIG = "samconfig.toml"
# The project's own samconfig.toml, next to the fleetctl package (an editable install).
PROJECT_DIRECTORY = Path(__file__).resolve().parent.parent

# The output naming the function whose environment holds the fleet's settings.
SETTINGS_FUNCTION_OUTPUT = "ReconcileFunctionName"
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

    def settings(self, environment: Mapping[str, str]) -> Settings:
        """The fleet's settings from the settings function's ``environment``."""
        from autoscaler.settings import Settings, SettingsError

        try:
            return Settings.from_env(environment)
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


def function_environment(lambda_client: LambdaClient, stack: Stack) -> dict[str, str]:
    """The environment variables of the stack's settings function, as Lambda runs it."""
    name = stack.output(SETTINGS_FUNCTION_OUTPUT)
    configuration = lambda_client.get_function_configuration(FunctionName=name)
    return dict(configuration.get("Environment", {}).get("Variables", {}))
