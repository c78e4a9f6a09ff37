"""Scale-out through the real entry point, against moto."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

import pytest
from autoscaler import entrypoints
from autoscaler.decide import decide
from autoscaler.model import Direction

from tests.support.events import alarm_event, sns_event

pytestmark = pytest.mark.integration


def _settle(fleet) -> None:
    """Create the fleet (1 in service + 1 warm) and let the warm-up finish into the pool."""
    entrypoints.create_fleet(fleet.runtime)
    fleet.mark_ready()
    fleet.clock.advance(30)
    entrypoints.reconcile(fleet.runtime)
    fleet.settle()  # EC2 stops the warm-up: `stopping`, then `stopped`
    assert fleet.lifecycle_counts() == {"service:running": 1, "pool:stopped": 1}


def _measured(fleet, cpu: float) -> None:
    """The hosts measure ``cpu`` for a minute (the metric window): an alarm on it fires on
    datapoints already published, and the decision reads the same ones."""
    fleet.knobs.cpu = cpu
    fleet.clock.advance(60)


def test_alarm_starts_a_pool_instance_and_registers_it(fleet):
    _settle(fleet)
    fleet.knobs.cpu = 90.0
    fleet.knobs.alarms["fleet-cpu-high"] = "ALARM"
    fleet.clock.advance(60)
    result = entrypoints.handle_alarm_event(
        alarm_event("fleet-cpu-high", fleet.clock.now()), fleet.runtime, Direction.OUT
    )

    (outcome,) = result["results"]
    assert outcome["reason"] == "scale-out" and outcome["desired"] == 2
    counts = fleet.lifecycle_counts()
    assert counts.get("service:running") == 2
    # The pool instance was started (not a new launch) and registered right away...
    assert len(outcome["result"]["started"]) == 1 and "launched" not in outcome["result"]
    assert set(outcome["result"]["started"]) <= fleet.registered()
    # ...and the pool is being refilled with a new warm-up.
    assert len(outcome["result"]["warming"]) == 1


def test_second_notification_during_boot_does_not_scale_twice(fleet):
    _settle(fleet)
    _measured(fleet, 90.0)
    fleet.knobs.alarms.update({"fleet-cpu-high": "ALARM", "fleet-requests-high": "ALARM"})
    entrypoints.handle_alarm_event(alarm_event("fleet-cpu-high", fleet.clock.now()), fleet.runtime, Direction.OUT)
    started = [i for i in fleet.instances() if i["State"]["Name"] == "running"]
    fleet.knobs.health = {i["InstanceId"]: "initial" for i in started[1:]}  # still booting
    fleet.knobs.health[started[0]["InstanceId"]] = "healthy"

    fleet.clock.advance(20)
    second = entrypoints.handle_alarm_event(
        alarm_event("fleet-requests-high", fleet.clock.now()), fleet.runtime, Direction.OUT
    )
    (outcome,) = second["results"]
    assert outcome["desired"] == 2, outcome
    assert outcome["reason"] in {"capacity-on-the-way", "within-tolerance"}


def test_a_reading_one_host_made_is_not_multiplied_by_a_host_that_just_joined(fleet):
    """After a scale-out from 1 to 2, a decision right after the second instance turned healthy
    reads a minute in which the first carried the load alone (98 %). Sized as the fleet average
    times the new count (2 x 98 / target) it asked for a third instance; the load is one host and
    a bit."""
    _settle(fleet)
    fleet.knobs.cpu = 98.0
    fleet.knobs.alarms["fleet-cpu-high"] = "ALARM"
    fleet.clock.advance(60)
    first = entrypoints.handle_alarm_event(
        alarm_event("fleet-cpu-high", fleet.clock.now()), fleet.runtime, Direction.OUT
    )
    assert first["results"][0]["desired"] == 2
    joined = first["results"][0]["result"]["started"][0]
    fleet.knobs.per_instance[("CPUUtilization", joined)] = None  # in service, nothing published yet
    fleet.knobs.per_instance[("RequestsPerMinute", joined)] = None
    fleet.clock.advance(40)
    again = entrypoints.reconcile(fleet.runtime)
    assert again["desired"] == 2, again


def test_one_notification_reaches_the_needed_capacity_through_reconcile(fleet):
    """CloudWatch does not repeat notifications: the schedule keeps going while the alarm holds."""
    fleet = fleet.with_settings(max_size=20, warm_pool_size=0)
    entrypoints.create_fleet(fleet.runtime)
    fleet.knobs.cpu = 800.0  # needs 10 instances' worth of CPU
    fleet.knobs.requests = None
    fleet.knobs.alarms["fleet-cpu-high"] = "ALARM"  # and stays there
    entrypoints.handle_alarm_event(alarm_event("fleet-cpu-high", fleet.clock.now()), fleet.runtime, Direction.OUT)
    desired = []
    for _ in range(6):
        # Every new instance becomes healthy; the fleet CPU stays at the level that needs 10.
        fleet.clock.advance(60)
        serving = len([i for i in fleet.instances() if i["State"]["Name"] == "running"])
        fleet.knobs.cpu = 80.0 * 10 / serving
        desired.append(entrypoints.reconcile(fleet.runtime)["desired"])
    assert desired[-1] == 10
    assert all(b >= a for a, b in itertools.pairwise(desired))


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"Records": "nope"}, "malformed-sns-event"),
        ({"Records": []}, "malformed-sns-event"),
        (sns_event("{not json"), "malformed-json"),
        (sns_event("[" * 2048), "malformed-json"),
        (sns_event({"AlarmName": "fleet-cpu-high"}), "missing-fields"),
        ({"hello": "world"}, "unrecognised-event"),
        ("a string", "unrecognised-event"),
    ],
)
def test_bad_input_is_acknowledged_with_a_reason(fleet, event, reason, caplog):
    result = entrypoints.handle_alarm_event(event, fleet.runtime, Direction.OUT)
    assert result["results"][0]["status"] == "ignored"
    assert result["results"][0]["reason"] == reason
    assert fleet.instances() == []
    assert [r.reason for r in caplog.records if r.getMessage() == "ignored event"] == [reason]


@pytest.mark.parametrize(
    ("name", "new", "old", "reason"),
    [
        ("other-fleet-cpu-high", "ALARM", "OK", "alarm-of-another-fleet"),
        ("fleet-scale-in", "ALARM", "OK", "alarm-of-the-other-direction"),
        ("fleet-cpu-high", "OK", "INSUFFICIENT_DATA", "irrelevant-transition INSUFFICIENT_DATA->OK"),
        ("fleet-cpu-high", "OK", "ALARM", "irrelevant-transition ALARM->OK"),
    ],
)
def test_irrelevant_alarms_are_acknowledged(fleet, name, new, old, reason):
    event = alarm_event(name, fleet.clock.now(), new=new, old=old)
    (outcome,) = entrypoints.handle_alarm_event(event, fleet.runtime, Direction.OUT)["results"]
    assert outcome == {"status": "ignored", "reason": reason, "alarm": name}


def test_duplicate_delivery_has_no_second_effect(fleet):
    _settle(fleet)
    _measured(fleet, 90.0)
    fleet.knobs.alarms["fleet-cpu-high"] = "ALARM"
    at = fleet.clock.now()
    event = alarm_event("fleet-cpu-high", at, message_id="m-1")
    first = entrypoints.handle_alarm_event(event, fleet.runtime, Direction.OUT)
    # The same message again, and the same transition in another message (CloudWatch may send twice).
    fleet.knobs.cpu = 300.0
    again = entrypoints.handle_alarm_event(event, fleet.runtime, Direction.OUT)
    twin = entrypoints.handle_alarm_event(
        alarm_event("fleet-cpu-high", at, message_id="m-2"), fleet.runtime, Direction.OUT
    )
    stored = json.loads(json.dumps(first))  # the idempotency record holds the JSON of the result
    assert again == stored and twin == stored
    assert fleet.lifecycle_counts().get("service:running") == 2


def test_stale_transition_is_ignored(fleet):
    _settle(fleet)
    old = fleet.clock.now()
    fleet.clock.advance(120)
    fleet.knobs.cpu = 90.0
    fleet.knobs.alarms.update({"fleet-cpu-high": "ALARM", "fleet-requests-high": "ALARM"})
    entrypoints.handle_alarm_event(alarm_event("fleet-cpu-high", fleet.clock.now()), fleet.runtime, Direction.OUT)
    late = entrypoints.handle_alarm_event(alarm_event("fleet-requests-high", old), fleet.runtime, Direction.OUT)
    assert late["results"][0]["reason"] == "stale-transition"


def test_direct_alarm_action_payload_is_accepted(fleet):
    _settle(fleet)
    _measured(fleet, 90.0)
    fleet.knobs.alarms["fleet-cpu-high"] = "ALARM"
    event = {
        "source": "aws.cloudwatch",
        "alarmArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:fleet-cpu-high",
        "accountId": "123456789012",
        "time": "2026-01-01T00:00:30.000+0000",
        "region": "eu-west-1",
        "alarmData": {
            "alarmName": "fleet-cpu-high",
            "state": {"value": "ALARM", "reason": "threshold", "timestamp": "2026-01-01T00:00:30.000+0000"},
            "previousState": {"value": "OK", "reason": "", "timestamp": "2026-01-01T00:00:00.000+0000"},
            "configuration": {"metrics": []},
        },
    }
    (outcome,) = entrypoints.handle_alarm_event(event, fleet.runtime, Direction.OUT)["results"]
    assert outcome["reason"] == "scale-out"


def test_suspended_fleet_does_not_scale(fleet):
    _settle(fleet)
    entrypoints.set_suspended(fleet.runtime, True)
    fleet.knobs.cpu = 200.0
    (outcome,) = entrypoints.handle_alarm_event(
        alarm_event("fleet-cpu-high", fleet.clock.now()), fleet.runtime, Direction.OUT
    )["results"]
    assert outcome["reason"] == "suspended"
    assert fleet.lifecycle_counts() == {"service:running": 1, "pool:stopped": 1}


def test_scale_out_is_recorded_in_the_activity_history(fleet):

    _settle(fleet)
    fleet.knobs.cpu = 90.0
    fleet.knobs.alarms["fleet-cpu-high"] = "ALARM"
    fleet.clock.advance(60)
    decided_at = fleet.clock.now()  # the run then waits while EC2 starts the pool instance
    entrypoints.handle_alarm_event(alarm_event("fleet-cpu-high", decided_at), fleet.runtime, Direction.OUT)
    latest = fleet.store.activities(since=decided_at)[0]
    assert latest["cause"] == "fleet-cpu-high"
    assert (latest["from"], latest["to"], latest["reason"], latest["status"]) == (1, 2, "scale-out", "Successful")
    assert latest["details"]["signals"]["cpu"]["up"] == 90.0 and latest["details"]["in_service"] == 1
    assert latest["details"]["alarm_time"].startswith("2026-01-01T00:")
    assert len(latest["instance_ids"]) == 2  # the started pool instance and the replacement warm-up


def test_a_late_alarm_delivered_after_its_ok_does_not_scale(fleet):
    """Lambda retries a failed invocation 1-2 minutes later: by then the alarm may be OK again.
    A direction acts only while its alarm is in ALARM."""
    _settle(fleet)
    fired = fleet.clock.now()
    fleet.knobs.cpu = 90.0
    fleet.clock.advance(30)
    fleet.knobs.alarms["fleet-cpu-high"] = "OK"
    ok = alarm_event("fleet-cpu-high", fleet.clock.now(), new="OK", old="ALARM")
    (acknowledged,) = entrypoints.handle_alarm_event(ok, fleet.runtime, Direction.OUT)["results"]
    assert acknowledged["status"] == "ignored"

    fleet.clock.advance(60)
    late = alarm_event("fleet-cpu-high", fired)
    (outcome,) = entrypoints.handle_alarm_event(late, fleet.runtime, Direction.OUT)["results"]
    assert (outcome["status"], outcome["reason"]) == ("skipped", "alarm-cleared-since")
    assert fleet.lifecycle_counts() == {"service:running": 1, "pool:stopped": 1}


def test_a_late_alarm_whose_ok_was_not_delivered_reads_the_alarm_state(fleet):
    """The template routes only ALARM transitions to the functions, so the OK may never arrive:
    the alarm's current state (DescribeAlarms) decides."""
    _settle(fleet)
    fired = fleet.clock.now()
    fleet.knobs.cpu = 90.0
    fleet.knobs.alarms["fleet-cpu-high"] = "OK"  # back to OK before the (retried) delivery
    fleet.clock.advance(90)
    (outcome,) = entrypoints.handle_alarm_event(alarm_event("fleet-cpu-high", fired), fleet.runtime, Direction.OUT)[
        "results"
    ]
    assert (outcome["status"], outcome["reason"]) == ("skipped", "alarm-not-in-alarm")
    assert fleet.lifecycle_counts() == {"service:running": 1, "pool:stopped": 1}
    # The same transition, had the alarm still been in ALARM, would have scaled (new key: a
    # different message of another transition time).
    fleet.knobs.alarms["fleet-cpu-high"] = "ALARM"
    fleet.clock.advance(10)
    (again,) = entrypoints.handle_alarm_event(
        alarm_event("fleet-cpu-high", fleet.clock.now()), fleet.runtime, Direction.OUT
    )["results"]
    assert again["reason"] == "scale-out"


