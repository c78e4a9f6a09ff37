"""Modelled parameters: what the template does not fix, each with a default, a range and a source.

Two kinds:
- **per event** (a :class:`Span`): drawn afresh, uniformly within its range, every time the thing
  happens (each boot, each datapoint's publication delay, each API call). ``run`` and ``sweep``
  both sample them from the scenario's seed.
- **per run** (a float): one value for the whole run. ``run`` uses the default; ``sweep`` draws
  each run's value uniformly from the range.

Scenario files override either under ``model:`` with a number (pins it) or ``[low, high]``
(a per-event range; for a per-run parameter the range the sweep explores, the run using its
middle). docs/simulator.md lists every parameter with its source.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Span:
    """A per-event uniform distribution over ``[low, high]``."""

    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return self.low if self.high <= self.low else rng.uniform(self.low, self.high)

    @property
    def mid(self) -> float:
        return (self.low + self.high) / 2


@dataclass(frozen=True)
class Spec:
    """Range, unit and public source of one parameter; ``default`` only for per-run ones."""

    low: float
    high: float
    unit: str
    source: str
    default: float | None = None  # None: a per-event Span over [low, high]


# Sources are public documentation pages, public measurements, or a command of this repository
# that measures the figure. "No public figure" says so, with the reasoning behind the range.
SPECS: dict[str, Spec] = {
    # -- EC2 -----------------------------------------------------------------------------------
    "launch_pending_seconds": Spec(
        5,
        18,
        "s",
        "RunInstances to `running`: 4.9 s (daemonology.net, 'EC2 boot "
        "time benchmarking', 2021) to 17.8 s (github.com/brevdev/ec2-coldboot-research, AL2023, 2026)",
    ),
    "start_pending_seconds": Spec(
        5,
        17,
        "s",
        "StartInstances to `running`: 16.4 s (brevdev/ec2-coldboot-research, "
        "'Start-from-Stopped Results'); shorter on older measurements",
    ),
    "boot_seconds": Spec(
        3,
        23,
        "s",
        "`running` to the OS up and systemd starting units: 3 s to SSH on AL2023 "
        "(brevdev) to 23 s (daemonology.net, 2021)",
    ),
    "install_seconds": Spec(
        60,
        180,
        "s",
        "no public figure (the user-data installs nginx and botocore with dnf, "
        "downloads the worker layer, starts the units); a deliberately wide range: measure on your stack "
        "(`fleetctl status` shows each instance's launch time and when it tagged itself ready)",
    ),
    "worker_start_seconds": Spec(
        2,
        8,
        "s",
        "no public figure: systemd starts nginx, the worker and the publisher "
        "on a restarted host; the worker itself answers /ping well within a second of starting "
        "(`python -m benchmarks.worker --calibrate`)",
    ),
    "stop_seconds": Spec(
        10,
        120,
        "s",
        "`stopping` to `stopped`: no public figure; the StopInstances API reference "
        "only says the instance is shut down forcibly 'after a short while'",
    ),
    "terminate_seconds": Spec(
        10,
        180,
        "s",
        "`shutting-down` to `terminated`: no public figure; EC2 user guide "
        "'Troubleshoot instance termination' calls longer than 'a few minutes' abnormal",
    ),
    "ec2_consistency_seconds": Spec(
        0,
        10,
        "s",
        "EC2 developer guide 'Eventual consistency in the Amazon EC2 API' "
        "(https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html): a new instance may be unknown "
        "to DescribeInstances and CreateTags; no duration given, retries start at 'a couple of seconds'",
    ),
    "run_instances_api_seconds": Spec(
        0.5, 5.0, "s", "RunInstances call: 1.5 s (daemonology.net 2021), 4.6-5.0 s with the CLI (brevdev 2026)"
    ),
    "ec2_api_seconds": Spec(
        0.05,
        1.0,
        "s",
        "other EC2 calls (Describe, Start 1.8 s with the CLI in brevdev 2026, "
        "Stop, Terminate, CreateTags): no published latency; a wide range",
    ),
    # -- ELB -----------------------------------------------------------------------------------
    "registration_seconds": Spec(
        5,
        30,
        "s",
        "RegisterTargets to the first health check (Elb.RegistrationInProgress): "
        "no public figure (ELB user guide 'Register targets with your target group'); a wide range",
    ),
    "initial_health_checks": Spec(
        1,
        1,
        "checks",
        "ELB user guide 'Health checks for Application Load Balancer "
        "target groups': 'After your target is registered, it must pass one health check to be considered "
        "healthy'",
        default=1,
    ),
    "target_keepalive_seconds": Spec(
        65,
        75,
        "s",
        "nginx keepalive_timeout on the worker host: 75 s by default "
        "(nginx docs, ngx_http_core_module), 65 s in the Fedora/RHEL-family nginx.conf",
        default=65,
    ),
    "elb_api_seconds": Spec(0.05, 0.5, "s", "ELBv2 API call latency: no published figure; a wide range"),
    # -- CloudWatch ----------------------------------------------------------------------------
    "cpu_metric_delay_seconds": Spec(
        2,
        30,
        "s",
        "PutMetricData to visible in GetMetricData and alarms: 'seconds "
        "after they are published' (AWS News Blog 'New - High-Resolution Custom Metrics and Alarms for Amazon "
        "CloudWatch', 2017); no figure, so a pessimistic upper bound",
    ),
    "alb_metric_delay_seconds": Spec(
        60,
        240,
        "s",
        "after its minute ends: ELB user guide 'CloudWatch metrics for "
        "your Application Load Balancer' (60 s intervals, only while requests flow); about 2 min for 1-minute "
        "metrics (Datadog docs 'Cloud Metric Delay'); 4 min in https://stackoverflow.com/a/64045238",
    ),
    "ec2_metric_delay_seconds": Spec(
        60,
        180,
        "s",
        "EC2's own CPUUtilization (the baselines): per-minute samples, "
        "about 2 min late (Datadog docs 'Cloud Metric Delay'); basic monitoring aggregates them in 5-minute "
        "datapoints updated in place (CloudWatch user guide, 'Amazon EC2 metrics')",
    ),
    "cloudwatch_api_seconds": Spec(0.05, 0.5, "s", "CloudWatch API call latency: no published figure; a wide range"),
    "alarm_evaluation_range_extra": Spec(
        2,
        2,
        "periods",
        "CloudWatch user guide 'Configuring how CloudWatch "
        "alarms treat missing data': the evaluation range exceeds EvaluationPeriods (5 for 3 in its examples)",
        default=2,
    ),
    "duplicate_notification_probability": Spec(
        0.0,
        0.02,
        "",
        "CloudWatch user guide 'Using Amazon CloudWatch "
        "alarms': 'In rare cases, your history might show more than one notification for a state change'; Lambda "
        "developer guide: an asynchronous event may be delivered more than once",
        default=0.01,
    ),
    # -- SNS and Lambda ------------------------------------------------------------------------
    "sns_delay_seconds": Spec(
        0.06,
        0.25,
        "s",
        "SNS to asynchronous Lambda: p10 62 ms, p99 225 ms "
        "(bitesizedserverless.com 'Serverless Messaging: Latency Compared', eu-west-1, 2022)",
    ),
    "lambda_cold_seconds": Spec(
        0.5,
        2.5,
        "s",
        "AWS Compute Blog 'Operating Lambda: Performance optimization': "
        "cold starts from under 100 ms to over 1 s; plus importing our handlers, 1.1-1.4 x `import boto3` "
        "(`benchmarks/control_plane.py`)",
    ),
    "lambda_warm_seconds": Spec(
        0.005,
        0.05,
        "s",
        "invocation overhead of a warm execution environment "
        "(AWS Compute Blog 'Operating Lambda: Performance optimization')",
    ),
    "lambda_keepalive_seconds": Spec(
        420,
        2700,
        "s",
        "idle execution environments are kept 'for a non-deterministic "
        "period' (AWS Compute Blog, 'Operating Lambda'); 7-45 min in public measurements "
        "(theburningmonk.com, 2017; later write-ups)",
        default=900,
    ),
    "dynamodb_api_seconds": Spec(
        0.002,
        0.02,
        "s",
        "'single-digit millisecond performance' (DynamoDB developer guide, 'What is Amazon DynamoDB?')",
    ),
    # -- the worker host -----------------------------------------------------------------------
    "work_seconds": Spec(
        0.45, 0.55, "s", "the workload: /work burns 0.45-0.55 s of one vCPU (worker/work.py, `--work-min/--work-max`)"
    ),
    "request_overhead_ms": Spec(
        0.3,
        1.5,
        "ms CPU",
        "nginx + supervisor CPU per /work beyond the work itself: 0.6 ms (0.3-0.8) measured on x86 by "
        "`python -m benchmarks.worker --calibrate`; the top allows for Graviton and Python 3.9, not measured",
        default=0.6,
    ),
    "background_cpu_percent": Spec(
        0.1,
        3.0,
        "% of one vCPU",
        "idle host: the worker stack 0.08-0.11 % (`python -m benchmarks.worker --calibrate`), plus the OS "
        "(systemd, SSM agent, steal), not measurable here",
        default=0.5,
    ),
}


def _span(name: str) -> Span:
    spec = SPECS[name]
    return Span(spec.low, spec.high)


def _default(name: str) -> float:
    default = SPECS[name].default
    assert default is not None, name
    return default


@dataclass(frozen=True)
class ModelParams:
    # per event
    launch_pending_seconds: Span = _span("launch_pending_seconds")
    start_pending_seconds: Span = _span("start_pending_seconds")
    boot_seconds: Span = _span("boot_seconds")
    install_seconds: Span = _span("install_seconds")
    worker_start_seconds: Span = _span("worker_start_seconds")
    stop_seconds: Span = _span("stop_seconds")
    terminate_seconds: Span = _span("terminate_seconds")
    ec2_consistency_seconds: Span = _span("ec2_consistency_seconds")
    run_instances_api_seconds: Span = _span("run_instances_api_seconds")
    registration_seconds: Span = _span("registration_seconds")
    cpu_metric_delay_seconds: Span = _span("cpu_metric_delay_seconds")
    alb_metric_delay_seconds: Span = _span("alb_metric_delay_seconds")
    ec2_metric_delay_seconds: Span = _span("ec2_metric_delay_seconds")
    sns_delay_seconds: Span = _span("sns_delay_seconds")
    lambda_cold_seconds: Span = _span("lambda_cold_seconds")
    lambda_warm_seconds: Span = _span("lambda_warm_seconds")
    ec2_api_seconds: Span = _span("ec2_api_seconds")
    elb_api_seconds: Span = _span("elb_api_seconds")
    cloudwatch_api_seconds: Span = _span("cloudwatch_api_seconds")
    dynamodb_api_seconds: Span = _span("dynamodb_api_seconds")
    work_seconds: Span = _span("work_seconds")
    # per run
    initial_health_checks: float = _default("initial_health_checks")
    alarm_evaluation_range_extra: float = _default("alarm_evaluation_range_extra")
    duplicate_notification_probability: float = _default("duplicate_notification_probability")
    lambda_keepalive_seconds: float = _default("lambda_keepalive_seconds")
    target_keepalive_seconds: float = _default("target_keepalive_seconds")
    request_overhead_ms: float = _default("request_overhead_ms")
    background_cpu_percent: float = _default("background_cpu_percent")
    # Not a modelled quantity: vCPUs of the instance type (0 = from the type).
    vcpus: float = 0

    def with_overrides(self, overrides: Mapping[str, Any]) -> ModelParams:
        """Apply ``model:`` overrides: a number pins a parameter, ``[low, high]`` sets a range."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown model parameter(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        changes: dict[str, Any] = {}
        for name, value in overrides.items():
            current = getattr(self, name)
            low, high = bounds(name, value)
            changes[name] = Span(low, high) if isinstance(current, Span) else (low + high) / 2
        return replace(self, **changes)

    def ranges(self, overrides: Mapping[str, Any] | None = None) -> dict[str, tuple[float, float]]:
        """The per-run parameters' ranges for the sweep (an override replaces the documented one)."""
        out: dict[str, tuple[float, float]] = {}
        for f in fields(self):
            if isinstance(getattr(self, f.name), Span) or f.name not in SPECS:
                continue
            spec = SPECS[f.name]
            out[f.name] = bounds(f.name, overrides[f.name]) if overrides and f.name in overrides else (
                spec.low, spec.high)  # fmt: skip
        return out

    def drawn(self, rng: random.Random, overrides: Mapping[str, Any] | None = None) -> ModelParams:
        """A copy with every per-run parameter drawn uniformly from its range (the sweep's runs)."""
        changes: dict[str, Any] = {name: (low if high <= low else rng.uniform(low, high)) for name, (low, high) in
                                   self.ranges(overrides).items()}  # fmt: skip
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = [value.low, value.high] if isinstance(value, Span) else value
        return out


