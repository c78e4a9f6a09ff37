"""`fleetctl refresh` (and the refresh in `status` and `activities`), the real console script
against a real moto_server (see conftest).

Between two commands the tests do what the deployed fleet does by itself: the reconcile
function runs (its entry point, in this process, with the stack's settings) and the instances'
user-data tags them ready.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.fleetctl.conftest import FLEETCTL, REGION, FleetStack, cli_env
from tests.fleetctl.test_cli_server import ok

pytestmark = pytest.mark.server


def refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    """A refusal: exit 2, one line on stderr, no traceback."""
    assert result.returncode == 2, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout
    assert message in result.stderr, result.stderr


def one_line_refusal(result: subprocess.CompletedProcess[str], message: str) -> None:
    refused(result, message)
    assert result.stderr.strip() == f"fleetctl: error: {message}" or len(result.stderr.strip().splitlines()) == 1


def settle(stack: FleetStack, runs: int = 2) -> None:
    for _ in range(runs):
        stack.installed()
        stack.reconcile()


def fleet_of(stack: FleetStack, desired: int) -> None:
    """``desired`` instances in service and a full warm pool (one), every one of version 1."""
    ok(stack.run("scale", "--to", str(desired)))
    settle(stack)
    assert stack.versions() == {"service:v1": desired, "pool:v1": 1}


def wait_while_driving(stack: FleetStack, *args: str, limit: float = 90.0) -> subprocess.CompletedProcess[str]:
    """`fleetctl refresh status --wait ...` in the background while the fleet runs: a reconcile
    and the instances' ready tags every half second, until the command returns."""
    command = [
        str(FLEETCTL),
        "refresh",
        "status",
        "--wait",
        "--interval",
        "0.3",
        *args,
        "--stack",
        stack.name,
        "--endpoint-url",
        stack.moto.url,
        "--region",
        REGION,
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    deadline = time.monotonic() + limit
    try:
        while process.poll() is None and time.monotonic() < deadline:
            settle(stack, runs=1)
            time.sleep(0.5)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def test_a_deploy_refreshed_by_fleetctl_from_dry_run_to_successful(make_stack):
    stack = make_stack()
    fleet_of(stack, 2)
    before = stack.json("refresh", "status")
    assert before["refresh"] is None and before["deploy_pending"] is False
    assert before["configured_version"] == "1" and before["progress"]["new_in_service"] == 2

    version = stack.deploy()
    pending = ok(stack.run("status"))
    assert f"the next reconcile, within a minute, starts a refresh to version {version}" in pending

    dry_text, dry_json = stack.run_many(
        ("refresh", "start", "--warmup", "0", "--dry-run"),
        ("refresh", "start", "--warmup", "0", "--dry-run", "-o", "json"),
    )
    text = ok(dry_text)
    assert f"Dry run: would start a refresh (fleetctl): version 1 -> {version}, 3 instance(s) to replace" in text
    assert "min healthy 100 %, max surge 1, warm-up 0 s" in text
    assert "Would replace 3 instance(s):" in text and "VERSION" in text
    assert "would launch for the warm pool: 1 in subnet-" in text  # the pool first
    assert text.rstrip().endswith("Nothing changed.")
    planned = json.loads(ok(dry_json))
    assert sorted(r["id"] for r in planned["to_replace"]) == sorted(stack.instance_ids())
    assert {r["version"] for r in planned["to_replace"]} == {"1"}
    assert "refresh" not in stack.state_item() or stack.state_item()["refresh"] == {"S": ""}
    assert stack.versions() == {"service:v1": 2, "pool:v1": 1}

    started = ok(stack.run("refresh", "start", "--warmup", "0"))
    assert f"(fleetctl): version 1 -> {version}, 3 instance(s) to replace" in started
    assert "First step, taken now:" in started
    assert "launch for the warm pool: 1 in subnet-" in started and "warming up for the pool: i-" in started
    assert "InProgress" in started
    assert stack.versions() == {"service:v1": 2, "pool:v1": 1, f"warming:v{version}": 1}

    again = stack.run("refresh", "start")
    one_line_refusal(again, "is InProgress; cancel it (fleetctl refresh cancel) before starting another")
    assert "nothing was changed" in again.stderr

    status = ok(stack.run("status"))
    assert "VERSION" in status.splitlines()[status.splitlines().index("") + 1]
    assert "Refresh:       refresh-" in status and f"InProgress, version 1 -> {version}" in status
    assert "in service 0 new / 2 old, pool 0 new / 1 old" in status

    waited = wait_while_driving(stack, "--timeout", "80")
    assert waited.returncode == 0, f"{waited.stdout}\n{waited.stderr}"
    assert "Refresh ended: Successful." in waited.stdout
    assert f"in service 2 new / 0 old, pool 1 new / 0 old; 100 % on version {version}, 0 to replace" in waited.stdout
    assert "InProgress" in waited.stdout  # the progress lines printed while waiting
    assert stack.versions() == {f"service:v{version}": 2, f"pool:v{version}": 1}

    history, as_json, after = stack.run_many(("history",), ("activities", "-o", "json"), ("status", "-o", "json"))
    text = ok(history)
    for reason in ("refresh-started", "refresh-succeeded"):
        assert reason in text
    assert f"for version {version} (refresh-" in text and "(v1)" in text
    rows = json.loads(ok(as_json))["activities"]
    replaced = [r["replaced"] for r in rows if r["replaced"]]
    retired = {i for r in replaced for i in r["retired"]}
    discarded = {i for r in replaced for i in r["discarded"]}
    old = {r["id"]: r["lifecycle"] for r in planned["to_replace"]}
    assert retired == {i for i, lifecycle in old.items() if lifecycle == "in service"}
    assert {i for i, lifecycle in old.items() if lifecycle == "pool"} <= discarded
    assert {v for r in replaced for v in r["versions"].values()} == {"1"}
    view = json.loads(ok(after))
    assert view["refresh"]["refresh"]["status"] == "Successful"
    assert {i["version"] for i in view["instances"]} == {version}


def test_cancel_rollback_and_refusals(make_stack):
    stack = make_stack()
    fleet_of(stack, 1)
    nothing, no_previous, inconsistent, bad_checkpoints, too_healthy = stack.run_many(
        ("refresh", "cancel"),
        ("refresh", "rollback"),
        ("refresh", "start", "--min-healthy", "100", "--max-surge", "0"),
        ("refresh", "start", "--checkpoints", "50,abc"),
        ("refresh", "start", "--min-healthy", "150"),
    )
    one_line_refusal(nothing, "no refresh in progress (this fleet has had no refresh); nothing was changed")
    one_line_refusal(no_previous, "nothing to roll back to (this fleet has had no refresh); nothing was changed")
    one_line_refusal(inconsistent, "max surge 0 with min healthy 100 % can replace nothing")
    refused(bad_checkpoints, "argument --checkpoints: 'abc' in '50,abc' is not a whole percentage in 1-100")
    refused(too_healthy, "argument --min-healthy: 150 is not a percentage (0-100)")
    assert stack.versions() == {"service:v1": 1, "pool:v1": 1}

    version = stack.deploy()
    started = stack.json("refresh", "start", "--warmup", "0", "--checkpoints", "50", "--checkpoint-delay", "600")
    assert started["started"]["refresh_event"] == "refresh-started" and started["started"]["result"]["warming"]
    assert started["status"]["refresh"]["preferences"]["checkpoints"] == [50]
    assert started["status"]["progress"]["target_version"] == version
    timed_out = stack.run("refresh", "status", "--wait", "--timeout", "1", "--interval", "0.3")
    assert timed_out.returncode == 3, timed_out.stdout + timed_out.stderr
    assert "Timed out after 1 s; the refresh goes on" in timed_out.stdout
    assert "Checkpoints:   50 % (pause 600 s each); 0 passed" in timed_out.stdout

    cancelled = ok(stack.run("refresh", "cancel"))
    assert "Cancelled refresh-" in cancelled and f"(version 1 -> {version}" in cancelled
    assert "instances already replaced stay" in cancelled
    assert "Now: refresh-" in cancelled and "Cancelled, version 1" in cancelled
    ended, again = stack.run_many(("refresh", "status", "--wait", "-o", "json"), ("refresh", "cancel"))
    assert ended.returncode == 1
    body = json.loads(ended.stdout)
    assert body["outcome"] == "Cancelled" and body["refresh"]["status_reason"] == "cancelled by the operator"
    one_line_refusal(again, "no refresh in progress (the latest, refresh-")

    rolling = ok(stack.run("refresh", "rollback"))
    assert "Rolling back refresh-" in rolling and "version 1 is pinned again" in rolling
    # Cancelling terminated the version-2 warm-up (the pool was full with version 1): nothing is
    # left to replace, so the rollback's first run already ends it.
    assert f"0 instance(s) of version {version} to replace" in rolling and "First step, taken now:" in rolling
    assert f"Now: {body['refresh']['refresh_id']} RolledBack, version {version} -> 1" in rolling
    waited = wait_while_driving(stack)
    assert waited.returncode == 1, f"{waited.stdout}\n{waited.stderr}"
    assert "Refresh ended: RolledBack." in waited.stdout
    assert f"Rejected:      version {version} (rolled back; a deploy of it starts no refresh)" in waited.stdout
    assert stack.versions() == {"service:v1": 1, "pool:v1": 1}

    status, again = stack.run_many(("status",), ("refresh", "rollback"))
    assert "Version:       1 (pinned back by refresh-" in ok(status)
    assert f"the stack configures {version}: `fleetctl refresh start` tries it again" in ok(status)
    one_line_refusal(again, f"is already RolledBack to version 1; `fleetctl refresh start` deploys version {version}")
