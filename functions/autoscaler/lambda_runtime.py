"""The runtime of a Lambda execution environment, built once per cold start."""

from __future__ import annotations

from functools import cache

from autoscaler.observability import metrics
from autoscaler.runtime import AwsClients, Runtime


@cache
def lambda_runtime() -> Runtime:
    """Settings from the environment (fails loudly, naming the variable), clients with retries."""
    # Here, not at import: pydantic's import is a cold-start cost the first invocation pays
    # (benchmarks/control_plane.py measures both).
    from autoscaler.settings import Settings

    return Runtime(settings=Settings.from_env(), clients=AwsClients.create(), metrics=metrics)
