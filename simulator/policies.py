"""Scaling policies to compare: ours (the template as deployed) and two baselines.

A baseline is a *strategy* the twin injects through the functions' Runtime into the same
controller (the production ``decide`` knows nothing of them), with the alarms it needs.

- ``prototype``: the 2013 design as its public wiki describes it ("Sample Run", "Sample run 2"
  of miraculixx/ec2autoscaler): one base instance that never stops plus one stopped spare, no
  launches; per-instance alarms on EC2's own 5-minute CPUUtilization (basic monitoring):
  ``cpuhigh`` at 65 % on the base and 85 % on the spare starts the spare, ``cpulow`` going back to
  OK below 20 % on the spare stops it (modelled as an "idle" alarm below 20 %, whose ALARM is that
  OK). Decisions are taken only on notifications, one start or stop each; the every-minute run
  only finishes what a decision started (the 2013 handler registered and stopped in the same call).
- ``target-tracking``: EC2 Auto Scaling target tracking on the group's average CPU (detailed
  monitoring, 1-minute): AlarmHigh 3 of 3 one-minute datapoints above the target, AlarmLow 15 of
  15 below 0.9 x the target (the factor AWS's console shows; the documentation gives none),
  proportional sizing on the group average, no scale-in stabilization beyond its alarm; the
  alarm re-invokes its action every minute while in ALARM ("Using Amazon CloudWatch alarms":
  Auto Scaling actions repeat once per minute), which the every-minute run provides.
- ``ideal``: a physical limit, not a policy one could deploy. It knows the scenario's demand at
  every instant (the oracle's rule, ``simulator/oracle.py``) and asks for exactly the instances
  needed at the CPU target, within MinSize and MaxSize, scaling in at once; no alarm, no metric.
  The twin invokes the reconcile function at every stage start and every step of an open-loop
  ramp (again a second later while another invocation holds the lease), besides the
  every-minute schedule. Everything after the decision (plan, EC2, the pool, boots, installs,
  registration, health checks, draining) is the same as for the others.
- ``ideal-stabilized``: the ideal held to the template's ``ScaleInStabilizationSeconds``: it
  scales in only to the highest need of that window (and is invoked again when a window ends).
  The floor for any scaler that stabilizes its scale-ins, as ours must after a burst.
- ``ideal-lagged:SECONDS``: the ideal, its knowledge of the demand that many seconds old (it asks
  at ``t`` for the need at ``t - SECONDS``, either way). Any scaler that observes the demand
  through metrics sees it late; this measures what the lag alone costs, with nothing else wrong
  (no threshold, no noise, no window), and so which lag a target leaves room for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from simulator.deployment import AlarmSpec, CompositeSpec, Deployment, MetricSpec
from simulator.oracle import Need, change_points

if TYPE_CHECKING:
    from autoscaler.model import Decision, ScalingPolicy, Snapshot
    from autoscaler.runtime import Decider
    from autoscaler.settings import Settings

    from simulator.scenario import Scenario

IDEAL_POLICIES = ("ideal", "ideal-stabilized")
POLICIES = ("ours", "prototype", "target-tracking", *IDEAL_POLICIES)
LAGGED = "ideal-lagged"  # named with its lag: ideal-lagged:SECONDS
IDEAL_RETRY_SECONDS = 1.0  # the controller's own lease poll (controller.LEASE_POLL_SECONDS)
TARGET_TRACKING_LOW_FACTOR = 0.9
PROTOTYPE_HIGH_BASE, PROTOTYPE_HIGH_SPARE, PROTOTYPE_IDLE = 65.0, 85.0, 20.0
# The prototype's fleet: a base instance and one stopped spare, never more.
PROTOTYPE_PARAMETERS = {"MinSize": "1", "MaxSize": "2", "WarmPoolSize": "1", "WarmPoolMaxPreparedCapacity": "2"}


@dataclass
class Strategy:
    name: str
    deployment: Deployment
    policy: ScalingPolicy | None = None  # None: the functions' own settings
    decider: Decider | None = None  # None: production decide
    environment: dict[str, str] = field(default_factory=dict)  # overrides of the functions' environment
    reconcile: bool = True  # the every-minute schedule runs
    ec2_monitoring_period: int = 0  # EC2 publishes its own CPUUtilization at this period (0: not needed)
    starter: Callable[[Any], None] | None = None

    def start(self, sim: Any) -> None:
        if self.starter is not None:
            self.starter(sim)

    def cpu_thresholds(self, settings: Settings) -> dict[str, float]:
        if self.name == "prototype":
            return {"cpuhigh (base)": PROTOTYPE_HIGH_BASE, "cpuhigh (spare)": PROTOTYPE_HIGH_SPARE,
                    "cpulow": PROTOTYPE_IDLE}  # fmt: skip
        if self.name == "target-tracking":
            target = settings.target("cpu")
            return {"AlarmHigh": target, "AlarmLow": TARGET_TRACKING_LOW_FACTOR * target}
        if parse_policy(self.name)[0] in (*IDEAL_POLICIES, LAGGED):
            return {"CpuTarget": settings.target("cpu")}
        return {
            a.name: a.threshold
            for a in self.deployment.alarms
            if a.metric.namespace == settings.cpu_metric_namespace and a.metric.name == settings.cpu_metric_name
        }


def parse_policy(name: str) -> tuple[str, float]:
    """A policy's name and its lag in seconds (0 but for ``ideal-lagged:SECONDS``)."""
    base, colon, lag = name.partition(":")
    if base == LAGGED:
        try:
            seconds = float(lag)
        except ValueError:
            seconds = math.nan
        if not colon or not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"policy {name!r}: {LAGGED} needs its lag in seconds, >= 0, as in {LAGGED}:30")
        return base, seconds
    if colon or name not in POLICIES:
        raise ValueError(f"unknown policy {name!r} (choose from {', '.join(POLICIES)}, {LAGGED}:SECONDS)")
    return name, 0.0


