"""CloudWatch alarm evaluation as documented.

The two worked tables of the CloudWatch user guide, "Configuring how CloudWatch alarms treat
missing data" (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html),
section "How alarm state is evaluated when data is missing" and "Avoiding premature transitions
to alarm state", are transcribed row for row: Evaluation Periods 3, evaluation range 5, the most
recent datapoint on the right; 0 not breaching, X breaching, - missing.
"""

from __future__ import annotations

import pytest

from awsfake.metrics import MetricStore
from simulator.alarms import ALARM, INSUFFICIENT, OK, AlarmEngine, evaluate_range, evaluate_rule
from simulator.deployment import AlarmSpec, CompositeSpec, MetricSpec

pytestmark = pytest.mark.simulation

RETAIN = "retain current state"
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")

# Datapoints to Alarm 3 (3 out of 3).
TABLE_3_OF_3 = [
    ("0 - X - X", (OK, OK, OK, OK)),
    ("0 - - - -", (OK, OK, OK, OK)),
    ("- - - - -", (INSUFFICIENT, RETAIN, ALARM, OK)),
    ("0 X X - X", (ALARM, ALARM, ALARM, ALARM)),
    ("- - X - -", (ALARM, RETAIN, ALARM, OK)),  # the premature-alarm row
]
# Datapoints to Alarm 2 (2 out of 3).
TABLE_2_OF_3 = [
    ("0 - X - X", (ALARM, ALARM, ALARM, ALARM)),
    ("0 0 X 0 X", (ALARM, ALARM, ALARM, ALARM)),
    ("0 - X - -", (OK, OK, ALARM, OK)),
    ("- - - - 0", (OK, OK, ALARM, OK)),
    ("- - - X -", (ALARM, RETAIN, ALARM, OK)),
]


def _points(row: str) -> list[bool | None]:
    return [None if c == "-" else c == "X" for c in row.split()]


def _cases() -> list[tuple[int, str, str, str]]:
    out = []
    for m, table in ((3, TABLE_3_OF_3), (2, TABLE_2_OF_3)):
        for row, states in table:
            out.extend((m, row, treat, state) for treat, state in zip(TREATMENTS, states, strict=True))
    return out


@pytest.mark.parametrize("current", [OK, ALARM, INSUFFICIENT])
@pytest.mark.parametrize(("m", "row", "treat", "expected"), _cases(), ids=lambda v: str(v).replace(" ", ""))
def test_documented_tables(m: int, row: str, treat: str, expected: str, current: str):
    want = current if expected == RETAIN else expected
    assert evaluate_range(_points(row), 3, m, treat, current) == want


def test_premature_rule_waits_for_the_breach_to_age():
    # "- - - - X" and "- - - X -" with Datapoints to Alarm 3: not yet ALARM (the page's examples).
    assert evaluate_range(_points("- - - - X"), 3, 3, "missing", OK) == OK
    assert evaluate_range(_points("- - - X -"), 3, 3, "missing", OK) == OK


def test_enough_real_datapoints_make_missing_data_irrelevant():
    # The newest periods not arrived yet: the most recent three real ones decide, whatever the
    # treatment (a 10 s alarm on a metric 15 s late still fires).
    for treat in TREATMENTS:
        assert evaluate_range(_points("X X X - -"), 3, 3, treat, OK) == ALARM
        assert evaluate_range(_points("0 X X - -"), 3, 3, treat, ALARM) == OK


def spec(period: int = 60, n: int = 3, m: int = 2, treat: str = "missing", name: str = "high") -> AlarmSpec:
    metric = MetricSpec("Autoscaler", "CPUUtilization", (("Fleet", "f"),), "Average", period)
    return AlarmSpec(name, metric, 70.0, "GreaterThanThreshold", n, m, treat, {"ALARM": ("topic",)})


def engine_with(*alarms: AlarmSpec, composites: tuple[CompositeSpec, ...] = (), extra: int = 2) -> AlarmEngine:
    return AlarmEngine.create(alarms, composites, MetricStore(), extra)


def test_periods_end_at_the_evaluation_minute_and_hold_what_has_arrived():
    alarm = spec()
    engine = engine_with(alarm)
    key = alarm.metric.key()
    for minute, values in enumerate([(60, 60), (80, 90), (75, 65), (90, 90), (95, 85), (99, 99)]):
        for v in values:
            engine.store.put(key, minute * 60 + 10, v, minute * 60 + 15)
    # At 250 s (minute 4): periods [0,60) .. [180,240) of the range, [240,300) not yet.
    assert [v for _, v in engine.datapoints(alarm, 250)] == [None, 60.0, 85.0, 70.0, 90.0]
    transitions = engine.evaluate("high", 250)  # 85, 70, 90: two of the three newest breach
    assert [(t.old, t.new) for t in transitions] == [(INSUFFICIENT, ALARM)]
    assert engine.evaluate("high", 310) == []  # still ALARM: no second notification
    assert engine.states["high"].value == ALARM


