"""Intake: every real-shaped event becomes an AlarmNotice or a specific Rejected, never an exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from autoscaler.intake import AlarmMessage, AlarmNotice, Rejected, parse_alarm_time, parse_event

from tests.support.events import (
    direct_alarm_event,
    event_files,
    load_event,
    sns_alarm_event,
    sns_batch,
    sns_event,
    sns_message,
    with_raw_message,
)

TEN_PAST = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
MID = "6f2c3a3e-5d1b-5a0e-9c43-0b1d2e3f4a0"  # message ids in the event files end in 1..5


def only(event: object) -> AlarmNotice | Rejected:
    results = parse_event(event)
    assert len(results) == 1, results
    return results[0]


def notice(event: object) -> AlarmNotice:
    result = only(event)
    assert isinstance(result, AlarmNotice), result
    return result


def rejected(event: object) -> Rejected:
    result = only(event)
    assert isinstance(result, Rejected), result
    return result


# --- the event files ---------------------------------------------------------------------------

SNS_FILES = [
    # file, alarm, new state, old state, time, message id
    ("sns-alarm-cpu-high.json", "fleet-cpu-high", "ALARM", "OK", TEN_PAST, MID + "1"),
    ("sns-alarm-requests-high.json", "fleet-requests-high", "ALARM", "OK", TEN_PAST, MID + "2"),
    ("sns-alarm-cpu-ok.json", "fleet-cpu-high", "OK", "INSUFFICIENT_DATA", TEN_PAST, MID + "3"),
    ("sns-alarm-metric-math.json", "fleet-cpu-math-high", "ALARM", "OK", TEN_PAST, MID + "4"),
    (
        "sns-composite-scale-in.json",
        "fleet-scale-in",
        "ALARM",
        "OK",
        TEN_PAST + timedelta(minutes=5),
        MID + "5",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("filename", "alarm", "new_state", "old_state", "at", "message_id"),
    SNS_FILES,
    ids=[row[0].removesuffix(".json") for row in SNS_FILES],
)
def test_sns_event_files_parse_to_notices(filename, alarm, new_state, old_state, at, message_id):
    event = load_event(filename)
    result = notice(event)
    assert result.alarm_name == alarm
    assert result.new_state == new_state
    assert result.old_state == old_state
    assert result.state_change_time == at
    assert result.state_change_time.utcoffset() == timedelta(0)
    assert result.message_id == message_id
    assert result.reason == sns_message(event)["NewStateReason"]


def test_every_sns_event_file_is_covered():
    sns_files = {name for name in event_files() if name.startswith("sns-")}
    assert sns_files == {row[0] for row in SNS_FILES}


def test_event_files_are_real_shaped():
    for name in event_files():
        event = load_event(name)
        if name.startswith("sns-"):
            record = event["Records"][0]
            assert record["EventSource"] == "aws:sns"
            assert isinstance(record["Sns"]["Message"], str), "Sns.Message is a JSON string, not an object"
            message = json.loads(record["Sns"]["Message"])
            assert message["Region"] == "EU (Ireland)"
            assert message["StateChangeTime"].endswith("+0000")


def test_metric_alarm_trigger_fields_are_kept():
    message = AlarmMessage.model_validate_json(load_event("sns-alarm-cpu-high")["Records"][0]["Sns"]["Message"])
    assert message.Trigger is not None
    assert message.Trigger.MetricName == "CPUUtilization"
    assert message.Trigger.Statistic == "AVERAGE"
    assert message.Trigger.Dimensions[0].name == "Fleet"
    assert message.Trigger.TreatMissingData == "- TreatMissingData: missing"
    assert message.Region == "EU (Ireland)"


def test_metric_math_alarm_has_metrics_instead_of_a_metric_name():
    message = AlarmMessage.model_validate_json(load_event("sns-alarm-metric-math")["Records"][0]["Sns"]["Message"])
    assert message.Trigger is not None
    assert message.Trigger.MetricName is None
    assert message.Trigger.Metrics is not None
    assert [m["Id"] for m in message.Trigger.Metrics] == ["e1", "m1"]


def test_composite_alarm_has_no_trigger():
    message = AlarmMessage.model_validate_json(load_event("sns-composite-scale-in")["Records"][0]["Sns"]["Message"])
    assert message.Trigger is None
    assert message.model_extra is not None
    assert "AlarmRule" in message.model_extra


def test_direct_alarm_event_file():
    result = notice(load_event("cloudwatch-alarm-direct"))
    assert result.alarm_name == "fleet-cpu-high"
    assert result.new_state == "ALARM"
    assert result.old_state == "OK"
    assert result.state_change_time == TEN_PAST
    assert result.state_change_time.utcoffset() == timedelta(0)
    assert result.reason.startswith("Threshold Crossed")


@pytest.mark.parametrize("filename", ["scheduled-event.json", "cfn-create.json", "cfn-update.json", "cfn-delete.json"])
def test_non_alarm_event_files_are_unrecognised(filename):
    assert rejected(load_event(filename)).reason == "unrecognised-event"


# --- builders and variants ---------------------------------------------------------------------


def test_sns_alarm_event_builder_overrides_fields():
    event = sns_alarm_event("fleet-requests-high", "OK", "ALARM", "2026-01-01T01:02:03.456+0000", message_id="m-1")
    result = notice(event)
    assert result == AlarmNotice(
        alarm_name="fleet-requests-high",
        new_state="OK",
        old_state="ALARM",
        state_change_time=datetime(2026, 1, 1, 1, 2, 3, 456000, tzinfo=UTC),
        reason=result.reason,
        message_id="m-1",
    )


def test_missing_old_state_is_none():
    assert notice(sns_alarm_event(old_state=None)).old_state is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:10:00.000+0000", datetime(2026, 1, 1, 0, 10, tzinfo=UTC)),
        ("2017-01-12T16:30:42.236+0000", datetime(2017, 1, 12, 16, 30, 42, 236000, tzinfo=UTC)),
        ("2026-01-01T00:10:00Z", datetime(2026, 1, 1, 0, 10, tzinfo=UTC)),
        ("2026-01-01T00:10:00+00:00", datetime(2026, 1, 1, 0, 10, tzinfo=UTC)),
        ("2026-01-01T01:10:00.000+0100", datetime(2026, 1, 1, 0, 10, tzinfo=UTC)),
        (" 2026-01-01T00:10:00.000+0000 ", datetime(2026, 1, 1, 0, 10, tzinfo=UTC)),
    ],
    ids=["cloudwatch", "aws-sample", "zulu", "iso-colon", "plus-one-hour", "padded"],
)
def test_parse_alarm_time(text, expected):
    parsed = parse_alarm_time(text)
    assert parsed == expected
    assert parsed.tzinfo is not None


def test_parse_alarm_time_rejects_naive_timestamps():
    with pytest.raises(ValueError, match="time zone"):
        parse_alarm_time("2026-01-01T00:10:00.000")


def test_idempotency_key_is_the_transition_not_the_message():
    first = notice(sns_alarm_event(message_id="a"))
    redelivered = notice(sns_alarm_event(message_id="b"))
    later = notice(sns_alarm_event(time="2026-01-01T00:11:00.000+0000"))
    assert first.idempotency_data == redelivered.idempotency_data
    assert first.idempotency_data != later.idempotency_data
    assert first.idempotency_data == {"alarm_name": "fleet-cpu-high", "state_change_time": "2026-01-01T00:10:00+00:00"}


def test_batch_of_records_is_parsed_record_by_record():
    good = sns_alarm_event(message_id="good")
    bad = with_raw_message(sns_alarm_event(message_id="bad"), "{not json")
    results = parse_event(sns_batch(good, bad, sns_alarm_event("fleet-scale-in", message_id="also-good")))
    assert [type(r).__name__ for r in results] == ["AlarmNotice", "Rejected", "AlarmNotice"]
    assert isinstance(results[1], Rejected)
    assert results[1].reason == "malformed-json"
    assert results[1].message_id == "bad"
    assert isinstance(results[2], AlarmNotice)
    assert results[2].alarm_name == "fleet-scale-in"


# --- rejections --------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["{not json", "", "AlarmName: fleet-cpu-high", '{"AlarmName": "x"'])
def test_malformed_json_in_message(raw):
    result = rejected(with_raw_message(sns_alarm_event(message_id="m-bad"), raw))
    assert result.reason == "malformed-json"
    assert result.message_id == "m-bad"
    assert "not JSON" in result.detail


@pytest.mark.parametrize("field", ["AlarmName", "NewStateValue", "StateChangeTime"])
def test_missing_required_field_is_named(field):
    result = rejected(sns_alarm_event(message_id="m-missing", drop=(field,)))
    assert result.reason == "missing-fields"
    assert field in result.detail
    assert result.message_id == "m-missing"


def test_missing_field_rejection_keeps_the_alarm_name():
    result = rejected(sns_alarm_event("fleet-cpu-high", drop=("NewStateValue",)))
    assert result.alarm_name == "fleet-cpu-high"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"new_state": "PENDING"}, "NewStateValue"),
        ({"time": "yesterday"}, "StateChangeTime"),
        ({"time": "2026-01-01T00:10:00.000"}, "StateChangeTime"),
        ({"name": ""}, "AlarmName"),
    ],
    ids=["unknown-state", "unparseable-time", "naive-time", "empty-name"],
)
def test_invalid_field_values_are_rejected(overrides, field):
    result = rejected(sns_alarm_event(**overrides))
    assert result.reason == "missing-fields"
    assert field in result.detail


@pytest.mark.parametrize("raw", ["[1, 2]", "42", "null", '"ALARM"'])
def test_json_that_is_not_an_object_is_rejected(raw):
    result = rejected(with_raw_message(sns_alarm_event(), raw))
    assert result.reason in {"missing-fields", "malformed-json"}
    assert result.alarm_name is None


@pytest.mark.parametrize(
    "event",
    [None, "a string", 42, ["Records"], {}, {"foo": "bar"}, load_event("scheduled-event")],
    ids=["none", "str", "int", "list", "empty-dict", "foreign-dict", "scheduled"],
)
def test_unrecognised_events(event):
    result = rejected(event)
    assert result.reason == "unrecognised-event"
    assert result.message_id is None


def _broken_sns(mutate):
    event = sns_alarm_event()
    mutate(event)
    return event


@pytest.mark.parametrize(
    "event",
    [
        {"Records": "not a list"},
        {"Records": [{"foo": "bar"}]},
        _broken_sns(lambda e: e["Records"][0].pop("Sns")),
        _broken_sns(lambda e: e["Records"][0]["Sns"].pop("MessageId")),
        _broken_sns(lambda e: e["Records"][0]["Sns"].pop("Message")),
        _broken_sns(lambda e: e["Records"][0].update(EventSource="aws:sqs")),
    ],
    ids=["records-not-list", "record-without-sns", "no-sns", "no-message-id", "no-message", "wrong-source"],
)
def test_bad_sns_envelope(event):
    result = rejected(event)
    assert result.reason == "malformed-sns-event"
    assert result.detail


# --- direct alarm actions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("new_state", "old_state"),
    [("ALARM", "OK"), ("OK", "ALARM"), ("ALARM", "INSUFFICIENT_DATA"), ("INSUFFICIENT_DATA", "OK")],
)
def test_direct_alarm_variants(new_state, old_state):
    result = notice(direct_alarm_event("fleet-scale-in", new_state, old_state, "2026-01-01T00:15:00.000+0000"))
    assert (result.alarm_name, result.new_state, result.old_state) == ("fleet-scale-in", new_state, old_state)
    assert result.state_change_time == TEN_PAST + timedelta(minutes=5)


def test_direct_alarm_without_previous_state():
    assert notice(direct_alarm_event(old_state=None)).old_state is None


def test_direct_alarm_recognised_by_alarm_data_alone():
    event = direct_alarm_event()
    event.pop("source")
    assert notice(event).alarm_name == "fleet-cpu-high"


def _broken_direct(mutate):
    event = direct_alarm_event()
    mutate(event)
    return event


@pytest.mark.parametrize(
    "event",
    [
        _broken_direct(lambda e: e.pop("alarmData")),
        _broken_direct(lambda e: e["alarmData"].pop("alarmName")),
        _broken_direct(lambda e: e["alarmData"].pop("state")),
        _broken_direct(lambda e: e["alarmData"]["state"].pop("value")),
        _broken_direct(lambda e: e["alarmData"]["state"].pop("timestamp")),
        _broken_direct(lambda e: e["alarmData"]["state"].update(timestamp="not a time")),
        _broken_direct(lambda e: e["alarmData"]["state"].update(timestamp="2026-01-01T00:10:00")),
    ],
    ids=["no-alarm-data", "no-name", "no-state", "no-value", "no-timestamp", "bad-timestamp", "naive-timestamp"],
)
def test_direct_alarm_missing_fields(event):
    assert rejected(event).reason == "missing-fields"


def test_direct_alarm_with_unknown_state_is_rejected_like_sns():
    assert rejected(direct_alarm_event(new_state="PENDING")).reason == "missing-fields"


# --- hostile input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 2048,  # 2 KB of brackets: json.loads raises RecursionError
        "[" * 1024 + "]" * 1024,
        '{"a":' * 700 + "1" + "}" * 700,
    ],
    ids=["unclosed-arrays", "closed-arrays", "objects"],
)
def test_deeply_nested_json_is_rejected_with_a_reason(raw):
    result = rejected(sns_event(raw))
    assert result.reason == "malformed-json"
    assert "recursion" in result.detail or "nested" in result.detail
    assert result.message_id == MID + "1"


def test_an_empty_records_list_is_rejected_with_a_reason():
    result = rejected({"Records": []})
    assert result.reason == "malformed-sns-event"
    assert "no records" in result.detail
