"""Lifecycle: the CloudFormation custom resource that creates and removes the fleet's instances.

The resource's physical id is ``fleet-<FleetName>``, and every request acts on the fleet it
names: Create and Update on ``ResourceProperties.FleetName``, Delete on the fleet of its
``PhysicalResourceId``. When an Update returns a different physical id, CloudFormation treats
it as a replacement and later sends a Delete for the old id (CloudFormation user guide, "Custom
resource request types"), so a Delete must never act on whatever the function's configuration
names now.

A rename (an Update whose FleetName differs from the fleet of its physical id) is refused: the
instances carry the old name in their fleet tag, which the IAM policy forbids the functions to
change, and after the update the policy only covers the new name, so the old fleet could be
neither adopted nor removed. Deploy a new stack for a new name.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from autoscaler.entrypoints import create_fleet, delete_fleet
from autoscaler.lambda_runtime import lambda_runtime
from autoscaler.observability import logger, metrics, traced
from autoscaler.runtime import Runtime
from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

# Leave time to report back before Lambda's own timeout (CloudFormation would wait an hour).
REPORT_MARGIN_SECONDS = 60
# Time a Create/Update needs once it holds the lease: launching, and waiting up to
# RUNNING_WAIT_SECONDS (60 s) for the instances to run.
RUN_ALLOWANCE_SECONDS = 120
PHYSICAL_ID_PREFIX = "fleet-"


class RequestRefusedError(Exception):
    """The request cannot be carried out as asked; the reason goes to CloudFormation."""


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    request = CloudFormationCustomResourceEvent(event)
    reply = answer(request, lambda_runtime, context.get_remaining_time_in_millis() / 1000)
    respond(request, reply.status, reply.physical_id, reply.reason)


@dataclass(frozen=True)
class Reply:
    """What goes back to CloudFormation."""

    status: str  # SUCCESS | FAILED
    physical_id: str
    reason: str


def answer(
    request: CloudFormationCustomResourceEvent, runtime_of: Callable[[], Runtime], remaining_seconds: float
) -> Reply:
    """Carry out ``request`` with ``remaining_seconds`` of the invocation left; every failure is
    a FAILED reply (CloudFormation does not retry, and would otherwise wait an hour). The twin
    calls this too, with its own runtime."""
    named = _fleet_named(request)
    physical_id = request.physical_resource_id or (
        f"{PHYSICAL_ID_PREFIX}{named}" if named else f"{PHYSICAL_ID_PREFIX}{request.logical_resource_id}"
    )
    try:
        runtime = runtime_of()
        managed = runtime.settings.fleet_name
        if request.request_type == "Delete":
            fleet = _fleet_of(request.physical_resource_id) or named or managed
            timeout = max(remaining_seconds - REPORT_MARGIN_SECONDS, 30)
            data = delete_fleet(_for_fleet(runtime, fleet), timeout_seconds=timeout)
            status = "SUCCESS" if data["status"] == "deleted" else "FAILED"
        else:
            # A scaling run may hold the lease for about a minute, and a crashed one until its
            # lease expires (LEASE_SECONDS): wait for most of the remaining time rather than fail
            # the deploy (and possibly its rollback) on a busy lease.
            allowance = REPORT_MARGIN_SECONDS + RUN_ALLOWANCE_SECONDS
            wait = max(runtime.settings.lease_wait_seconds, remaining_seconds - allowance)
            data = _create_or_update(request, runtime, named or managed, wait)
            status = "SUCCESS"
        reason = json.dumps(data, default=str)[:400]
    except RequestRefusedError as exc:
        logger.error("custom resource request refused", extra={"refusal": str(exc)})
        status, reason = "FAILED", str(exc)[:400]
    except Exception as exc:  # every failure must reach CloudFormation, or the stack hangs
        logger.exception("custom resource failed")
        status, reason = "FAILED", f"{type(exc).__name__}: {exc}"[:400]
    return Reply(status, physical_id, reason)


def _create_or_update(
    request: CloudFormationCustomResourceEvent, runtime: Runtime, fleet: str, lease_wait_seconds: float
) -> dict[str, Any]:
    managed = runtime.settings.fleet_name
    if request.request_type == "Update":
        current = _fleet_of(request.physical_resource_id) or fleet
        if fleet != current:
            raise RequestRefusedError(
                f"FleetName cannot change on an update ({current!r} -> {fleet!r}): the instances are "
                f"tagged with the old name and the IAM policy follows the new one. Deploy a new stack "
                f"for the new name, or delete this one first; nothing was changed."
            )
        previous = str(request.old_resource_properties.get("FleetName") or fleet)
        if previous != fleet:
            # The rollback of a refused rename: that Update changed nothing, so nothing to undo.
            return {"status": "unchanged", "fleet": fleet}
    if fleet != managed:
        raise RequestRefusedError(
            f"the Fleet resource names fleet {fleet!r} but the functions manage {managed!r} "
            f"(FLEET_NAME); nothing was changed"
        )
    return create_fleet(runtime, lease_wait_seconds=lease_wait_seconds)


def _fleet_named(request: CloudFormationCustomResourceEvent) -> str | None:
    name = request.resource_properties.get("FleetName")
    return str(name) if name else None


def _fleet_of(physical_id: str | None) -> str | None:
    if physical_id and physical_id.startswith(PHYSICAL_ID_PREFIX) and len(physical_id) > len(PHYSICAL_ID_PREFIX):
        return physical_id[len(PHYSICAL_ID_PREFIX) :]
    return None


def _for_fleet(runtime: Runtime, fleet: str) -> Runtime:
    if fleet == runtime.settings.fleet_name:
        return runtime
    return replace(runtime, settings=runtime.settings.replace(fleet_name=fleet))


def respond(request: CloudFormationCustomResourceEvent, status: str, physical_id: str, reason: str) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason,
            "PhysicalResourceId": physical_id,
            "StackId": request.stack_id,
            "RequestId": request.request_id,
            "LogicalResourceId": request.logical_resource_id,
            "Data": {},
        }
    ).encode()
    put = urllib.request.Request(  # noqa: S310 - CloudFormation's pre-signed https URL
        request.response_url,
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    with urllib.request.urlopen(put, timeout=30) as response:  # noqa: S310
        logger.info("reported to CloudFormation", extra={"status": status, "http": response.status})
