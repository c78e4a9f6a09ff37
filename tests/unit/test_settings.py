"""Settings.from_env: typed, validated, and loud about every bad variable at once."""

from __future__ import annotations

import pytest
from autoscaler import settings as settings_module
from autoscaler import signals
from autoscaler.settings import ENVIRONMENT_VARIABLES, REQUIRED_ENVIRONMENT_VARIABLES, Settings, SettingsError
from autoscaler.signals import TARGET_VARIABLES, Signal, host_metric, signal_table

from tests.support.template_settings import template_environment, template_settings

# What a deployed stack provides (resource names and ids)...
IDENTITY = {
    "FLEET_NAME": "demo-fleet",
    "TABLE_NAME": "demo-fleet-state",
    "LAUNCH_TEMPLATE_ID": "lt-0123456789abcdef0",
    "SUBNET_IDS": "subnet-a,subnet-b",
    "TARGET_GROUP_ARN": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/demo-fleet/0123456789abcdef",
    "TARGET_GROUP_DIMENSION": "targetgroup/demo-fleet/0123456789abcdef",
    "LOAD_BALANCER_DIMENSION": "app/demo-fleet/0123456789abcdef",
}
# ...and every tunable the template sets, at its default: Settings has no fallback of its own for
# them, and a new one (a signal's target) needs no line here.
TEMPLATE = template_environment()
REQUIRED = {**{k: TEMPLATE[k] for k in REQUIRED_ENVIRONMENT_VARIABLES if k in TEMPLATE}, **IDENTITY}


def env(**overrides: str) -> dict[str, str]:
    values = dict(REQUIRED)
    values.update(overrides)
    return values


def test_minimal_environment_uses_defaults():
    settings = Settings.from_env(env())
    assert settings.fleet_name == "demo-fleet"
    assert settings.subnet_ids == ("subnet-a", "subnet-b")
    sizes = (settings.min_size, settings.max_size, settings.warm_pool_size)
    assert sizes == (int(TEMPLATE["MIN_SIZE"]), int(TEMPLATE["MAX_SIZE"]), int(TEMPLATE["WARM_POOL_SIZE"]))
    assert settings.target("cpu") == float(TEMPLATE["CPU_TARGET"])
    assert settings.health_grace_seconds == 300
    assert settings.launch_template_version == TEMPLATE["LAUNCH_TEMPLATE_VERSION"]
    assert settings.suspended_by_default is False


def test_required_list_matches_the_contract():
    required = {name.upper() for name, f in Settings.model_fields.items() if f.is_required() and name != "targets"}
    assert required | set(TARGET_VARIABLES) == set(REQUIRED)
    assert set(REQUIRED_ENVIRONMENT_VARIABLES) == set(REQUIRED)


def test_every_missing_required_variable_is_named():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({})
    for key in REQUIRED:
        assert f"{key} is required" in str(caught.value)


@pytest.mark.parametrize("key", sorted(REQUIRED))
def test_one_missing_required_variable(key):
    values = env()
    del values[key]
    with pytest.raises(SettingsError, match=f"{key} is required"):
        Settings.from_env(values)


LISTS = {"SUBNET_IDS", "SCALE_OUT_ALARM_NAMES", "SCALE_IN_ALARM_NAMES", "REFRESH_ALARM_NAMES", "REFRESH_CHECKPOINTS"}


@pytest.mark.parametrize("key", sorted(set(REQUIRED) - LISTS))
def test_empty_required_variable_counts_as_missing(key):
    with pytest.raises(SettingsError, match=f"{key} is required"):
        Settings.from_env(env(**{key: ""}))


def test_an_empty_list_variable_is_a_list_of_nothing():
    settings = Settings.from_env(env(SCALE_OUT_ALARM_NAMES="", SCALE_IN_ALARM_NAMES=" "))
    assert settings.all_alarm_names == ()
    with pytest.raises(SettingsError, match="SUBNET_IDS must name at least one subnet"):
        Settings.from_env(env(SUBNET_IDS=""))


def test_empty_optional_variable_keeps_the_default():
    assert Settings.from_env(env(HEALTH_GRACE_SECONDS="")).health_grace_seconds == 300


