"""Scaling policies to compare: ours (the template as deployed) and two baselines.

A baseline keeps the template's alarm *names* (so the functions' settings still match) and
replaces what they measure and how they decide:

- ``prototype``: the 2013 design. 5-minute CPU alarms (high >= 65 %, low <= 20 %, one datapoint,
  as listed in the prototype's notes), one instance per notification, no cooldown. The
  prototype's per-instance alarms are approximated by the fleet average.
- ``target-tracking``: EC2 Auto Scaling's defaults at the template's CPU target: high alarm 3 of 3
  one-minute datapoints above the target, low alarm 15 of 15 below 0.9 x target; proportional
  sizing without a scale-in stabilization window.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from simulator.deployment import AlarmSpec, CompositeSpec, Deployment, MetricSpec

POLICIES = ("ours", "prototype", "target-tracking")


def _names(deployment: Deployment, key: str) -> tuple[str, ...]:
    for fn in deployment.functions:
        value = fn.environment.get(key)
        if value:
            return tuple(v.strip() for v in value.split(",") if v.strip())
    return ()


def _actions(deployment: Deployment, name: str) -> dict[str, tuple[str, ...]]:
    for alarm in deployment.alarms:
        if alarm.name == name:
            return dict(alarm.actions)
    for composite in deployment.composites:
        if composite.name == name:
            return dict(composite.actions)
    return {}


def apply_policy(deployment: Deployment, policy: str) -> tuple[Deployment, Any]:
    """The deployment and the ScalingPolicy override (None = the settings' own) for ``policy``."""
    if policy == "ours":
        return deployment, None
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r} (choose from {', '.join(POLICIES)})")
    from autoscaler.model import ScalingPolicy

    env: dict[str, str] = next((fn.environment for fn in deployment.functions if fn.environment), {})
    fleet = env.get("FLEET_NAME", "fleet")
    cpu_target = float(env.get("CPU_TARGET", 70))
    outs, ins = _names(deployment, "SCALE_OUT_ALARM_NAMES"), _names(deployment, "SCALE_IN_ALARM_NAMES")
    if not outs or not ins:
        raise ValueError("baselines need SCALE_OUT_ALARM_NAMES and SCALE_IN_ALARM_NAMES in the template")
    namespace = env.get("CPU_METRIC_NAMESPACE", "Autoscaler")
    metric_name = env.get("CPU_METRIC_NAME", "CPUUtilization")

    def alarm(name: str, period: int, n: int, threshold: float, comparison: str) -> AlarmSpec:
        metric = MetricSpec(namespace, metric_name, (("Fleet", fleet),), "Average", period)
        return AlarmSpec(name, metric, threshold, comparison, n, n, "missing", _actions(deployment, name))

    high, low = "GreaterThanOrEqualToThreshold", "LessThanOrEqualToThreshold"
    if policy == "prototype":
        alarms = [alarm(n, 300, 1, 65.0, high) for n in outs] + [alarm(n, 300, 1, 20.0, low) for n in ins]
        extra: dict[str, Any] = {"fixed_step": 1, "scale_in_stabilization_seconds": 0.0}
    else:
        alarms = [alarm(n, 60, 3, cpu_target, "GreaterThanThreshold") for n in outs]
        alarms += [alarm(n, 60, 15, 0.9 * cpu_target, "LessThanThreshold") for n in ins]
        extra = {"scale_in_stabilization_seconds": 0.0, "requests_per_target_target": 1e12}
    min_size = int(float(env.get("MIN_SIZE", 1)))
    max_size = int(float(env.get("MAX_SIZE", 10)))
    scaling = ScalingPolicy(
        min_size=min_size,
        max_size=max_size,
        cpu_target=cpu_target,
        requests_per_target_target=float(env.get("REQUESTS_PER_TARGET_TARGET", 84)),
        tolerance=float(env.get("TOLERANCE", 0.1)),
    )
    scaling = replace(scaling, **extra)
    composites: tuple[CompositeSpec, ...] = ()
    return deployment.with_alarms(tuple(alarms), composites), scaling
