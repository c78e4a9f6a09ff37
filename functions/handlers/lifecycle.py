"""Lifecycle: the CloudFormation custom resource that creates and removes the fleet's instances."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from autoscaler.entrypoints import create_fleet, delete_fleet
from autoscaler.lambda_runtime import lambda_runtime
from autoscaler.observability import logger, traced
from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

# Leave time to report back before Lambda's own timeout (CloudFormation would wait an hour).
REPORT_MARGIN_SECONDS = 60


@logger.inject_lambda_context(clear_state=True)
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    request = CloudFormationCustomResourceEvent(event)
    physical_id = request.physical_resource_id or f"fleet-{request.logical_resource_id}"
    try:
        runtime = lambda_runtime()
        if request.request_type == "Delete":
            timeout = max(context.get_remaining_time_in_millis() / 1000 - REPORT_MARGIN_SECONDS, 30)
            data = delete_fleet(runtime, timeout_seconds=timeout)
            status = "SUCCESS" if data["status"] == "deleted" else "FAILED"
        else:
            data = create_fleet(runtime)
            status = "SUCCESS"
        physical_id = f"fleet-{runtime.settings.fleet_name}"
        reason = json.dumps(data, default=str)[:400]
    except Exception as exc:  # every failure must reach CloudFormation, or the stack hangs
        logger.exception("custom resource failed")
        status, reason, data = "FAILED", f"{type(exc).__name__}: {exc}"[:400], {}
    respond(request, status, physical_id, reason)


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
