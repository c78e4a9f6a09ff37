"""CloudWatch alarm evaluation as documented, composite alarms, transition-only actions.

Source: CloudWatch user guide, "Configuring how CloudWatch alarms treat missing data"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html),
including "Avoiding premature transitions to alarm state"; tests/simulator/test_alarms.py turns
both of its worked tables into tests.

- Each evaluation retrieves an *evaluation range* of more periods than EvaluationPeriods (N).
- At least N real datapoints in the range: the most recent N real ones decide (ALARM when at
  least M = DatapointsToAlarm breach); TreatMissingData is not used.
- Fewer than N: every real datapoint counts, and the N - real gaps are filled per
  TreatMissingData (breaching / notBreaching), or left out (missing / ignore), where the
  premature-alarm rule applies. No real datapoint at all: missing -> INSUFFICIENT_DATA,
  ignore -> keep the state, breaching -> ALARM, notBreaching -> OK.
- Periods of 60 s or more are evaluated every minute, 10 s and 30 s (high-resolution) alarms
  every 10 s, each at its own phase. The periods end at the evaluation time (to the second for
  high-resolution alarms, to the minute otherwise), so a five-minute alarm slides by a minute at
  each evaluation ("Limits", CloudWatch user guide) and the newest period holds only what has
  arrived so far ("CloudWatch alarms evaluate metrics based on data points available at a
  specific moment", AWS Knowledge Center "Why did my CloudWatch alarm trigger when its metric
  doesn't have any breaching data points?").
- Composite alarms start in INSUFFICIENT_DATA, are evaluated at creation and whenever an alarm
  in their rule changes state, and never return to INSUFFICIENT_DATA (CloudFormation
  AWS::CloudWatch::CompositeAlarm: "this initial time after creation is the only time that the
  alarm can be in INSUFFICIENT_DATA state").
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from awsfake.metrics import MetricStore
from simulator.deployment import AlarmSpec, CompositeSpec

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT = "INSUFFICIENT_DATA"

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
_WORDS = {
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "GreaterThanThreshold": "greater than",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}


def breaches(spec: AlarmSpec, value: float) -> bool:
    return _COMPARE[spec.comparison](value, spec.threshold)


def evaluate_range(points: Sequence[bool | None], n: int, m: int, treat: str, current: str) -> str:
    """The state an evaluation range gives (oldest first; True breaching, False not, None missing)."""
    # (age, breaching) of the real datapoints, newest first; age 1 is the most recent period.
    real = [(age, b) for age, b in enumerate(reversed(points), start=1) if b is not None]
    if len(real) >= n:
        return ALARM if sum(b for _, b in real[:n]) >= m else OK
    if not real:
        return {"missing": INSUFFICIENT, "ignore": current, "breaching": ALARM, "notBreaching": OK}[treat]
    breaching = sum(b for _, b in real)
    if treat == "breaching":
        return ALARM if breaching + (n - len(real)) >= m else OK
    if treat == "notBreaching":
        return ALARM if breaching >= m else OK
    if _premature_rule(real, n, m):
        return ALARM if treat == "missing" else current
    return ALARM if breaching >= m else OK


def _premature_rule(real: list[tuple[int, bool]], n: int, m: int) -> bool:
    """ "Alarms are designed to always go into ALARM state when the oldest available breaching
    datapoint during the Evaluation Periods number of data points is at least as old as the value
    of Datapoints to Alarm, and all other more recent data points are breaching or missing."
    The page's 2-of-3 row ``0 - X - -`` stays OK, so a non-breaching datapoint anywhere in the
    range turns the rule off."""
    if any(not b for _, b in real):
        return False
    within = [age for age, _ in real if age <= n]
    return bool(within) and max(within) >= m


@dataclass
class AlarmState:
    name: str
    value: str = INSUFFICIENT
    reason: str = "Unchecked: Initial alarm creation"
    changed_at: float = 0.0
    old_value: str = INSUFFICIENT


@dataclass(frozen=True)
class Transition:
    alarm: str
    old: str
    new: str
    at: float


@dataclass
class AlarmEngine:
    """Evaluates metric alarms on their cadence and composites when a child changes."""

    alarms: dict[str, AlarmSpec]
    composites: dict[str, CompositeSpec]
    store: MetricStore
    range_extra: int = 2
    states: dict[str, AlarmState] = field(default_factory=dict)
    history: list[Transition] = field(default_factory=list)

    @classmethod
    def create(
        cls, alarms: Sequence[AlarmSpec], composites: Sequence[CompositeSpec], store: MetricStore, range_extra: int
    ) -> AlarmEngine:
        engine = cls({a.name: a for a in alarms}, {c.name: c for c in composites}, store, range_extra)
        for name in [*engine.alarms, *engine.composites]:
            engine.states[name] = AlarmState(name)
        return engine

    def add(self, alarm: AlarmSpec) -> None:
        """A metric alarm created during the run (starts in INSUFFICIENT_DATA, like PutMetricAlarm)."""
        self.alarms[alarm.name] = alarm
        self.states[alarm.name] = AlarmState(alarm.name)

    def interval(self, name: str) -> float:
        """Periods of 60 s or more are evaluated every minute, high-resolution ones every 10 s."""
        return 60.0 if self.alarms[name].period >= 60 else 10.0

    def datapoints(self, spec: AlarmSpec, now: float) -> list[tuple[float, float | None]]:
        """The evaluation range: (period start, value or None), oldest first, ending at ``now``."""
        period = spec.period
        resolution = 1.0 if period < 60 else 60.0
        end = math.floor(now / resolution) * resolution
        key = spec.metric.key()
        size = spec.evaluation_periods + self.range_extra
        return [
            (start, self.store.statistic(key, start, start + period, now, spec.metric.statistic))
            for start in (end - k * period for k in range(size, 0, -1))
        ]

    def evaluate(self, name: str, now: float) -> list[Transition]:
        spec = self.alarms[name]
        state = self.states[name]
        points = self.datapoints(spec, now)
        flags = [None if v is None else breaches(spec, v) for _, v in points]
        new = evaluate_range(flags, spec.evaluation_periods, spec.datapoints_to_alarm, spec.treat_missing_data,
                             state.value)  # fmt: skip
        transitions = self._set(name, new, now, _reason(spec, points, new))
        if transitions:
            transitions.extend(self.evaluate_composites(now))
        return transitions

    def evaluate_composites(self, now: float) -> list[Transition]:
        out: list[Transition] = []
        for name, spec in self.composites.items():
            value = ALARM if evaluate_rule(spec.rule, self.state_of) else OK
            out.extend(self._set(name, value, now, f"rule {spec.rule} is {value == ALARM}"))
        return out

    def _set(self, name: str, new: str, now: float, reason: str) -> list[Transition]:
        state = self.states[name]
        if new == state.value:
            return []
        transition = Transition(name, state.value, new, now)
        state.old_value, state.value, state.changed_at, state.reason = state.value, new, now, reason
        self.history.append(transition)
        return [transition]

    def state_of(self, name: str) -> str:
        state = self.states.get(name)
        if state is None:
            raise KeyError(f"composite rule names unknown alarm {name!r}")
        return state.value

    def actions(self, name: str, state: str) -> tuple[str, ...]:
        spec = self.alarms.get(name) or self.composites.get(name)
        assert spec is not None
        return spec.actions.get(state, ())


def _reason(spec: AlarmSpec, points: list[tuple[float, float | None]], new: str) -> str:
    """Like CloudWatch's StateReason: which datapoints crossed the threshold."""
    real = [f"{v:.1f}" for _, v in reversed(points) if v is not None][: spec.evaluation_periods]
    if not real:
        return "Insufficient Data: no datapoints in the evaluation range"
    verb = "were" if new == ALARM else "were not all"
    return (
        f"Threshold Crossed: the most recent datapoints [{', '.join(real)}] {verb} {_WORDS[spec.comparison]} "
        f"the threshold ({spec.threshold:g}) (minimum {spec.datapoints_to_alarm} of {spec.evaluation_periods})."
    )


