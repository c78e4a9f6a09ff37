"""Turn an invocation event into alarm notices and host reports, or into specific, logged reasons
to ignore it.

Three shapes arrive:
- SNS: ``Records[].Sns.Message`` is a JSON *string* holding the alarm (``AlarmName``,
  ``NewStateValue``, ``StateChangeTime`` "2017-01-12T16:30:42.236+0000", ``Trigger``...), as in
  the public sample aws/aws-lambda-go ``events/testdata/cloudwatch-alarm-sns-payload-single-metric.json``;
- SNS: a host's demand report (``AutoscalerHostDemand``, docs/contracts.md), published by a
  worker host whose offered load reached the panic line;
- a direct alarm action (``source: aws.cloudwatch``, ``alarmData.state.value``...): CloudWatch
  user guide, "Invoke a Lambda function from an alarm".
Bad input is acknowledged with a reason, never raised: a raise would make Lambda retry a
message that can never succeed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from autoscaler.signals import HostReport

AlarmState = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")

# CloudWatch writes offsets without a colon ("+0000"); ISO parsers want "+00:00".
_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_alarm_time(value: str) -> datetime:
    text = _OFFSET.sub(r"\1:\2", value.strip().replace("Z", "+00:00"))
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value!r}")
    return parsed


# A timestamp as CloudWatch and the hosts write it: a string parsed by parse_alarm_time.
Timestamp = Annotated[datetime, BeforeValidator(lambda v: parse_alarm_time(v) if isinstance(v, str) else v)]


class Dimension(BaseModel):
    name: str
    value: str


class AlarmTrigger(BaseModel):
    """``Trigger`` of a metric alarm; metric-math alarms carry ``Metrics`` instead of a metric."""

    model_config = ConfigDict(extra="allow")
    MetricName: str | None = None
    Namespace: str | None = None
    Statistic: str | None = None
    Dimensions: list[Dimension] = Field(default_factory=list)
    Period: int | None = None
    EvaluationPeriods: int | None = None
    ComparisonOperator: str | None = None
    Threshold: float | None = None
    TreatMissingData: str | None = None
    Metrics: list[dict[str, Any]] | None = None


class AlarmMessage(BaseModel):
    """The CloudWatch alarm notification carried in ``Sns.Message``."""

    model_config = ConfigDict(extra="allow")
    AlarmName: str = Field(min_length=1)
    AlarmDescription: str | None = None
    AWSAccountId: str | None = None
    AlarmArn: str | None = None
    NewStateValue: AlarmState
    OldStateValue: AlarmState | None = None
    NewStateReason: str = ""
    StateChangeTime: Timestamp
    Region: str | None = None
    Trigger: AlarmTrigger | None = None


HOST_DEMAND_KEY = "AutoscalerHostDemand"
# EC2 instance IDs: "i-" and 8 (older) or 17 hexadecimal characters.
INSTANCE_ID_PATTERN = r"^i-([0-9a-f]{8}|[0-9a-f]{17})$"
MetricValue = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class HostDemandMessage(BaseModel):
    """A host's demand report carried in ``Sns.Message`` (worker/metrics_publisher.py)."""

    model_config = ConfigDict(extra="ignore")
    AutoscalerHostDemand: Literal[1]
    Fleet: str = Field(min_length=1)
    InstanceId: str = Field(pattern=INSTANCE_ID_PATTERN)
    Timestamp: Timestamp
    PeriodSeconds: float = Field(gt=0, le=300)
    Namespace: str = Field(min_length=1)
    Metrics: dict[str, MetricValue] = Field(min_length=1)


@dataclass(frozen=True)
class HostDemandNotice:
    fleet: str
    report: HostReport
    message_id: str | None


@dataclass(frozen=True)
class AlarmNotice:
    alarm_name: str
    new_state: str
    old_state: str | None
    state_change_time: datetime
    reason: str
    message_id: str | None

    @property
    def idempotency_data(self) -> dict[str, str]:
        """Keyed on the transition, not the message: duplicate transitions are dropped too."""
        return {"alarm_name": self.alarm_name, "state_change_time": self.state_change_time.isoformat()}


@dataclass(frozen=True)
class Rejected:
    reason: str  # malformed-json, missing-fields, unrecognised-event, ...
    detail: str
    message_id: str | None = None
    alarm_name: str | None = None


Item = AlarmNotice | HostDemandNotice | Rejected


def parse_event(event: object) -> list[Item]:
    if not isinstance(event, dict):
        return [Rejected("unrecognised-event", f"event is a {type(event).__name__}, not an object")]
    if "Records" in event:
        return _parse_sns(event)
    if event.get("source") == "aws.cloudwatch" or "alarmData" in event:
        return [_parse_direct(event)]
    return [Rejected("unrecognised-event", f"neither SNS nor an alarm action; keys: {sorted(event)[:8]}")]