def test_the_template_is_the_only_source_of_the_defaults_it_sets():
    """A variable the template sets has no second default in code that could drift from it, and a
    field with a default in code is one the template leaves alone."""
    deployed = set(TEMPLATE)  # the reconcile function's environment, every parameter at its default
    defaulted = {name.upper() for name, f in Settings.model_fields.items() if not f.is_required()}
    assert not defaulted & deployed
    assert set(REQUIRED_ENVIRONMENT_VARIABLES) <= deployed


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("MIN_SIZE", "one"),
        ("MAX_SIZE", "2.5"),
        ("WARM_POOL_SIZE", "1e3"),
        ("HEALTH_GRACE_SECONDS", "5m"),
        ("CPU_TARGET", "seventy"),
        ("TOLERANCE", "10%"),
        ("SUSPENDED_BY_DEFAULT", "maybe"),
    ],
)
def test_bad_value_names_the_variable(key, raw):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env(**{key: raw}))
    assert f"{key}={raw!r}" in str(caught.value)


def test_all_conversion_errors_are_reported_together():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MIN_SIZE": "x", "MAX_SIZE": "y"})
    message = str(caught.value)
    assert "MIN_SIZE='x'" in message
    assert "MAX_SIZE='y'" in message
    assert "FLEET_NAME is required" in message


def test_types_are_converted():
    settings = Settings.from_env(
        env(
            MIN_SIZE=" 2 ",
            MAX_SIZE="8",
            CPU_TARGET="65.5",
            LEASE_WAIT_SECONDS="2.5",
            SCALE_IN_STABILIZATION_SECONDS="300",
            SUSPENDED_BY_DEFAULT="Yes",
        )
    )
    assert (settings.min_size, settings.max_size) == (2, 8)
    assert settings.target("cpu") == 65.5
    assert settings.lease_wait_seconds == 2.5
    assert settings.scale_in_stabilization_seconds == 300
    assert settings.suspended_by_default is True


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("true", True), ("FALSE", False), ("no", False), ("0", False)]
)
def test_booleans(raw, expected):
    assert Settings.from_env(env(SUSPENDED_BY_DEFAULT=raw)).suspended_by_default is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("fleet-cpu-high", ("fleet-cpu-high",)),
        ("fleet-cpu-high,fleet-requests-high", ("fleet-cpu-high", "fleet-requests-high")),
        (" fleet-cpu-high , fleet-requests-high ,", ("fleet-cpu-high", "fleet-requests-high")),
        (",,", ()),
    ],
    ids=["one", "two", "spaces-and-trailing-comma", "only-commas"],
)
def test_lists_split_on_commas(raw, expected):
    settings = Settings.from_env(env(SCALE_OUT_ALARM_NAMES=raw, SCALE_IN_ALARM_NAMES="fleet-scale-in"))
    assert settings.scale_out_alarm_names == expected
    assert settings.all_alarm_names == (*expected, "fleet-scale-in")


def test_subnet_list():
    assert Settings.from_env(env(SUBNET_IDS="subnet-1, subnet-2,subnet-3")).subnet_ids == (
        "subnet-1",
        "subnet-2",
        "subnet-3",
    )


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"MIN_SIZE": "5", "MAX_SIZE": "4"}, "MIN_SIZE (5) <= MAX_SIZE (4)"),
        ({"MIN_SIZE": "-1"}, "MIN_SIZE (-1)"),
        ({"TOLERANCE": "1"}, "TOLERANCE"),
        ({"TOLERANCE": "-0.1"}, "TOLERANCE"),
        ({"SCALE_IN_HEADROOM": "1"}, "SCALE_IN_HEADROOM"),
        ({"SUBNET_IDS": ","}, "SUBNET_IDS"),
        ({"WARM_POOL_SIZE": "-1"}, "WARM_POOL_SIZE"),
        ({"CPU_TARGET": "0"}, "CPU_TARGET"),
        ({"REQUESTS_PER_TARGET_TARGET": "-5"}, "REQUESTS_PER_TARGET_TARGET"),
        ({"PANIC_THRESHOLD": "1"}, "PANIC_THRESHOLD must be a finite number > 1"),
        ({"PANIC_WINDOW_SECONDS": "0"}, "PANIC_WINDOW_SECONDS must be > 0"),
        ({"BACKLOG_DRAIN_SECONDS": "-1"}, "BACKLOG_DRAIN_SECONDS must be > 0"),
        ({"SCALE_OUT_FOLLOW_THROUGH_SECONDS": "-1"}, "SCALE_OUT_FOLLOW_THROUGH_SECONDS must be >= 0"),
        ({"REVERSAL_WINDOW_SECONDS": "-1"}, "REVERSAL_WINDOW_SECONDS must be >= 0"),
    ],
    ids=["min-above-max", "negative-min", "tolerance-one", "negative-tolerance", "headroom-one", "no-subnets",
         "negative-pool",
         "zero-cpu-target", "negative-requests-target", "panic-threshold-one", "no-panic-window",
         "negative-drain", "negative-follow-through", "negative-reversal-window"],
)  # fmt: skip
def test_validation_errors(overrides, fragment):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env(**overrides))
    assert fragment in str(caught.value)


