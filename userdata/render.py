"""Render ``bootstrap.sh`` the way CloudFormation ``Fn::Sub`` does.

``Fn::Sub`` replaces ``${Name}`` (and ``${Resource.Attr}``, ``${AWS::Region}``...) with values,
turns ``${!Literal}`` into ``${Literal}``, and leaves ``$var`` alone. :func:`render` does the
same with a dict of values and raises on a placeholder it has no value for, which is what the
stack would do, so a braced shell variable slipped into the script fails the tests, not the
deployment.
"""

from __future__ import annotations

import re
from pathlib import Path

PLACEHOLDERS = ("AWS::Region", "FleetName", "WorkerLayerVersionArn", "CpuMetricNamespace")
BOOTSTRAP = Path(__file__).with_name("bootstrap.sh")

_PATTERN = re.compile(r"\$\{([^}]*)\}")


class UnresolvedPlaceholderError(KeyError):
    """A ``${...}`` in the template has no value."""


def placeholders(template_text: str) -> set[str]:
    """Names of every ``${Name}`` in the text (``${!Literal}`` escapes excluded)."""
    return {m.group(1) for m in _PATTERN.finditer(template_text) if not m.group(1).startswith("!")}


def render(template_text: str, values: dict[str, str]) -> str:
    """Replace every ``${Name}`` with ``values[Name]``; ``${!X}`` becomes ``${X}``."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name not in values:
            raise UnresolvedPlaceholderError(name)
        return values[name]

    return _PATTERN.sub(substitute, template_text)


def render_bootstrap(values: dict[str, str]) -> str:
    """``bootstrap.sh`` rendered with values for the four allowed placeholders."""
    return render(BOOTSTRAP.read_text(encoding="utf-8"), values)
