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
from tests.fleetctl.conftest import COMMANDS
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
    for command in COMMANDS:
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


# --- fleetctl refresh ---------------------------------------------------------------------------
def test_refresh_actions_have_help_and_parse_their_options(capsys):
    parser = build_parser()
    for action in ("start", "status", "cancel", "rollback"):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(["refresh", action, "--help"])
        assert exit_info.value.code == 0
        assert "--endpoint-url" in capsys.readouterr().out
    preferences = ["--min-healthy", "90", "--max-surge", "2", "--warmup", "30", "--checkpoints", "20, 50,100"]
    args = parser.parse_args(
        ["refresh", "start", *preferences, "--checkpoint-delay", "0", "--no-skip-matching", "--dry-run"]
    )
    assert args.run == "refresh:start"
    assert (args.min_healthy, args.max_surge, args.warmup, args.checkpoints) == (90, "2", 30, (20, 50, 100))
    assert parser.parse_args(["refresh", "start", "--max-surge", "25%"]).max_surge == "25%"
    assert (args.checkpoint_delay, args.skip_matching, args.dry_run) == (0, False, True)
    defaults = parser.parse_args(["refresh", "start"])
    assert (defaults.min_healthy, defaults.checkpoints, defaults.skip_matching) == (None, None, None)
    waiting = parser.parse_args(["refresh", "status", "--wait"])
    assert (waiting.run, waiting.wait, waiting.timeout, waiting.interval) == ("refresh:status", True, 3600, 15.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--checkpoints", "50,abc"], "argument --checkpoints: 'abc' in '50,abc' is not a whole percentage in 1-100"),
        (["--checkpoints", "0,50"], "'0' in '0,50' is not a whole percentage in 1-100"),
        (["--checkpoints", "50,101"], "'101' in '50,101' is not a whole percentage in 1-100"),
        (["--checkpoints", "100,50"], "'100,50': checkpoints must increase, e.g. 50,100"),
        (["--checkpoints", "50,50"], "'50,50': checkpoints must increase"),
        (["--min-healthy", "150"], "argument --min-healthy: 150 is not a percentage (0-100)"),
        (["--min-healthy", "-1"], "argument --min-healthy: -1 is not a percentage (0-100)"),
        (
            ["--max-surge", "-1"],
            "argument --max-surge: max surge must be a count (1) or a percentage of desired (25%), got '-1'",
        ),
        (["--max-surge", "lots"], "got 'lots'"),
        (["--warmup", "soon"], "argument --warmup: invalid _non_negative value: 'soon'"),
    ],
)
def test_refresh_start_rejects_bad_options(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["refresh", "start", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_refresh_status_rejects_a_bad_interval(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["refresh", "status", "--wait", "--interval", "0"])
    assert "argument --interval: 0 is not > 0" in capsys.readouterr().err


def test_a_refused_refresh_is_one_line_and_exit_2():
    from autoscaler.errors import LeaseBusyError, RefreshError

    from fleetctl.errors import refused

    refusal = RefreshError("refresh-1 is InProgress; cancel it (fleetctl refresh cancel) before starting another")
    assert explain(refusal, Context("s")) == str(refusal)
    assert refused(refusal) and not refused(LeaseBusyError("busy"))


def refresh_json(status: str = "InProgress", **changes: object) -> dict:
    body = {
        "refresh_id": "refresh-ab12cd34",
        "status": status,
        "target_version": "3",
        "previous_version": "2",
        "started_at": (NOW - timedelta(minutes=10)).isoformat(),
        "updated_at": (NOW - timedelta(minutes=1)).isoformat(),
        "cause": "deploy",
        "preferences": {
            "min_healthy_percent": 100,
            "max_surge": 1,
            "warmup_seconds": 60,
            "checkpoints": [],
            "checkpoint_delay_seconds": 3600,
            "auto_rollback": True,
            "alarm_names": [],
            "skip_matching": True,
        },
        "rejected_version": None,
        "checkpoints_passed": 0,
        "paused_until": None,
        "to_replace": 3,
        "failed_replacements": [],
        "status_reason": "",
        "originals": [],
    }
    body.update(changes)
    return body


PROGRESS = {
    "target_version": "3",
    "new_in_service": 1,
    "old_in_service": 1,
    "new_pool": 1,
    "old_pool": 0,
    "remaining": 1,
    "percent": 66,
}


def report_of(refresh: dict | None, configured: str = "3", pending: bool = False) -> dict:
    launching = refresh["target_version"] if refresh else configured
    return {
        "configured_version": configured,
        "launch_version": launching,
        "deploy_pending": pending,
        "refresh": refresh,
        "progress": PROGRESS,
    }


@pytest.mark.parametrize(
    ("report", "verdict"),
    [
        (report_of(refresh_json("InProgress")), None),
        (report_of(refresh_json("Paused")), None),
        (report_of(refresh_json("RollingBack")), None),
        (report_of(refresh_json("Successful")), "Successful"),
        (report_of(refresh_json("Successful"), configured="4", pending=True), None),  # the next one starts soon
        (report_of(refresh_json("RolledBack")), "RolledBack"),
        (report_of(refresh_json("Cancelled")), "Cancelled"),
        (report_of(refresh_json("Failed")), "Failed"),
        (report_of(None), "nothing to replace"),
        (report_of(None, pending=True), None),
    ],
)
def test_what_refresh_status_wait_waits_for(report, verdict):
    assert views.wait_verdict(report) == verdict


def test_status_shows_a_refresh_while_it_runs_and_for_a_day_after():
    assert views.refresh_recent(report_of(refresh_json("InProgress", updated_at="2020-01-01T00:00:00+00:00")), NOW)
    assert views.refresh_recent(report_of(refresh_json("Successful")), NOW)
    old = (NOW - timedelta(hours=25)).isoformat()
    assert not views.refresh_recent(report_of(refresh_json("Successful", updated_at=old)), NOW)
    assert not views.refresh_recent(report_of(None), NOW)


def test_refresh_lines():
    from fleetctl import texts

    running = report_of(refresh_json("Paused", paused_until="2026-01-01T13:00:00+00:00"))
    assert texts.refresh_line(running) == (
        "refresh-ab12cd34 Paused, version 2 -> 3 (paused until 2026-01-01T13:00:00+00:00): "
        "in service 1 new / 1 old, pool 1 new / 0 old; 66 % on version 3, 1 to replace"
    )
    assert texts.version_line(running) == "3"
    assert texts.version_line(report_of(None, pending=True)) == (
        "3 (the next reconcile, within a minute, starts a refresh to version 3)"
    )
    deployed = report_of(refresh_json("Successful"), configured="4", pending=True)
    assert texts.version_line(deployed).startswith("3, the stack configures 4 (the next reconcile")
    pinned = report_of(refresh_json("RolledBack", target_version="2", previous_version="3", rejected_version="3"))
    assert texts.version_line(pinned).startswith(
        "2 (pinned back by refresh-ab12cd34, RolledBack; the stack configures 3"
    )
    first = refresh_json(previous_version=None, checkpoints_passed=1)
    first["preferences"] = {**first["preferences"], "checkpoints": [50, 100], "alarm_names": ["fleet-5xx"]}
    fields = dict(texts.refresh_fields(report_of(first)))
    assert fields["Versions"] == "- -> 3"
    assert fields["Checkpoints"] == "50 %, 100 % (pause 3600 s each); 1 passed"
    assert fields["Preferences"] == (
        "min healthy 100 %, max surge 1, warm-up 60 s, skip matching, auto rollback, alarms fleet-5xx"
    )
    quarter = {**first["preferences"], "max_surge": 0, "max_surge_percent": 25}
    assert texts.preferences_line(quarter).startswith("min healthy 100 %, max surge 25 %, warm-up 60 s")
    failed = dict(texts.refresh_fields(pinned | {"refresh": {**pinned["refresh"], "failed_replacements": ["i-9"]}}))
    assert failed["Rejected"] == "version 3 (rolled back; a deploy of it starts no refresh)"
    assert failed["Failed"] == "i-9"
    none = dict(texts.refresh_fields(report_of(None)))
    assert none["Refresh"] == "none yet" and "Status" not in none


def test_activities_say_which_instances_a_refresh_replaced():
    replaced = {
        "retired": ["i-1"],
        "discarded": ["i-2", "i-3"],
        "refresh": "refresh-ab12cd34",
        "target_version": "3",
        "versions": {"i-1": "2", "i-2": "2", "i-3": None},
    }
    step = views.activity_row(
        {"reason": "refresh", "details": {"message": "no signal had data in its window", "replaced": replaced}}
    )
    assert step["message"] == "retired i-1 (v2); discarded i-2 (v2), i-3 (no version); for version 3 (refresh-ab12cd34)"
    assert step["replaced"] == replaced
    scaled = views.activity_row({"reason": "scale-in", "details": {"message": "cpu 20 % < 40 %", "replaced": replaced}})
    assert scaled["message"].startswith("cpu 20 % < 40 %; retired i-1 (v2)")
    lifetime = {**replaced, "retired": [], "refresh": None}
    assert (
        views.replacement_summary(lifetime)
        == "discarded i-2 (v2), i-3 (no version); past the maximum instance lifetime"
    )
    started = views.activity_row(
        {"reason": "refresh-started", "details": {"message": "refresh-ab12cd34 (deploy): ..."}}
    )
    assert started["message"] == "refresh-ab12cd34 (deploy): ..." and started["replaced"] is None


def test_instance_rows_carry_the_launch_template_version():
    from dataclasses import replace

    row = views.instance_row(replace(instance(Lifecycle.SERVICE), version="7"), NOW)
    assert row["version"] == "7"
    assert views.instance_row(instance(Lifecycle.POOL, state="stopped"), NOW)["version"] is None
