"""Rolling replacement against moto: a deploy's new launch-template version reaches the pool,
then every instance in service, surge first, and a failure rolls it back."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from autoscaler import entrypoints
from autoscaler.controller import Controller
from autoscaler.errors import RefreshError

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


def _pool_refilled(fleet: Any) -> None:
    """After a refresh the pool's last seat may still be installing (a refresh runs at most
    max_surge instances beyond desired): let it finish and be stopped into the pool."""
    for _ in range(3):
        fleet.clock.advance(60)
        fleet.mark_ready()
        entrypoints.reconcile(fleet.runtime)
        fleet.settle()
        if not any(key.startswith("warming:") for key in _version_counts(fleet)):
            return


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
    _pool_refilled(fleet)
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
    _pool_refilled(fleet)
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
    _pool_refilled(fleet)
    assert _version_counts(fleet) == {"service:v1": 2, "pool:v1": 1}, outcome
    # Pinned back: the next launch uses version 1, and the same deploy starts no new refresh.
    assert entrypoints.reconcile(fleet.runtime).get("refresh_event") is None


def _versions_of(fleet: Any, instance_ids: list[str]) -> set[str]:
    return {i.version or "" for i in Controller(fleet.runtime).instances() if i.instance_id in instance_ids}


def _pool_replaced(fleet: Any) -> Any:
    """Deploy version 2 and run until the pool holds a ready version-2 instance."""
    fleet = _deploy(_fleet_of_two(fleet))
    entrypoints.reconcile(fleet.runtime)
    fleet.mark_ready()
    entrypoints.reconcile(fleet.runtime)
    fleet.settle()
    assert _version_counts(fleet) == {"service:v1": 2, "pool:v2": 1}
    return fleet


def test_a_scale_out_during_a_refresh_brings_the_new_version(fleet):
    fleet = _pool_replaced(fleet)
    outcome = entrypoints.set_capacity(fleet.runtime, 4)
    brought = [*outcome["result"].get("started", []), *outcome["result"].get("launched", [])]
    assert len(brought) >= 2 and _versions_of(fleet, brought) == {"2"}
    assert outcome["refresh"]["status"] == "InProgress"


def test_a_scale_in_during_a_refresh_retires_the_old_version_first(fleet):
    fleet = _pool_replaced(fleet)
    entrypoints.reconcile(fleet.runtime)  # surge: a version-2 instance starts from the pool
    fleet.clock.advance(REGISTRATION_SECONDS)
    assert _version_counts(fleet)["service:v2"] == 1
    outcome = entrypoints.set_capacity(fleet.runtime, 1)
    # The new instance serves but is not past its warm-up: one old instance must stay till then.
    first = outcome["result"]["drained"]
    assert len(first) == 1 and _versions_of(fleet, first) == {"1"}
    fleet.clock.advance(60)
    second = entrypoints.reconcile(fleet.runtime)["result"]["drained"]
    assert len(second) == 1 and _versions_of(fleet, second) == {"1"}
    assert _version_counts(fleet)["service:v2"] == 1


def test_cancel_stops_replacing_and_keeps_what_was_replaced(fleet):
    fleet = _pool_replaced(fleet)
    cancelled = entrypoints.cancel_refresh(fleet.runtime)
    assert cancelled["refresh"]["status"] == "Cancelled"
    for _ in range(5):
        fleet.clock.advance(60)
        fleet.mark_ready()
        outcome = entrypoints.reconcile(fleet.runtime)
        assert not (outcome.get("result") or {}).get("drained"), outcome
    fleet.settle()
    assert _version_counts(fleet) == {"service:v1": 2, "pool:v2": 1}
    # A deploy that is already the refresh's target starts nothing new; new capacity is version 2.
    assert entrypoints.reconcile(fleet.runtime).get("refresh_event") is None
    with pytest.raises(RefreshError, match="no refresh in progress"):
        entrypoints.cancel_refresh(fleet.runtime)


def test_an_operator_rolls_a_finished_refresh_back_and_a_later_deploy_clears_the_pin(fleet):
    fleet = _deploy(_fleet_of_two(fleet))
    _run_until_done(fleet)
    back = entrypoints.rollback_refresh(fleet.runtime)
    assert (back["refresh"]["status"], back["refresh"]["target_version"]) == ("RollingBack", "1")
    outcomes = _run_until_done(fleet)
    assert outcomes[-1]["refresh"]["status"] == "RolledBack"
    _pool_refilled(fleet)
    assert _version_counts(fleet) == {"service:v1": 2, "pool:v1": 1}
    with pytest.raises(RefreshError, match="already RolledBack"):
        entrypoints.rollback_refresh(fleet.runtime)
    # A new deploy (version 3) is not the rejected one: it starts a refresh from version 1.
    fleet = _deploy(fleet)
    started = entrypoints.reconcile(fleet.runtime)
    assert started["refresh_event"] == "refresh-started"
    assert (started["refresh"]["target_version"], started["refresh"]["previous_version"]) == ("3", "1")


def test_a_configured_alarm_in_alarm_rolls_the_refresh_back(fleet):
    fleet = _deploy(_fleet_of_two(fleet).with_settings(refresh_alarm_names=("fleet-5xx",)))
    entrypoints.reconcile(fleet.runtime)
    fleet.mark_ready()
    fleet.knobs.alarms["fleet-5xx"] = "ALARM"
    outcome = entrypoints.reconcile(fleet.runtime)
    assert outcome["refresh_event"] == "refresh-rolling-back"
    assert "fleet-5xx" in outcome["refresh"]["status_reason"]
    fleet.knobs.alarms["fleet-5xx"] = "OK"
    outcomes = _run_until_done(fleet)
    assert outcomes[-1]["refresh"]["status"] == "RolledBack"
    _pool_refilled(fleet)
    assert _version_counts(fleet) == {"service:v1": 2, "pool:v1": 1}


def test_without_auto_rollback_an_alarm_only_stops_the_refresh(fleet):
    fleet = _fleet_of_two(fleet).with_settings(refresh_alarm_names=("fleet-5xx",), refresh_auto_rollback=False)
    fleet = _deploy(fleet)
    entrypoints.reconcile(fleet.runtime)
    fleet.knobs.alarms["fleet-5xx"] = "ALARM"
    outcome = entrypoints.reconcile(fleet.runtime)
    assert (outcome["refresh_event"], outcome["refresh"]["status"]) == ("refresh-failed", "Failed")


def test_a_checkpoint_pauses_the_refresh_for_its_delay(fleet):
    fleet = _fleet_of_two(fleet).with_settings(refresh_checkpoints=(50,), refresh_checkpoint_delay_seconds=600)
    fleet = _deploy(fleet)
    events = []
    for _ in range(30):
        outcome = entrypoints.reconcile(fleet.runtime)
        events.append((fleet.clock.now(), outcome.get("refresh_event"), outcome.get("result") or {}))
        if outcome["refresh"]["status"] == "Successful":
            break
        fleet.clock.advance(30)
        fleet.mark_ready()
        fleet.clock.advance(30)
    names = [e for _, e, _ in events if e]
    assert names == ["refresh-started", "refresh-checkpoint", "refresh-resumed", "refresh-succeeded"], events
    paused_at = next(t for t, e, _ in events if e == "refresh-checkpoint")
    resumed_at = next(t for t, e, _ in events if e == "refresh-resumed")
    assert (resumed_at - paused_at).total_seconds() >= 600
    # Nothing new is brought or retired while paused (a drain under way may finish).
    paused = [r for t, _, r in events if paused_at < t < resumed_at]
    assert paused and not any(r.get(k) for r in paused for k in ("drained", "started", "launched", "warming"))


def test_a_lower_min_healthy_percentage_replaces_without_surge(fleet):
    fleet = _fleet_of_two(fleet).with_settings(refresh_min_healthy_percent=50, refresh_max_surge=0)
    fleet = _deploy(fleet)
    most = 0
    for _ in range(30):
        outcome = entrypoints.reconcile(fleet.runtime)
        serving = sum(1 for i in Controller(fleet.runtime).instances() if i.lifecycle.value == "service")
        most = max(most, serving)
        assert _in_service(fleet) >= 1
        if outcome["refresh"]["status"] == "Successful":
            break
        fleet.clock.advance(30)
        fleet.mark_ready()
        fleet.clock.advance(30)
    assert outcome["refresh"]["status"] == "Successful"
    assert most <= 2  # no surge above desired


def test_instances_past_the_maximum_lifetime_are_replaced_without_a_deploy(fleet):
    fleet = _fleet_of_two(fleet).with_settings(max_instance_lifetime_days=1)
    old = {i["InstanceId"] for i in fleet.instances()}
    fleet.clock.advance(86400)
    for _ in range(20):
        outcome = entrypoints.reconcile(fleet.runtime)
        assert _in_service(fleet) >= 2
        if not old & {i["InstanceId"] for i in fleet.instances()}:
            break
        fleet.clock.advance(30)
        fleet.mark_ready()
        fleet.clock.advance(30)
    assert not old & {i["InstanceId"] for i in fleet.instances()}, outcome
    _pool_refilled(fleet)
    assert _version_counts(fleet) == {"service:v1": 2, "pool:v1": 1}
    assert outcome.get("refresh") is None  # no refresh: the lifetime limit alone


def test_lifetime_replacement_follows_the_templates_refresh_preferences(fleet):
    """Reported in review: without a refresh, lifetime replacement used the code's defaults."""
    fleet = _fleet_of_two(fleet).with_settings(
        max_instance_lifetime_days=1, refresh_min_healthy_percent=50, refresh_max_surge=0
    )
    fleet.clock.advance(86400)
    first_in_service_step = None
    for _ in range(10):
        outcome = entrypoints.reconcile(fleet.runtime)
        result = outcome.get("result") or {}
        if result.get("drained") or result.get("started") or result.get("launched"):
            first_in_service_step = result
            break
        fleet.clock.advance(30)
        fleet.mark_ready()
        fleet.clock.advance(30)
    # 50 % healthy and no surge: an old instance is retired first, not a new one started beside it.
    assert first_in_service_step is not None and first_in_service_step.get("drained"), first_in_service_step
    assert not first_in_service_step.get("started") and not first_in_service_step.get("launched")


def test_a_reconcile_during_a_refresh_reads_every_alarm_in_one_call(fleet):
    """The scaling alarms and the refresh's alarms are read together: one DescribeAlarms a run."""
    fleet = _deploy(_fleet_of_two(fleet).with_settings(refresh_alarm_names=("fleet-5xx",)))
    entrypoints.reconcile(fleet.runtime)  # refresh-started
    before = len(fleet.knobs.calls)
    fleet.knobs.alarms["fleet-5xx"] = "ALARM"
    outcome = entrypoints.reconcile(fleet.runtime)
    assert outcome["refresh_event"] == "refresh-rolling-back"  # the refresh's alarm was read
    assert fleet.knobs.calls[before:].count("cloudwatch:DescribeAlarms") == 1
