"""Wires the models to the real control plane and runs a scenario in virtual time."""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import simpy

from awsfake.hooks import observe
from awsfake.metrics import MetricStore
from awsfake.resources import create_state_table
from simulator.alarms import AlarmEngine, Transition
from simulator.aws import Provisioned, install_hooks, provision
from simulator.balancer import Balancer
from simulator.deployment import AlarmSpec, Deployment, FunctionSpec, build_deployment, load_template
from simulator.ec2 import Ec2Model, Machine, VersionProfile
from simulator.lambdas import (
    LambdaModel,
    LoggerKeys,
    VirtualClock,
    direct_alarm_event,
    host_demand_event,
    sns_alarm_event,
)
from simulator.lifecycle import CustomResource, Response, handler_module
from simulator.params import ModelParams, Span, vcpus_for
from simulator.policies import Strategy, strategy_for, template_overrides
from simulator.refresh import FleetPoint
from simulator.scenario import Event, Scenario
from simulator.stack import (
    LATEST,
    Deploy,
    custom_resource_of,
    custom_resource_request,
    launch_template_of,
    new_launch_template_version,
    resource_properties,
)
from simulator.telemetry import (
    SAMPLE_SECONDS,
    Ec2Metrics,
    HostMetricNames,
    HostPublishers,
    LoadBalancerMetrics,
    Observer,
    Sample,
)
from simulator.traffic import RequestLog, TrafficEngine

if TYPE_CHECKING:
    from autoscaler.runtime import Runtime
    from autoscaler.settings import Settings

# Simulation time 0 is a whole hour of wall-clock time, so CloudWatch's period boundaries fall
# on round simulation times; the scenario starts ``warmup + phase`` seconds later.
SIM_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
API_SPANS = {"ec2": "ec2_api_seconds", "elb": "elb_api_seconds", "cloudwatch": "cloudwatch_api_seconds",
             "dynamodb": "dynamodb_api_seconds"}  # fmt: skip


@dataclass
class Action:
    t: float
    direction: str  # out | in
    before: int
    after: int


@dataclass(frozen=True)
class Phases:
    """Where the run sits against the wall-clock minute, drawn from the scenario's seed."""

    start: float  # the scenario's start within its minute
    schedule: float  # the EventBridge schedule's second within the minute
    alarms: dict[str, float]  # each alarm's evaluation offset within its cadence

    @classmethod
    def draw(cls, rng: random.Random, alarm_intervals: dict[str, float]) -> Phases:
        return cls(
            start=rng.uniform(0.0, 60.0),
            schedule=rng.uniform(0.0, 60.0),
            alarms={name: rng.uniform(0.0, interval) for name, interval in sorted(alarm_intervals.items())},
        )


@dataclass
class RunResult:
    scenario: Scenario
    deployment: Deployment
    params: ModelParams
    policy: str
    phases: Phases
    samples: list[Sample]
    timeline: list[tuple[float, int]]
    log: RequestLog
    start: float  # simulation time of scenario time 0
    actions: list[Action]
    alarm_history: list[tuple[str, str, str, float]]
    invocations: list[dict[str, Any]]
    instance_seconds: float
    vcpus: int
    wall_seconds: float = 0.0
    thresholds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    deploys: list[Deploy] = field(default_factory=list)
    fleet: list[FleetPoint] = field(default_factory=list)  # the fleet at every change
    responses: list[Response] = field(default_factory=list)  # the Fleet custom resource's, in order


def _entry_points() -> dict[str, Callable[[dict[str, Any], Any, float], Any]]:
    """What each scaling function runs (docs/contracts.md), as the handlers would call it; the
    last argument is the function's timeout (the time an invocation has). The lifecycle function
    runs its handler's own logic (``lifecycle.py``)."""
    from autoscaler import entrypoints
    from autoscaler.model import Direction

    return {
        "scale_out": lambda event, runtime, _t: entrypoints.handle_alarm_event(event, runtime, Direction.OUT),
        "scale_in": lambda event, runtime, _t: entrypoints.handle_alarm_event(event, runtime, Direction.IN),
        "reconcile": lambda _event, runtime, _t: entrypoints.reconcile(runtime),
    }


def desired_set_by(params: dict[str, Any]) -> int | None:
    """The ``desired`` attribute an UpdateItem of the state adapter sets, or None."""
    from autoscaler.adapters.state import values_set_by

    value = values_set_by(params).get("desired")
    return int(Decimal(value["N"])) if isinstance(value, dict) and "N" in value else None


