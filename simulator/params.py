"""Modelled parameters the template does not fix, each with its default and source.

Scenario files override them under ``model:``; docs/simulator.md lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

# name -> source; the value is the dataclass default below.
SOURCES: dict[str, str] = {
    "launch_seconds": "notes (aws-facts: RunInstances to SSH-ready ~26-29 s)",
    "start_seconds": "notes (aws-facts: starting a stopped instance ~21 s)",
    "install_min_seconds": "estimate (user-data: packages + worker install; measure)",
    "install_max_seconds": "estimate (user-data: packages + worker install; measure)",
    "worker_start_seconds": "estimate (systemd starts nginx and the worker after boot)",
    "stop_seconds": "estimate (EC2 stopping -> stopped)",
    "terminate_seconds": "estimate (EC2 shutting-down -> terminated)",
    "work_min_seconds": "notes (nine-stage: /work costs 0.45-0.55 s on one vCPU)",
    "work_max_seconds": "notes (nine-stage: /work costs 0.45-0.55 s on one vCPU)",
    "idle_cpu_percent": "estimate (OS, nginx and the metric publisher at rest)",
    "cpu_publish_delay_seconds": "estimate (PutMetricData to visible in GetMetricData)",
    "alb_metric_delay_seconds": "estimate (ALB request metrics appear about a minute late)",
    "initial_health_checks": "notes (aws-facts: a newly registered target must pass one check)",
    "drain_early_when_idle": "ELB docs (deregistration completes at once with no in-flight requests)",
    "sns_delay_seconds": "estimate (SNS to Lambda async delivery)",
    "lambda_cold_seconds": "estimate (python 3.12 + powertools + boto3 cold start)",
    "lambda_warm_seconds": "estimate (warm invocation overhead)",
    "lambda_keepalive_seconds": "estimate (idle execution environments are reclaimed after minutes)",
    "request_timeout_seconds": "ALB default idle timeout 60 s",
    "alarm_eval_offset_seconds": "estimate (second within the minute at which alarms evaluate)",
    "vcpus": "instance type (c7g.medium / m7g.medium: 1 vCPU, notes); 0 = from the type",
}


@dataclass(frozen=True)
class ModelParams:
    launch_seconds: float = 27.0
    start_seconds: float = 21.0
    install_min_seconds: float = 90.0
    install_max_seconds: float = 120.0
    worker_start_seconds: float = 5.0
    stop_seconds: float = 20.0
    terminate_seconds: float = 30.0
    work_min_seconds: float = 0.45
    work_max_seconds: float = 0.55
    idle_cpu_percent: float = 1.0
    cpu_publish_delay_seconds: float = 5.0
    alb_metric_delay_seconds: float = 60.0
    initial_health_checks: float = 1
    drain_early_when_idle: float = 1
    sns_delay_seconds: float = 0.5
    lambda_cold_seconds: float = 1.5
    lambda_warm_seconds: float = 0.1
    lambda_keepalive_seconds: float = 420.0
    request_timeout_seconds: float = 60.0
    alarm_eval_offset_seconds: float = 0.0
    vcpus: float = 0

    def with_overrides(self, overrides: dict[str, Any]) -> ModelParams:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown model parameter(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return replace(self, **{k: float(v) for k, v in overrides.items()})


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
