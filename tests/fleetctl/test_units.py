"""In-process checks of the pieces the server tests cannot reach (access denied, parsing, help)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from autoscaler.model import Instance, Lifecycle, TargetHealth
from autoscaler.settings import Settings
from botocore.exceptions import ClientError

from fleetctl import views
from fleetctl.cli import build_parser
from fleetctl.context import Context
from fleetctl.errors import explain
from fleetctl.render import Renderer
from fleetctl.stack import Stack, StackError, function_environment
from tests.support.template_settings import template_environment

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def instance(lifecycle: Lifecycle, state: str = "running", health: TargetHealth = TargetHealth.UNUSED) -> Instance:
    return Instance("i-1", state, lifecycle, "subnet-1", "eu-west-1a", NOW - timedelta(minutes=5), False, health)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (instance(Lifecycle.SERVICE, health=TargetHealth.HEALTHY), "in service"),
        (instance(Lifecycle.SERVICE, health=TargetHealth.INITIAL), "booting"),
        (instance(Lifecycle.SERVICE, state="pending"), "booting"),
        (instance(Lifecycle.SERVICE, health=TargetHealth.UNHEALTHY), "unhealthy"),
        (instance(Lifecycle.DRAINING, health=TargetHealth.DRAINING), "draining"),
        (instance(Lifecycle.WARMING), "warming"),
        (instance(Lifecycle.POOL, state="stopped"), "pool"),
    ],
)
def test_lifecycle(subject, expected):
    assert views.lifecycle(subject) == expected


def test_parse_since():
    assert views.parse_since("90s", NOW) == NOW - timedelta(seconds=90)
    assert views.parse_since("1h", NOW) == NOW - timedelta(hours=1)
    assert views.parse_since("2d", NOW) == NOW - timedelta(days=2)
    assert views.parse_since("2026-01-01T10:00:00", NOW) == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert views.parse_since("2026-01-01T12:00:00+02:00", NOW) == datetime(2026, 1, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="--since"):
        views.parse_since("yesterday", NOW)


def test_explain_access_denied_and_credentials():
    ctx = Context("s")
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "DescribeStacks")
    assert explain(denied, ctx) == "access denied: DescribeStacks (AccessDeniedException): not allowed"
    ec2 = ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "DescribeInstances")
    assert (explain(ec2, ctx) or "").startswith("access denied: DescribeInstances")
    token = ClientError({"Error": {"Code": "ExpiredToken", "Message": "expired"}}, "DescribeStacks")
    assert (explain(token, ctx) or "").startswith("AWS rejected the credentials")
    assert explain(StackError("stack 'x' not found"), ctx) == "stack 'x' not found"
    assert explain(RuntimeError("bug"), ctx) is None  # unexpected: keeps its traceback


VARIABLES = {**template_environment(), "MIN_SIZE": "2", "MAX_SIZE": "6", "CPU_TARGET": "60"}


def test_stack_settings_are_the_settings_functions_own():
    """fleetctl builds Settings from the function's environment, as the function does."""
    outputs = {
        "ReconcileFunctionName": "f-reconcile",
        "ScaleOutAlarmNames": "f-cpu-high,f-requests-high",
        "ScaleInAlarmNames": "f-scale-in",
        "CpuLowAlarmName": "f-cpu-low",
    }
    stack = Stack("s", "CREATE_COMPLETE", outputs=outputs, parameters={})
    asked: list[str] = []

    class FakeLambda:
        def get_function_configuration(self, FunctionName: str) -> dict[str, object]:  # noqa: N803 - boto3's name
            asked.append(FunctionName)
            return {"Environment": {"Variables": VARIABLES}}

    settings = stack.settings(function_environment(FakeLambda(), stack))  # type: ignore[arg-type]
    assert asked == ["f-reconcile"]
    assert (settings.min_size, settings.max_size, settings.target("cpu")) == (2, 6, 60.0)
    assert settings == Settings.from_env(VARIABLES)
    assert stack.alarm_names() == ["f-cpu-high", "f-requests-high", "f-scale-in", "f-cpu-low"]
    with pytest.raises(StackError, match="does not describe a fleet: invalid settings: FLEET_NAME is required"):
        stack.settings({})
    with pytest.raises(StackError, match="has no output 'ReconcileFunctionName'"):
        function_environment(FakeLambda(), Stack("s", "CREATE_COMPLETE", {}, {}))  # type: ignore[arg-type]


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    for command in ("status", "alarms", "activities", "scale", "suspend", "resume", "pool", "ping"):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([command, "--help"])
        assert exit_info.value.code == 0
        assert "--endpoint-url" in capsys.readouterr().out


def test_common_options_after_the_command_win():
    args = build_parser().parse_args(["--stack", "a", "status", "--region", "eu-west-2"])
    assert (args.stack, args.region, args.output) == ("a", "eu-west-2", "table")
    assert build_parser().parse_args(["status", "--stack", "b"]).stack == "b"


def test_table_colour_only_when_asked():
    plain, coloured = io.StringIO(), io.StringIO()
    rows = [{"id": "i-1", "lifecycle": "in service"}]
    Renderer(plain, colour=False).table((("id", "ID"), ("lifecycle", "LIFECYCLE")), rows)
    Renderer(coloured, colour=True).table((("id", "ID"), ("lifecycle", "LIFECYCLE")), rows)
    assert "\033[" not in plain.getvalue() and "\033[32min service" in coloured.getvalue()
    assert plain.getvalue().splitlines()[1] == "i-1  in service"


def test_the_default_stack_is_the_one_sam_deploy_creates(monkeypatch):
    """README: `sam deploy`, then `fleetctl status`: both must name the same stack."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "samconfig.toml").read_text(encoding="utf-8"))
    monkeypatch.delenv("FLEETCTL_STACK", raising=False)
    monkeypatch.chdir(root)
    assert build_parser().parse_args(["status"]).stack == config["default"]["deploy"]["parameters"]["stack_name"]


def test_the_default_stack_follows_the_samconfig_of_the_current_directory(monkeypatch, tmp_path):
    (tmp_path / "samconfig.toml").write_text(
        'version = 0.1\n[default.deploy.parameters]\nstack_name = "my-fleet"\n', encoding="utf-8"
    )
    monkeypatch.delenv("FLEETCTL_STACK", raising=False)
    monkeypatch.chdir(tmp_path)
    assert build_parser().parse_args(["status"]).stack == "my-fleet"
    monkeypatch.setenv("FLEETCTL_STACK", "from-env")
    assert build_parser().parse_args(["status"]).stack == "from-env"
    assert build_parser().parse_args(["status", "--stack", "given"]).stack == "given"


def test_without_a_samconfig_the_stack_must_be_given(monkeypatch, tmp_path, capsys):
    from fleetctl import stack
    from fleetctl.cli import main

    monkeypatch.delenv("FLEETCTL_STACK", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stack, "PROJECT_DIRECTORY", tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["status"])
    assert exit_info.value.code == 2
    assert "--stack" in capsys.readouterr().err
