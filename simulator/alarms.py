"""CloudWatch alarm evaluation: M of N, TreatMissingData, composite rules, transition-only actions."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from simulator.cloudwatch import MetricStore
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


def breaches(spec: AlarmSpec, value: float) -> bool:
    return _COMPARE[spec.comparison](value, spec.threshold)


def evaluate_datapoints(
    values: list[float | None], threshold_check: Callable[[float], bool], m: int, treat: str, current: str
) -> str:
    """The state N datapoints (oldest first, ``None`` = missing) give, per CloudWatch's rules.

    - no datapoint at all: missing -> INSUFFICIENT_DATA, ignore -> keep the state,
      breaching -> ALARM, notBreaching -> OK;
    - otherwise missing datapoints count as breaching (breaching), as good (notBreaching), or are
      left out (missing, ignore); ALARM when at least M datapoints breach, else OK.
    """
    present = [v for v in values if v is not None]
    if not present:
        return {"missing": INSUFFICIENT, "ignore": current, "breaching": ALARM, "notBreaching": OK}[treat]
    breaching = sum(1 for v in present if threshold_check(v))
    if treat == "breaching":
        breaching += len(values) - len(present)
    return ALARM if breaching >= m else OK


@dataclass
class AlarmState:
    name: str
    value: str = INSUFFICIENT
    reason: str = "Unchecked: Initial alarm creation"
    changed_at: float = 0.0
    old_value: str = INSUFFICIENT
    last_datapoints: tuple[float | None, ...] = ()


Transition = tuple[str, str, str, float]  # (alarm name, old, new, time)


class AlarmEngine:
    """Evaluates metric alarms on their schedule and composites on child changes."""

    def __init__(self, alarms: tuple[AlarmSpec, ...], composites: tuple[CompositeSpec, ...], store: MetricStore):
        self.alarms = {a.name: a for a in alarms}
        self.composites = {c.name: c for c in composites}
        self.store = store
        self.states: dict[str, AlarmState] = {name: AlarmState(name) for name in [*self.alarms, *self.composites]}
        self.history: list[Transition] = []

    def interval(self, name: str) -> float:
        """Alarms with periods of 60 s or more are evaluated every minute, shorter ones every 10 s."""
        return 60.0 if self.alarms[name].period >= 60 else 10.0

    def datapoints(self, spec: AlarmSpec, now: float) -> list[float | None]:
        """The last N complete periods before ``now`` (oldest first), as visible at ``now``."""
        period = spec.period
        end = math.floor(now / period) * period
        key = spec.metric.key()
        out: list[float | None] = []
        for k in range(spec.evaluation_periods, 0, -1):
            start = end - k * period
            out.append(self.store.statistic(key, start, start + period, now, spec.metric.statistic))
        return out

    def evaluate(self, name: str, now: float) -> list[Transition]:
        spec = self.alarms[name]
        state = self.states[name]
        values = self.datapoints(spec, now)
        state.last_datapoints = tuple(values)
        new = evaluate_datapoints(
            values, lambda v: breaches(spec, v), spec.datapoints_to_alarm, spec.treat_missing_data, state.value
        )
        transitions = self._set(name, new, now, f"{sum(v is not None for v in values)} of {len(values)} datapoints")
        if transitions:
            transitions.extend(self._composites(now))
        return transitions

    def _set(self, name: str, new: str, now: float, reason: str) -> list[Transition]:
        state = self.states[name]
        if new == state.value:
            return []
        transition = (name, state.value, new, now)
        state.old_value, state.value, state.changed_at, state.reason = state.value, new, now, reason
        self.history.append(transition)
        return [transition]

    def _composites(self, now: float) -> list[Transition]:
        out: list[Transition] = []
        for name, spec in self.composites.items():
            value = ALARM if evaluate_rule(spec.rule, self.state_of) else OK
            out.extend(self._set(name, value, now, f"rule {spec.rule}"))
        return out

    def state_of(self, name: str) -> str:
        state = self.states.get(name)
        if state is None:
            raise KeyError(f"composite rule names unknown alarm {name!r}")
        return state.value

    def actions(self, name: str, state: str) -> tuple[str, ...]:
        spec = self.alarms.get(name) or self.composites.get(name)
        assert spec is not None
        return spec.actions.get(state, ())


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
