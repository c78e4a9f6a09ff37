"""Render the launch template's user-data the way CloudFormation ``Fn::Sub`` does.

``Fn::Sub`` replaces ``${Name}`` (and ``${Resource.Attr}``, ``${AWS::Region}``...) with values,
turns ``${!Literal}`` into ``${Literal}``, and leaves ``$var`` alone. :func:`render` does the
same with a dict of values and raises on a placeholder it has no value for, which is what the
stack would do, so a braced shell variable slipped into the stub fails the tests, not the
deployment. The stub itself lives only in ``template.yaml``; :func:`user_data` reads it from a
loaded template (``fleet_template.cfn.load_template``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fleet_template.cfn import Template

PLACEHOLDERS = (
    "AWS::Region",
    "FleetName",
    "WorkerLayerVersionArn",
    "CpuMetricNamespace",
    "WorkerQueueBudgetSeconds",
    "DemandTopicArn",
    "PanicThreshold",
    "CpuTarget",
)

_PATTERN = re.compile(r"\$\{([^}]*)\}")


class UnresolvedPlaceholderError(KeyError):
    """A ``${...}`` in the template has no value."""


def placeholders(template_text: str) -> set[str]:
    """Names of every ``${Name}`` in the text (``${!Literal}`` escapes excluded)."""
    return {m.group(1) for m in _PATTERN.finditer(template_text) if not m.group(1).startswith("!")}


def render(template_text: str, values: Mapping[str, str]) -> str:
    """Replace every ``${Name}`` with ``values[Name]``; ``${!X}`` becomes ``${X}``: the template
    reader's own ``Fn::Sub``, with ``values`` as the only names it knows."""
    missing = sorted(placeholders(template_text) - set(values))
    if missing:
        raise UnresolvedPlaceholderError(missing[0])
    return str(Template({}, dict(values)).resolve({"Fn::Sub": template_text}))


def user_data(template: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The launch template's ``UserData``: the ``Fn::Sub`` text and its variables."""
    data = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    sub = data["Fn::Base64"]["Fn::Sub"]
    if isinstance(sub, str):
        return sub, {}
    text, variables = sub
    return str(text), dict(variables)