_TOKEN = re.compile(
    r"\s*(\(|\)|AND\b|OR\b|NOT\b|TRUE\b|FALSE\b|(ALARM|OK|INSUFFICIENT_DATA)\s*\(\s*(\"[^\"]*\"|'[^']*'|[^)\s]+)\s*\))"
)


def evaluate_rule(rule: str, state_of: Callable[[str], str]) -> bool:
    """Evaluate a composite AlarmRule: ALARM(x) / OK(x) / INSUFFICIENT_DATA(x), AND, OR, NOT, ()."""
    tokens: list[tuple[str, str, str]] = []
    pos = 0
    text = rule.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"cannot parse alarm rule at {text[pos:]!r}")
        tokens.append(
            (
                match.group(1).split("(")[0].strip() if match.group(2) else match.group(1),
                match.group(2) or "",
                (match.group(3) or "").strip("\"'"),
            )
        )
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    index = 0

    def parse_or() -> bool:
        nonlocal index
        value = parse_and()
        while index < len(tokens) and tokens[index][0] == "OR":
            index += 1
            rhs = parse_and()
            value = value or rhs
        return value

    def parse_and() -> bool:
        nonlocal index
        value = parse_not()
        while index < len(tokens) and tokens[index][0] == "AND":
            index += 1
            rhs = parse_not()
            value = value and rhs
        return value

    def parse_not() -> bool:
        nonlocal index
        if index < len(tokens) and tokens[index][0] == "NOT":
            index += 1
            return not parse_not()
        return parse_atom()

    def parse_atom() -> bool:
        nonlocal index
        if index >= len(tokens):
            raise ValueError(f"alarm rule ends early: {rule!r}")
        kind, state, name = tokens[index]
        index += 1
        if kind == "(":
            value = parse_or()
            if index >= len(tokens) or tokens[index][0] != ")":
                raise ValueError(f"unbalanced parentheses in {rule!r}")
            index += 1
            return value
        if kind in {"TRUE", "FALSE"}:
            return kind == "TRUE"
        if state:
            return state_of(name) == state
        raise ValueError(f"unexpected {kind!r} in alarm rule {rule!r}")

    result = parse_or()
    if index != len(tokens):
        raise ValueError(f"trailing tokens in alarm rule {rule!r}")
    return result
