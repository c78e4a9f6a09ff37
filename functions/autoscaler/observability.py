"""powertools Logger, Metrics and Tracer shared by every function.

They read the environment the template sets when they are built (at import, in Lambda): the
service name from POWERTOOLS_SERVICE_NAME (one per function), the log level from
POWERTOOLS_LOG_LEVEL, the metrics namespace from POWERTOOLS_METRICS_NAMESPACE. The Tracer is
built on first use: importing aws_xray_sdk costs ~0.25 s, which would more than double the
handlers' import time (benchmarks/control_plane.py), and fleetctl and the simulator never trace.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
# No "service" dimension: powertools adds one whenever a service name is set, unless given an
# empty one, and CloudWatch matches a metric on its exact dimension set. A fleet's metrics are
# one series whichever function emitted them; the dashboard asks for {Fleet} (tests/integration/
# test_cold_start.py checks every dashboard query against the EMF the functions print).
METRICS_SERVICE = ""
metrics = Metrics(service=METRICS_SERVICE)

Handler = TypeVar("Handler", bound=Callable[..., Any])


@functools.cache
def tracer() -> Any:
    from aws_lambda_powertools import Tracer

    return Tracer()


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
