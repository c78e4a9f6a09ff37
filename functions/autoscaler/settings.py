"""One typed settings object, built from the environment the template sets.

Every tunable of the control plane lives here; nothing else reads ``os.environ``.
A missing or malformed variable fails loudly at cold start, naming the variable.
"""

from __future__ import annotations

import math
import os
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields

FLEET_TAG = "AutoscalerFleet"
"""Tag key carried by every instance the functions manage; IAM conditions use it."""
LIFECYCLE_TAG = "AutoscalerLifecycle"
"""Tag key holding an instance's lifecycle (warming, pool, service, draining)."""
READY_TAG = "AutoscalerReady"
"""Tag the instance sets on itself once ``/ping`` answers through nginx (see userdata/)."""


class SettingsError(ValueError):
    """A required environment variable is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    """Control-plane configuration; field names map to UPPER_CASE environment variables."""

    # No defaults here for what the template sets: its parameters are the one source of the
    # defaults, and a missing variable fails at cold start instead of falling back to a stale value.
    fleet_name: str
    table_name: str
    launch_template_id: str
    subnet_ids: tuple[str, ...]
    target_group_arn: str
    # "targetgroup/<name>/<id>", the dimension value of AWS/ApplicationELB metrics.
    target_group_dimension: str
    # "app/<name>/<id>": with the target group, the dimensions of the ALB's RequestCount.
    load_balancer_dimension: str
    min_size: int
    max_size: int
    warm_pool_size: int
    # At most this many instances in service and in the pool together; 0 = no bound.
    max_prepared_capacity: int
    # Scaling targets: fleet CPU (%) and requests per target per minute.
    cpu_target: float
    requests_per_target_target: float
    tolerance: float
    min_step_fraction: float
    scale_in_stabilization_seconds: int
    # Windows over which decisions average the metrics read at decision time: the long one for
    # scale-in and the stabilization history, the short one to confirm a scale-out quickly.
    metric_window_seconds: int
    scale_out_window_seconds: int
    launch_template_version: str = "$Latest"
    cpu_metric_namespace: str = "Autoscaler"
    cpu_metric_name: str = "CPUUtilization"
    # Published by every host beside its CPU (same namespace, dimensions and period).
    request_metric_name: str = "RequestsPerMinute"
    cpu_metric_period_seconds: int = 10
    # Scaling alarms; the reconcile re-evaluates while any of them stays in ALARM.
    scale_out_alarm_names: tuple[str, ...] = ()
    scale_in_alarm_names: tuple[str, ...] = ()
    # An instance in service but not healthy after this long is replaced.
    health_grace_seconds: int = 300
    # A warming instance that never reports ready after this long is terminated.
    warmup_timeout_seconds: int = 900
    # A draining target is stopped once ELB reports it gone, or after this long at most.
    drain_timeout_seconds: int = 330
    # Longer than the scaling functions' timeout (120 s): a lease must outlive any invocation that
    # holds it, or a slow run could interleave with the next one.
    lease_seconds: int = 150
    lease_wait_seconds: float = 20.0
    # How long an invocation waits for started instances to reach "running" before
    # leaving registration to the next reconcile.
    running_wait_seconds: float = 60.0
    history_ttl_days: int = 30
    idempotency_ttl_seconds: int = 3600
    # A new fleet (custom resource Create) starts with automatic scaling suspended.
    suspended_by_default: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        errors: list[str] = []
        types = typing.get_type_hints(cls)
        for f in fields(cls):
            key = f.name.upper()
            raw = env.get(key)
            required = f.default is MISSING
            if raw is None or raw == "":
                if required:
                    errors.append(f"{key} is required")
                continue
            try:
                values[f.name] = _convert(types[f.name], raw)
            except ValueError as exc:
                errors.append(f"{key}={raw!r}: {exc}")
        if errors:
            raise SettingsError("invalid settings: " + "; ".join(errors))
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        problems = []
        if not self.subnet_ids:
            problems.append("SUBNET_IDS must name at least one subnet")
        if self.min_size < 0 or self.max_size < self.min_size:
            problems.append(f"need 0 <= MIN_SIZE ({self.min_size}) <= MAX_SIZE ({self.max_size})")
        if self.warm_pool_size < 0:
            problems.append("WARM_POOL_SIZE must be >= 0")
        for name, target in (
            ("CPU_TARGET", self.cpu_target),
            ("REQUESTS_PER_TARGET_TARGET", self.requests_per_target_target),
        ):
            if not (math.isfinite(target) and target > 0):
                problems.append(f"{name} must be a finite number > 0, got {target}")
        if self.cpu_target >= 95:
            # decide.SATURATED: a fleet read at 95 % of its ceiling is saturated, so a target there
            # would make every reading on target look saturated.
            problems.append(f"CPU_TARGET must be below 95 (the saturation line), got {self.cpu_target}")
        if not 0 <= self.tolerance < 1:
            problems.append("TOLERANCE must be in [0, 1)")
        if not 0 <= self.min_step_fraction < 1:
            problems.append("MIN_STEP_FRACTION must be in [0, 1)")
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))

    @property
    def all_alarm_names(self) -> tuple[str, ...]:
        return self.scale_out_alarm_names + self.scale_in_alarm_names


def _convert(kind: object, raw: str) -> object:
    """``raw`` as the field's declared type (the type itself, resolved, not its name)."""
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes"}:
            return True
        if lowered in {"0", "false", "no"}:
            return False
        raise ValueError("expected true or false")
    if kind is int or kind is float:
        return kind(raw)
    if typing.get_origin(kind) is tuple and typing.get_args(kind) == (str, ...):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind is str:
        return raw
    raise TypeError(f"no conversion from the environment to {kind!r}")


ENVIRONMENT_VARIABLES = tuple(f.name.upper() for f in fields(Settings))
"""Every variable the code may read; the template contract test checks them."""
REQUIRED_ENVIRONMENT_VARIABLES = tuple(f.name.upper() for f in fields(Settings) if f.default is MISSING)
"""The variables without a default: every function must be given them."""
