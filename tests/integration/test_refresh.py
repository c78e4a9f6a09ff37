"""Rolling replacement against moto: a deploy's new launch-template version reaches the pool,
then every instance in service, surge first, and a failure rolls it back."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from autoscaler import entrypoints
from autoscaler.controller import Controller

from tests.support.aws import REGISTRATION_SECONDS

pytestmark = pytest.mark.integration


def _version_counts(fleet: Any) -> Counter[str]:
    """lifecycle:version -> count, over live instances."""
    counts: Counter[str] = Counter()
    for instance in fleet.instances():
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        counts[f"{tags['AutoscalerLifecycle']}:v{tags['aws:ec2launchtemplate:version']}"] += 1
    return counts


def _fleet_of_two(fleet: Any) -> Any:
    """Two instances in service and one in the pool, all launched from version 1."""
    entrypoints.create_fleet(fleet.runtime)
    entrypoints.set_capacity(fleet.runtime, 2)
    fleet.mark_ready()
    entrypoints.reconcile(fleet.runtime)
    fleet.clock.advance(REGISTRATION_SECONDS)
    fleet.mark_ready()
    entrypoints.reconcile(fleet.runtime)
    fleet.settle()
    assert _version_counts(fleet) == {"service:v1": 2, "pool:v1": 1}
    return fleet


def _deploy(fleet: Any) -> Any:
    """What `sam deploy` does: a new launch-template version, and the functions' environment names it."""
    created = fleet.ec2.create_launch_template_version(
        LaunchTemplateId=fleet.settings.launch_template_id, SourceVersion="1", LaunchTemplateData={}
    )
    version = str(created["LaunchTemplateVersion"]["VersionNumber"])
    return fleet.with_settings(launch_template_version=version)


def _in_service(fleet: Any) -> int:
    return sum(1 for i in Controller(fleet.runtime).instances() if i.in_service)


def _run_until_done(fleet: Any, limit: int = 40) -> list[dict[str, Any]]:
    """Reconcile once a minute, with workers that install and pass health checks, until the
    refresh ends; every minute checks capacity never dropped below desired."""
    outcomes = []
    for _ in range(limit):
        outcome = entrypoints.reconcile(fleet.runtime)
        outcomes.append(outcome)
        status = entrypoints.refresh_status(fleet.runtime)["refresh"]["status"]
        assert _in_service(fleet) >= 2, (outcome, _version_counts(fleet))
        if status not in {"InProgress", "Paused", "RollingBack"}:
            return outcomes
        fleet.clock.advance(30)
        fleet.mark_ready()
        fleet.clock.advance(30)
    raise AssertionError(f"refresh still running after {limit} minutes: {_version_counts(fleet)}")


def test_a_deploy_replaces_the_pool_first_then_in_service_surge_first(fleet):
    fleet = _deploy(_fleet_of_two(fleet))
    first = entrypoints.reconcile(fleet.runtime)
    assert first["refresh_event"] == "refresh-started"
    assert first["refresh"]["target_version"] == "2" and first["refresh"]["previous_version"] == "1"
    # Pool first: a new-version warm-up is launched; the old pool member stays until it is ready.
    assert len(first["result"]["warming"]) == 1
    assert _version_counts(fleet) == {"service:v1": 2, "pool:v1": 1, "warming:v2": 1}

    outcomes = _run_until_done(fleet)
    assert outcomes[-1]["refresh"]["status"] == "Successful"
    fleet.settle()
    assert _version_counts(fleet) == {"service:v2": 2, "pool:v2": 1}
    # Surge first: never more than desired + 1 meant to serve; the old ones were drained one by one.
    drained = [o["result"].get("drained", []) for o in outcomes if o.get("result")]
    assert [len(d) for d in drained if d] == [1, 1]
    activities = Controller(fleet.runtime).activities()
    reasons = [a["reason"] for a in activities]
    assert "refresh-started" in reasons and "refresh-succeeded" in reasons, activities
    replaced = [a["details"]["replaced"] for a in activities if "replaced" in a["details"]]
    assert {v for r in replaced for v in r["versions"].values()} == {"1"}
    assert all(r["target_version"] == "2" for r in replaced)


def test_a_refresh_interrupted_mid_way_is_resumed_by_the_next_run(fleet):
    fleet = _deploy(_fleet_of_two(fleet))
    entrypoints.reconcile(fleet.runtime)
    fleet.mark_ready()
    fleet.knobs.faults["TerminateInstances"] = ["InternalError"] * 10  # the run dies mid-action
    with pytest.raises(Exception, match="InternalError"):
        entrypoints.reconcile(fleet.runtime)
    fleet.knobs.faults.clear()
    outcomes = _run_until_done(fleet)
    assert outcomes[-1]["refresh"]["status"] == "Successful"
    fleet.settle()
    assert _version_counts(fleet) == {"service:v2": 2, "pool:v2": 1}


def test_a_new_version_that_never_becomes_healthy_is_rolled_back(fleet):
    fleet = _deploy(_fleet_of_two(fleet).with_settings(health_grace_seconds=120, warmup_timeout_seconds=300))
    entrypoints.reconcile(fleet.runtime)  # refresh-started: a v2 warm-up
    # The v2 warm-up never reports ready: the pool's replacement fails.
    for _ in range(6):
        fleet.clock.advance(60)
        outcome = entrypoints.reconcile(fleet.runtime)
    status = entrypoints.refresh_status(fleet.runtime)
    assert status["refresh"]["status"] == "RolledBack", status
    assert status["refresh"]["target_version"] == "1" and status["refresh"]["rejected_version"] == "2"
    fleet.settle()
    assert _version_counts(fleet) == {"service:v1": 2, "pool:v1": 1}, outcome
    # Pinned back: the next launch uses version 1, and the same deploy starts no new refresh.
    assert entrypoints.reconcile(fleet.runtime).get("refresh_event") is None
