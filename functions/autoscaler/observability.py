"""powertools Logger, Metrics and Tracer shared by every function.

The service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE, set by the template.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="autoscaler")
metrics = Metrics(namespace="Autoscaler")
tracer = Tracer(service="autoscaler")