def test_late_datapoints_are_missing_until_they_arrive():
    alarm = spec(period=10, n=1, m=1)
    engine = engine_with(alarm)
    engine.store.put(alarm.metric.key(), 50, 99, 70)  # stamped 50, visible at 70
    assert [v for _, v in engine.datapoints(alarm, 60)][-1] is None
    assert [v for _, v in engine.datapoints(alarm, 60)][-2] is None  # [40, 50): nothing
    assert 99 in [v for _, v in engine.datapoints(alarm, 70)]


def test_a_late_metric_still_fires_a_ten_second_alarm():
    # Datapoints arrive 15 s late: the newest period is always missing, older real ones decide.
    alarm = spec(period=10, n=2, m=2)
    engine = engine_with(alarm)
    for t in range(0, 120, 10):
        engine.store.put(alarm.metric.key(), t + 5, 95.0, t + 5 + 15)
    assert [(t.old, t.new) for t in engine.evaluate("high", 100)] == [(INSUFFICIENT, ALARM)]


def test_five_minute_alarms_slide_by_the_minute():
    alarm = spec(period=300, n=1, m=1)
    engine = engine_with(alarm)
    assert [start for start, _ in engine.datapoints(alarm, 430)][-1] == 120.0  # [120, 420)
    assert [start for start, _ in engine.datapoints(alarm, 490)][-1] == 180.0


def test_evaluation_cadence():
    engine = engine_with(spec(period=10), spec(period=30, name="mid"), spec(period=60, name="low"))
    assert (engine.interval("high"), engine.interval("mid"), engine.interval("low")) == (10, 10, 60)


def test_composite_starts_insufficient_evaluates_at_creation_and_never_returns_to_it():
    low_cpu = AlarmSpec("cpu-low", MetricSpec("A", "cpu", (), "Average", 60), 40, "LessThanThreshold", 1, 1, "missing")
    low_req = AlarmSpec("req-low", MetricSpec("A", "req", (), "Sum", 60), 48, "LessThanThreshold", 1, 1, "breaching")
    composite = CompositeSpec("scale-in", 'ALARM("cpu-low") AND ALARM("req-low")', {"ALARM": ("t",)})
    engine = engine_with(low_cpu, low_req, composites=(composite,))
    assert engine.states["scale-in"].value == INSUFFICIENT
    assert [(t.alarm, t.new) for t in engine.evaluate_composites(0.0)] == [("scale-in", OK)]
    engine.store.put(low_cpu.metric.key(), 0, 30, 1)
    engine.evaluate("cpu-low", 60)
    second = engine.evaluate("req-low", 60)  # no request datapoint: breaching -> ALARM
    assert ("scale-in", OK, ALARM) in [(t.alarm, t.old, t.new) for t in second]
    assert engine.actions("scale-in", ALARM) == ("t",)
    # A child back in INSUFFICIENT_DATA makes the rule false: OK, not INSUFFICIENT_DATA.
    engine.store.series.clear()
    engine.evaluate("cpu-low", 1000)
    assert engine.states["cpu-low"].value == INSUFFICIENT
    assert engine.states["scale-in"].value == OK


def test_alarms_added_during_the_run_start_insufficient():
    engine = engine_with()
    engine.add(spec(name="late"))
    assert engine.states["late"].value == INSUFFICIENT
    assert engine.interval("late") == 60


def test_state_reason_names_the_datapoints():
    alarm = spec(period=10, n=2, m=2)
    engine = engine_with(alarm)
    for t in (0, 10, 20):
        engine.store.put(alarm.metric.key(), t + 1, 90.0, t + 2)
    engine.evaluate("high", 30)
    assert "[90.0, 90.0]" in engine.states["high"].reason
    assert "greater than the threshold (70)" in engine.states["high"].reason


def test_rule_grammar():
    states = {"a": ALARM, "b": OK, "c": INSUFFICIENT}.__getitem__
    assert evaluate_rule('ALARM("a") AND OK(b)', states)
    assert not evaluate_rule("ALARM(a) AND ALARM(b)", states)
    assert evaluate_rule("ALARM(b) OR (NOT OK(a) AND INSUFFICIENT_DATA(c))", states)
    assert evaluate_rule("TRUE", states)
    with pytest.raises(ValueError, match="parse"):
        evaluate_rule("ALARM(a) XOR ALARM(b)", states)