def _parse_sns(event: dict[str, Any]) -> list[Item]:
    from aws_lambda_powertools.utilities.parser.envelopes import SnsEnvelope
    from aws_lambda_powertools.utilities.parser.models import SnsModel

    if event["Records"] == []:
        # Not an SNS delivery (SNS always sends one record): say so like any other rejection.
        return [Rejected("malformed-sns-event", "no records: Records is empty")]
    try:
        # The common path validates the envelope and every Sns.Message in one pass.
        messages = SnsEnvelope().parse(data=event, model=AlarmMessage)
    except ValidationError:
        pass
    else:
        records = event["Records"]
        return [
            _notice(message, records[index]["Sns"]["MessageId"])
            for index, message in enumerate(messages)
            if message is not None
        ]
    # Something is wrong: say what, record by record, so the good records still act.
    try:
        envelope = SnsModel.model_validate(event)
    except ValidationError as exc:
        return [Rejected("malformed-sns-event", _first_error(exc))]
    results: list[Item] = []
    for record in envelope.Records:
        raw = str(record.Sns.Message)
        if HOST_DEMAND_KEY in raw:
            results.append(_host_demand(raw, record.Sns.MessageId))
            continue
        try:
            results.append(_notice(AlarmMessage.model_validate_json(raw), record.Sns.MessageId))
        except ValidationError as exc:
            results.append(_diagnose(raw, exc, record.Sns.MessageId))
    return results


def _notice(message: AlarmMessage, message_id: str | None) -> AlarmNotice:
    return AlarmNotice(
        alarm_name=message.AlarmName,
        new_state=message.NewStateValue,
        old_state=message.OldStateValue,
        state_change_time=message.StateChangeTime,
        reason=message.NewStateReason,
        message_id=message_id,
    )


def _host_demand(raw: str, message_id: str) -> HostDemandNotice | Rejected:
    try:
        message = HostDemandMessage.model_validate_json(raw)
    except ValidationError as exc:
        return _not_json(exc, message_id) or Rejected("bad-host-report", _first_error(exc), message_id)
    report = HostReport(message.InstanceId, message.Timestamp, message.Namespace, dict(message.Metrics))
    return HostDemandNotice(message.Fleet, report, message_id)


def _parse_direct(event: dict[str, Any]) -> AlarmNotice | Rejected:
    from aws_lambda_powertools.utilities.data_classes import CloudWatchAlarmEvent

    alarm = CloudWatchAlarmEvent(event)
    try:
        data = alarm.alarm_data
        state = data.state
        name = data.alarm_name
        value = state.value if state else None
        timestamp = state.timestamp if state else None
        if not name or not value or not timestamp:
            raise KeyError("alarmData.alarmName, alarmData.state.value and .timestamp")
        if value not in ALARM_STATES:
            return Rejected("missing-fields", f"alarmData.state.value {value!r} is not one of {ALARM_STATES}")
        # previousState is optional here as OldStateValue is in the SNS shape.
        previous_raw = event["alarmData"].get("previousState") or {}
        previous = previous_raw.get("value") if isinstance(previous_raw, dict) else None
        return AlarmNotice(
            alarm_name=name,
            new_state=value,
            old_state=previous,
            state_change_time=parse_alarm_time(timestamp),
            reason=state.reason or "" if state else "",
            message_id=event.get("id") if isinstance(event.get("id"), str) else None,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        return Rejected("missing-fields", f"direct alarm event lacks {exc}")
    except ValueError as exc:
        return Rejected("missing-fields", f"direct alarm event has a bad timestamp: {exc}")


def _not_json(exc: ValidationError, message_id: str) -> Rejected | None:
    # pydantic's parser refuses invalid JSON, and JSON nested too deeply, with its own limit.
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        return Rejected("malformed-json", f"Sns.Message is not JSON: {_first_error(exc)}", message_id)
    return None


def _diagnose(raw: str, exc: ValidationError, message_id: str) -> Rejected:
    not_json = _not_json(exc, message_id)
    if not_json is not None:
        return not_json
    try:
        body = json.loads(raw)
    except RecursionError:
        # json.loads recurses per nesting level: a few KB of brackets exhaust the stack.
        return Rejected("malformed-json", "Sns.Message is JSON nested too deeply (recursion)", message_id)
    except (TypeError, ValueError) as json_error:
        return Rejected("malformed-json", f"Sns.Message is not JSON: {json_error}", message_id)
    name = body.get("AlarmName") if isinstance(body, dict) else None
    return Rejected("missing-fields", _first_error(exc), message_id, name if isinstance(name, str) else None)


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)
    first = errors[0]
    location = ".".join(str(part) for part in first.get("loc", ()))
    return f"{location}: {first.get('msg')} ({len(errors)} error(s))"
