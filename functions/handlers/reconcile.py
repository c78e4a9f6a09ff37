"""Reconcile: the every-minute EventBridge schedule (CloudWatch does not repeat notifications)."""

from __future__ import annotations

from typing import Any

from autoscaler.entrypoints import reconcile
from autoscaler.lambda_runtime import lambda_runtime
from autoscaler.observability import logger, metrics, traced
from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(f"schedule@{event.get('time', '')}")
    return reconcile(lambda_runtime())