def template_overrides(policy: str) -> dict[str, str]:
    """Template parameters a policy fixes before the template is read."""
    return dict(PROTOTYPE_PARAMETERS) if parse_policy(policy)[0] == "prototype" else {}


def strategy_for(policy: str, deployment: Deployment) -> Strategy:
    base, lag = parse_policy(policy)
    if policy == "ours":
        return Strategy("ours", deployment)
    from autoscaler.settings import Settings

    env: dict[str, str] = next((fn.environment for fn in deployment.functions if fn.environment), {})
    settings = Settings.from_env(env)
    if not settings.scale_out_alarm_names or not settings.scale_in_alarm_names:
        raise ValueError("baselines need SCALE_OUT_ALARM_NAMES and SCALE_IN_ALARM_NAMES in the template")
    if policy == "prototype":
        return _prototype(deployment, settings)
    if policy == "ideal":
        return _ideal(policy, deployment, settings)
    if policy == "ideal-stabilized":
        return _ideal(policy, deployment, settings, hold_seconds=float(settings.scale_in_stabilization_seconds))
    if base == LAGGED:
        return _ideal(policy, deployment, settings, lag_seconds=lag)
    return _target_tracking(deployment, settings)


def _actions(deployment: Deployment, names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The notification targets of the template's alarms called ``names`` (to reuse them)."""
    specs: list[AlarmSpec | CompositeSpec] = [*deployment.alarms, *deployment.composites]
    for alarm in specs:
        if alarm.name in names and alarm.actions.get("ALARM"):
            return dict(alarm.actions)
    return {}


def _ec2_cpu(dimension: tuple[str, str], period: int) -> MetricSpec:
    return MetricSpec("AWS/EC2", "CPUUtilization", (dimension,), "Average", period)


# -- target tracking ------------------------------------------------------------------------------
def _target_tracking(deployment: Deployment, settings: Settings) -> Strategy:
    from autoscaler.runtime import policy_from_settings
    from autoscaler.signals import MetricQuery, SignalSpec

    target = settings.target("cpu")
    group = ("AutoScalingGroupName", settings.fleet_name)
    high, low = settings.scale_out_alarm_names[0], settings.scale_in_alarm_names[0]
    alarms = (
        AlarmSpec(high, _ec2_cpu(group, 60), target, "GreaterThanThreshold", 3, 3, "missing",
                  _actions(deployment, settings.scale_out_alarm_names)),
        AlarmSpec(low, _ec2_cpu(group, 60), TARGET_TRACKING_LOW_FACTOR * target, "LessThanThreshold", 15, 15,
                  "missing", _actions(deployment, settings.scale_in_alarm_names)),
    )  # fmt: skip
    signal = SignalSpec(
        "group_cpu",
        MetricQuery("AWS/EC2", "CPUUtilization", (group,), "Average", 60, fleet_average=True),
        target,
        window_seconds=180,
        scale_out_window_seconds=180,
    )
    policy = replace(
        policy_from_settings(settings),
        signals=(signal,),
        tolerance=0.0,
        scale_in_headroom=0.0,
        min_step_fraction=0.0,
        scale_in_stabilization_seconds=0.0,
    )
    return Strategy(
        "target-tracking",
        replace(deployment, alarms=alarms, composites=(), host_reports=None),
        policy=policy,
        environment={"SCALE_OUT_ALARM_NAMES": high, "SCALE_IN_ALARM_NAMES": low},
        ec2_monitoring_period=60,
    )


# -- the 2013 prototype ---------------------------------------------------------------------------
def _prototype(deployment: Deployment, settings: Settings) -> Strategy:
    fleet = settings.fleet_name
    out_actions = _actions(deployment, settings.scale_out_alarm_names)
    in_actions = _actions(deployment, settings.scale_in_alarm_names)
    state: dict[str, str] = {}

    def decider(snapshot: Snapshot, policy: ScalingPolicy, now: datetime) -> Decision:
        return _prototype_decide(snapshot, policy, state.get("base", ""), fleet)

    def starter(sim: Any) -> None:
        sim.env.process(_create_alarms(sim, fleet, out_actions, in_actions, state))

    return Strategy(
        "prototype",
        replace(deployment, alarms=(), composites=(), host_reports=None),
        decider=decider,
        # Its alarms are created per instance; the names are not known to the settings.
        environment={"SCALE_OUT_ALARM_NAMES": "", "SCALE_IN_ALARM_NAMES": ""},
        ec2_monitoring_period=300,
        starter=starter,
    )


def _create_alarms(
    sim: Any, fleet: str, out_actions: dict[str, tuple[str, ...]], in_actions: dict[str, tuple[str, ...]],
    state: dict[str, str],
) -> Generator[Any, Any, None]:  # fmt: skip
    """At the end of the warm-up: alarms for the base (in service) and the spare (in the pool)."""
    yield sim.env.timeout(max(0.0, sim.start - 1.0))
    machines = sim.ec2_model.machines
    base = next((i for i, m in sorted(machines.items(), key=lambda kv: kv[1].launched_at)
                 if m.lifecycle == "service"), "")  # fmt: skip
    state["base"] = base
    for instance_id, machine in sorted(machines.items()):
        if machine.lifecycle not in {"service", "pool"}:
            continue
        cpu = _ec2_cpu(("InstanceId", instance_id), 300)
        high = PROTOTYPE_HIGH_BASE if instance_id == base else PROTOTYPE_HIGH_SPARE
        sim.add_alarm(AlarmSpec(f"{fleet}-cpuhigh-{instance_id}", cpu, high, "GreaterThanOrEqualToThreshold", 1, 1,
                                "missing", out_actions))  # fmt: skip
        sim.add_alarm(AlarmSpec(f"{fleet}-cpuidle-{instance_id}", cpu, PROTOTYPE_IDLE, "LessThanThreshold", 1, 1,
                                "missing", in_actions))  # fmt: skip


def _prototype_decide(snapshot: Snapshot, policy: ScalingPolicy, base: str, fleet: str) -> Decision:
    """One instance more on a cpuhigh notification, one less on the spare's idle one; nothing else."""
    from autoscaler.decide import current_desired
    from autoscaler.model import Decision

    current = current_desired(snapshot.state, snapshot.capacity, policy)
    cause = snapshot.cause
    if cause.startswith(f"{fleet}-cpuhigh-"):
        if current >= policy.max_size:
            return Decision(current, current, "no-instance-available", "no instance available to start")
        return Decision(current + 1, current, "scale-out", f"{cause}: start the spare")
    if cause.startswith(f"{fleet}-cpuidle-"):
        instance = cause.removeprefix(f"{fleet}-cpuidle-")
        serving = {i.instance_id for i in snapshot.instances if i.in_service}
        if instance == base or instance not in serving or current <= policy.min_size:
            return Decision(current, current, "base-never-stops", f"{cause}: nothing to stop")
        return Decision(current - 1, current, "scale-in", f"{cause}: stop the spare")
    return Decision(current, current, "finish-pending", "the prototype decides on notifications only")


# -- the ideal ------------------------------------------------------------------------------------
def _ideal(
    name: str, deployment: Deployment, settings: Settings, hold_seconds: float = 0.0, lag_seconds: float = 0.0
) -> Strategy:
    from autoscaler.runtime import policy_from_settings

    target = settings.target("cpu")
    world: dict[str, Any] = {}

    def decider(snapshot: Snapshot, policy: ScalingPolicy, now: datetime) -> Decision:
        sim = world["sim"]
        need = Need(sim.params, sim.vcpus, target, policy.min_size)
        at = sim.to_scenario(sim.sim_time(now)) - lag_seconds
        return ideal_decide(snapshot, policy, held_need(need, sim.scenario, world["points"], at, hold_seconds))

    def starter(sim: Any) -> None:
        world["sim"] = sim
        reconcile = sim.deployment.function("reconcile")
        if reconcile is None:
            raise ValueError("the ideal policy needs the template's reconcile function")
        points = world["points"] = change_points(sim.scenario)
        ends = [*points[1:], sim.scenario.duration]
        for change, until in zip(points, ends, strict=True):
            at = change + lag_seconds  # when it learns of the change
            sim.env.process(_invoke_at(sim, reconcile.arn, at, until + lag_seconds))
            if hold_seconds:  # where the window lets go of the need before ``at``
                sim.env.process(_invoke_at(sim, reconcile.arn, at + hold_seconds, until + hold_seconds))

    return Strategy(
        name,
        replace(deployment, alarms=(), composites=(), host_reports=None),
        # No signal: it reads no metric (a GetMetricData call would only cost it time).
        policy=replace(policy_from_settings(settings), signals=()),
        decider=decider,
        environment={"SCALE_OUT_ALARM_NAMES": "", "SCALE_IN_ALARM_NAMES": ""},
        starter=starter,
    )


def _invoke_at(sim: Any, arn: str, at: float, until: float) -> Generator[Any, Any, None]:
    """Invoke the control plane at scenario time ``at``; while another invocation holds the
    lease (the run is skipped), again every second until the demand's next change."""
    yield sim.env.timeout(max(0.0, sim.start + at - sim.env.now))
    while True:
        event = {"source": "aws.events", "detail-type": "Scheduled Event", "time": sim.wall(sim.env.now).isoformat()}
        record = yield sim.lambdas.invoke_async(arn, event)
        result = record.result if record is not None else None
        busy = isinstance(result, dict) and result.get("reason") == "lease-busy"
        if not busy or sim.to_scenario(sim.env.now) + IDEAL_RETRY_SECONDS >= until:
            return
        yield sim.env.timeout(IDEAL_RETRY_SECONDS)


def held_need(need: Need, scenario: Scenario, points: list[float], at: float, hold_seconds: float) -> int:
    """The highest need over the last ``hold_seconds`` (the need now if 0): the demand is a step
    function that changes only at ``points``."""
    times = [at, *(p for p in points if at - hold_seconds < p <= at)]
    if hold_seconds:
        times.append(max(0.0, at - hold_seconds))
    return max(need.scenario_at(scenario, t) for t in times)


def ideal_decide(snapshot: Snapshot, policy: ScalingPolicy, need: int) -> Decision:
    """Exactly the instances the demand needs now, within the fleet's bounds, at once either way."""
    from autoscaler.decide import AT_TARGET, SCALE_IN, SCALE_OUT, clamp, current_desired
    from autoscaler.model import Decision

    current = current_desired(snapshot.state, snapshot.capacity, policy)
    desired = clamp(need, policy)
    message = f"the demand needs {need} at the CPU target" + ("" if desired == need else f", bounded to {desired}")
    reason = SCALE_OUT if desired > current else SCALE_IN if desired < current else AT_TARGET
    return Decision(desired, current, reason, message)
