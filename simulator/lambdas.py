"""SNS delivery and Lambda invocations that take time: cold starts, API latency, sleeps, timeouts.

Each invocation runs the real handler code in its own greenlet. Whenever the code waits (its
own ``clock.sleep``, or an AWS call's latency, see ``aws.py``) the greenlet hands control back
to SimPy, which lets virtual time pass and other processes run: two invocations interleave at
their API calls as they would in AWS, so the DynamoDB lease, DescribeTargetHealth and the
metrics all see the world as it is at that moment.

Sources: Lambda developer guide "Invoking a Lambda function asynchronously" (two retries on
error, 1 and 2 minutes apart; events older than MaximumEventAgeInSeconds are dropped; throttled
events retried with backoff up to 5 minutes) and "Configure Lambda function timeout" (an
invocation running longer is stopped, wherever it is).
"""

from __future__ import annotations

import contextlib
import json
import random
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import simpy
from greenlet import greenlet

from simulator.deployment import AlarmSpec, FunctionSpec
from simulator.params import ModelParams

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

Handler = Callable[[dict[str, Any]], Any]  # runs the function body, returns its result


class LambdaTimeout(BaseException):
    """The invocation ran past its function timeout: Lambda stops it where it is."""


class Invocation(greenlet):
    """The greenlet of one invocation; ``killed`` once Lambda stopped it."""

    killed = False


class ExecutionState(Protocol):
    """What one execution environment keeps to itself but the twin's invocations share, as
    they run in one process: taken when an invocation pauses, put back when it resumes."""

    def capture(self) -> object: ...

    def restore(self, state: object | None) -> None:
        """``None``: a new invocation's, before it set anything."""


class LoggerKeys:
    """A powertools logger's appended keys (service, correlation id), per invocation."""

    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def capture(self) -> object:
        return dict(self.logger.get_current_keys())

    def restore(self, state: object | None) -> None:
        self.logger.clear_state()
        if isinstance(state, dict):
            self.logger.append_keys(**state)


class VirtualClock:
    """The control plane's clock: SimPy time on a wall-clock epoch; ``sleep`` yields to SimPy."""

    def __init__(self, env: simpy.Environment, epoch: datetime) -> None:
        self.env = env
        self.epoch = epoch

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=self.env.now)

    def sleep(self, seconds: float) -> None:
        current = greenlet.getcurrent()
        if not isinstance(current, Invocation):
            raise RuntimeError("the twin's clock can only sleep inside an invocation")
        if current.killed:
            raise LambdaTimeout
        assert current.parent is not None
        current.parent.switch(max(0.0, seconds))
        if current.killed:
            raise LambdaTimeout


@dataclass
class InvocationRecord:
    function: str
    at: float
    cold: bool
    seconds: float = 0.0
    ok: bool = True
    result: Any = None
    error: str | None = None
    attempt: int = 0


@dataclass
class FunctionModel:
    spec: FunctionSpec
    handler: Handler
    slots: simpy.Resource
    warm_until: list[float] = field(default_factory=list)  # idle execution environments


class LambdaModel:
    MAX_THROTTLE_BACKOFF = 300.0
    ASYNC_RETRY_DELAYS = (60.0, 120.0)

    def __init__(
        self, env: simpy.Environment, params: ModelParams, rng: random.Random, state: ExecutionState | None = None
    ) -> None:
        self.env = env
        self.params = params
        self.rng = rng
        # Two invocations that interleave at their waits would otherwise log with each other's
        # correlation id: in Lambda each has its own execution environment.
        self.state = state
        self.functions: dict[str, FunctionModel] = {}
        self.invocations: list[InvocationRecord] = []

    def add(self, spec: FunctionSpec, handler: Handler) -> None:
        capacity = spec.reserved_concurrency if spec.reserved_concurrency else 1000
        self.functions[spec.arn] = FunctionModel(spec, handler, simpy.Resource(self.env, capacity=max(1, capacity)))

    def update(self, spec: FunctionSpec) -> None:
        """UpdateFunctionConfiguration: later invocations run with ``spec`` in new execution
        environments (Lambda API reference, "UpdateFunctionConfiguration": once the update is
        complete the function processes events with the new configuration); the ones running
        finish with the configuration they started with."""
        fn = self.functions[spec.arn]
        fn.spec = spec
        fn.warm_until = []

    def invoke_async(self, arn: str, event: dict[str, Any], delay: float = 0.0) -> simpy.Process:
        """Queue an asynchronous invocation; the process ends with its last attempt's record
        (None if Lambda dropped the event)."""
        return self.env.process(self._invoke(self.functions[arn], event, delay))

    def _invoke(
        self, fn: FunctionModel, event: dict[str, Any], delay: float
    ) -> Generator[Any, Any, InvocationRecord | None]:
        if delay > 0:
            yield self.env.timeout(delay)
        queued_at = self.env.now
        for attempt in range(len(self.ASYNC_RETRY_DELAYS) + 1):
            backoff = 1.0
            while fn.slots.count >= fn.slots.capacity:  # throttled: async retries with backoff
                yield self.env.timeout(backoff * self.rng.uniform(0.5, 1.0))
                backoff = min(self.MAX_THROTTLE_BACKOFF, backoff * 2)
            with fn.slots.request() as slot:
                yield slot
                record = yield from self._run(fn, event, attempt)
            if record.ok:
                return record
            if attempt < len(self.ASYNC_RETRY_DELAYS):
                yield self.env.timeout(self.ASYNC_RETRY_DELAYS[attempt])
                if self.env.now - queued_at > fn.spec.maximum_event_age:
                    return None  # Lambda drops it (then the on-failure destination gets it)
        return record

    def _run(self, fn: FunctionModel, event: dict[str, Any], attempt: int) -> Generator[Any, Any, InvocationRecord]:
        now = self.env.now
        fn.warm_until = [t for t in fn.warm_until if t > now]
        cold = not fn.warm_until
        if not cold:
            fn.warm_until.pop()
        p = self.params
        yield self.env.timeout((p.lambda_cold_seconds if cold else p.lambda_warm_seconds).sample(self.rng))
        record = InvocationRecord(fn.spec.name, self.env.now, cold, attempt=attempt)
        started = self.env.now
        deadline = started + fn.spec.timeout
        task = Invocation(lambda: fn.handler(event))
        own: list[object | None] = [None]

        def resume(throw: bool = False) -> Any:
            if self.state is not None:
                self.state.restore(own[0])
            try:
                return task.throw(LambdaTimeout) if throw else task.switch()
            finally:
                if self.state is not None:
                    own[0] = self.state.capture()

        try:
            value = resume()
            while not task.dead:
                if self.env.now + value > deadline:
                    yield self.env.timeout(max(0.0, deadline - self.env.now))
                    task.killed = True
                    with contextlib.suppress(LambdaTimeout):
                        resume(throw=True)
                    raise LambdaTimeout
                yield self.env.timeout(value)
                value = resume()
            record.result = value
        except LambdaTimeout:
            record.ok = False
            record.error = f"Task timed out after {fn.spec.timeout:.0f} seconds"
        except Exception as exc:  # a function error: Lambda retries async events
            record.ok = False
            record.error = f"{type(exc).__name__}: {exc}"
        record.seconds = self.env.now - started
        self.invocations.append(record)
        fn.warm_until.append(self.env.now + p.lambda_keepalive_seconds)
        return record


