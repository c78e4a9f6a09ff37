"""The Fleet custom resource's function, as its handler (``handlers.lifecycle``) runs in Lambda.

The handler module is imported the way Lambda finds it, from the function's code root (the
template's ``CodeUri``), and the twin runs the handler's own request logic: which fleet the
request names, the refusals, the lease wait it allows for most of the function's timeout, the
entry point it calls. Two things differ, because there is no Lambda and no CloudFormation here:
the Runtime is the twin's (virtual clock, hooked clients), and the response the handler would
PUT to the request's ``ResponseURL`` is returned (kept with the invocation) instead. Like the
handler, a failure is a FAILED response, not a function error: CloudFormation does not retry.
"""

from __future__ import annotations

import importlib
import json
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

        module = self.module
        request = CloudFormationCustomResourceEvent(event)
        named = module._fleet_named(request)
        prefix = module.PHYSICAL_ID_PREFIX
        physical_id = request.physical_resource_id or f"{prefix}{named or request.logical_resource_id}"
        try:
            if request.request_type not in {"Create", "Update"}:
                raise ValueError(f"the twin sends Create and Update only, got {request.request_type!r}")
            # The handler's rule, with the whole timeout left (the remaining time at the start).
            allowance = module.REPORT_MARGIN_SECONDS + module.RUN_ALLOWANCE_SECONDS
            wait = max(runtime.settings.lease_wait_seconds, timeout - allowance)
            data = module._create_or_update(request, runtime, named or runtime.settings.fleet_name, wait)
            status, reason = "SUCCESS", json.dumps(data, default=str)[:400]
        except module.RequestRefusedError as exc:
            status, reason = "FAILED", str(exc)[:400]
        except Exception as exc:  # the handler reports every failure to CloudFormation
            status, reason = "FAILED", f"{type(exc).__name__}: {exc}"[:400]
        self.responses.append(Response(self.now(), request.request_type, status, reason, physical_id))
        return {"Status": status, "Reason": reason, "PhysicalResourceId": physical_id}