def bounds(name: str, value: Any) -> tuple[float, float]:
    """``model.<name>``'s value as (low, high): a number pins it, ``[low, high]`` is a range."""
    if isinstance(value, list | tuple):
        if len(value) != 2 or not all(_number(v) for v in value) or float(value[1]) < float(value[0]):
            raise ValueError(f"model.{name}: a range is [low, high] with low <= high, got {value!r}")
        return float(value[0]), float(value[1])
    if not _number(value):
        raise ValueError(f"model.{name}: expected a number or [low, high], got {value!r}")
    return float(value), float(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


VCPUS = {"medium": 1, "small": 1, "micro": 2, "nano": 2, "large": 2, "xlarge": 4, "2xlarge": 8}
ONE_VCPU_FAMILIES = ("c7g", "m7g", "r7g", "c6g", "m6g", "r6g", "c8g", "m8g", "a1")


def vcpus_for(instance_type: str, override: float = 0) -> int:
    """vCPUs of an instance type: Graviton mediums have one; x86 and burstable ones two or more."""
    if override:
        return int(override)
    family, _, size = instance_type.partition(".")
    if size == "medium" and family.startswith(ONE_VCPU_FAMILIES):
        return 1
    if size == "medium":
        return 2
    return VCPUS.get(size, 2)


def markdown_table() -> str:
    """Every modelled parameter as docs/simulator.md lists it (``python -m simulator params``)."""
    params = ModelParams()
    rows = ["| parameter | kind | default | range | unit | source |", "|---|---|---|---|---|---|"]
    for name, spec in SPECS.items():
        value = getattr(params, name)
        if isinstance(value, Span):
            kind, default = "per event", f"uniform {value.low:g}-{value.high:g}"
        else:
            kind, default = "per run", f"{value:g}"
        rows.append(f"| `{name}` | {kind} | {default} | {spec.low:g}-{spec.high:g} | {spec.unit} | {spec.source} |")
    return "\n".join(rows)
