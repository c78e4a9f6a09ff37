"""Builders for the events the functions receive, shaped like the real ones."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any


def alarm_time(at: datetime) -> str:
    """CloudWatch's own format: milliseconds and a colon-less offset."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def alarm_message(name: str, new: str = "ALARM", old: str = "OK", at: datetime | None = None) -> dict[str, Any]:
    at = at or datetime(2026, 1, 1)
    return {
        "AlarmName": name,
        "AlarmDescription": "fleet scaling alarm",
        "AWSAccountId": "123456789012",
        "AlarmConfigurationUpdatedTimestamp": "2026-01-01T00:00:00.000+0000",
        "NewStateValue": new,
        "NewStateReason": "Threshold Crossed: 3 out of the last 3 datapoints were greater than the threshold (70.0).",
        "StateChangeTime": alarm_time(at),
        "Region": "EU (Ireland)",
        "AlarmArn": f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}",
        "OldStateValue": old,
        "OKActions": [],
        "AlarmActions": ["arn:aws:sns:eu-west-1:123456789012:fleet-scale-out"],
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": "CPUUtilization",
            "Namespace": "Autoscaler",
            "StatisticType": "Statistic",
            "Statistic": "AVERAGE",
            "Unit": None,
            "Dimensions": [{"value": "fleet", "name": "Fleet"}],
            "Period": 10,
            "EvaluationPeriods": 3,
            "DatapointsToAlarm": 3,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 70.0,
            "TreatMissingData": "notBreaching",
            "EvaluateLowSampleCountPercentile": "",
        },
    }


def sns_event(message: dict[str, Any] | str, message_id: str | None = None) -> dict[str, Any]:
    body = message if isinstance(message, str) else json.dumps(message)
    topic = "arn:aws:sns:eu-west-1:123456789012:fleet-scale-out"
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id or str(uuid.uuid4()),
                    "TopicArn": topic,
                    "Subject": 'ALARM: "fleet-cpu-high" in EU (Ireland)',
                    "Message": body,
                    "Timestamp": "2026-01-01T00:10:00.000Z",
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService.pem",
                    "UnsubscribeUrl": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def alarm_event(name: str, at: datetime, new: str = "ALARM", old: str = "OK", message_id: str | None = None) -> dict:
    return sns_event(alarm_message(name, new, old, at), message_id)
