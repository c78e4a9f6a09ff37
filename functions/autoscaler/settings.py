"""One validated settings model, built from the environment the template sets.

Every tunable of the control plane lives here; nothing else reads ``os.environ``. A field the
template sets has no default in code (the template's parameters are the one source of the
defaults); only the code's own constants, which the template never sets, have one. A missing or
malformed variable fails loudly at cold start, naming the variable.

Each scaling signal's target is read from the variable its row in ``signals.SIGNALS`` names, so
adding a signal adds no field here.

pydantic comes with the Powertools layer; importing it costs about 0.1 s, so the functions build
the model on their first invocation, not at import (``lambda_runtime``; see
``benchmarks/control_plane.py`` for both figures).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, field_validator, model_validator

from autoscaler.refresh import Preferences, surge_values
from autoscaler.signals import SATURATED, SIGNALS, TARGET_VARIABLES


class SettingsError(ValueError):
    """A required environment variable is missing or malformed."""


def _comma_list(raw: object) -> object:
    if isinstance(raw, str):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def _stripped(raw: object) -> object:
    return raw.strip() if isinstance(raw, str) else raw


def _text(raw: object) -> object:
    return str(raw).strip() if isinstance(raw, (str, int)) and not isinstance(raw, bool) else raw


Names = Annotated[tuple[str, ...], BeforeValidator(_comma_list)]
Percentages = Annotated[tuple[int, ...], BeforeValidator(_comma_list)]
LISTS = (tuple[str, ...], tuple[int, ...])
Int = Annotated[int, BeforeValidator(_stripped)]
Float = Annotated[float, BeforeValidator(_stripped)]


class Settings(BaseModel):
    """Control-plane configuration; field names map to UPPER_CASE environment variables."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fleet_name: str
    table_name: str
    launch_template_id: str
    launch_template_version: str
    subnet_ids: Names
    target_group_arn: str
    # "targetgroup/<name>/<id>", the dimension value of AWS/ApplicationELB metrics.
    target_group_dimension: str
    # "app/<name>/<id>": with the target group, the dimensions of the ALB's RequestCount.
    load_balancer_dimension: str
    min_size: Int
    max_size: Int
    warm_pool_size: Int
    # At most this many instances in service and in the pool together; 0 = no bound.
    max_prepared_capacity: Int
    # Each signal's target per in-service instance, by the variable its row names.
    targets: Mapping[str, Float]
    tolerance: Float
    # A scale-in sizes for at most (1 - this) x each target (decide.recommend).
    scale_in_headroom: Float
    min_step_fraction: Float
    scale_in_stabilization_seconds: Int
    # After a scale-out, decisions may go on scaling out without an alarm for this long (decide.py).
    scale_out_follow_through_seconds: Int
    # After a resize, one the other way waits this long (no scale-in) or needs the long window
    # (a scale-out) (decide.py).
    reversal_window_seconds: Int
    # Windows over which decisions average the metrics read at decision time: the long one for
    # scale-in and the stabilization history, the short one to confirm a scale-out quickly.
    metric_window_seconds: Int
    scale_out_window_seconds: Int
    # Panic mode (decide.py): entered when the panic window's uncapped demand asks for at least
    # PANIC_THRESHOLD x the instances in service; left PANIC_STABLE_SECONDS after the last such
    # reading; sizes for the arrivals plus the hosts' backlog drained within BACKLOG_DRAIN_SECONDS.
    panic_threshold: Float
    panic_window_seconds: Int
    panic_stable_seconds: Int
    backlog_drain_seconds: Int
    # The hosts' publisher (worker/): one namespace, dimensions and period for every host metric.
    cpu_metric_namespace: str
    request_metric_name: str
    cpu_metric_period_seconds: Int
    # Scaling alarms; the reconcile re-evaluates while any of them stays in ALARM.
    scale_out_alarm_names: Names
    scale_in_alarm_names: Names
    # Rolling replacement (refresh.py): a refresh's defaults, and the maximum instance lifetime.
    refresh_min_healthy_percent: Int
    # A count ("1") or a percentage of the desired capacity ("25%").
    refresh_max_surge: Annotated[str, BeforeValidator(_text)]
    refresh_warmup_seconds: Int
    refresh_checkpoints: Percentages
    refresh_checkpoint_delay_seconds: Int
    refresh_auto_rollback: bool
    refresh_alarm_names: Names
    max_instance_lifetime_days: Float

    # The code's own constants below: the template does not set them (a contract test checks).
    cpu_metric_name: str = "CPUUtilization"
    # An instance in service but not healthy after this long is replaced.
    health_grace_seconds: Int = 300
    # A warming instance that never reports ready after this long is terminated.
    warmup_timeout_seconds: Int = 900
    # A draining target is stopped once ELB reports it gone, or after this long at most.
    drain_timeout_seconds: Int = 330
    # Longer than the scaling functions' timeout (120 s): a lease must outlive any invocation that
    # holds it, or a slow run could interleave with the next one.
    lease_seconds: Int = 150
    lease_wait_seconds: Float = 20.0
    # How long an invocation waits for started instances to reach "running" before
    # leaving registration to the next reconcile.
    running_wait_seconds: Float = 60.0
    history_ttl_days: Int = 30
    idempotency_ttl_seconds: Int = 3600
    # A new fleet (custom resource Create) starts with automatic scaling suspended.
    suspended_by_default: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            raw = env.get(name.upper())
            # Empty is missing, except for a list: set and empty, it is a list of nothing (a
            # baseline policy of the twin deploys no scaling alarms).
            if name != "targets" and raw is not None and (raw.strip() or info.annotation in LISTS):
                values[name] = raw
        values["targets"] = {key: env[key] for key in TARGET_VARIABLES if env.get(key, "").strip()}
        return cls.build(values, env)

    @classmethod
    def build(cls, values: Mapping[str, Any], source: Mapping[str, Any] | None = None) -> Settings:
        """Validate ``values`` (field name -> value); errors name the variables."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise SettingsError("invalid settings: " + "; ".join(_explain(exc, source or values))) from None

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes``, validated again (``model_copy`` would not validate)."""
        return type(self).build({**dict(self), **changes})

    def target(self, signal: str) -> float:
        """The target of the signal named ``signal``, in its metric's unit."""
        (row,) = (row for row in SIGNALS if row.name == signal)
        return self.targets[row.target_variable]

    def refresh_preferences(self, **overrides: Any) -> Preferences:
        """A refresh's preferences: the template's defaults, with the operator's ``overrides``."""
        values: dict[str, Any] = {
            "min_healthy_percent": self.refresh_min_healthy_percent,
            **surge_values(self.refresh_max_surge),
            "warmup_seconds": self.refresh_warmup_seconds,
            "checkpoints": self.refresh_checkpoints,
            "checkpoint_delay_seconds": self.refresh_checkpoint_delay_seconds,
            "auto_rollback": self.refresh_auto_rollback,
            "alarm_names": self.refresh_alarm_names,
        }
        given = {k: v for k, v in overrides.items() if v is not None}
        if "max_surge" in given:
            values.update(surge_values(given.pop("max_surge")))
        values.update(given)
        return Preferences(**values)

    @property
    def max_instance_lifetime_seconds(self) -> float:
        return self.max_instance_lifetime_days * 86400

    @property
    def all_alarm_names(self) -> tuple[str, ...]:
        return self.scale_out_alarm_names + self.scale_in_alarm_names

    @field_validator("targets")
    @classmethod
    def _every_signal_has_a_target(cls, targets: Mapping[str, float]) -> Mapping[str, float]:
        problems = [f"{key} is required" for key in TARGET_VARIABLES if key not in targets]
        problems += [f"{key} is no signal's target" for key in sorted(set(targets) - set(TARGET_VARIABLES))]
        for row in SIGNALS:
            target = targets.get(row.target_variable)
            if target is None:
                continue
            if not (math.isfinite(target) and target > 0):
                problems.append(f"{row.target_variable} must be a finite number > 0, got {target}")
            elif isinstance(row.ceiling, float) and target >= SATURATED * row.ceiling:
                line = SATURATED * row.ceiling
                problems.append(f"{row.target_variable} must be below {line:g} (the saturation line), got {target:g}")
        if problems:
            raise ValueError("; ".join(dict.fromkeys(problems)))
        return targets

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        problems = []
        if not self.launch_template_version.isdigit():
            # Instances carry the number in their version tag; "$Latest" would never match it.
            problems.append(f"LAUNCH_TEMPLATE_VERSION must be a version number, got {self.launch_template_version!r}")
        if not self.subnet_ids:
            problems.append("SUBNET_IDS must name at least one subnet")
        if self.min_size < 0 or self.max_size < self.min_size:
            problems.append(f"need 0 <= MIN_SIZE ({self.min_size}) <= MAX_SIZE ({self.max_size})")
        if self.warm_pool_size < 0:
            problems.append("WARM_POOL_SIZE must be >= 0")
        if not 0 <= self.tolerance < 1:
            problems.append("TOLERANCE must be in [0, 1)")
        if not 0 <= self.scale_in_headroom < 1:
            problems.append("SCALE_IN_HEADROOM must be in [0, 1)")
        if not 0 <= self.min_step_fraction < 1:
            problems.append("MIN_STEP_FRACTION must be in [0, 1)")
        if not (math.isfinite(self.panic_threshold) and self.panic_threshold > 1):
            problems.append(f"PANIC_THRESHOLD must be a finite number > 1, got {self.panic_threshold}")
        for name in ("panic_window_seconds", "panic_stable_seconds", "backlog_drain_seconds"):
            if getattr(self, name) <= 0:
                problems.append(f"{name.upper()} must be > 0")
        for name in ("scale_out_follow_through_seconds", "reversal_window_seconds"):
            if getattr(self, name) < 0:
                problems.append(f"{name.upper()} must be >= 0")
        try:
            problems += [f"REFRESH_*: {p}" for p in self.refresh_preferences().problems()]
        except ValueError as exc:
            problems.append(f"REFRESH_MAX_SURGE: {exc}")
        if self.max_instance_lifetime_days < 0:
            problems.append("MAX_INSTANCE_LIFETIME_DAYS must be >= 0")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _explain(exc: ValidationError, source: Mapping[str, Any]) -> list[str]:
    """pydantic's errors in the environment's words: the variable, its value, what is wrong."""
    out = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        if not loc or (loc == ["targets"] and error["type"] == "value_error"):
            # Our validators' messages already name the variables.
            out.append(str(error["msg"]).removeprefix("Value error, "))
            continue
        key = loc[1] if loc[0] == "targets" and len(loc) > 1 else loc[0].upper()
        if error["type"] == "missing":
            out.append(f"{key} is required")
        elif error["type"] == "extra_forbidden":
            out.append(f"{loc[0]} is not a setting")
        else:
            raw = source.get(key, source.get(loc[0], error.get("input")))
            out.append(f"{key}={raw!r}: {error['msg']}")
    return out


ENVIRONMENT_VARIABLES = tuple(
    [name.upper() for name in Settings.model_fields if name != "targets"] + list(TARGET_VARIABLES)
)
"""Every variable the code may read; the template contract test checks them."""
REQUIRED_ENVIRONMENT_VARIABLES = tuple(
    [name.upper() for name, f in Settings.model_fields.items() if f.is_required() and name != "targets"]
    + list(TARGET_VARIABLES)
)
"""The variables without a default: the template sets every one of them, on every function."""
