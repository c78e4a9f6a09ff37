"""The Fleet custom resource's function, as its handler (``handlers.lifecycle``) runs in Lambda.

The handler module is imported the way Lambda finds it, from the function's code root (the
template's ``CodeUri``), and the twin runs the handler's own request logic: which fleet the
request names, the refusals, the lease wait it allows for most of the function's timeout, the
entry point it calls. Two things differ, because there is no Lambda and no CloudFormation here:
the Runtime is the twin's (virtual clock, hooked clients), and the reply of the handler's
``answer``, which the handler would PUT to the request's ``ResponseURL``, is returned (kept with
the invocation) instead. Like the
handler, a failure is a FAILED response, not a function error: CloudFormation does not retry.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from simulator.deployment import FunctionSpec


def handler_module(template_path: Path, fn: FunctionSpec) -> ModuleType:
    """``fn``'s handler module, imported from its code root as Lambda does."""
    module = fn.handler.rsplit(".", 1)[0]
    root = str((template_path.parent / fn.code_uri).resolve())
    if root not in sys.path:
        sys.path.append(root)  # after the installed packages: autoscaler is the same code either way
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"{fn.logical_id}: cannot import its handler module {module!r} from {root}: {exc}") from exc


@dataclass
class Response:
    """What the handler would PUT to CloudFormation (scenario seconds)."""

    t: float
    request_type: str
    status: str
    reason: str
    physical_id: str


@dataclass
class CustomResource:
    module: ModuleType  # handlers.lifecycle
    now: Callable[[], float]  # scenario seconds
    responses: list[Response] = field(default_factory=list)

    def __call__(self, event: dict[str, Any], runtime: Any, timeout: float) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent

        request = CloudFormationCustomResourceEvent(event)
        # The whole timeout is left: the invocation has just started.
        reply = self.module.answer(request, lambda: runtime, timeout)
        self.responses.append(Response(self.now(), request.request_type, reply.status, reply.reason, reply.physical_id))
        return {"Status": reply.status, "Reason": reply.reason, "PhysicalResourceId": reply.physical_id}
