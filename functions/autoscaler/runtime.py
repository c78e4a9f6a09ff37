"""What an invocation runs with: settings, AWS clients, a clock, and the decision strategy.

The strategy is production's ``decide`` unless someone injects another one: the local twin runs
its baseline policies (simulator/policies.py) through the same controller this way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from autoscaler.clock import Clock, SystemClock
from autoscaler.model import Decision, ScalingPolicy, Snapshot
from autoscaler.signals import signal_table

if TYPE_CHECKING:
    # Type stubs, a dev dependency only: the Lambda package has no mypy_boto3_* modules.
    from boto3.session import Session
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

    from autoscaler.settings import Settings

Decider = Callable[[Snapshot, ScalingPolicy, datetime], Decision]


@dataclass(frozen=True)
class AwsClients:
    ec2: EC2Client
    elbv2: ElasticLoadBalancingv2Client
    cloudwatch: CloudWatchClient
    dynamodb: DynamoDBClient

    @classmethod
    def create(
        cls, session: Session | None = None, region: str | None = None, endpoint_url: str | None = None
    ) -> AwsClients:
        import boto3
        from botocore.config import Config

        session = session or boto3.session.Session()
        # Standard retry mode retries throttling (RequestLimitExceeded, Throttling) and transient
        # errors with exponential backoff and jitter; eight attempts ride out an EC2 throttle burst
        # well inside the scaling functions' timeout.
        config = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=5, read_timeout=20)
        # One call per service: the service name, a literal, is what selects each client's type.
        return cls(
            ec2=session.client("ec2", region_name=region, endpoint_url=endpoint_url, config=config),
            elbv2=session.client("elbv2", region_name=region, endpoint_url=endpoint_url, config=config),
            cloudwatch=session.client("cloudwatch", region_name=region, endpoint_url=endpoint_url, config=config),
            dynamodb=session.client("dynamodb", region_name=region, endpoint_url=endpoint_url, config=config),
        )


@dataclass
class Runtime:
    settings: Settings
    clients: AwsClients
    clock: Clock = field(default_factory=SystemClock)
    policy: ScalingPolicy | None = None
    decider: Decider | None = None
    # A powertools Metrics instance inside Lambda; None where nobody flushes metrics.
    metrics: Any = None

    # The policy built from ``settings``, kept while they are the same object (not copied by replace()).
    _built: tuple[Settings, ScalingPolicy] | None = field(default=None, init=False, repr=False, compare=False)

    def scaling_policy(self) -> ScalingPolicy:
        if self.policy is not None:
            return self.policy
        if self._built is None or self._built[0] is not self.settings:
            self._built = (self.settings, policy_from_settings(self.settings))
        return self._built[1]

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
        scale_in_headroom=settings.scale_in_headroom,
        min_step_fraction=settings.min_step_fraction,
        scale_in_stabilization_seconds=settings.scale_in_stabilization_seconds,
        scale_out_follow_through_seconds=settings.scale_out_follow_through_seconds,
        reversal_window_seconds=settings.reversal_window_seconds,
        panic_threshold=settings.panic_threshold,
        panic_window_seconds=settings.panic_window_seconds,
        panic_stable_seconds=settings.panic_stable_seconds,
        backlog_drain_seconds=settings.backlog_drain_seconds,
    )
