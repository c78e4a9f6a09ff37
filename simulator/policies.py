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
    from autoscaler.runtime import policy_from_settings
    from autoscaler.settings import Settings

    env: dict[str, str] = next((fn.environment for fn in deployment.functions if fn.environment), {})
    settings = Settings.from_env(env)
    fleet = settings.fleet_name
    cpu_target = settings.cpu_target
    outs, ins = settings.scale_out_alarm_names, settings.scale_in_alarm_names
    if not outs or not ins:
        raise ValueError("baselines need SCALE_OUT_ALARM_NAMES and SCALE_IN_ALARM_NAMES in the template")
    namespace, metric_name = settings.cpu_metric_namespace, settings.cpu_metric_name

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
    # Same targets and bounds as deployed; neither baseline has our minimum step.
    scaling = replace(policy_from_settings(settings), min_step_fraction=0.0, **extra)
    composites: tuple[CompositeSpec, ...] = ()
    return deployment.with_alarms(tuple(alarms), composites), scaling