class _Run:
    """One run inside moto: every model, built in ``__init__``, and the processes that drive them."""

    def __init__(self, inputs: Simulation) -> None:
        scenario, overrides, policy, params = inputs.scenario, inputs.overrides, inputs.policy, inputs.params
        template_path, progress, function_log = inputs.template_path, inputs.progress, inputs.function_log
        self.scenario = scenario
        self.template_path = Path(template_path)
        # A baseline's own fleet shape wins over the scenario's and the command line's.
        self.overrides = {**scenario.parameters, **(overrides or {}), **template_overrides(policy)}
        self.policy_name = policy
        self.progress = progress
        self.function_log = function_log
        self.params = params if params is not None else ModelParams().with_overrides(scenario.model)
        self.seed = scenario.seed
        self.env = simpy.Environment()
        self.clock = VirtualClock(self.env, SIM_EPOCH)
        self.store = MetricStore()
        self.actions: list[Action] = []
        self.desired: int | None = None
        self.api_rng = self._rng("api")
        self.billed_at_start = 0.0
        from autoscaler.model import serving

        template = load_template(self.template_path, self.overrides, supplied=_placeholders(self.template_path))
        prov: Provisioned = provision(template)
        for name, value in prov.supplied.items():
            if name not in self.overrides:
                template.parameters[name] = value
        template.physical.update(prov.physical)
        template.attributes.update(prov.attributes)
        self.template = template
        self.clients = prov.clients
        deployment = build_deployment(template)
        self.strategy: Strategy = strategy_for(self.policy_name, deployment)
        deployment = self.strategy.deployment
        self.deployment = deployment
        self.target_group_arn = prov.target_group_arn
        self.vcpus = vcpus_for(deployment.instance_type, self.params.vcpus)
        p = self.params
        self.engine = TrafficEngine(
            self._rng("traffic"), p.work_seconds.sample, p.request_overhead_ms / 1000.0,
            deployment.health.algorithm, deployment.health.idle_timeout, deployment.queue_budget,
        )  # fmt: skip
        self.raw = prov.raw
        self.ec2_model = Ec2Model(self.env, self.engine, p, self._rng("ec2"), self.vcpus, self._ready, self._booted,
                                  self._changed, f"{self.seed}" if scenario.paired_draws else None)  # fmt: skip
        self.balancer = Balancer(
            self.env, self.engine, deployment.health, p, self._rng("balancer"),
            lambda i: (m := self.ec2_model.machines.get(i)) is not None and m.worker_up, self._changed,
            self.ec2_model.own_stream,
        )  # fmt: skip
        self.alarms = AlarmEngine.create(
            deployment.alarms, deployment.composites, self.store, int(p.alarm_evaluation_range_extra)
        )
        from autoscaler.observability import logger

        self.lambdas = LambdaModel(self.env, p, self._rng("lambda"), LoggerKeys(logger))
        install_hooks(prov.clients, self)

        entry_points = _entry_points()
        self.custom_resource: CustomResource | None = None
        lifecycle_fn = deployment.function("lifecycle")
        if lifecycle_fn is not None:
            module = handler_module(self.template_path, lifecycle_fn)
            self.custom_resource = CustomResource(module, lambda: self.to_scenario(self.env.now))
            entry_points["lifecycle"] = self.custom_resource
        tables: set[str] = set()
        # Each function's Runtime, built from its environment; an invocation takes the one of the
        # configuration current when it starts (a deploy replaces them).
        self.runtimes: dict[str, Runtime] = {}
        for fn in deployment.functions:
            self.runtimes[fn.arn] = self._runtime(fn)
            table = self.runtimes[fn.arn].settings.table_name
            if table not in tables:
                create_state_table(prov.raw.dynamodb, table)
                tables.add(table)
            service = fn.environment.get("POWERTOOLS_SERVICE_NAME", "service_undefined")
            self.lambdas.add(fn, self._handler(service, entry_points[fn.role], fn.arn))
        self.settings = self._main_settings()
        settings = self.settings
        from autoscaler.adapters.state import STATE_SK, StateStore

        self.state_store = StateStore(prov.raw.dynamodb, settings.table_name, settings.fleet_name)
        self.desired_now: int | None = None  # the desired capacity the control plane saved last

        def saved(params: dict[str, Any], _: dict[str, Any]) -> None:
            # The decision is saved before it is acted on: take it from the call (reading the item
            # would be one more moto call, and moto's ids would follow it), so that the fleet's
            # record pairs each change with the desired capacity it was made for.
            key = params.get("Key") or {}
            if params.get("TableName") == settings.table_name and key.get("sk") == {"S": STATE_SK}:
                desired = desired_set_by(params)
                if desired is not None:
                    self.desired_now = desired
                    self._changed()

        observe(prov.clients.dynamodb, "dynamodb.UpdateItem", saved)
        self._configure_logging(deployment)
        self.observer = Observer(self.env, self.ec2_model, self.balancer, serving, self.to_scenario,
                                 lambda: self.desired_now)  # fmt: skip
        self.deploys: list[Deploy] = []
        names = HostMetricNames(settings.cpu_metric_namespace, settings.cpu_metric_name,
                                settings.request_metric_name, settings.fleet_name)  # fmt: skip
        reports = deployment.host_reports
        self.publishers = HostPublishers(self.env, self.engine, self.ec2_model, self.store, p,
                                         self._rng("metrics"), names,
                                         self._host_report if reports is not None else None,
                                         reports.line if reports is not None else math.inf)  # fmt: skip
        self.alb_metrics = LoadBalancerMetrics(
            self.env, self.engine, self.balancer, self.store, p, self._rng("alb-metrics"),
            settings.target_group_dimension, settings.load_balancer_dimension,
        )  # fmt: skip
        self.phases = Phases.draw(self._rng("phases"), {n: self.alarms.interval(n) for n in self.alarms.alarms})
        self.start = float(self.scenario.warmup) + self.phases.start

    def _rng(self, stream: str) -> random.Random:
        """One independent, reproducible random stream per model, from the scenario seed."""
        return random.Random(f"{self.seed}:{stream}")

    def _runtime(self, fn: FunctionSpec) -> Runtime:
        """A function's Runtime as its execution environment builds it: Settings from its
        environment (with the baseline's overrides), the clients, the virtual clock."""
        from autoscaler.runtime import Runtime
        from autoscaler.settings import Settings

        settings = Settings.from_env({**fn.environment, **self.strategy.environment})
        return Runtime(settings=settings, clients=self.clients, clock=self.clock, policy=self.strategy.policy,
                       decider=self.strategy.decider)  # fmt: skip

    def _main_settings(self) -> Settings:
        """The settings the report and the twin's own models read: the scaling functions'."""
        chosen = None
        for fn in self.deployment.functions:
            if fn.role in {"scale_out", "reconcile"} or chosen is None:
                chosen = self.runtimes[fn.arn].settings
        if chosen is None:
            raise ValueError("the template defines no function")
        return chosen

    # -- Twin protocol (hooks) ----------------------------------------------------------------
    def now(self) -> float:
        return self.env.now

    def sim_time(self, when: datetime) -> float:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return (when - SIM_EPOCH).total_seconds()

    def wall(self, t: float) -> datetime:
        return SIM_EPOCH + timedelta(seconds=t)

    def advance_traffic(self) -> None:
        self.engine.advance_to(self.env.now)

    def api_latency(self, service: str, operation: str) -> None:
        name = "run_instances_api_seconds" if operation == "RunInstances" else API_SPANS[service]
        self.clock.sleep(getattr(self.params, name).sample(self.api_rng))

    def to_scenario(self, t: float) -> float:
        return t - self.start

    def add_alarm(self, spec: AlarmSpec) -> None:
        """A metric alarm created during the run (PutMetricAlarm), evaluated from then on."""
        self.alarms.add(spec)
        phase = self._rng(f"phase:{spec.name}").uniform(0.0, self.alarms.interval(spec.name))
        self.phases.alarms[spec.name] = phase
        self.env.process(self._alarm_loop(spec.name))

    def _configure_logging(self, deployment: Deployment) -> None:
        """The functions log at the template's LOG_LEVEL, to a file beside the report (or nowhere)."""
        from autoscaler.observability import logger

        level = next(
            (fn.environment.get("POWERTOOLS_LOG_LEVEL") for fn in deployment.functions if fn.environment), None
        )
        logger.setLevel(level or "INFO")
        handler = logger.registered_handler
        if isinstance(handler, logging.StreamHandler):
            target = self.function_log.open("w", encoding="utf-8") if self.function_log else open(os.devnull, "w")  # noqa: SIM115, PTH123
            handler.setStream(target)
        clock = self.clock

        def virtual_time(record: logging.LogRecord) -> bool:
            record.created = clock.now().timestamp()
            record.msecs = (record.created % 1) * 1000
            return True

        handler.filters = [virtual_time]

    def _ready(self, instance_id: str) -> None:
        """The instance's user-data tags itself ready once /ping answers (contracts.md)."""
        self.raw.ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "AutoscalerReady", "Value": "true"}])

    def _booted(self, machine: Machine) -> None:
        self.publishers.start(machine)
        self._changed()

    def _changed(self) -> None:
        self.observer.changed()

    def _handler(self, service: str, entry: Callable[[dict[str, Any], Any, float], Any], arn: str) -> Callable[
            [dict[str, Any]], Any]:  # fmt: skip
        from autoscaler.observability import logger

        def run(event: dict[str, Any]) -> Any:
            runtime = self.runtimes[arn]
            timeout = self.lambdas.functions[arn].spec.timeout
            self.engine.advance_to(self.env.now)
            # What the handlers' inject_lambda_context(clear_state=True) does: no correlation id
            # of an earlier invocation (or an earlier run in this process) on this one's lines.
            logger.clear_state()
            # In Lambda each function's logger takes its own POWERTOOLS_SERVICE_NAME at import;
            # here the four share one process and one logger.
            logger.append_keys(service=service)
            try:
                return entry(event, runtime, timeout)
            finally:
                self._count_action()
                self._changed()

        return run

    def _count_action(self) -> None:
        """A scaling action is a change of the desired capacity the control plane decided and
        remembered (its state item), not a change in the instance count: replacing a failed
        instance is neither a scale-out nor a flap, and a duplicate delivery answered from the
        idempotency store is not a second action."""
        desired = self.state_store.load().desired
        before, self.desired = self.desired, desired
        if before is not None and desired is not None and desired != before and self.env.now >= self.start:
            direction = "out" if desired > before else "in"
            self.actions.append(Action(self.to_scenario(self.env.now), direction, before, desired))

    # -- processes ------------------------------------------------------------------------------
    def _drive(self) -> Generator[Any, Any, None]:
        for stage in self.scenario.stages:
            start = self.start + stage.start
            if self.env.now < start:
                yield self.env.timeout(start - self.env.now)
            if stage.clients is not None:
                self.engine.set_rate(self.env.now, 0.0, self.env.now, 0.0)
                self.engine.set_clients(self.env.now, stage.clients, stage.think)
            else:
                self.engine.set_clients(self.env.now, 0, stage.think)
                rate = stage.rate or 0.0
                end_rate = stage.rate_end if stage.rate_end is not None else rate
                self.engine.set_rate(self.env.now, rate, self.start + stage.end, end_rate)

    def _events(self) -> Generator[Any, Any, None]:
        rng = self._rng("events")
        for event in sorted(self.scenario.events, key=lambda e: e.at):
            at = self.start + event.at
            if self.env.now < at:
                yield self.env.timeout(at - self.env.now)
            if event.action == "capacity_error":
                self.ec2_model.capacity_until = self.env.now + event.seconds
            elif event.action == "fail_instance":
                healthy = sorted(
                    i for i, t in self.balancer.targets.items()
                    if t.state == "healthy" and self.ec2_model.machines[i].worker_up
                )  # fmt: skip
                if healthy:
                    self.ec2_model.fail(rng.choice(healthy))
            elif event.action == "deploy":
                self._deploy(event)

    def _deploy(self, event: Event) -> None:
        """``sam deploy`` of a changed worker (``stack.py``): a new launch template version, the
        functions' new configuration, the Fleet custom resource's Update."""
        logical = launch_template_of(self.template)
        if logical is None:
            raise ValueError("a deploy needs the template's AWS::EC2::LaunchTemplate")
        lifecycle = self.deployment.function("lifecycle")
        resource = custom_resource_of(self.template, lifecycle.arn) if lifecycle is not None else None
        old_properties = resource_properties(self.template, resource[0]) if resource is not None else {}
        previous = self.settings.launch_template_version
        version = str(new_launch_template_version(self.raw.ec2, self.template.ref(logical)))
        install = None if event.install_seconds is None else Span(*event.install_seconds)
        self.ec2_model.versions[version] = VersionProfile(install, event.healthy)
        self.template.attributes[(logical, LATEST)] = version
        # Every function's configuration follows the template; the alarms stay the policy's.
        functions = build_deployment(self.template).functions
        self.deployment = replace(self.deployment, functions=functions)
        for fn in functions:
            self.runtimes[fn.arn] = self._runtime(fn)
            self.lambdas.update(fn)
        self.settings = self._main_settings()
        self.observer.deployed = version
        self.deploys.append(Deploy(self.to_scenario(self.env.now), version, previous, event.healthy,
                                   event.install_seconds))  # fmt: skip
        if lifecycle is not None and resource is not None:
            properties = resource_properties(self.template, resource[0])
            request = custom_resource_request("Update", resource[0], resource[1], properties, old_properties,
                                              seed=f"{self.seed}:{version}")  # fmt: skip
            self.lambdas.invoke_async(lifecycle.arn, request)
        self._changed()

    def _alarm_loop(self, name: str) -> Generator[Any, Any, None]:
        interval = self.alarms.interval(name)
        now = self.env.now
        yield self.env.timeout((self.phases.alarms[name] - now) % interval)
        while True:
            if name in self.alarms.alarms:
                for transition in self.alarms.evaluate(name, self.env.now):
                    self._notify(transition)
            yield self.env.timeout(interval)

    def _notify(self, transition: Transition) -> None:
        name, old, new = transition.alarm, transition.old, transition.new
        when = self.wall(transition.at)
        spec = self.alarms.alarms.get(name)
        reason = self.alarms.states[name].reason
        rng = self._rng(f"notify:{name}:{transition.at}")
        copies = 2 if rng.random() < self.params.duplicate_notification_probability else 1
        for arn in self.alarms.actions(name, new):
            for fn in self.deployment.functions:
                if arn in fn.topics:
                    event = sns_alarm_event(spec, name, old, new, when, arn, reason)
                elif arn == fn.arn:
                    event = direct_alarm_event(name, old, new, when, reason)
                else:
                    continue
                for _ in range(copies):
                    self.lambdas.invoke_async(fn.arn, event, self.params.sns_delay_seconds.sample(rng))

    def _host_report(self, instance_id: str, t: float, values: dict[str, float]) -> None:
        """A host's demand report: SNS delivers it to every function subscribed to the topic."""
        reports = self.deployment.host_reports
        assert reports is not None
        settings = self.settings
        rng = self._rng(f"report:{instance_id}:{t}")
        event = host_demand_event(reports.topic_arn, settings.fleet_name, instance_id, self.wall(t),
                                  settings.cpu_metric_namespace, values)  # fmt: skip
        for fn in self.deployment.functions:
            if reports.topic_arn in fn.topics:
                self.lambdas.invoke_async(fn.arn, event, self.params.sns_delay_seconds.sample(rng))

    def _schedule(self, arn: str, period: float) -> Generator[Any, Any, None]:
        yield self.env.timeout(self.phases.schedule % period)
        while True:
            self.lambdas.invoke_async(arn, {"source": "aws.events", "detail-type": "Scheduled Event",
                                            "time": self.wall(self.env.now).isoformat()})  # fmt: skip
            yield self.env.timeout(period)

    def _observe(self) -> Generator[Any, Any, None]:
        """A sample every 10 s of scenario time, from the scenario's start."""
        yield self.env.timeout(self.start % SAMPLE_SECONDS)
        published = self.publishers.published
        seen = 0
        while True:
            yield self.env.timeout(SAMPLE_SECONDS)
            now = self.env.now
            self.engine.advance_to(now)
            fresh = [cpu for t, cpu in published[seen:] if t <= now]
            seen = len(published)
            at = self.to_scenario(now)
            stage = self.scenario.stage_at(at)
            self.observer.sample(
                stage.load_at(at) if stage is not None else 0.0,
                sum(fresh) / len(fresh) if fresh else None,
                {name: s.value for name, s in self.alarms.states.items()},
            )
            if self.progress is not None:
                self.progress(now, self.start + self.scenario.duration)

    def _mark_start(self) -> Generator[Any, Any, None]:
        yield self.env.timeout(self.start)
        self.billed_at_start = self.ec2_model.billed_seconds(self.env.now)
        self.observer.changed()

    # -- run ----------------------------------------------------------------------------------
    def execute(self, started: float) -> RunResult:
        env = self.env
        lifecycle = self.deployment.function("lifecycle")
        if lifecycle is not None:
            resource = custom_resource_of(self.template, lifecycle.arn)
            if resource is not None:
                properties = resource_properties(self.template, resource[0])
                request = custom_resource_request("Create", resource[0], resource[1], properties, seed=str(self.seed))
            else:  # a template without the custom resource: the fleet is still created at the start
                request = {"RequestType": "Create", "ResourceProperties": {}}
            self.lambdas.invoke_async(lifecycle.arn, request)
        self.alarms.evaluate_composites(0.0)
        env.process(self._drive())
        env.process(self._events())
        env.process(self._mark_start())
        env.process(self._observe())
        env.process(self.alb_metrics.run())
        if self.strategy.ec2_monitoring_period:
            ec2_metrics = Ec2Metrics(env, self.engine, self.ec2_model, self.store, self.params,
                                     self._rng("ec2-metrics"), self.strategy.ec2_monitoring_period,
                                     self.settings.fleet_name)  # fmt: skip
            env.process(ec2_metrics.run())
        for name in sorted(self.alarms.alarms):
            env.process(self._alarm_loop(name))
        self.strategy.start(self)
        for fn in self.deployment.functions:
            if fn.role == "reconcile" and not self.strategy.reconcile:
                continue
            for period in fn.schedules:
                env.process(self._schedule(fn.arn, period))
        end = self.start + self.scenario.duration
        env.run(until=end + 1e-6)
        self.engine.advance_to(end)
        instance_seconds = self.ec2_model.billed_seconds(end) - self.billed_at_start
        return RunResult(
            scenario=self.scenario,
            deployment=self.deployment,
            params=self.params,
            policy=self.policy_name,
            phases=self.phases,
            samples=self.observer.samples,
            timeline=self.observer.timeline,
            log=self.engine.log,
            start=self.start,
            actions=self.actions,
            alarm_history=[(t.alarm, t.old, t.new, self.to_scenario(t.at)) for t in self.alarms.history],
            invocations=[
                {
                    "function": i.function,
                    "t": round(self.to_scenario(i.at), 3),
                    "cold": i.cold,
                    "ok": i.ok,
                    "error": i.error,
                    "seconds": round(i.seconds, 3),
                    "attempt": i.attempt,
                }
                for i in self.lambdas.invocations
            ],
            instance_seconds=instance_seconds,
            vcpus=self.vcpus,
            wall_seconds=time.perf_counter() - started,
            thresholds=self.strategy.cpu_thresholds(self.settings),
            settings=_settings_json(self.settings),
            deploys=list(self.deploys),
            fleet=list(self.observer.points),
            responses=list(self.custom_resource.responses) if self.custom_resource is not None else [],
        )


