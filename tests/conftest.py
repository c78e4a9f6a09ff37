"""Fake credentials and a moto-backed fleet for every test; no test can reach AWS."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        # One AMI instead of moto's full catalogue: building an EC2 backend drops from ~5 s to ~0.2 s.
        "MOTO_AMIS_PATH": str(Path(__file__).parent / "support" / "moto_amis.json"),
    }
)
os.environ.pop("AWS_PROFILE", None)
# Idempotency is under test: make sure nobody disabled it (powertools reads this at call time).
os.environ.pop("POWERTOOLS_IDEMPOTENCY_DISABLED", None)


@pytest.fixture
def fleet() -> Iterator[object]:
    from moto import mock_aws

    from tests.support.aws import build_fleet

    with mock_aws():
        yield build_fleet()


@pytest.fixture(autouse=True, scope="session")
def record_api_calls() -> Iterator[None]:
    """Every client the control plane creates records the APIs it calls (tests/support/api_calls.py)."""
    if sys.version_info < (3, 11):  # the worker's tests on the hosts' 3.9: no control plane (3.11+) here
        yield
        return
    from autoscaler.runtime import AwsClients

    from tests.support import api_calls

    original: Any = AwsClients.create.__func__  # type: ignore[attr-defined]

    def create(cls: type[AwsClients], /, *args: object, **kwargs: object) -> AwsClients:
        clients: AwsClients = original(cls, *args, **kwargs)
        for client in (clients.ec2, clients.elbv2, clients.cloudwatch, clients.dynamodb):
            api_calls.install(client)
        return clients

    AwsClients.create = classmethod(create)  # type: ignore[assignment,method-assign]
    yield
    AwsClients.create = classmethod(original)  # type: ignore[assignment,method-assign]
