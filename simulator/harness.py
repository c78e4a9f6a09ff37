"""Wires the models to the real control plane and runs a scenario in virtual time."""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import simpy

from simulator.alarms import AlarmEngine
from simulator.aws import Provisioned, create_table, install_hooks, provision
from simulator.balancer import Balancer
from simulator.cloudwatch import MetricStore, metric_key
from simulator.deployment import Deployment, build_deployment, load_template
from simulator.ec2 import Ec2Model
from simulator.lambdas import LambdaModel, direct_alarm_event, sns_alarm_event
from simulator.params import ModelParams, vcpus_for
from simulator.policies import apply_policy
from simulator.scenario import Scenario
from simulator.traffic import RequestLog, TrafficEngine

SCENARIO_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
SAMPLE_SECONDS = 10.0


class VirtualClock:
    """The control plane's clock: scenario epoch + SimPy time; ``sleep`` advances an offset."""

    def __init__(self, env: simpy.Environment, epoch: datetime) -> None:
        self.env = env
        self.epoch = epoch
        self.offset = 0.0

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=self.env.now + self.offset)

    def sleep(self, seconds: float) -> None:
        self.offset += max(0.0, seconds)


@dataclass
class Sample:
    t: float  # scenario seconds (negative during warm-up)
    load: float
    in_service: int
    booting: int
    pool: int
    warming: int
    cpu: float | None
    alarms: dict[str, str]


@dataclass
class Action:
    t: float
    direction: str  # out | in
    before: int
    after: int


@dataclass
class RunResult:
    scenario: Scenario
    deployment: Deployment
    params: ModelParams
    policy: str
    samples: list[Sample]
    log: RequestLog
    actions: list[Action]
    alarm_history: list[tuple[str, str, str, float]]
    invocations: list[dict[str, Any]]
    instance_seconds: float
    warmup: float
    vcpus: int
    wall_seconds: float = 0.0
    thresholds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