@dataclass(frozen=True)
class Simulation:
    """A scenario against a template, under a policy: ``run()`` builds the world in moto and runs it."""

    scenario: Scenario
    template_path: str | Path
    overrides: dict[str, str] | None = None
    policy: str = "ours"
    params: ModelParams | None = None
    progress: Callable[[float, float], None] | None = None
    function_log: Path | None = None

    def run(self) -> RunResult:
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # seconds of JSON we never use
        from moto import mock_aws

        from awsfake.moto_backends import seed_ids

        started = time.perf_counter()
        with mock_aws():
            # moto's resource ids, hence every order that follows them: seeded once the mock has
            # reset its backends, so a run does not depend on the runs before it in this process.
            seed_ids(self.scenario.seed)
            return _Run(self).execute(started)

    def without_deploys(self) -> Simulation | None:
        """The same run (scenario, seed, parameters) without its deploy events: what a deploy's
        extra instance-seconds are counted against. None if the scenario deploys nothing."""
        if not any(e.action == "deploy" for e in self.scenario.events):
            return None
        events = tuple(e for e in self.scenario.events if e.action != "deploy")
        return replace(self, scenario=replace(self.scenario, events=events), progress=None, function_log=None)

    def baseline_instance_seconds(self) -> float | None:
        """Billed instance-seconds of :meth:`without_deploys` (None if there is nothing to compare)."""
        baseline = self.without_deploys()
        return None if baseline is None else baseline.run().instance_seconds


def _placeholders(path: Path) -> dict[str, Any]:
    """Values for parameters with no default, until moto provides the real ones."""
    from fleet_template.cfn import load_template as read_template

    out: dict[str, Any] = {}
    for name, spec in (read_template(path).get("Parameters") or {}).items():
        if "Default" not in spec:
            kind = str(spec.get("Type", "String"))
            out[name] = ["placeholder"] if kind.startswith("List<") else "placeholder"
    return out


def _settings_json(settings: Settings) -> dict[str, Any]:
    return settings.model_dump(mode="json")
