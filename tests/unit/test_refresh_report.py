"""refresh.report: what `fleetctl refresh status` and `fleetctl status` show of a refresh."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from autoscaler.model import Lifecycle
from autoscaler.refresh import Preferences, RefreshStatus, new_refresh, report, rollback

from tests.unit.builders import T0, instance

NOW = T0 + timedelta(hours=1)


def fleet(*versions: tuple[str, Lifecycle, str]) -> list:
    return [
        replace(instance(iid, lifecycle=lc, state="running" if lc is Lifecycle.SERVICE else "stopped"), version=v)
        for iid, lc, v in versions
    ]


def test_before_any_refresh_a_new_configured_version_is_pending():
    instances = fleet(("i-1", Lifecycle.SERVICE, "1"), ("i-2", Lifecycle.POOL, "1"))
    body = report(None, "2", instances, NOW)
    assert body["refresh"] is None
    assert body["configured_version"] == "2" and body["launch_version"] == "2"
    assert body["deploy_pending"] is True
    assert body["progress"]["old_in_service"] == 1 and body["progress"]["old_pool"] == 1
    assert report(None, "1", instances, NOW)["deploy_pending"] is False


def test_a_refresh_in_progress_and_a_rolled_back_one_pinned_to_its_previous_version():
    instances = fleet(("i-1", Lifecycle.SERVICE, "1"), ("i-2", Lifecycle.SERVICE, "2"), ("i-3", Lifecycle.POOL, "2"))
    running = new_refresh("2", "1", Preferences(), "deploy", instances, NOW)
    body = report(running, "2", instances, NOW)
    assert body["refresh"]["status"] == RefreshStatus.IN_PROGRESS.value
    assert body["deploy_pending"] is False and body["launch_version"] == "2"
    assert body["progress"] == {
        "target_version": "2",
        "new_in_service": 1,
        "old_in_service": 1,
        "new_pool": 1,
        "old_pool": 0,
        "remaining": 1,
        "percent": 66,
    }
    back = rollback(running, instances, NOW, "asked").refresh
    assert back is not None
    pinned = report(back, "2", instances, NOW)
    # Pinned back: new instances get version 1 although the deployment configures 2, and the
    # rejected version starts no new refresh.
    assert pinned["launch_version"] == "1" and pinned["configured_version"] == "2"
    assert pinned["deploy_pending"] is False
    assert pinned["progress"]["target_version"] == "1" and pinned["progress"]["remaining"] == 2
