"""DynamoDB adapter: fleet state, the decision lease and the scaling-activity history.

One table (see docs/contracts.md); every item of a fleet shares ``pk = FLEET#<fleet>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from autoscaler.errors import StateConflictError
from autoscaler.model import FleetState, Panic, Recommendation
from autoscaler.refresh import Refresh
from autoscaler.signals import HostReport

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

STATE_SK = "STATE"
LEASE_SK = "LEASE"
ACTIVITY_PREFIX = "ACTIVITY#"
# STATE attributes "cleared#<alarm name>": its latest transition to OK or INSUFFICIENT_DATA (ISO, UTC).
CLEARED_PREFIX = "cleared#"


@dataclass(frozen=True)
class Activity:
    """One scaling activity, like an EC2 Auto Scaling activity record."""

    activity_id: str
    at: datetime
    cause: str
    reason: str
    from_desired: int
    to_desired: int
    status: str  # Successful | Failed | PartiallyFailed | Skipped
    instance_ids: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "activity_id": self.activity_id,
            "at": self.at.isoformat(),
            "cause": self.cause,
            "reason": self.reason,
            "from": self.from_desired,
            "to": self.to_desired,
            "status": self.status,
            "instance_ids": list(self.instance_ids),
            "details": self.details,
        }


class StateStore:
    def __init__(self, client: DynamoDBClient, table_name: str, fleet_name: str, history_ttl_days: int = 30) -> None:
        self._ddb = client
        self._table = table_name
        self._pk = f"FLEET#{fleet_name}"
        self._ttl = timedelta(days=history_ttl_days)

    # --- fleet state -------------------------------------------------------------------------
    def load(self) -> FleetState:
        item = self._ddb.get_item(TableName=self._table, Key=self._key(STATE_SK), ConsistentRead=True).get("Item")
        if not item:
            return FleetState()
        recommendations = tuple(
            Recommendation(datetime.fromisoformat(at), int(n))
            for at, n in json.loads(item.get("recommendations", {}).get("S", "[]"))
        )
        return FleetState(
            desired=_int(item.get("desired")),
            suspended=item.get("suspended", {}).get("BOOL", False),
            last_scaling_at=_time(item.get("last_scaling_at")),
            last_scale_out_at=_time(item.get("last_scale_out_at")),
            recommendations=recommendations,
            last_reason=item.get("last_reason", {}).get("S"),
            last_message=item.get("last_message", {}).get("S"),
            last_decision_at=_time(item.get("last_decision_at")),
            panic=_panic(item),
            panic_held=_int(item.get("panic_held")) or 0,
            refresh=_refresh(item),
            reports=tuple(HostReport.from_json(r) for r in json.loads(item.get("reports", {}).get("S") or "[]")),
            alarms_cleared_at={
                name.removeprefix(CLEARED_PREFIX): datetime.fromisoformat(value["S"])
                for name, value in item.items()
                if name.startswith(CLEARED_PREFIX)
            },
        )

    def save_decision(self, state: FleetState) -> None:
        """Write the decision fields only; ``suspended`` belongs to the operator."""
        names: dict[str, AttributeValueTypeDef] = {
            "desired": {"N": str(state.desired if state.desired is not None else 0)},
            "recommendations": {"S": json.dumps([[r.at.isoformat(), r.desired] for r in state.recommendations])},
            "last_reason": {"S": state.last_reason or ""},
            "last_message": {"S": state.last_message or ""},
        }
        if state.last_scaling_at is not None:
            names["last_scaling_at"] = {"S": state.last_scaling_at.isoformat()}
        # Empty when a scale-in came after the last scale-out: SET is all _update does.
        names["last_scale_out_at"] = {"S": state.last_scale_out_at.isoformat() if state.last_scale_out_at else ""}
        if state.last_decision_at is not None:
            names["last_decision_at"] = {"S": state.last_decision_at.isoformat()}
        # Empty strings when not panicking: the item keeps one shape, and SET is all _update does.
        names["panic_since"] = {"S": state.panic.since.isoformat() if state.panic else ""}
        names["panic_seen_at"] = {"S": state.panic.seen_at.isoformat() if state.panic else ""}
        names["panic_added"] = {"N": str(state.panic.added if state.panic else 0)}
        names["panic_held"] = {"N": str(state.panic_held)}
        names["refresh"] = {"S": state.refresh.dumps() if state.refresh else ""}
        names["reports"] = {"S": json.dumps([r.to_json() for r in state.reports], separators=(",", ":"))}
        self._update(names)

    def save_refresh(self, refresh: Refresh) -> None:
        """Write the refresh alone (fleetctl refresh start/cancel/rollback, under the lease)."""
        self._update({"refresh": {"S": refresh.dumps()}})

    def set_suspended(self, suspended: bool) -> None:
        self._update({"suspended": {"BOOL": suspended}})

    def remember_cleared(self, alarm_name: str, at: datetime) -> None:
        """Remember that ``alarm_name`` was not in ALARM at ``at`` (a transition to OK or
        INSUFFICIENT_DATA), unless a later time is known: notifications arrive in any order."""
        stamp = at.astimezone(UTC).isoformat(timespec="microseconds")
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._key(STATE_SK),
                UpdateExpression="SET #c = :at",
                ConditionExpression="attribute_not_exists(#c) OR #c < :at",
                ExpressionAttributeNames={"#c": f"{CLEARED_PREFIX}{alarm_name}"},
                ExpressionAttributeValues={":at": {"S": stamp}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def _update(self, values: dict[str, AttributeValueTypeDef]) -> None:
        sets = ", ".join(f"{_name(k)} = {_value(k)}" for k in values)
        self._ddb.update_item(
            TableName=self._table,
            Key=self._key(STATE_SK),
            UpdateExpression=f"SET {sets}",
            ExpressionAttributeNames={_name(k): k for k in values},
            ExpressionAttributeValues={_value(k): v for k, v in values.items()},
        )

    # --- lease -------------------------------------------------------------------------------
    def acquire_lease(self, owner: str, now: datetime, seconds: int) -> bool:
        """Take the fleet's decision lease if free or expired (a conditional put)."""
        expires = int(now.timestamp()) + seconds
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    **self._key(LEASE_SK),
                    "owner": {"S": owner},
                    "expires_at": {"N": str(expires)},
                    "ttl": {"N": str(expires + 3600)},
                },
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR #o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":now": {"N": str(int(now.timestamp()))}, ":owner": {"S": owner}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_lease(self, owner: str) -> None:
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key=self._key(LEASE_SK),
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            # Our lease expired and someone else holds it now: nothing of ours to release.
            raise StateConflictError("lease was taken over before release") from exc

    # --- activity history --------------------------------------------------------------------
    def record(self, activity: Activity) -> None:
        expires = int((activity.at + self._ttl).timestamp())
        self._ddb.put_item(
            TableName=self._table,
            Item={
                **self._key(f"{ACTIVITY_PREFIX}{activity.at.isoformat()}#{activity.activity_id}"),
                "body": {"S": json.dumps(activity.to_json(), default=str)},
                "ttl": {"N": str(expires)},
            },
        )

    def activities(self, since: datetime | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Most recent first."""
        start = f"{ACTIVITY_PREFIX}{since.isoformat()}" if since else ACTIVITY_PREFIX
        paginator = self._ddb.get_paginator("query")
        items: list[dict[str, Any]] = []
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :start AND :end",
            ExpressionAttributeValues={
                ":pk": {"S": self._pk},
                ":start": {"S": start},
                ":end": {"S": ACTIVITY_PREFIX + "\uffff"},
            },
            ScanIndexForward=False,
        ):
            items.extend(json.loads(i["body"]["S"]) for i in page.get("Items", []))
            if len(items) >= limit:
                break
        return items[:limit]

    def _key(self, sk: str) -> dict[str, AttributeValueTypeDef]:
        return {"pk": {"S": self._pk}, "sk": {"S": sk}}


def _int(attr: AttributeValueTypeDef | None) -> int | None:
    return int(Decimal(attr["N"])) if attr and "N" in attr else None


def _time(attr: AttributeValueTypeDef | None) -> datetime | None:
    value = attr.get("S") if attr else None
    return datetime.fromisoformat(value) if value else None


def _panic(item: dict[str, AttributeValueTypeDef]) -> Panic | None:
    since, seen_at = _time(item.get("panic_since")), _time(item.get("panic_seen_at"))
    if since is None or seen_at is None:
        return None
    return Panic(since, seen_at, _int(item.get("panic_added")) or 0)


def _refresh(item: dict[str, AttributeValueTypeDef]) -> Refresh | None:
    raw = item.get("refresh", {}).get("S")
    return Refresh.from_json(json.loads(raw)) if raw else None


def _name(attribute: str) -> str:
    return f"#{attribute}"


def _value(attribute: str) -> str:
    return f":{attribute}"


def values_set_by(params: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes an UpdateItem of ``StateStore`` sets, from the call's parameters (the twin
    reads what a decision saved from the call itself)."""
    values = params.get("ExpressionAttributeValues") or {}
    names = (params.get("ExpressionAttributeNames") or {}).values()
    return {name: values[_value(name)] for name in names if _value(name) in values}
