"""What the template deploys, reduced to what the twin simulates: alarms, functions, health checks."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fleet_template.cfn import Template, TemplateError
from simulator.workers import QUEUE_BUDGET_SECONDS

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
# The workers' --queue-budget, when the template sets it; else the worker's own default.
QUEUE_BUDGET_PARAMETER = "WorkerQueueBudgetSeconds"

# The simulated stack: what AWS::StackName and AWS::StackId resolve to.
SIM_PSEUDO: dict[str, Any] = {
    "AWS::StackName": "sim",
    "AWS::StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/sim/00000000",
}


def load_template(
    path: str | Path, overrides: Mapping[str, Any] | None = None, supplied: Mapping[str, Any] | None = None
) -> Template:
    """``path`` with the --param ``overrides`` (unknown names are an error) and ``supplied``
    values for parameters without a default. Resources the simulator creates in moto get their
    ids through ``template.physical``/``attributes``; every other resource the name
    :func:`simulated_names` gives it."""
    template = Template.load(path, overrides, supplied=supplied, pseudo=SIM_PSEUDO)
    template.resource_ref = simulated_names(template)
    return template


def simulated_names(template: Template) -> Callable[[str], Any]:
    """``resource_ref`` for resources not made in moto: ``"X"`` (Ref) and ``"X.Attr"`` (GetAtt)
    to stable names and ARNs, the resource's own name property where it has one."""
    region, account = template.pseudo["AWS::Region"], template.pseudo["AWS::AccountId"]

    def name_of(reference: str) -> Any:
        name, _, attribute = reference.partition(".")
        resource = template.declared_resources.get(name)
        if resource is None:
            raise TemplateError(f"GetAtt of unknown resource {name}")
        kind = resource.get("Type", "")
        if attribute:
            if attribute != "Arn":
                return f"sim-{name}-{attribute}"
            if kind in FUNCTION_TYPES:
                return f"arn:aws:lambda:{region}:{account}:function:{template.ref(name)}"
            return f"arn:aws:sim:{region}:{account}:{name}"
        props = resource.get("Properties") or {}
        if kind in {"AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"}:
            return template.resolve(props.get("AlarmName", f"sim-{name}"))
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{region}:{account}:{name}"
        if kind in FUNCTION_TYPES:
            return template.resolve(props.get("FunctionName", f"sim-{name}"))
        if kind == "AWS::DynamoDB::Table":
            return template.resolve(props.get("TableName", f"sim-{name}"))
        return f"sim-{name}"

    return name_of


