"""EC2 adapter: the fleet's instances, found and changed by their fleet tag."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from autoscaler.clock import Clock
from autoscaler.errors import CapacityError, InstanceNotVisibleError, InstanceStateError
from autoscaler.model import Instance, Lifecycle
from autoscaler.tags import FLEET_TAG, LIFECYCLE_TAG, READY_TAG, VERSION_TAG

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import InstanceTypeDef, TagSpecificationTypeDef, TagTypeDef

    from autoscaler.settings import Settings

SINCE_TAG = "AutoscalerSince"
LIVE_STATES = ("pending", "running", "stopping", "stopped")
CAPACITY_CODES = frozenset({"InsufficientInstanceCapacity", "InsufficientCapacity", "Unsupported"})
STATE_CODES = frozenset({"IncorrectInstanceState", "IncorrectState"})
NOT_FOUND_CODES = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})


class Ec2Fleet:
    def __init__(self, client: EC2Client, settings: Settings, clock: Clock) -> None:
        self._ec2 = client
        self._settings = settings
        self._clock = clock

    def describe(self, include_shutting_down: bool = False) -> list[Instance]:
        """Every live instance of the fleet (one call per 1000 instances)."""
        states = [*LIVE_STATES, "shutting-down"] if include_shutting_down else list(LIVE_STATES)
        paginator = self._ec2.get_paginator("describe_instances")
        pages = paginator.paginate(
            Filters=[
                {"Name": f"tag:{FLEET_TAG}", "Values": [self._settings.fleet_name]},
                {"Name": "instance-state-name", "Values": states},
            ],
            PaginationConfig={"PageSize": 1000},
        )
        instances: list[Instance] = []
        for page in pages:
            for reservation in page.get("Reservations", []):
                instances.extend(_to_instance(raw) for raw in reservation.get("Instances", []))
        return sorted(instances, key=lambda i: (i.launch_time, i.instance_id))

    def running(self, instance_ids: Sequence[str]) -> set[str]:
        """Which of these (just started or launched) instances are running.

        Raises ``InstanceNotVisibleError`` when EC2 does not know one of them yet: right after
        RunInstances, DescribeInstances may answer InvalidInstanceID.NotFound for a few seconds
        ("Eventual consistency in the Amazon EC2 API", EC2 developer guide). botocore does not
        retry that code; the caller backs off.
        """
        if not instance_ids:
            return set()
        try:
            response = self._ec2.describe_instances(InstanceIds=list(instance_ids))
        except ClientError as exc:
            if _code(exc) == "InvalidInstanceID.NotFound":
                raise InstanceNotVisibleError(str(exc)) from exc
            raise
        return {
            raw["InstanceId"]
            for reservation in response.get("Reservations", [])
            for raw in reservation.get("Instances", [])
            if raw.get("State", {}).get("Name") == "running"
        }

    def start(self, instance_ids: Sequence[str], zone: str | None = None) -> None:
        self._act(lambda ids: self._ec2.start_instances(InstanceIds=ids), instance_ids, zone=zone)

    def stop(self, instance_ids: Sequence[str]) -> None:
        self._act(lambda ids: self._ec2.stop_instances(InstanceIds=ids), instance_ids)

    def terminate(self, instance_ids: Sequence[str]) -> None:
        # An instance EC2 no longer knows needs no terminating.
        self._act(lambda ids: self._ec2.terminate_instances(InstanceIds=ids), instance_ids, gone_is_done=True)

    def launch(self, subnet_id: str, count: int, lifecycle: Lifecycle, version: str | None = None) -> list[str]:
        """Launch ``count`` instances from the fleet's launch template into one subnet, from
        ``version`` (default: the configured one; a rolled-back refresh pins an older one)."""
        tags = self._tags(lifecycle)
        specifications: list[TagSpecificationTypeDef] = [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags[:1]},
        ]
        try:
            response = self._ec2.run_instances(
                LaunchTemplate={
                    "LaunchTemplateId": self._settings.launch_template_id,
                    "Version": version or self._settings.launch_template_version,
                },
                SubnetId=subnet_id,
                MinCount=count,
                MaxCount=count,
                TagSpecifications=specifications,
            )
        except ClientError as exc:
            raise _domain_error(exc, subnet_id=subnet_id) from exc
        return [raw["InstanceId"] for raw in response.get("Instances", [])]

    def set_lifecycle(self, instance_ids: Iterable[str], lifecycle: Lifecycle) -> None:
        ids = list(instance_ids)
        if ids:
            self._ec2.create_tags(Resources=ids, Tags=self._tags(lifecycle)[1:])

    def _tags(self, lifecycle: Lifecycle) -> list[TagTypeDef]:
        return [
            {"Key": FLEET_TAG, "Value": self._settings.fleet_name},
            {"Key": LIFECYCLE_TAG, "Value": lifecycle.value},
            {"Key": SINCE_TAG, "Value": self._clock.now().isoformat(timespec="seconds")},
        ]

    def _act(
        self,
        call: Callable[[list[str]], object],
        instance_ids: Sequence[str],
        zone: str | None = None,
        gone_is_done: bool = False,
    ) -> None:
        if not instance_ids:
            return
        try:
            call(list(instance_ids))
        except ClientError as exc:
            if gone_is_done and _code(exc) in NOT_FOUND_CODES:
                return
            raise _domain_error(exc, zone=zone) from exc


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _domain_error(exc: ClientError, *, subnet_id: str | None = None, zone: str | None = None) -> Exception:
    code = _code(exc)
    if code in CAPACITY_CODES:
        return CapacityError(f"{code}: {exc}", subnet_id=subnet_id, zone=zone)
    if code in STATE_CODES:
        return InstanceStateError(str(exc))
    return exc


def _to_instance(raw: InstanceTypeDef) -> Instance:
    tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
    try:
        lifecycle = Lifecycle(tags.get(LIFECYCLE_TAG, Lifecycle.SERVICE.value))
    except ValueError:
        lifecycle = Lifecycle.SERVICE
    since_raw = tags.get(SINCE_TAG)
    since = _parse_time(since_raw) if since_raw else None
    launch_time = raw["LaunchTime"]
    return Instance(
        instance_id=raw["InstanceId"],
        state=raw.get("State", {}).get("Name", "pending"),
        lifecycle=lifecycle,
        subnet_id=raw.get("SubnetId", ""),
        availability_zone=raw.get("Placement", {}).get("AvailabilityZone", ""),
        launch_time=launch_time,
        ready=tags.get(READY_TAG, "").lower() == "true",
        since=since or launch_time,
        version=tags.get(VERSION_TAG),
    )


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