def test_all_validation_problems_are_reported_together():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env(MIN_SIZE="3", MAX_SIZE="2", TOLERANCE="2", SUBNET_IDS=" , "))
    message = str(caught.value)
    assert "MAX_SIZE" in message
    assert "TOLERANCE" in message
    assert "SUBNET_IDS" in message


@pytest.mark.parametrize(("min_size", "max_size"), [("0", "0"), ("0", "5"), ("3", "3")])
def test_valid_bounds(min_size, max_size):
    settings = Settings.from_env(env(MIN_SIZE=min_size, MAX_SIZE=max_size))
    assert (settings.min_size, settings.max_size) == (int(min_size), int(max_size))


def test_tolerance_zero_is_valid():
    assert Settings.from_env(env(TOLERANCE="0")).tolerance == 0.0


def test_environment_variables_cover_every_field():
    names = [name.upper() for name in Settings.model_fields if name != "targets"] + list(TARGET_VARIABLES)
    assert list(ENVIRONMENT_VARIABLES) == names
    assert len(set(ENVIRONMENT_VARIABLES)) == len(ENVIRONMENT_VARIABLES)
    assert set(REQUIRED) <= set(ENVIRONMENT_VARIABLES)


def test_every_environment_variable_is_read():
    """Setting each variable to a valid, non-default value changes the corresponding field."""
    values = env(
        FLEET_NAME="other-fleet",
        TABLE_NAME="other-table",
        LAUNCH_TEMPLATE_ID="lt-1",
        SUBNET_IDS="subnet-c",
        TARGET_GROUP_ARN="arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/other/1",
        TARGET_GROUP_DIMENSION="targetgroup/other/1",
        MIN_SIZE="2",
        MAX_SIZE="7",
        WARM_POOL_SIZE="3",
        MAX_PREPARED_CAPACITY="5",
        LOAD_BALANCER_DIMENSION="app/lb/1",
        REQUEST_METRIC_NAME="Rate",
        LAUNCH_TEMPLATE_VERSION="4",
        CPU_TARGET="60",
        REQUESTS_PER_TARGET_TARGET="100",
        TOLERANCE="0.2",
        SCALE_IN_HEADROOM="0.2",
        MIN_STEP_FRACTION="0.2",
        SCALE_IN_STABILIZATION_SECONDS="301",
        SCALE_OUT_FOLLOW_THROUGH_SECONDS="61",
        REVERSAL_WINDOW_SECONDS="181",
        METRIC_WINDOW_SECONDS="61",
        SCALE_OUT_WINDOW_SECONDS="31",
        PANIC_THRESHOLD="3",
        PANIC_WINDOW_SECONDS="30",
        PANIC_STABLE_SECONDS="61",
        BACKLOG_DRAIN_SECONDS="31",
        CPU_METRIC_NAMESPACE="Custom",
        CPU_METRIC_NAME="Cpu",
        CPU_METRIC_PERIOD_SECONDS="11",
        SCALE_OUT_ALARM_NAMES="a",
        SCALE_IN_ALARM_NAMES="b",
        REFRESH_MIN_HEALTHY_PERCENT="90",
        REFRESH_MAX_SURGE="2",
        REFRESH_WARMUP_SECONDS="61",
        REFRESH_CHECKPOINTS="50",
        REFRESH_CHECKPOINT_DELAY_SECONDS="61",
        REFRESH_AUTO_ROLLBACK="false",
        REFRESH_ALARM_NAMES="c",
        MAX_INSTANCE_LIFETIME_DAYS="7",
        HEALTH_GRACE_SECONDS="301",
        WARMUP_TIMEOUT_SECONDS="901",
        DRAIN_TIMEOUT_SECONDS="331",
        LEASE_SECONDS="61",
        LEASE_WAIT_SECONDS="21",
        RUNNING_WAIT_SECONDS="61",
        HISTORY_TTL_DAYS="31",
        IDEMPOTENCY_TTL_SECONDS="3601",
        SUSPENDED_BY_DEFAULT="true",
    )
    assert set(values) == set(ENVIRONMENT_VARIABLES)
    defaults = Settings.from_env(env())
    settings = Settings.from_env(values)
    for name in Settings.model_fields:
        assert getattr(settings, name) != getattr(defaults, name), name


