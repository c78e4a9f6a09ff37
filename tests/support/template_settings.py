"""The control plane's settings as template.yaml deploys them, every parameter at its default.

Unit and integration tests start from these, so no test runs with values nobody deploys; the
values a deployed stack provides (resource names and ids) are placeholders to override.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from autoscaler.settings import Settings

from fleet_template.cfn import function_environment, load_template, parameter_values

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
REQUIRED_PARAMETERS = {
    "VpcId": "vpc-0123456789abcdef0",
    "SubnetIds": "subnet-0aaaaaaaaaaaaaaaa,subnet-0bbbbbbbbbbbbbbbb",
    "AmiId": "ami-0123456789abcdef0",
}


@cache
def _template_environment() -> dict[str, str]:
    template = load_template(TEMPLATE)
    return function_environment(template, "ReconcileFunction", parameter_values(template, REQUIRED_PARAMETERS))


def template_environment() -> dict[str, str]:
    """The reconcile function's environment variables with every template parameter at its default."""
    return dict(_template_environment())


@cache
def _template_settings() -> Settings:
    return Settings.from_env(_template_environment())


def template_settings(**overrides: Any) -> Settings:
    """The reconcile function's settings with every template parameter at its default."""
    return _template_settings().replace(**overrides)


@cache
def _parameter_defaults() -> dict[str, str]:
    template = load_template(TEMPLATE)
    return {name: str(value) for name, value in parameter_values(template).items()}


def template_parameter_defaults() -> dict[str, str]:
    """Every template parameter with a default, as strings (as DescribeStacks reports them)."""
    return dict(_parameter_defaults())
