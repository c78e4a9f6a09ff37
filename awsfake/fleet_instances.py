"""The EC2 API over ``instances``' state machine: DescribeInstances, and the calls it refuses.

moto keeps the bookkeeping (ids, reservations, subnets, tags) but has an instance ``running`` the
moment RunInstances returns, ``stopped`` the moment StopInstances does, and knows it at once.
``describe_instances`` answers from moto's bookkeeping with the states of ``instances``;
``refuse`` fails a call the way EC2 does in the wrong state or before EC2 knows the instance.
The twin answers with both from its SimPy model; ``FakeInstances`` drives the same state machine
on a test's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from awsfake import moto_backends
from awsfake.hooks import Params, answer, error, observe
from awsfake.instances import RUNNING, SETTLES_TO, STATE_CODES, STOPPED, TERMINATED, InstanceStates

if TYPE_CHECKING:
    from botocore.client import BaseClient

SUPPORTED_FILTERS = ("instance-state-name", "instance-id")
OPERATIONS = {"ec2.StartInstances": "start", "ec2.StopInstances": "stop", "ec2.TerminateInstances": "terminate"}


def not_found(states: InstanceStates, instance_ids: Sequence[str], now: float) -> Params | None:
    """InvalidInstanceID.NotFound if one of these instances is not known to the API yet."""
    unknown = states.unknown(instance_ids, now)
    if unknown:
        return error("InvalidInstanceID.NotFound", f"The instance ID '{unknown[0]}' does not exist")
    return None


def wrong_state(states: InstanceStates, operation: str, instance_ids: Sequence[str]) -> Params | None:
    """IncorrectInstanceState if ``operation`` does not apply to one of these instances now."""
    message = states.refusal(operation, instance_ids)
    return None if message is None else error("IncorrectInstanceState", message)


def instance_resources(params: Params) -> list[str]:
    """The instance ids among a CreateTags call's resources."""
    return [str(r) for r in params.get("Resources") or () if str(r).startswith("i-")]