@dataclass(frozen=True)
class MetricSpec:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str
    period: int

    def key(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        return (self.namespace, self.name, tuple(sorted(self.dimensions)))


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    metric: MetricSpec
    threshold: float
    comparison: str
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str = "missing"
    actions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # state -> ARNs
    description: str = ""

    @property
    def period(self) -> int:
        return self.metric.period


@dataclass(frozen=True)
class CompositeSpec:
    name: str
    rule: str
    actions: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    handler: str
    environment: dict[str, str]
    reserved_concurrency: int | None
    topics: tuple[str, ...]  # topic ARNs it subscribes to
    schedules: tuple[float, ...]  # periods in seconds of its schedules
    memory_mb: int = 128
    timeout: float = 3.0  # seconds; Lambda's default
    maximum_event_age: float = 21600.0  # EventInvokeConfig.MaximumEventAgeInSeconds; 6 h by default
    code_uri: str = ""  # the function's code root, relative to the template (CodeUri)

    @property
    def role(self) -> str:
        """scale_out, scale_in, reconcile or lifecycle, from the handler module (contracts.md)."""
        module = self.handler.rsplit(".", 1)[0]
        return module.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class HealthCheck:
    interval: float = 30.0
    timeout: float = 5.0
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    deregistration_delay: float = 300.0
    algorithm: str = "round_robin"
    idle_timeout: float = 60.0  # the load balancer's idle_timeout.timeout_seconds


@dataclass(frozen=True)
class HostReports:
    """The hosts' demand reports (worker/metrics_publisher.py), as the launch template's user-data
    configures them: the topic they publish to and the offered load (%) from which they do."""

    topic_arn: str
    line: float


@dataclass(frozen=True)
class Deployment:
    alarms: tuple[AlarmSpec, ...]
    composites: tuple[CompositeSpec, ...]
    functions: tuple[FunctionSpec, ...]
    health: HealthCheck
    instance_type: str
    parameters: dict[str, Any]
    queue_budget: float = QUEUE_BUDGET_SECONDS  # the workers' --queue-budget (s)
    host_reports: HostReports | None = None  # None: the hosts send none

    def function(self, role: str) -> FunctionSpec | None:
        for fn in self.functions:
            if fn.role == role:
                return fn
        return None

    def with_alarms(self, alarms: tuple[AlarmSpec, ...], composites: tuple[CompositeSpec, ...]) -> Deployment:
        return replace(self, alarms=alarms, composites=composites)


_STATES = {"AlarmActions": "ALARM", "OKActions": "OK", "InsufficientDataActions": "INSUFFICIENT_DATA"}
_RATE = re.compile(r"rate\((\d+)\s+(minute|minutes|hour|hours|second|seconds)\)")


def _actions(props: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    if props.get("ActionsEnabled") is False or str(props.get("ActionsEnabled")).lower() == "false":
        return {}
    return {state: tuple(str(a) for a in props.get(key) or ()) for key, state in _STATES.items()}


def _alarm(template: Template, logical_id: str, raw: dict[str, Any]) -> AlarmSpec:
    props = template.resolve(raw.get("Properties") or {})
    name = str(props.get("AlarmName") or template.ref(logical_id))
    if "Metrics" in props:
        returned = [m for m in props["Metrics"] if m.get("ReturnData", True) and "MetricStat" in m]
        if len(returned) != 1 or any("Expression" in m for m in props["Metrics"]):
            raise TemplateError(f"alarm {logical_id}: only single-MetricStat Metrics are simulated")
        stat = returned[0]["MetricStat"]
        metric = stat["Metric"]
        spec = MetricSpec(
            namespace=str(metric["Namespace"]),
            name=str(metric["MetricName"]),
            dimensions=tuple((str(d["Name"]), str(d["Value"])) for d in metric.get("Dimensions") or ()),
            statistic=str(stat["Stat"]),
            period=int(stat["Period"]),
        )
    else:
        spec = MetricSpec(
            namespace=str(props["Namespace"]),
            name=str(props["MetricName"]),
            dimensions=tuple((str(d["Name"]), str(d["Value"])) for d in props.get("Dimensions") or ()),
            statistic=str(props.get("Statistic") or props.get("ExtendedStatistic") or "Average"),
            period=int(props["Period"]),
        )
    evaluation = int(props.get("EvaluationPeriods", 1))
    return AlarmSpec(
        name=name,
        metric=spec,
        threshold=float(props["Threshold"]),
        comparison=str(props["ComparisonOperator"]),
        evaluation_periods=evaluation,
        datapoints_to_alarm=int(props.get("DatapointsToAlarm", evaluation)),
        treat_missing_data=str(props.get("TreatMissingData", "missing")),
        actions=_actions(props),
        description=str(props.get("AlarmDescription", "")),
    )


def _schedule_seconds(expression: str) -> float:
    match = _RATE.fullmatch(expression.strip())
    if match is None:
        if expression.strip() in {"cron(* * * * ? *)", "cron(0/1 * * * ? *)"}:
            return 60.0
        raise TemplateError(f"unsupported schedule expression {expression!r} (use rate(N minutes))")
    n, unit = int(match.group(1)), match.group(2)
    return n * (3600.0 if unit.startswith("hour") else 60.0 if unit.startswith("minute") else 1.0)


def _env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def build_deployment(template: Template) -> Deployment:
    globals_fn = template.resolve(((template.data.get("Globals") or {}).get("Function")) or {})
    global_env = {k: _env_str(v) for k, v in ((globals_fn.get("Environment") or {}).get("Variables") or {}).items()}

    alarms = tuple(_alarm(template, lid, raw) for lid, raw in template.resources("AWS::CloudWatch::Alarm").items())
    composites = []
    for lid, raw in template.resources("AWS::CloudWatch::CompositeAlarm").items():
        props = template.resolve(raw.get("Properties") or {})
        composites.append(
            CompositeSpec(str(props.get("AlarmName") or template.ref(lid)), str(props["AlarmRule"]), _actions(props))
        )

    subscriptions: dict[str, list[str]] = {}  # endpoint (function arn or name) -> topic arns
    for raw in template.resources("AWS::SNS::Subscription").values():
        props = template.resolve(raw.get("Properties") or {})
        if str(props.get("Protocol", "")).lower() == "lambda":
            subscriptions.setdefault(str(props["Endpoint"]), []).append(str(props["TopicArn"]))
    for lid, raw in template.resources("AWS::SNS::Topic").items():
        props = template.resolve(raw.get("Properties") or {})
        for sub in props.get("Subscription") or ():
            if str(sub.get("Protocol", "")).lower() == "lambda":
                subscriptions.setdefault(str(sub["Endpoint"]), []).append(template.ref(lid))
    rule_schedules: dict[str, list[float]] = {}
    for rule in template.resources("AWS::Events::Rule", "AWS::Scheduler::Schedule").values():
        props = template.resolve(rule.get("Properties") or {})
        expression = props.get("ScheduleExpression")
        if not expression or str(props.get("State", "ENABLED")).upper() == "DISABLED":
            continue
        targets = props.get("Targets") or [props.get("Target") or {}]
        for target in targets:
            rule_schedules.setdefault(str(target.get("Arn")), []).append(_schedule_seconds(str(expression)))

    functions = []
    for lid, raw in template.resources(*FUNCTION_TYPES).items():
        props = template.resolve(raw.get("Properties") or {})
        env = dict(global_env)
        env.update({k: _env_str(v) for k, v in ((props.get("Environment") or {}).get("Variables") or {}).items()})
        name = str(template.ref(lid))
        arn = str(template.get_att(lid, "Arn"))
        topics = list(subscriptions.get(arn, [])) + list(subscriptions.get(name, []))
        schedules = list(rule_schedules.get(arn, []))
        for event in (props.get("Events") or {}).values():
            kind, ev = event.get("Type"), event.get("Properties") or {}
            if kind == "SNS":
                topics.append(str(ev["Topic"]))
            elif (
                kind in {"Schedule", "ScheduleV2"}
                and ev.get("Enabled", True) is not False
                and str(ev.get("State", "ENABLED")).upper() != "DISABLED"
            ):
                schedules.append(_schedule_seconds(str(ev.get("Schedule") or ev.get("ScheduleExpression"))))
        reserved = props.get("ReservedConcurrentExecutions", globals_fn.get("ReservedConcurrentExecutions"))
        functions.append(
            FunctionSpec(
                logical_id=lid,
                name=name,
                arn=arn,
                handler=str(props.get("Handler") or globals_fn.get("Handler") or ""),
                code_uri=str(props.get("CodeUri") or globals_fn.get("CodeUri") or ""),
                environment=env,
                reserved_concurrency=None if reserved is None else int(reserved),
                topics=tuple(topics),
                schedules=tuple(schedules),
                memory_mb=int(props.get("MemorySize") or globals_fn.get("MemorySize") or 128),
                timeout=float(props.get("Timeout") or globals_fn.get("Timeout") or 3),
                maximum_event_age=float(
                    (
                        (props.get("EventInvokeConfig") or globals_fn.get("EventInvokeConfig") or {}).get(
                            "MaximumEventAgeInSeconds"
                        )
                    )
                    or 21600
                ),
            )
        )

    health = HealthCheck()
    groups = template.resources("AWS::ElasticLoadBalancingV2::TargetGroup")
    if groups:
        props = template.resolve(next(iter(groups.values())).get("Properties") or {})
        attributes = {str(a["Key"]): str(a["Value"]) for a in props.get("TargetGroupAttributes") or ()}
        health = HealthCheck(
            interval=float(props.get("HealthCheckIntervalSeconds", 30)),
            timeout=float(props.get("HealthCheckTimeoutSeconds", 5)),
            healthy_threshold=int(props.get("HealthyThresholdCount", 5)),
            unhealthy_threshold=int(props.get("UnhealthyThresholdCount", 2)),
            deregistration_delay=float(attributes.get("deregistration_delay.timeout_seconds", 300)),
            algorithm=attributes.get("load_balancing.algorithm.type", "round_robin"),
        )
    for raw in template.resources("AWS::ElasticLoadBalancingV2::LoadBalancer").values():
        props = template.resolve(raw.get("Properties") or {})
        attributes = {str(a["Key"]): str(a["Value"]) for a in props.get("LoadBalancerAttributes") or ()}
        if "idle_timeout.timeout_seconds" in attributes:
            health = replace(health, idle_timeout=float(attributes["idle_timeout.timeout_seconds"]))
    instance_type = "c7g.medium"
    host_reports = None
    for raw in template.resources("AWS::EC2::LaunchTemplate").values():
        props = template.resolve(raw.get("Properties") or {})
        data = props.get("LaunchTemplateData") or {}
        instance_type = str(data.get("InstanceType", instance_type))
        host_reports = host_reports_of(str(data.get("UserData") or ""))
    return Deployment(
        alarms=alarms,
        composites=tuple(composites),
        functions=tuple(functions),
        health=health,
        instance_type=instance_type,
        parameters=dict(template.parameters),
        queue_budget=queue_budget_of(template.parameters),
        host_reports=host_reports,
    )


def _flag(user_data: str, name: str) -> str | None:
    match = re.search(rf"--{name}\s+(['\"]?)([^'\"\s]*)\1", user_data)
    return match.group(2) if match else None


def host_reports_of(user_data: str) -> HostReports | None:
    """What the user-data passes the hosts' boot script: a topic (none or empty: no reports) and
    the line, PanicThreshold x CpuTarget, which the host multiplies itself."""
    topic = _flag(user_data, "demand-topic-arn")
    if not topic:
        return None
    try:
        line = float(_flag(user_data, "panic-threshold") or "nan") * float(_flag(user_data, "cpu-target") or "nan")
    except ValueError:
        line = math.nan
    if not line > 0:
        raise TemplateError(
            "the user-data passes --demand-topic-arn without a usable --panic-threshold and --cpu-target"
        )
    return HostReports(topic, line)


def queue_budget_of(parameters: Mapping[str, Any]) -> float:
    """The workers' --queue-budget: the template's parameter, else the worker's own default."""
    raw = parameters.get(QUEUE_BUDGET_PARAMETER)
    if raw is None:
        return QUEUE_BUDGET_SECONDS
    try:
        budget = float(raw)
    except (TypeError, ValueError):
        budget = math.nan
    if not budget > 0:  # also refuses nan, as the worker's --queue-budget does
        raise TemplateError(f"{QUEUE_BUDGET_PARAMETER} must be a positive number of seconds, got {raw!r}")
    return budget
