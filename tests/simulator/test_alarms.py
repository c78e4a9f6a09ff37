"""Alarm evaluation against hand-computed cases."""

from __future__ import annotations

import pytest

from simulator.alarms import ALARM, INSUFFICIENT, OK, AlarmEngine, evaluate_datapoints, evaluate_rule
from simulator.cloudwatch import MetricStore
from simulator.deployment import AlarmSpec, CompositeSpec, MetricSpec

pytestmark = pytest.mark.simulation


def above(v: float) -> bool:
    return v > 70


@pytest.mark.parametrize(
    ("values", "m", "treat", "current", "expected"),
    [
        ([80, 80, 80], 3, "missing", OK, ALARM),
        ([80, 60, 80], 3, "missing", OK, OK),
        ([80, 60, 80], 2, "missing", OK, ALARM),  # 2 of 3
        ([60, 80, 60, 80, 60], 2, "missing", OK, ALARM),  # 2 of 5
        ([60, 80, 60, 60, 60], 2, "missing", ALARM, OK),
        # one missing datapoint
        ([80, None, 80], 3, "missing", OK, OK),  # only 2 present breach: fewer than M
        ([80, None, 80], 3, "breaching", OK, ALARM),
        ([80, None, 80], 3, "notBreaching", OK, OK),
        ([80, None, 80], 2, "ignore", OK, ALARM),
        # every datapoint missing
        ([None, None, None], 3, "missing", OK, INSUFFICIENT),
        ([None, None, None], 3, "ignore", ALARM, ALARM),
        ([None, None, None], 3, "ignore", OK, OK),
        ([None, None, None], 3, "breaching", OK, ALARM),
        ([None, None, None], 3, "notBreaching", ALARM, OK),
    ],
)
def test_m_of_n_and_missing_data(values, m, treat, current, expected):
    assert evaluate_datapoints(values, above, m, treat, current) == expected


def spec(period: int = 60, n: int = 3, m: int = 2, treat: str = "missing") -> AlarmSpec:
    metric = MetricSpec("Autoscaler", "CPUUtilization", (("Fleet", "f"),), "Average", period)
    return AlarmSpec("high", metric, 70.0, "GreaterThanThreshold", n, m, treat, {"ALARM": ("topic",)})


def test_engine_uses_complete_periods_and_notifies_once():
    store = MetricStore()
    alarm = spec()
    key = alarm.metric.key()
    engine = AlarmEngine((alarm,), (), store)
    # Two hosts per period; the period average is what counts (75 and 65 -> 70, not above).
    for minute, values in enumerate([(60, 60), (80, 90), (75, 65), (90, 90), (95, 85), (99, 99)]):
        for v in values:
            store.put(key, minute * 60 + 10, v, minute * 60 + 15)
    first = engine.evaluate("high", 120)  # [missing, 60, 85]: one breach, two needed
    assert [(t[1], t[2]) for t in first] == [(INSUFFICIENT, OK)]
    transitions = engine.evaluate("high", 240)  # periods 1..3: 85, 70, 90 -> 2 breach
    assert [(t[1], t[2]) for t in transitions] == [(OK, ALARM)]
    assert engine.evaluate("high", 300) == []  # still ALARM: no second notification
    assert engine.evaluate("high", 360) == []
    assert engine.states["high"].value == ALARM


def test_first_evaluation_reports_insufficient_to_ok_transition():
    store = MetricStore()
    alarm = spec(n=1, m=1)
    store.put(alarm.metric.key(), 10, 50, 15)
    engine = AlarmEngine((alarm,), (), store)
    assert [(t[1], t[2]) for t in engine.evaluate("high", 60)] == [(INSUFFICIENT, OK)]


def test_datapoints_not_yet_visible_are_missing():
    store = MetricStore()
    alarm = spec(n=1, m=1)
    store.put(alarm.metric.key(), 50, 99, 70)  # published at 50, visible at 70
    engine = AlarmEngine((alarm,), (), store)
    assert engine.datapoints(alarm, 60) == [None]  # period [0, 60): its datapoint is not visible yet
    assert engine.datapoints(alarm, 70) == [99]  # same period, now visible
    assert engine.datapoints(alarm, 120) == [None]  # period [60, 120) has none


def test_high_resolution_alarms_evaluate_every_ten_seconds():
    engine = AlarmEngine((spec(period=10),), (), MetricStore())
    assert engine.interval("high") == 10
    assert AlarmEngine((spec(period=60),), (), MetricStore()).interval("high") == 60


def test_composite_is_and_of_children_and_notifies_on_transition():
    store = MetricStore()
    low_cpu = AlarmSpec("cpu-low", MetricSpec("A", "cpu", (), "Average", 60), 40, "LessThanThreshold", 1, 1, "missing")
    low_req = AlarmSpec("req-low", MetricSpec("A", "req", (), "Sum", 60), 48, "LessThanThreshold", 1, 1, "breaching")
    composite = CompositeSpec("scale-in", 'ALARM("cpu-low") AND ALARM("req-low")', {"ALARM": ("t",)})
    engine = AlarmEngine((low_cpu, low_req), (composite,), store)
    store.put(low_cpu.metric.key(), 0, 30, 1)
    first = engine.evaluate("cpu-low", 60)
    assert ("scale-in", INSUFFICIENT, OK, 60) in first  # req-low not in ALARM yet
    second = engine.evaluate("req-low", 60)  # no request datapoint: breaching -> ALARM
    assert ("scale-in", OK, ALARM, 60) in second
    assert engine.actions("scale-in", ALARM) == ("t",)


def test_rule_grammar():
    states = {"a": ALARM, "b": OK, "c": INSUFFICIENT}.__getitem__
    assert evaluate_rule('ALARM("a") AND OK(b)', states)
    assert not evaluate_rule("ALARM(a) AND ALARM(b)", states)
    assert evaluate_rule("ALARM(b) OR (NOT OK(a) AND INSUFFICIENT_DATA(c))", states)
    assert evaluate_rule("TRUE", states)
    with pytest.raises(ValueError, match="parse"):
        evaluate_rule("ALARM(a) XOR ALARM(b)", states)