def describe_instances(
    states: InstanceStates, params: Params, now: float, wall: Callable[[float], datetime]
) -> Params | None:
    """DescribeInstances as EC2 would answer at ``now``: the states of ``states``, moto's tags and
    placement (``wall`` turns the clock's seconds into LaunchTime).

    An instance launched a moment ago is not visible yet: asking for it by id fails with
    InvalidInstanceID.NotFound, a filtered listing leaves it out. Filters other than the fleet's
    (tags, state name, instance id) fall back to moto (None)."""
    filters = {str(f["Name"]): {str(v) for v in f.get("Values") or ()} for f in params.get("Filters") or ()}
    if any(not (name.startswith("tag:") or name in SUPPORTED_FILTERS) for name in filters):
        return None
    if params.get("NextToken"):
        return {"Reservations": []}
    wanted = [str(i) for i in params.get("InstanceIds") or ()]
    refused = not_found(states, wanted, now)
    if refused is not None:
        return refused
    wanted_ids = set(wanted) | filters.get("instance-id", set())
    reservations = []
    for reservation in moto_backends.reservations():
        found = []
        for instance in reservation.instances:
            if wanted_ids and instance.instance_id not in wanted_ids:
                continue
            modelled = states.instances.get(instance.instance_id)
            if modelled is not None and modelled.visible_at > now:
                continue
            state = modelled.state if modelled is not None else instance.state
            if "instance-state-name" in filters and state not in filters["instance-state-name"]:
                continue
            tags = instance.tags
            if any(tags.get(name[4:]) not in values for name, values in filters.items() if name.startswith("tag:")):
                continue
            found.append(
                {
                    "InstanceId": instance.instance_id,
                    "InstanceType": instance.instance_type,
                    "ImageId": instance.image_id,
                    "State": {"Name": state, "Code": STATE_CODES.get(state, 0)},
                    "LaunchTime": wall(modelled.launched_at) if modelled is not None else instance.launch_time,
                    "SubnetId": instance.subnet_id,
                    "Placement": {"AvailabilityZone": instance.zone},
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            )
        if found:
            reservations.append(
                {"ReservationId": reservation.reservation_id, "OwnerId": moto_backends.ACCOUNT, "Instances": found}
            )
    if wanted and not reservations:
        return None  # let moto raise InvalidInstanceID.NotFound
    return {"Reservations": reservations}


class FakeInstances:
    """EC2 instance states on a clock the caller keeps (``now``: seconds; ``wall`` the same as a
    datetime), for the instances launched through a client it is installed on.

    Each transition takes the seconds set here: RunInstances to ``running``
    (``launch_pending_seconds``), StartInstances to ``running``, StopInstances to ``stopped``,
    TerminateInstances to ``terminated``; a new instance is unknown to the API for
    ``visibility_seconds``. A test changes them between calls as it needs. ``refused`` lists the
    ids of every call refused with InvalidInstanceID.NotFound.

    What another client does to these instances (moto carries it out at once) is followed when
    this one next looks: an instance moto has stopped or terminated begins ``stopping`` or
    ``shutting-down`` then, one it has started ``pending``."""

    def __init__(
        self,
        now: Callable[[], float],
        wall: Callable[[float], datetime],
        *,
        launch_pending_seconds: float,
        start_pending_seconds: float,
        stop_seconds: float,
        terminate_seconds: float,
        visibility_seconds: float = 0.0,
    ) -> None:
        self.now = now
        self.wall = wall
        self.launch_pending_seconds = launch_pending_seconds
        self.start_pending_seconds = start_pending_seconds
        self.stop_seconds = stop_seconds
        self.terminate_seconds = terminate_seconds
        self.visibility_seconds = visibility_seconds
        self.states = InstanceStates()
        self.refused: list[list[str]] = []

    def install(self, ec2: BaseClient) -> None:
        """Answer ``ec2``'s instance calls from the state machine (several clients may share it)."""
        for operation, name in OPERATIONS.items():
            answer(ec2, operation, self._check(name))
        answer(ec2, "ec2.CreateTags", self._create_tags)
        answer(ec2, "ec2.DescribeInstances", self._describe)
        observe(ec2, "ec2.RunInstances", self._launched)
        observe(ec2, "ec2.StartInstances", self._each(self._start))
        observe(ec2, "ec2.StopInstances", self._each(self._stop))
        observe(ec2, "ec2.TerminateInstances", self._each(self._terminate))

    def state_of(self, instance_id: str) -> str | None:
        self._catch_up(self.now())
        return self.states.state_of(instance_id)

    def settled_at(self) -> float:
        """When every transition under way will have ended (now, if none is)."""
        now = self.now()
        self._catch_up(now)
        return max([now, *(i.until for i in self.states.instances.values() if i.state in SETTLES_TO)])

    def _catch_up(self, now: float) -> None:
        """Bring the states to ``now``: transitions ended, calls made through other clients."""
        self.states.advance(now)
        for reservation in moto_backends.reservations():
            for instance in reservation.instances:
                modelled = self.states.instances.get(instance.instance_id)
                if modelled is None or modelled.state == instance.state:
                    continue
                if instance.state == TERMINATED:
                    self._terminate(instance.instance_id, now)
                elif instance.state == STOPPED:
                    self._stop(instance.instance_id, now)
                elif instance.state == RUNNING:
                    self._start(instance.instance_id, now)

    def _refused(self, failure: Params | None, ids: list[str]) -> Params | None:
        if failure is not None and failure["Error"]["Code"] == "InvalidInstanceID.NotFound":
            self.refused.append(ids)
        return failure

    def _check(self, operation: str) -> Callable[[Params], Params | None]:
        def respond(params: Params) -> Params | None:
            now = self.now()
            self._catch_up(now)
            ids = [str(i) for i in params.get("InstanceIds") or ()]
            return self._refused(not_found(self.states, ids, now) or wrong_state(self.states, operation, ids), ids)

        return respond

    def _create_tags(self, params: Params) -> Params | None:
        ids = instance_resources(params)
        return self._refused(not_found(self.states, ids, self.now()), ids)

    def _describe(self, params: Params) -> Params | None:
        now = self.now()
        self._catch_up(now)
        described = describe_instances(self.states, params, now, self.wall)
        ids = [str(i) for i in params.get("InstanceIds") or ()]
        return self._refused(described, ids) if described is not None and "Error" in described else described

    def _launched(self, _: Params, parsed: Params) -> None:
        now = self.now()
        for instance in parsed.get("Instances", []):
            self.states.launch(
                str(instance["InstanceId"]), now, now + self.visibility_seconds, self.launch_pending_seconds
            )

    def _each(self, action: Callable[[str, float], object]) -> Callable[[Params, Params], None]:
        def seen(params: Params, _: Params) -> None:
            now = self.now()
            for instance_id in params.get("InstanceIds") or ():
                action(str(instance_id), now)

        return seen

    def _start(self, instance_id: str, now: float) -> None:
        self.states.start(instance_id, now, self.start_pending_seconds)

    def _stop(self, instance_id: str, now: float) -> None:
        self.states.stop(instance_id, now, self.stop_seconds)

    def _terminate(self, instance_id: str, now: float) -> None:
        self.states.terminate(instance_id, now, self.terminate_seconds)