class Simulation:
    def __init__(
        self,
        scenario: Scenario,
        template_path: str | Path,
        overrides: dict[str, str] | None = None,
        policy: str = "ours",
        progress: Callable[[float, float], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.template_path = Path(template_path)
        self.overrides = {**scenario.parameters, **(overrides or {})}
        self.policy_name = policy
        self.progress = progress
        self.params = ModelParams().with_overrides(scenario.model)
        self.rng = random.Random(scenario.seed)
        self.env = simpy.Environment()
        self.warmup = scenario.warmup
        self.epoch = SCENARIO_EPOCH - timedelta(seconds=self.warmup)
        self.clock = VirtualClock(self.env, self.epoch)
        self.store = MetricStore()
        self.capacity_until = -1.0
        self.samples: list[Sample] = []
        self.actions: list[Action] = []
        self.outcomes: list[tuple[float, str, Any]] = []

    # -- Twin protocol (hooks) ----------------------------------------------------------------
    def offset(self) -> float:
        return self.clock.offset

    def current(self) -> float:
        return self.env.now + self.clock.offset

    def sim_time(self, when: datetime) -> float:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return (when - self.epoch).total_seconds()

    def wall(self, t: float) -> datetime:
        return self.epoch + timedelta(seconds=t)

    def capacity_error(self) -> bool:
        return self.current() < self.capacity_until

    def advance_traffic(self) -> None:
        self.engine.advance_to(self.env.now)

    def alarm_descriptions(self, names: list[str] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        metric: list[dict[str, Any]] = []
        composite: list[dict[str, Any]] = []
        for name, state in self.alarms.states.items():
            if names is not None and name not in names:
                continue
            entry = {
                "AlarmName": name,
                "AlarmArn": f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}",
                "StateValue": state.value,
                "StateReason": state.reason,
                "StateUpdatedTimestamp": self.wall(state.changed_at),
            }
            (composite if name in self.alarms.composites else metric).append(entry)
        return metric, composite

    # -- setup --------------------------------------------------------------------------------
    def _setup(self) -> None:
        template = load_template(self.template_path, self.overrides, supplied=_placeholders(self.template_path))
        prov: Provisioned = provision(template)
        for name, value in prov.supplied.items():
            if name not in self.overrides:
                template.parameters[name] = value
        template.physical.update(prov.physical)
        template.attributes.update(prov.attributes)
        deployment = build_deployment(template)
        deployment, policy = apply_policy(deployment, self.policy_name)
        self.deployment = deployment
        self.target_group_arn = prov.target_group_arn
        self.vcpus = vcpus_for(deployment.instance_type, self.params.vcpus)
        p = self.params
        self.engine = TrafficEngine(
            random.Random(self.rng.random()), p.work_min_seconds, p.work_max_seconds,
            deployment.health.algorithm, p.request_timeout_seconds,
        )  # fmt: skip
        self.ec2_model = Ec2Model(
            self.env, self.engine, p, random.Random(self.rng.random()), self.vcpus, self._ready, lambda i, u: None
        )
        self.balancer = Balancer(
            self.env, self.engine, deployment.health, p, random.Random(self.rng.random()),
            lambda i: (m := self.ec2_model.machines.get(i)) is not None and m.worker_up,
        )  # fmt: skip
        self.alarms = AlarmEngine(deployment.alarms, deployment.composites, self.store)
        self.lambdas = LambdaModel(self.env, p, random.Random(self.rng.random()))
        self.raw = prov.raw
        install_hooks(prov.clients, self)

        from autoscaler.runtime import Runtime
        from autoscaler.settings import Settings

        tables: set[str] = set()
        self.settings: Settings | None = None
        for fn in deployment.functions:
            settings = Settings.from_env(fn.environment)
            if settings.table_name not in tables:
                create_table(prov.raw.dynamodb, settings.table_name)
                tables.add(settings.table_name)
            runtime = Runtime(settings=settings, clients=prov.clients, clock=self.clock, policy=policy)
            self.lambdas.add(fn, self._handler(fn.role, runtime))
            if fn.role in {"scale_out", "reconcile"} or self.settings is None:
                self.settings = settings
        if self.settings is None:
            raise ValueError("the template defines no function")
        self.fleet_name = self.settings.fleet_name
        self.cpu_key = metric_key(
            self.settings.cpu_metric_namespace, self.settings.cpu_metric_name, [("Fleet", self.fleet_name)]
        )
        self.alb_key = metric_key(
            "AWS/ApplicationELB", "RequestCountPerTarget", [("TargetGroup", self.settings.target_group_dimension)]
        )

    def _ready(self, instance_id: str) -> None:
        """The instance's user-data tags itself ready once /ping answers (contracts.md)."""
        self.raw.ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "AutoscalerReady", "Value": "true"}])

    def _handler(self, role: str, runtime: Any) -> Callable[[dict[str, Any]], float]:
        from autoscaler import entrypoints
        from autoscaler.model import Direction

        def run(event: dict[str, Any]) -> float:
            self.clock.offset = 0.0
            self.engine.advance_to(self.env.now)
            try:
                outcome: Any = None
                if role == "scale_out":
                    outcome = entrypoints.handle_alarm_event(event, runtime, Direction.OUT)
                elif role == "scale_in":
                    outcome = entrypoints.handle_alarm_event(event, runtime, Direction.IN)
                elif role == "reconcile":
                    outcome = entrypoints.reconcile(runtime)
                elif role == "lifecycle":
                    outcome = entrypoints.create_fleet(runtime)
                self.outcomes.append((self.env.now - self.warmup, role, outcome))
                self._count_actions(outcome)
                return self.clock.offset
            finally:
                self.clock.offset = 0.0

        return run

    def _count_actions(self, outcome: Any) -> None:
        """A scaling action is a change of the desired capacity the control plane decided, not a
        change in the instance count: replacing a failed instance is neither a scale-out nor a flap."""
        results = outcome.get("results", [outcome]) if isinstance(outcome, dict) else []
        for result in results:
            before, after = result.get("previous"), result.get("desired")
            if isinstance(before, int) and isinstance(after, int) and before != after and self.env.now >= self.warmup:
                direction = "out" if after > before else "in"
                self.actions.append(Action(self.env.now - self.warmup, direction, before, after))

    # -- processes ------------------------------------------------------------------------------
    def _drive(self) -> Generator[Any, Any, None]:
        yield self.env.timeout(self.warmup)
        for stage in self.scenario.stages:
            start = self.warmup + stage.start
            if self.env.now < start:
                yield self.env.timeout(start - self.env.now)
            if stage.clients is not None:
                self.engine.set_rate(self.env.now, 0.0, self.env.now, 0.0)
                self.engine.set_clients(self.env.now, stage.clients, stage.think)
            else:
                self.engine.set_clients(self.env.now, 0, stage.think)
                rate = stage.rate or 0.0
                end_rate = stage.rate_end if stage.rate_end is not None else rate
                self.engine.set_rate(self.env.now, rate, self.warmup + stage.end, end_rate)

    def _events(self) -> Generator[Any, Any, None]:
        for event in sorted(self.scenario.events, key=lambda e: e.at):
            at = self.warmup + event.at
            if self.env.now < at:
                yield self.env.timeout(at - self.env.now)
            if event.action == "capacity_error":
                self.capacity_until = self.env.now + event.seconds
            elif event.action == "fail_instance":
                healthy = sorted(
                    i for i, t in self.balancer.targets.items()
                    if t.state == "healthy" and self.ec2_model.machines[i].worker_up
                )  # fmt: skip
                if healthy:
                    self.ec2_model.fail(self.rng.choice(healthy))

    def _alarm_loop(self, interval: float, names: list[str]) -> Generator[Any, Any, None]:
        offset = self.params.alarm_eval_offset_seconds
        yield self.env.timeout(interval + offset)
        while True:
            for name in names:
                for alarm, old, new, at in self.alarms.evaluate(name, self.env.now):
                    self._notify(alarm, old, new, at)
            yield self.env.timeout(interval)

    def _notify(self, name: str, old: str, new: str, at: float) -> None:
        when = self.wall(at)
        spec = self.alarms.alarms.get(name)
        reason = self.alarms.states[name].reason
        for arn in self.alarms.actions(name, new):
            for fn in self.deployment.functions:
                if arn in fn.topics:
                    event = sns_alarm_event(spec, name, old, new, when, arn, reason)
                    self.lambdas.invoke_async(fn.arn, event, self.params.sns_delay_seconds)
                elif arn == fn.arn:
                    self.lambdas.invoke_async(fn.arn, direct_alarm_event(name, old, new, when, reason))

    def _schedule(self, arn: str, period: float) -> Generator[Any, Any, None]:
        yield self.env.timeout(period)
        while True:
            self.lambdas.invoke_async(arn, {"source": "aws.events", "detail-type": "Scheduled Event"})
            yield self.env.timeout(period)

    def _telemetry(self) -> Generator[Any, Any, None]:
        last_busy: dict[str, float] = {}
        healthy_samples: list[int] = []
        p = self.params
        while True:
            yield self.env.timeout(SAMPLE_SECONDS)
            now = self.env.now
            self.engine.advance_to(now)
            values = []
            for instance_id, machine in self.ec2_model.machines.items():
                busy = self.engine.cpu_seconds(now, instance_id)
                previous = last_busy.get(instance_id, busy)
                last_busy[instance_id] = busy
                if machine.lifecycle == "service" and machine.worker_up:
                    cpu = min(100.0, (busy - previous) / (SAMPLE_SECONDS * self.vcpus) * 100.0 + p.idle_cpu_percent)
                    self.store.put(self.cpu_key, now, cpu, now + p.cpu_publish_delay_seconds)
                    values.append(cpu)
            healthy_samples.append(self.balancer.healthy_count())
            if now % 60 == 0:
                minute = int(now // 60) - 1
                count = self.engine.log.per_minute.get(minute, 0)
                targets = sum(healthy_samples) / len(healthy_samples) if healthy_samples else 0
                healthy_samples = []
                if count and targets:
                    self.store.put(self.alb_key, minute * 60.0, count / targets, now + p.alb_metric_delay_seconds)
            self._sample(now, values)
            if self.progress is not None:
                self.progress(now, self.warmup + self.scenario.duration)

    def _sample(self, now: float, cpu_values: list[float]) -> None:
        t = now - self.warmup
        stage = self.scenario.stage_at(t)
        in_service = booting = pool = warming = 0
        for instance_id, m in self.ec2_model.machines.items():
            if m.state == "terminated":
                continue
            if m.lifecycle == "service":
                if self.balancer.state_of(instance_id) == "healthy":
                    in_service += 1
                elif m.state != "stopping":
                    booting += 1
            elif m.lifecycle == "pool":
                pool += 1
            elif m.lifecycle == "warming":
                warming += 1
        cpu = sum(cpu_values) / len(cpu_values) if cpu_values else None
        self.samples.append(
            Sample(
                t,
                stage.load if stage is not None else 0.0,
                in_service,
                booting,
                pool,
                warming,
                cpu,
                {name: s.value for name, s in self.alarms.states.items()},
            )
        )

    # -- run ----------------------------------------------------------------------------------
    def run(self) -> RunResult:
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # seconds of JSON we never use
        from moto import mock_aws
        from moto.moto_api._internal import mock_random

        started = time.perf_counter()
        mock_random.seed(self.scenario.seed)  # moto's resource ids, hence routing order: deterministic
        with mock_aws():
            self._setup()
            env = self.env
            lifecycle = self.deployment.function("lifecycle")
            if lifecycle is not None:
                self.lambdas.invoke_async(lifecycle.arn, {"RequestType": "Create"})
            env.process(self._drive())
            env.process(self._events())
            env.process(self._mark_warmup())
            env.process(self._telemetry())
            by_interval: dict[float, list[str]] = {}
            for name in self.alarms.alarms:
                by_interval.setdefault(self.alarms.interval(name), []).append(name)
            for interval, names in sorted(by_interval.items()):
                env.process(self._alarm_loop(interval, names))
            for fn in self.deployment.functions:
                for period in fn.schedules:
                    env.process(self._schedule(fn.arn, period))
            end = self.warmup + self.scenario.duration
            env.run(until=end + 1e-6)
            self.engine.advance_to(end)
            instance_seconds = self.ec2_model.billed_seconds(end) - self._billed_at_warmup
        return RunResult(
            scenario=self.scenario,
            deployment=self.deployment,
            params=self.params,
            policy=self.policy_name,
            samples=self.samples,
            log=self.engine.log,
            actions=self.actions,
            alarm_history=[(n, o, s, at - self.warmup) for n, o, s, at in self.alarms.history],
            invocations=[
                {
                    "function": i.function,
                    "t": round(i.at - self.warmup, 3),
                    "cold": i.cold,
                    "ok": i.ok,
                    "error": i.error,
                }
                for i in self.lambdas.invocations
            ],
            instance_seconds=instance_seconds,
            warmup=self.warmup,
            vcpus=self.vcpus,
            wall_seconds=time.perf_counter() - started,
            thresholds=_cpu_thresholds(self.deployment, self.cpu_key),
            settings=_settings_json(self.settings),
        )

    _billed_at_warmup = 0.0

    def _mark_warmup(self) -> Generator[Any, Any, None]:
        yield self.env.timeout(self.warmup)
        self._billed_at_warmup = self.ec2_model.billed_seconds(self.env.now)


def _placeholders(path: Path) -> dict[str, Any]:
    """Values for parameters with no default, until moto provides the real ones."""
    from tools.cfn_template import load_template as read_template

    out: dict[str, Any] = {}
    for name, spec in (read_template(path).get("Parameters") or {}).items():
        if "Default" not in spec:
            kind = str(spec.get("Type", "String"))
            out[name] = ["placeholder"] if kind.startswith("List<") else "placeholder"
    return out


def _cpu_thresholds(deployment: Deployment, key: Any) -> dict[str, float]:
    return {a.name: a.threshold for a in deployment.alarms if a.metric.key() == key}


def _settings_json(settings: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()}


def oracle_instances(
    load: float, closed: bool, think: float, params: ModelParams, vcpus: int, target: float, minimum: int
) -> int:
    """Instances that exactly carry ``load`` at the CPU target (demand in vCPU-seconds per second)."""
    work = (params.work_min_seconds + params.work_max_seconds) / 2
    demand = load * work / (work + think) if closed else load * work
    return max(minimum, math.ceil(demand / (vcpus * target / 100.0) - 1e-9))
