"""powertools Logger, Metrics and Tracer shared by every function.

The service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE, set by the template. The Tracer is built on first use: importing
aws_xray_sdk costs ~0.25 s, which would more than double the handlers' import time
(benchmarks/control_plane.py), and fleetctl and the simulator never trace.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="autoscaler")
metrics = Metrics(namespace="Autoscaler")

Handler = TypeVar("Handler", bound=Callable[..., Any])


@functools.cache
def tracer() -> Any:
    from aws_lambda_powertools import Tracer

    return Tracer(service="autoscaler")


def traced(handler: Handler) -> Handler:
    """``Tracer.capture_lambda_handler``, with the Tracer created at the first invocation."""
    wrapped: Callable[..., Any] | None = None

    @functools.wraps(handler)
    def invoke(event: Any, context: Any) -> Any:
        nonlocal wrapped
        if wrapped is None:
            wrapped = tracer().capture_lambda_handler(handler)
        return wrapped(event, context)

    return invoke  # type: ignore[return-value]
