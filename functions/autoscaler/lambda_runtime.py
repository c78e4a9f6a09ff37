"""The runtime of a Lambda execution environment, built once per cold start."""

from __future__ import annotations

from functools import cache

from autoscaler.observability import metrics
from autoscaler.runtime import AwsClients, Runtime
from autoscaler.settings import Settings


@cache
def lambda_runtime() -> Runtime:
    """Settings from the environment (fails loudly, naming the variable), clients with retries."""
    return Runtime(settings=Settings.from_env(), clients=AwsClients.create(), metrics=metrics)
