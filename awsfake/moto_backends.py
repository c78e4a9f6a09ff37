"""Everything read from or done to moto's in-memory backends, behind plain functions.

moto's backends are not public API: they change between releases. Keeping every access here
means a moto upgrade breaks one module, not the tests and the twin separately.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"


class MotoInstance:
    """An instance as moto's EC2 bookkeeping holds it, read when asked: DescribeInstances runs
    often in the twin, and most instances are filtered out before their tags matter."""

    def __init__(self, instance: Any, tags: dict[str, dict[str, str]]) -> None:
        self._instance = instance
        self._tags = tags
        self.instance_id: str = instance.id

    @property
    def instance_type(self) -> str:
        return str(self._instance.instance_type)

    @property
    def image_id(self) -> str:
        return str(self._instance.image_id)

    @property
    def state(self) -> str:
        return str(self._instance._state.name)

    @property
    def launch_time(self) -> str | datetime:
        launched: str | datetime = self._instance.launch_time
        return launched

    @property
    def subnet_id(self) -> str | None:
        subnet: str | None = self._instance.subnet_id
        return subnet

    @property
    def zone(self) -> str | None:
        zone: str | None = self._instance.placement.zone
        return zone

    @property
    def tags(self) -> dict[str, str]:
        return self._tags.get(self.instance_id, {})


@dataclass(frozen=True)
class MotoReservation:
    reservation_id: str
    instances: list[MotoInstance]


def seed_ids(seed: int) -> None:
    """Make moto's resource ids (and every order that follows them) a function of ``seed``.

    Call inside ``mock_aws``, after it has reset its backends: the EC2 backend's default VPC
    draws ids when it is first built, so it is built here before seeding."""
    from moto.backends import get_backend
    from moto.moto_api._internal import mock_random

    get_backend("ec2")[ACCOUNT][REGION]
    mock_random.seed(seed)


def reservations() -> list[MotoReservation]:
    """moto's reservations in its own order, with each instance's state, placement and tags."""
    from moto.backends import get_backend

    backend = get_backend("ec2")[ACCOUNT][REGION]
    tags: dict[str, dict[str, str]] = backend.tags
    return [
        MotoReservation(reservation.id, [MotoInstance(instance, tags) for instance in reservation.instances])
        for reservation in backend.reservations.values()
    ]


def _target_group(arn: str) -> Any:
    from moto.backends import get_backend

    return get_backend("elbv2")[ACCOUNT][REGION].target_groups[arn]


def target_ids(target_group_arn: str) -> list[str]:
    """The targets moto holds registered (it drops a deregistered one at once)."""
    return list(_target_group(target_group_arn).targets)


def deregistration_delay(target_group_arn: str) -> float:
    """The target group's ``deregistration_delay.timeout_seconds`` (moto starts it at 300, as ELB does)."""
    return float(_target_group(target_group_arn).attributes["deregistration_delay.timeout_seconds"])


@contextmanager
def atomic_dynamodb_items() -> Iterator[None]:
    """Make moto's DynamoDB item operations atomic, as the service's are.

    DynamoDB applies a conditional write atomically; moto checks and writes without a lock, so
    two threads can both pass the same condition. One lock over the item operations restores
    the guarantee for code that runs invocations in threads."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    originals = {
        name: getattr(DynamoDBBackend, name) for name in ("put_item", "update_item", "delete_item", "get_item")
    }

    def atomic(original: Any) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(self, *args, **kwargs)

        return call

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, atomic(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)


def deregister_targets(target_group_arn: str, instance_ids: list[str]) -> None:
    """What moto's DeregisterTargets does to its bookkeeping, without its refusal of a target it
    no longer lists (one ELB still reports as draining)."""
    group = _target_group(target_group_arn)
    for instance_id in instance_ids:
        target = group.targets.pop(instance_id, None)
        if target is not None:
            group.deregistered_targets[instance_id] = target
