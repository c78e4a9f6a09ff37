"""What an invocation runs with: settings, AWS clients, a clock, and the decision strategy.

The strategy is production's ``decide`` unless someone injects another one: the local twin runs
its baseline policies (simulator/policies.py) through the same controller this way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from autoscaler.clock import Clock, SystemClock
from autoscaler.model import Decision, ScalingPolicy, Snapshot
from autoscaler.settings import Settings
from autoscaler.signals import signal_table

Decider = Callable[[Snapshot, ScalingPolicy, datetime], Decision]

# Standard retry mode retries throttling (RequestLimitExceeded, Throttling) and transient
# errors with exponential backoff and jitter; eight attempts ride out an EC2 throttle burst
# well inside the scaling functions' timeout.
RETRY_CONFIG = {"mode": "standard", "max_attempts": 8}


@dataclass(frozen=True)
class AwsClients:
    ec2: Any
    elbv2: Any
    cloudwatch: Any
    dynamodb: Any

    @classmethod
    def create(cls, session: Any = None, region: str | None = None, endpoint_url: str | None = None) -> AwsClients:
        import boto3
        from botocore.config import Config

        session = session or boto3.session.Session()
        config = Config(retries=RETRY_CONFIG, connect_timeout=5, read_timeout=20)

        def client(name: str) -> Any:
            return session.client(name, region_name=region, endpoint_url=endpoint_url, config=config)

        return cls(client("ec2"), client("elbv2"), client("cloudwatch"), client("dynamodb"))


@dataclass
class Runtime:
    settings: Settings
    clients: AwsClients
    clock: Clock = field(default_factory=SystemClock)
    policy: ScalingPolicy | None = None
    decider: Decider | None = None
    # A powertools Metrics instance inside Lambda; None where nobody flushes metrics.
    metrics: Any = None

    def scaling_policy(self) -> ScalingPolicy:
        return self.policy if self.policy is not None else policy_from_settings(self.settings)

    def decide(self, snapshot: Snapshot, now: datetime) -> Decision:
        if self.decider is not None:
            return self.decider(snapshot, self.scaling_policy(), now)
        from autoscaler.decide import decide

        return decide(snapshot, self.scaling_policy(), now)


def policy_from_settings(settings: Settings) -> ScalingPolicy:
    """The deployed sizing rules, every value from the settings (the template's)."""
    return ScalingPolicy(
        min_size=settings.min_size,
        max_size=settings.max_size,
        signals=signal_table(settings),
        tolerance=settings.tolerance,
        min_step_fraction=settings.min_step_fraction,
        scale_in_stabilization_seconds=settings.scale_in_stabilization_seconds,
    )
