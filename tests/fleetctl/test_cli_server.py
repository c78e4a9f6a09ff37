"""The real ``fleetctl`` console script against a real moto_server process (see conftest)."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.fleetctl.conftest import COMMANDS, FLEETCTL, REGION, cli_env
from tests.helpers_worker import free_port

pytestmark = pytest.mark.server


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"rc={result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def failed(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout
    assert message in result.stderr


def test_scale_status_and_activities(make_stack):
    stack = make_stack()

    preview = ok(stack.run("scale", "--to", "2", "--dry-run"))
    assert "Dry run: would set desired capacity 1 -> 2" in preview
    assert "would launch:" in preview and "Nothing changed." in preview
    assert stack.instance_ids() == [] and stack.state_item() is None

    done = ok(stack.run("scale", "--to", "2"))
    assert "Setting desired capacity 1 -> 2" in done and "Done: desired capacity 1 -> 2" in done

    as_json, table = stack.run_many(("status", "-o", "json"), ("status",))
    status = json.loads(ok(as_json))
    assert status["desired"] == 2 and status["suspended"] is False
    assert status["last_decision"]["reason"] == "manual"
    assert status["last_decision"]["message"] == "operator asked for 2"
    assert status["totals"]["in service"] == 2 and status["totals"]["warming"] == 1 and status["totals"]["total"] == 3
    serving = [i for i in status["instances"] if i["lifecycle"] == "in service"]
    assert {i["az"] for i in serving} == {f"{REGION}a", f"{REGION}b"}  # spread over the subnets
    assert all(i["state"] == "running" and i["health"] == "healthy" for i in serving)
    text = ok(table)
    for header in ("ID", "AZ", "EC2 STATE", "LIFECYCLE", "TARGET HEALTH", "LAUNCHED", "UPTIME"):
        assert header in text
    assert "Desired:       2  (min 1, max 4)" in text
    assert "Scaling:       active" in text
    assert "manual: operator asked for 2" in text
    assert "Total: 3 instance(s) - 2 in service, 1 warming" in text
    assert "\033[" not in text  # piped: no colour

    clamped = ok(stack.run("scale", "--to", "99"))
    assert "(asked for 99, clamped to the maximum 4)" in clamped
    assert "Done: desired capacity 2 -> 4" in clamped

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")
    scale_in, history, none = stack.run_many(
        ("scale", "in", "--by", "3", "--dry-run", "-o", "json"),
        ("activities", "--since", "1h", "-o", "json"),
        ("activities", "--since", future),
    )
    preview = json.loads(ok(scale_in))
    assert preview["asked"] == 1 and preview["planned"]["desired"] == 1 and "drain" in preview["planned"]["plan"]
    activities = json.loads(ok(history))["activities"]
    assert [(a["from"], a["to"], a["cause"], a["status"]) for a in activities] == [
        (2, 4, "fleetctl", "Successful"),
        (1, 2, "fleetctl", "Successful"),
    ]
    assert len(activities[1]["instances"]) == 3  # two launched into service, one warming
    assert len(activities[0]["instances"]) == 2
    assert "(no scaling activities in that window)" in ok(none)
    assert len(stack.instance_ids()) == 5  # 4 in service + the warming one


def test_suspend_and_resume(make_stack):
    stack = make_stack()
    assert f"Automatic scaling of fleet {stack.fleet} suspended." in ok(stack.run("suspend"))
    assert stack.state_item()["suspended"] == {"BOOL": True}
    assert "Scaling:       SUSPENDED" in ok(stack.run("status"))
    resumed = stack.json("resume")
    assert resumed == {"fleet": stack.fleet, "suspended": False, "was_suspended": True}
    assert stack.state_item()["suspended"] == {"BOOL": False}


def test_pool_and_pool_fill(make_stack):
    stack = make_stack()
    empty = ok(stack.run("pool"))
    assert "Pool size: 1" in empty and "(pool empty)" in empty

    filled = stack.json("pool", "fill")
    assert filled["result"]["desired"] == 1  # MinSize: the fleet had no desired capacity yet
    pool = filled["pool"]
    assert pool["size"] == 1 and pool["warming"] == 1 and pool["ready"] == 0
    warming = [i["id"] for i in pool["instances"]]

    # The instance's user-data tags it ready; the next fill stops it into the pool.
    stack.mark_ready(warming)
    text = ok(stack.run("pool", "fill"))
    assert f"stopped: {warming[0]}" in text
    assert "Ready:     1 stopped and ready to start" in text
    assert "Warming:   0 installing" in text
    row = next(line for line in text.splitlines() if line.startswith(warming[0]))
    assert row.split()[2:4] == ["stopped", "pool"]


def test_alarms(make_stack, moto):
    stack = make_stack()
    cloudwatch = moto.client("cloudwatch")
    metric = {
        "Namespace": "Autoscaler",
        "MetricName": "CPUUtilization",
        "Dimensions": [{"Name": "Fleet", "Value": stack.fleet}],
        "Statistic": "Average",
    }
    cloudwatch.put_metric_alarm(
        AlarmName=f"{stack.fleet}-cpu-high",
        Period=10,
        EvaluationPeriods=6,
        DatapointsToAlarm=5,
        Threshold=70,
        ComparisonOperator="GreaterThanThreshold",
        **metric,
    )
    cloudwatch.put_metric_alarm(
        AlarmName=f"{stack.fleet}-cpu-low",
        Period=60,
        EvaluationPeriods=3,
        Threshold=40,
        ComparisonOperator="LessThanThreshold",
        **metric,
    )
    cloudwatch.put_metric_alarm(  # another fleet's alarm: not listed
        AlarmName="someone-else-cpu-high",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
        **metric,
    )
    cloudwatch.set_alarm_state(AlarmName=f"{stack.fleet}-cpu-high", StateValue="ALARM", StateReason="testing")

    as_json, table = stack.run_many(("alarms", "-o", "json"), ("alarms",))
    alarms = {a["name"]: a for a in json.loads(ok(as_json))["alarms"]}
    assert set(alarms) == {f"{stack.fleet}-cpu-high", f"{stack.fleet}-cpu-low"}
    high = alarms[f"{stack.fleet}-cpu-high"]
    assert high["state"] == "ALARM" and high["metric"] == "Autoscaler/CPUUtilization (Average)"
    assert high["threshold"] == "> 70" and high["period"] == 10 and high["datapoints"] == "5/6"
    assert high["changed"] is not None
    assert alarms[f"{stack.fleet}-cpu-low"]["datapoints"] == "3/3"

    for text in ("ALARM", "STATE", "METRIC / RULE", "THRESHOLD", "PERIOD", "M/N", "LAST CHANGE"):
        assert text in ok(table)
    assert "someone-else" not in ok(table)


def test_ping(make_stack):
    stack = make_stack()
    dead = make_stack(LoadBalancerUrl=f"http://127.0.0.1:{free_port()}")
    with ThreadPoolExecutor(max_workers=2) as pool:
        good = pool.submit(stack.run, "ping", "-n", "3", "--interval", "0", "-o", "json")
        bad = pool.submit(dead.run, "ping", "-n", "2", "--interval", "0", "--timeout", "2")
    report = json.loads(ok(good.result()))
    assert report["tries"] == 3 and report["ok"] == 3 and report["failures"] == 0
    assert report["url"].endswith("/ping") and report["p50_ms"] <= report["max_ms"]
    assert all(r["code"] == 200 and r["detail"] == "pong" for r in report["results"])

    result = bad.result()
    assert result.returncode == 1 and "0/2 ok" in result.stdout and "Traceback" not in result.stderr


def test_expected_failures_are_one_clear_line(make_stack, tmp_path):
    """Unknown stack, no credentials, unreachable endpoint: exit 1, one line, no traceback;
    and the stack name from FLEETCTL_STACK with the region from AWS_DEFAULT_REGION."""
    stack = make_stack()
    url = stack.moto.url
    no_credentials = {k: v for k, v in cli_env().items() if k not in {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}}
    no_credentials.update(
        {
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    cases = [
        (["status", "--stack", "no-such-stack", "--endpoint-url", url, "--region", REGION], cli_env()),
        (["status", "--stack", stack.name, "--endpoint-url", url, "--region", REGION], no_credentials),
        (["status", "--stack", stack.name, "--endpoint-url", "http://127.0.0.1:9", "--region", REGION], cli_env()),
        (
            ["status", "-o", "json", "--endpoint-url", url],
            cli_env(FLEETCTL_STACK=stack.name, AWS_DEFAULT_REGION=REGION),
        ),
    ]

    def run(case: tuple[list[str], dict[str, str]]) -> subprocess.CompletedProcess[str]:
        args, env = case
        return subprocess.run([str(FLEETCTL), *args], capture_output=True, text=True, env=env, timeout=60, check=False)

    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        unknown, anonymous, unreachable, from_env = pool.map(run, cases)
    failed(unknown, "fleetctl: error: stack 'no-such-stack' not found")
    failed(anonymous, "fleetctl: error: no AWS credentials found")
    failed(unreachable, "fleetctl: error: cannot reach the AWS endpoint at http://127.0.0.1:9")
    assert json.loads(ok(from_env))["fleet"] == stack.fleet


def test_help_and_usage():
    top = subprocess.run([str(FLEETCTL), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert top.returncode == 0
    for command in COMMANDS:
        assert command in top.stdout
    usage = subprocess.run([str(FLEETCTL), "scale"], capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == 2 and "give either --to N, or out / in" in usage.stderr