def test_os_environ_is_the_default_source(monkeypatch):
    for key, value in env(MAX_SIZE="6").items():
        monkeypatch.setenv(key, value)
    assert Settings.from_env().max_size == 6


def test_cpu_target_must_stay_below_the_saturation_line():
    with pytest.raises(SettingsError, match="CPU_TARGET must be below 95"):
        Settings.from_env(env(CPU_TARGET="96"))


@pytest.mark.parametrize("raw", ["nan", "inf"])
def test_non_finite_targets_are_rejected(raw):
    with pytest.raises(SettingsError, match="CPU_TARGET"):
        Settings.from_env(env(CPU_TARGET=raw))


def test_a_new_row_in_the_signal_table_is_a_setting_read_and_a_signal_sized(monkeypatch):
    """The table is the one place a signal is declared: its target variable is required, read,
    validated and sized with, without a field of its own in Settings."""
    row = Signal("queue", "QUEUE_TARGET", host_metric(lambda s: "QueueLength"), ceiling=None)
    table = (*signals.SIGNALS, row)
    variables = (*TARGET_VARIABLES, "QUEUE_TARGET")
    for module in (signals, settings_module):
        monkeypatch.setattr(module, "SIGNALS", table)
        monkeypatch.setattr(module, "TARGET_VARIABLES", variables)
    with pytest.raises(SettingsError, match="QUEUE_TARGET is required"):
        Settings.from_env(env())
    with pytest.raises(SettingsError, match="QUEUE_TARGET must be a finite number > 0"):
        Settings.from_env(env(QUEUE_TARGET="0"))
    with pytest.raises(SettingsError, match="QUEUE_TARGET='many'"):
        Settings.from_env(env(QUEUE_TARGET="many"))
    settings = Settings.from_env(env(QUEUE_TARGET="4"))
    assert settings.target("queue") == 4.0
    (spec,) = (spec for spec in signal_table(settings) if spec.name == "queue")
    assert (spec.target, spec.query.metric, spec.query.per_instance) == (4.0, "QueueLength", True)
    assert spec.window_seconds == settings.metric_window_seconds


def test_a_target_no_signal_reads_is_refused():
    with pytest.raises(SettingsError, match="QUEUE_TARGET is no signal's target"):
        targets = {**dict.fromkeys(TARGET_VARIABLES, 1.0), "QUEUE_TARGET": 2.0}
        Settings.build({**dict(Settings.from_env(env())), "targets": targets})


def test_replace_validates_again():
    settings = Settings.from_env(env())
    assert settings.replace(max_size=9).max_size == 9
    with pytest.raises(SettingsError, match="MIN_SIZE"):
        settings.replace(min_size=10, max_size=9)
    with pytest.raises(SettingsError, match="nope is not a setting"):
        settings.replace(nope=1)


def test_the_runtime_builds_its_policy_once_per_settings_and_follows_a_replacement():
    from dataclasses import replace as dc_replace

    from autoscaler.runtime import Runtime

    runtime = Runtime(settings=template_settings(), clients=None)  # type: ignore[arg-type]
    first = runtime.scaling_policy()
    assert runtime.scaling_policy() is first
    changed = dc_replace(runtime, settings=template_settings(min_size=2))
    assert changed.scaling_policy().min_size == 2 and runtime.scaling_policy() is first


def test_a_malformed_max_surge_is_named():
    values = dict(template_environment(), REFRESH_MAX_SURGE="lots")
    with pytest.raises(SettingsError, match="REFRESH_MAX_SURGE: max surge must be a count"):
        Settings.from_env(values)
    quarter = Settings.from_env(dict(template_environment(), REFRESH_MAX_SURGE="25%")).refresh_preferences()
    assert (quarter.max_surge_percent, quarter.surge(8)) == (25, 2)