def test_notifications_out_of_order_keep_the_latest_clearance(fleet):

    store = fleet.store
    later, earlier = fleet.clock.now(), fleet.clock.now() - timedelta(seconds=30)
    store.remember_cleared("fleet-cpu-high", later)
    store.remember_cleared("fleet-cpu-high", earlier)  # delivered after the later one
    assert store.load().alarms_cleared_at == {"fleet-cpu-high": later}


def test_a_duplicate_delivered_while_the_first_runs_is_acknowledged(fleet):
    _settle(fleet)
    _measured(fleet, 90.0)
    fleet.knobs.alarms["fleet-cpu-high"] = "ALARM"
    event = alarm_event("fleet-cpu-high", fleet.clock.now(), message_id="m-1")
    seen: list[object] = []

    def deciding_while_a_copy_arrives(snapshot, policy, now):
        if not seen:  # SNS delivered the same transition to a second, concurrent invocation
            try:
                seen.append(entrypoints.handle_alarm_event(event, fleet.runtime, Direction.OUT))
            except Exception as error:  # the assertion below names it
                seen.append(error)
        return decide(snapshot, policy, now)

    fleet.runtime.decider = deciding_while_a_copy_arrives
    (first,) = entrypoints.handle_alarm_event(event, fleet.runtime, Direction.OUT)["results"]
    assert seen == [{"results": [{"status": "ignored", "reason": "in-progress-elsewhere", "alarm": "fleet-cpu-high"}]}]
    assert first["reason"] == "scale-out"
    assert fleet.lifecycle_counts().get("service:running") == 2


