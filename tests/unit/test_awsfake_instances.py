"""awsfake's EC2 instance states, the ones the tests' fake and the twin share.

Cases from the EC2 user guide "Amazon EC2 instance state changes" (``pending`` -> ``running``,
``stopping`` -> ``stopped``, ``shutting-down`` -> ``terminated``), the StartInstances /
StopInstances API reference (IncorrectInstanceState) and "Eventual consistency in the Amazon
EC2 API" (a new instance unknown for a while).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from awsfake.fleet_instances import FakeInstances
from awsfake.instances import InstanceStates

PENDING, HALT, VISIBLE = 5.0, 10.0, 3.0


def _run(steps: list[tuple[str, float]]) -> InstanceStates:
    """Apply ``steps`` to instance i-1: ("launch"|"start"|"stop"|"terminate"|"look", time)."""
    states = InstanceStates()
    for action, now in steps:
        states.advance(now)
        if action == "launch":
            states.launch("i-1", now, now + VISIBLE, PENDING)
        elif action == "start":
            states.start("i-1", now, PENDING)
        elif action == "stop":
            states.stop("i-1", now, HALT)
        elif action == "terminate":
            states.terminate("i-1", now, HALT)
        else:
            assert action == "look"
    return states


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([("launch", 0)], "pending"),
        ([("launch", 0), ("look", PENDING - 0.1)], "pending"),
        ([("launch", 0), ("look", PENDING)], "running"),
        ([("launch", 0), ("stop", 10)], "stopping"),
        ([("launch", 0), ("stop", 10), ("look", 10 + HALT)], "stopped"),
        ([("launch", 0), ("stop", 10), ("stop", 15), ("look", 10 + HALT)], "stopped"),  # the first deadline stands
        ([("launch", 0), ("stop", 10), ("look", 20), ("start", 30)], "pending"),
        ([("launch", 0), ("stop", 10), ("look", 20), ("start", 30), ("look", 30 + PENDING)], "running"),
        ([("launch", 0), ("start", 1)], "pending"),  # StartInstances on a pending one changes nothing...
        ([("launch", 0), ("start", 1), ("look", PENDING)], "running"),  # ...not even its deadline
        ([("launch", 0), ("terminate", 1)], "shutting-down"),  # from pending too
        ([("launch", 0), ("terminate", 1), ("look", 1 + HALT)], "terminated"),
        ([("launch", 0), ("stop", 10), ("terminate", 12)], "shutting-down"),  # from stopping too
        ([("launch", 0), ("stop", 10), ("terminate", 12), ("look", 20)], "shutting-down"),  # stopping's end is void
        ([("launch", 0), ("terminate", 1), ("look", 20), ("start", 25)], "terminated"),
    ],
)
def test_instance_state(steps: list[tuple[str, float]], expected: str) -> None:
    assert _run(steps).state_of("i-1") == expected


@pytest.mark.parametrize(
    ("steps", "operation", "refused"),
    [
        ([("launch", 0), ("stop", 10)], "start", True),  # StartInstances on a stopping instance
        ([("launch", 0), ("terminate", 10)], "start", True),
        ([("launch", 0), ("terminate", 10), ("look", 30)], "start", True),
        ([("launch", 0)], "stop", True),  # StopInstances on a pending instance
        ([("launch", 0), ("terminate", 10)], "stop", True),
        ([("launch", 0), ("stop", 10), ("look", 30)], "start", False),
        ([("launch", 0)], "start", False),
        ([("launch", 0), ("look", 10)], "stop", False),
        ([("launch", 0), ("stop", 10)], "stop", False),
        ([("launch", 0), ("stop", 10)], "terminate", False),
        ([("launch", 0), ("terminate", 10), ("look", 30)], "terminate", False),  # terminating twice is harmless
    ],
)
def test_calls_in_the_wrong_state_are_refused(steps: list[tuple[str, float]], operation: str, refused: bool) -> None:
    message = _run(steps).refusal(operation, ["i-other", "i-1"])
    assert (message is not None) == refused
    if message is not None:
        assert message == f"The instance 'i-1' is not in a state from which it can be {operation}ed."


def test_a_new_instance_is_unknown_until_it_is_visible() -> None:
    states = _run([("launch", 0)])
    assert states.unknown(["i-1", "i-never-modelled"], VISIBLE - 0.1) == ["i-1"]
    assert states.unknown(["i-1"], VISIBLE) == []


def test_advance_ends_each_transition_at_its_own_time_and_history_keeps_them() -> None:
    states = InstanceStates()
    states.launch("i-1", 0, 0, PENDING)
    states.launch("i-2", 1, 1, PENDING)
    assert [i.instance_id for i in states.advance(100)] == ["i-1", "i-2"]
    assert states.instances["i-2"].history == [(1, "pending"), (1 + PENDING, "running")]
    assert states.instances["i-2"].launched_at == 1
    assert states.advance(200) == []


def test_settle_ends_only_a_transition_that_is_due() -> None:
    states = InstanceStates()
    instance = states.launch("i-1", 0, 0, PENDING)
    assert not states.settle(instance, PENDING - 1)
    generation = instance.generation
    assert states.settle(instance, PENDING)
    assert (instance.state, instance.generation) == ("running", generation + 1)
    assert not states.settle(instance, PENDING + 1)  # running ends by nobody's clock


# -- FakeInstances: the state machine on a test's clock, on a moto client -----------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1_767_225_600.0  # 2026-01-01T00:00:00Z

    def now(self) -> float:
        return self.t


@pytest.fixture
def ec2() -> Iterator[tuple[Any, FakeInstances, Clock]]:
    from moto import mock_aws

    with mock_aws():
        clock = Clock()
        client = boto3.client("ec2", region_name="eu-west-1")
        fake = FakeInstances(
            clock.now,
            lambda t: datetime.fromtimestamp(t, UTC),
            launch_pending_seconds=PENDING,
            start_pending_seconds=PENDING,
            stop_seconds=HALT,
            terminate_seconds=HALT,
            visibility_seconds=VISIBLE,
        )
        fake.install(client)
        yield client, fake, clock


def _launch(client: Any) -> str:
    image = client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    launched = client.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    return str(launched["Instances"][0]["InstanceId"])


def _state(client: Any, instance_id: str) -> str:
    reservations = client.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return str(reservations[0]["Instances"][0]["State"]["Name"])


def _code(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def test_describe_and_the_calls_follow_the_states_on_the_clock(ec2: tuple[Any, FakeInstances, Clock]) -> None:
    client, fake, clock = ec2
    instance_id = _launch(client)
    assert _code(lambda: client.describe_instances(InstanceIds=[instance_id])) == "InvalidInstanceID.NotFound"
    assert _code(lambda: client.create_tags(Resources=[instance_id], Tags=[{"Key": "k", "Value": "v"}])) == (
        "InvalidInstanceID.NotFound"
    )
    listed = client.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending"]}])
    assert listed["Reservations"] == []  # a listing leaves out what EC2 does not know yet
    assert fake.refused == [[instance_id], [instance_id]]
    clock.t += VISIBLE
    assert _state(client, instance_id) == "pending"
    assert _code(lambda: client.stop_instances(InstanceIds=[instance_id])) == "IncorrectInstanceState"
    clock.t += PENDING
    described = client.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert described["State"] == {"Name": "running", "Code": 16}
    assert described["LaunchTime"] == datetime.fromtimestamp(clock.t - VISIBLE - PENDING, UTC)
    client.stop_instances(InstanceIds=[instance_id])
    assert _state(client, instance_id) == "stopping"
    assert _code(lambda: client.start_instances(InstanceIds=[instance_id])) == "IncorrectInstanceState"
    clock.t += HALT
    assert _state(client, instance_id) == "stopped"
    client.start_instances(InstanceIds=[instance_id])
    assert _state(client, instance_id) == "pending"
    client.terminate_instances(InstanceIds=[instance_id])
    assert _state(client, instance_id) == "shutting-down"
    clock.t += HALT
    assert fake.state_of(instance_id) == "terminated"
    assert fake.settled_at() == clock.t


def test_what_another_client_does_is_followed_when_the_fake_next_looks(ec2: tuple[Any, FakeInstances, Clock]) -> None:
    client, fake, clock = ec2
    other = boto3.client("ec2", region_name="eu-west-1")  # moto carries out its calls at once
    instance_id = _launch(client)
    clock.t += VISIBLE + PENDING
    other.stop_instances(InstanceIds=[instance_id])
    assert _state(client, instance_id) == "stopping"
    assert fake.settled_at() == clock.t + HALT
    clock.t += HALT
    other.start_instances(InstanceIds=[instance_id])
    assert _state(client, instance_id) == "pending"
    other.terminate_instances(InstanceIds=[instance_id])
    assert _state(client, instance_id) == "shutting-down"
