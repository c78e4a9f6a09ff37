"""The scaling decision: a pure function of a fleet snapshot, a policy and the time.

Sizing follows the Kubernetes HPA (see docs/design.md): per signal
``ceil(in_service x value / target)``, the maximum across signals, a tolerance band,
a per-decision scale-out limit, and scale-in only to the highest recommendation seen
during the stabilization window. Booting instances count as capacity on the way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from autoscaler.model import Decision, Direction, FleetState, Recommendation, ScalingPolicy, Snapshot

# Reasons, as they appear in logs, metrics and the activity history.
SUSPENDED = "suspended"
BELOW_MIN = "below-min"
ABOVE_MAX = "above-max"
NO_METRICS = "no-metrics"
NOTHING_IN_SERVICE = "nothing-in-service"
SCALE_OUT = "scale-out"
SCALE_IN = "scale-in"
CAPACITY_ON_THE_WAY = "capacity-on-the-way"
OUT_NOT_ARMED = "scale-out-alarm-not-in-alarm"
IN_NOT_ARMED = "scale-in-alarm-not-in-alarm"
STABILIZING = "scale-in-stabilizing"
AT_TARGET = "within-tolerance"
AT_BOUND = "at-bound"
SMALL_STEP = "step-below-minimum"
REASONS = (
    SUSPENDED, BELOW_MIN, ABOVE_MAX, NO_METRICS, NOTHING_IN_SERVICE, SCALE_OUT, SCALE_IN,
    CAPACITY_ON_THE_WAY, OUT_NOT_ARMED, IN_NOT_ARMED, STABILIZING, AT_TARGET, AT_BOUND, SMALL_STEP,
)  # fmt: skip


@dataclass(frozen=True)
class SignalRecommendation:
    name: str
    value: float
    target: float
    desired: int


def clamp(value: int, policy: ScalingPolicy) -> int:
    return max(policy.min_size, min(policy.max_size, value))


def current_desired(state: FleetState, capacity: int, policy: ScalingPolicy) -> int:
    """The desired capacity now: as remembered, or (first run) what is serving or booting."""
    return state.desired if state.desired is not None else clamp(capacity, policy)


def scale_out_limit(current: int, policy: ScalingPolicy) -> int:
    """The most one decision may ask for (HPA: max(2 x current, current + 4))."""
    return max(math.ceil(policy.scale_out_factor * current), current + policy.scale_out_step)


def recommend_for_signal(
    name: str, value: float, target: float, in_service: int, current: int, tolerance: float
) -> SignalRecommendation:
    """Proportional recommendation for one signal, neutral (= current) inside the tolerance band.

    Outside the band the result never crosses ``current`` in the wrong direction, which keeps
    it monotone in ``value`` when booting instances make ``current`` exceed ``in_service``.
    """
    ratio = value / target
    if abs(ratio - 1.0) <= tolerance:
        desired = current
    else:
        # The epsilon keeps exact multiples (e.g. 2 x 0.5) from rounding up through float noise.
        proportional = math.ceil(in_service * ratio - 1e-9)
        desired = max(proportional, current) if ratio > 1.0 else min(proportional, current)
    return SignalRecommendation(name, value, target, desired)


def recent_recommendations(
    history: Sequence[Recommendation], now: datetime, window_seconds: float
) -> tuple[Recommendation, ...]:
    """The part of the history the stabilization window can still see (what is worth storing)."""
    horizon = now - timedelta(seconds=window_seconds)
    return tuple(r for r in history if r.at > horizon)


def stabilized_recommendation(
    recommendation: int, history: tuple[Recommendation, ...], now: datetime, window_seconds: float
) -> int:
    """Highest recommendation within the scale-in window, the current one included."""
    return max([recommendation, *(r.desired for r in recent_recommendations(history, now, window_seconds))])


def decide(snapshot: Snapshot, policy: ScalingPolicy, now: datetime) -> Decision:
    """Return the desired capacity for ``snapshot`` under ``policy`` at ``now``."""
    state = snapshot.state
    current = current_desired(state, snapshot.capacity, policy)

    def keep(reason: str, message: str, recommendation: int | None = None) -> Decision:
        return Decision(current, current, reason, message, recommendation)

    if state.suspended:
        return keep(SUSPENDED, "automatic scaling is suspended")
    if current < policy.min_size:
        return Decision(policy.min_size, current, BELOW_MIN, f"raised to min size {policy.min_size}")
    if current > policy.max_size:
        return Decision(policy.max_size, current, ABOVE_MAX, f"lowered to max size {policy.max_size}")

    in_service = snapshot.in_service
    if policy.fixed_step is not None:
        return _fixed_step(snapshot, policy, current)

    signals = [
        (name, value, target)
        for name, value, target in (
            ("cpu", snapshot.metrics.cpu_percent, policy.cpu_target),
            ("requests_per_target", snapshot.metrics.requests_per_target, policy.requests_per_target_target),
        )
        if value is not None
    ]
    if not signals:
        return keep(NO_METRICS, "no fleet metric had data in the decision window")
    if in_service == 0:
        return keep(NOTHING_IN_SERVICE, f"no instance in service yet ({snapshot.booting} booting)")

    per_signal = [
        recommend_for_signal(name, value, target, in_service, current, policy.tolerance)
        for name, value, target in signals
    ]
    recent = snapshot.metrics.cpu_recent_percent
    if recent is not None:
        # Scale out fast: the short window sees a load step the long one still averages away.
        per_signal.append(
            recommend_for_signal("cpu_recent", recent, policy.cpu_target, in_service, current, policy.tolerance)
        )
    # The recorded recommendation (and any scale-in) follows the long window only.
    recommendation = clamp(max(s.desired for s in per_signal if s.name != "cpu_recent"), policy)
    upward = clamp(max(s.desired for s in per_signal), policy)
    detail = ", ".join(f"{s.name}={s.value:.1f}/{s.target:g}->{s.desired}" for s in per_signal)
    detail += f"; in service {in_service}, booting {snapshot.booting}, desired {current}"

    min_step = max(1, math.ceil(policy.min_step_fraction * current - 1e-9))
    if current < upward < min(current + min_step, policy.max_size):
        return keep(SMALL_STEP, f"{detail}; a step under {min_step} is noise at this size", recommendation)
    if upward > current:
        if Direction.OUT not in snapshot.active:
            return keep(OUT_NOT_ARMED, detail, recommendation)
        desired = min(upward, scale_out_limit(current, policy))
        return Decision(desired, current, SCALE_OUT, detail, max(recommendation, desired))
    if recommendation < current:
        if Direction.IN not in snapshot.active:
            return keep(IN_NOT_ARMED, detail, recommendation)
        stabilized = stabilized_recommendation(
            recommendation, state.recommendations, now, policy.scale_in_stabilization_seconds
        )
        if stabilized >= current:
            return keep(STABILIZING, f"{detail}; highest recent recommendation {stabilized}", recommendation)
        if max(current - min_step, policy.min_size) < stabilized:
            return keep(SMALL_STEP, f"{detail}; a step under {min_step} is noise at this size", recommendation)
        return Decision(clamp(stabilized, policy), current, SCALE_IN, detail, recommendation)
    if snapshot.capacity < current and any(s.desired > in_service for s in per_signal):
        return keep(CAPACITY_ON_THE_WAY, detail, recommendation)
    return keep(AT_TARGET, detail, recommendation)


def _fixed_step(snapshot: Snapshot, policy: ScalingPolicy, current: int) -> Decision:
    """The 2013 prototype: one alarm, one instance, no sizing and no cooldown."""
    step = policy.fixed_step or 1
    message = f"fixed step of {step}; in service {snapshot.in_service}, desired {current}"
    if Direction.OUT in snapshot.active and Direction.IN not in snapshot.active:
        desired = clamp(current + step, policy)
        return Decision(desired, current, SCALE_OUT if desired != current else AT_BOUND, message)
    if Direction.IN in snapshot.active and Direction.OUT not in snapshot.active:
        desired = clamp(current - step, policy)
        return Decision(desired, current, SCALE_IN if desired != current else AT_BOUND, message)
    return Decision(current, current, AT_TARGET, message)
