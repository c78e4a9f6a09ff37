"""Builders for the events the functions receive: real-shaped JSON files in tests/events/, with
the fields a test cares about overridden."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of ``tests/events/<name>`` (``.json`` optional)."""
    filename = name if name.endswith(".json") else f"{name}.json"
    event: dict[str, Any] = json.loads((EVENTS / filename).read_text())
    return event


def event_files() -> list[str]:
    return sorted(p.name for p in EVENTS.glob("*.json"))


def sns_message(event: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """The alarm notification inside an SNS record, decoded."""
    message: dict[str, Any] = json.loads(event["Records"][index]["Sns"]["Message"])
    return message


def with_raw_message(event: dict[str, Any], raw: str, index: int = 0) -> dict[str, Any]:
    """A copy of ``event`` whose record ``index`` carries ``raw`` verbatim as ``Sns.Message``."""
    result = copy.deepcopy(event)
    result["Records"][index]["Sns"]["Message"] = raw
    return result


def sns_alarm_event(
    name: str = "fleet-cpu-high",
    new_state: str = "ALARM",
    old_state: str | None = "OK",
    time: str = "2026-01-01T00:10:00.000+0000",
    message_id: str = "6f2c3a3e-5d1b-5a0e-9c43-0b1d2e3f4a01",
    *,
    template: str = "sns-alarm-cpu-high.json",
    drop: tuple[str, ...] = (),
    **overrides: Any,
) -> dict[str, Any]:
    """An SNS event from ``template`` with the alarm fields overridden (``drop`` removes keys)."""
    event = load_event(template)
    message = sns_message(event)
    message.update(AlarmName=name, NewStateValue=new_state, StateChangeTime=time, **overrides)
    message["AlarmArn"] = f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"
    if old_state is None:
        message.pop("OldStateValue", None)
    else:
        message["OldStateValue"] = old_state
    for key in drop:
        message.pop(key, None)
    sns = event["Records"][0]["Sns"]
    sns["MessageId"] = message_id
    sns["Subject"] = f'{new_state}: "{name}" in EU (Ireland)'
    sns["Message"] = json.dumps(message, separators=(",", ":"))
    return event


def sns_batch(*events: dict[str, Any]) -> dict[str, Any]:
    """One SNS event holding the records of several."""
    return {"Records": [record for event in events for record in event["Records"]]}


def direct_alarm_event(
    name: str = "fleet-cpu-high",
    new_state: str = "ALARM",
    old_state: str | None = "OK",
    time: str = "2026-01-01T00:10:00.000+0000",
) -> dict[str, Any]:
    """A direct CloudWatch alarm-action event (``source: aws.cloudwatch``) with fields overridden."""
    event = load_event("cloudwatch-alarm-direct.json")
    data = event["alarmData"]
    data["alarmName"] = name
    data["state"]["value"] = new_state
    data["state"]["timestamp"] = time
    event["alarmArn"] = f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"
    if old_state is None:
        data.pop("previousState", None)
    else:
        data["previousState"]["value"] = old_state
    return event


def alarm_time(at: datetime) -> str:
    """CloudWatch's own format: milliseconds and a colon-less offset."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def alarm_event(
    name: str, at: datetime, new: str = "ALARM", old: str = "OK", message_id: str | None = None
) -> dict[str, Any]:
    """An SNS-delivered alarm transition at ``at`` (a fresh MessageId unless given)."""
    return sns_alarm_event(name, new, old, alarm_time(at), message_id or str(uuid.uuid4()))


def sns_event(message: dict[str, Any] | str) -> dict[str, Any]:
    """An SNS event carrying ``message`` (an object, or raw text for malformed input)."""
    raw = message if isinstance(message, str) else json.dumps(message)
    return with_raw_message(load_event("sns-alarm-cpu-high.json"), raw)


def host_demand_event(
    fleet: str, instance_id: str, at: datetime, namespace: str = "Autoscaler", **changes: object
) -> dict[str, Any]:
    """A host's demand report as its publisher builds it (worker/metrics_publisher.py), in an SNS
    event: a period of 250 % offered load with 3 s queued, unless ``changes`` say otherwise."""
    from worker.metrics_publisher import Reading, demand_report

    body = demand_report(fleet, instance_id, Reading(100.0, 300.0, 250.0, 3.0, 0.0), at, 10.0, namespace)
    body.update(changes)
    return sns_event(body)


def cfn_event(
    request: str, fleet: str, *, physical_id: str | None = None, old_fleet: str | None = None
) -> dict[str, Any]:
    """A CloudFormation custom resource request (``Create``, ``Update``, ``Delete``) for the
    ``Fleet`` resource, from tests/events/cfn-<request>.json, naming ``fleet`` in its properties.

    ``physical_id`` defaults to the id the lifecycle function gave the fleet (``fleet-<name>``);
    an Update's old properties name ``old_fleet`` (default: the same fleet)."""
    event = load_event(f"cfn-{request.lower()}.json")
    event["ResourceProperties"]["FleetName"] = fleet
    if request != "Create":
        event["PhysicalResourceId"] = physical_id or f"fleet-{fleet}"
    if request == "Update":
        event["OldResourceProperties"]["FleetName"] = old_fleet or fleet
    return event