def test_a_scale_out_is_followed_through_after_its_alarm_went_quiet(fleet):
    """Closed-loop clients show more demand once capacity is added; the hosts then read between
    the target and the alarm's line. Within the follow-through window the reconcile goes on, from
    the state table's record of the scale-out; after a scale-in it does not."""
    _settle(fleet)
    _measured(fleet, 100.0)
    fleet.knobs.alarms["fleet-cpu-high"] = "ALARM"
    first = entrypoints.handle_alarm_event(
        alarm_event("fleet-cpu-high", fleet.clock.now()), fleet.runtime, Direction.OUT
    )
    assert first["results"][0]["desired"] == 2
    stored = fleet.store.load()
    assert stored.last_scale_out_at is not None and stored.last_scale_out_at == stored.last_scaling_at
    fleet.knobs.alarms["fleet-cpu-high"] = "OK"
    _measured(fleet, 85.0)  # two hosts at 85 %: 170 % of CPU is 3 hosts at the 80 % target
    again = entrypoints.reconcile(fleet.runtime)
    assert (again["reason"], again["desired"]) == ("scale-out-follow-through", 3), again

    fleet.clock.advance(200)  # past the window: the same reading waits for an alarm
    fleet.settle()
    later = entrypoints.reconcile(fleet.runtime)
    assert later["reason"] in {"scale-out-alarm-not-in-alarm", "within-tolerance", "capacity-on-the-way"}, later
    assert later["desired"] == 3
