"""Scale-in: CloudWatch alarm notifications (via SNS, or a direct alarm action)."""

from __future__ import annotations

from typing import Any

from autoscaler.entrypoints import handle_alarm_event
from autoscaler.lambda_runtime import lambda_runtime
from autoscaler.model import Direction
from autoscaler.observability import logger, metrics, traced
from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_alarm_event(event, lambda_runtime(), Direction.IN, context)