def alarm_time(when: datetime) -> str:
    """CloudWatch's StateChangeTime format: 2026-01-01T00:10:00.000+0000."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def sns_alarm_event(
    alarm: AlarmSpec | None, name: str, old: str, new: str, when: datetime, topic_arn: str, reason: str
) -> dict[str, Any]:
    """An SNS event carrying a CloudWatch alarm notification, shaped like the real one."""
    message: dict[str, Any] = {
        "AlarmName": name,
        "AlarmDescription": alarm.description if alarm else None,
        "AWSAccountId": "123456789012",
        "AlarmConfigurationUpdatedTimestamp": "2026-01-01T00:00:00.000+0000",
        "NewStateValue": new,
        "NewStateReason": reason,
        "StateChangeTime": alarm_time(when),
        "Region": "EU (Ireland)",
        "AlarmArn": f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}",
        "OldStateValue": old,
        "OKActions": [],
        "AlarmActions": [topic_arn],
        "InsufficientDataActions": [],
    }
    if alarm is not None:
        m = alarm.metric
        message["Trigger"] = {
            "MetricName": m.name,
            "Namespace": m.namespace,
            "StatisticType": "Statistic",
            "Statistic": m.statistic.upper(),
            "Unit": None,
            "Dimensions": [{"value": v, "name": k} for k, v in m.dimensions],
            "Period": m.period,
            "EvaluationPeriods": alarm.evaluation_periods,
            "DatapointsToAlarm": alarm.datapoints_to_alarm,
            "ComparisonOperator": alarm.comparison,
            "Threshold": alarm.threshold,
            "TreatMissingData": alarm.treat_missing_data,
            "EvaluateLowSampleCountPercentile": "",
        }
    message_id = str(uuid.UUID(int=random.Random(f"{name}{when.isoformat()}{topic_arn}").getrandbits(128)))
    return sns_event(topic_arn, message_id, json.dumps(message), when, f'{new}: "{name}" in EU (Ireland)')


def host_demand_event(
    topic_arn: str, fleet: str, instance_id: str, when: datetime, namespace: str, metrics: dict[str, float]
) -> dict[str, Any]:
    """The SNS event of a host's demand report (docs/contracts.md), as its publisher sends it."""
    message = {
        "AutoscalerHostDemand": 1,
        "Fleet": fleet,
        "InstanceId": instance_id,
        "Timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        "PeriodSeconds": 10.0,
        "Namespace": namespace,
        "Metrics": {name: round(value, 3) for name, value in metrics.items()},
    }
    message_id = str(uuid.UUID(int=random.Random(f"{instance_id}{when.isoformat()}{topic_arn}").getrandbits(128)))
    return sns_event(topic_arn, message_id, json.dumps(message, separators=(",", ":")), when, None,
                     {"Fleet": {"Type": "String", "Value": fleet}})  # fmt: skip


def sns_event(
    topic_arn: str,
    message_id: str,
    message: str,
    when: datetime,
    subject: str | None,
    attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Lambda event of one SNS notification (one record: SNS never batches for Lambda)."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:{message_id}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": topic_arn,
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.invalid/cert.pem",
                    "UnsubscribeUrl": "https://sns.invalid/unsubscribe",
                    "MessageAttributes": attributes or {},
                },
            }
        ]
    }


def direct_alarm_event(name: str, old: str, new: str, when: datetime, reason: str) -> dict[str, Any]:
    """The payload of an alarm that invokes Lambda directly."""
    stamp = alarm_time(when)
    return {
        "source": "aws.cloudwatch",
        "alarmArn": f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}",
        "accountId": "123456789012",
        "time": stamp,
        "region": "eu-west-1",
        "alarmData": {
            "alarmName": name,
            "state": {"value": new, "reason": reason, "timestamp": stamp},
            "previousState": {"value": old, "reason": "", "timestamp": stamp},
            "configuration": {"metrics": []},
        },
    }
