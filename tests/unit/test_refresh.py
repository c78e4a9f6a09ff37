"""Rolling replacement, pure: the refresh's state machine and the plan under a rollout."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import pytest
from autoscaler.model import Instance, Lifecycle, TargetHealth
from autoscaler.plan import PlanLimits, plan
from autoscaler.refresh import (
    Preferences,
    Refresh,
    RefreshStatus,
    Rollout,
    advance,
    cancel,
    deploy_pending,
    failed_replacements,
    launch_version,
    majority_version,
    new_refresh,
    progress,
    rollback,
    rollout_of,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.builders import T0, instance

NOW = T0 + timedelta(hours=1)
LIMITS = PlanLimits(
    subnet_ids=("subnet-a", "subnet-b"),
    warm_pool_size=1,
    health_grace_seconds=300,
    warmup_timeout_seconds=900,
    drain_timeout_seconds=330,
)
ROLL = Rollout(version="2", replacing=True, preferences=Preferences(warmup_seconds=60))


def svc(instance_id: str, version: str, *, ago: float = 3000, **kw) -> Instance:
    return instance(instance_id, version=version, since=3600 - ago, launched=3600 - ago, **kw)


def pooled(instance_id: str, version: str, **kw) -> Instance:
    kw.setdefault("state", "stopped")
    return instance(instance_id, version=version, lifecycle=Lifecycle.POOL, **kw)


def warming(instance_id: str, version: str, *, ready: bool = False, ago: float = 60) -> Instance:
    return instance(
        instance_id, version=version, lifecycle=Lifecycle.WARMING, ready=ready, since=3600 - ago, launched=3600 - ago
    )


# --- the plan under a rollout --------------------------------------------------------------------


def test_the_pool_is_replaced_first_and_keeps_its_old_member_until_the_new_one_is_ready():
    fleet = [svc("a", "1"), svc("b", "1"), pooled("p", "1")]
    first = plan(fleet, 2, LIMITS, NOW, ROLL)
    assert sum(n for _, n in first.launch_warming) == 1
    assert not first.terminate and not first.drain and not first.start  # nothing in service yet
    installing = plan([*fleet, warming("w", "2")], 2, LIMITS, NOW, ROLL)
    assert installing.empty
    ready = plan([*fleet, warming("w", "2", ready=True)], 2, LIMITS, NOW, ROLL)
    assert ready.to_pool == ("w",) and ready.terminate == ("p",) and ready.discard == ("p",)


def test_in_service_a_new_instance_comes_first_and_an_old_one_goes_once_it_is_warm():
    fleet = [svc("a", "1"), svc("b", "1", zone="b"), pooled("p", "2")]
    surge = plan(fleet, 2, LIMITS, NOW, ROLL)
    assert surge.start == ("p",) and not surge.drain
    cold = plan([svc("a", "1"), svc("b", "1", zone="b"), svc("p", "2", ago=30)], 2, LIMITS, NOW, ROLL)
    assert not cold.drain and not cold.start and not cold.launch  # warming up: no second surge either
    warm = plan([svc("a", "1"), svc("b", "1", zone="b"), svc("p", "2", ago=61)], 2, LIMITS, NOW, ROLL)
    assert len(warm.drain) == 1 and warm.retire == warm.drain and warm.drain[0] in {"a", "b"}


def test_a_lower_min_healthy_percentage_retires_before_the_replacement_serves():
    half = replace(ROLL, preferences=Preferences(min_healthy_percent=50, max_surge=0))
    fleet = [svc("a", "1"), svc("b", "1", zone="b"), svc("c", "1")]
    p = plan(fleet, 3, replace(LIMITS, warm_pool_size=0), NOW, half)
    assert len(p.retire) == 1  # ceil(50 % of 3) = 2 must stay
    assert not p.start and not p.launch


def test_a_retired_old_instance_is_terminated_not_pooled_and_never_reclaimed():
    done = instance("old", lifecycle=Lifecycle.DRAINING, health=TargetHealth.UNUSED, version="1")
    fleet = [svc("a", "2"), svc("b", "1", zone="b"), done, pooled("p", "2")]
    p = plan(fleet, 2, LIMITS, NOW, ROLL)
    assert "old" in p.terminate and "old" not in p.to_pool and "old" not in p.reclaim


def test_an_old_warm_up_still_installing_is_terminated():
    p = plan([svc("a", "2"), warming("w", "1")], 1, LIMITS, NOW, ROLL)
    assert "w" in p.terminate and sum(n for _, n in p.launch_warming) == 1


def test_capacity_comes_before_version_when_only_old_pool_instances_are_ready():
    p = plan([svc("a", "1"), pooled("p", "1")], 2, LIMITS, NOW, ROLL)
    assert p.start == ("p",)


def test_without_a_rollout_versions_change_nothing():
    fleet = [svc("a", "1"), svc("b", "1", zone="b"), pooled("p", "1")]
    assert plan(fleet, 2, LIMITS, NOW, Rollout(version="2")) == plan(fleet, 2, LIMITS, NOW)


VERSIONS = st.sampled_from(["1", "2"])


@st.composite
def versioned_fleets(draw) -> list[Instance]:
    result = []
    for n in range(draw(st.integers(0, 10))):
        lifecycle = draw(st.sampled_from(list(Lifecycle)))
        states = {Lifecycle.POOL: ["stopped", "running"], Lifecycle.SERVICE: ["running", "pending"]}
        result.append(
            instance(
                f"i-{n:02d}",
                state=draw(st.sampled_from(states.get(lifecycle, ["running", "stopped"]))),
                lifecycle=lifecycle,
                zone=draw(st.sampled_from("ab")),
                ready=draw(st.booleans()),
                health=draw(st.sampled_from(list(TargetHealth))),
                launched=draw(st.integers(0, 3600)),
                since=draw(st.integers(0, 3600)),
                version=draw(VERSIONS),
            )
        )
    return result


@settings(max_examples=300, deadline=None)
@given(
    fleet=versioned_fleets(),
    desired=st.integers(0, 6),
    min_healthy=st.sampled_from([0, 50, 90, 100]),
    surge=st.integers(0, 2),
)
def test_refresh_bounds_hold(fleet, desired, min_healthy, surge):
    rollout = replace(ROLL, preferences=Preferences(min_healthy_percent=min_healthy, max_surge=surge))
    p = plan(fleet, desired, LIMITS, NOW, rollout)
    by_id = {i.instance_id: i for i in fleet}
    stale = {i.instance_id for i in fleet if i.version != "2"}
    service = [i for i in fleet if i.alive and i.lifecycle is Lifecycle.SERVICE and i.instance_id not in p.replace]
    # Retiring never takes in-service capacity below min healthy (unless it already was).
    in_service = [i for i in service if i.in_service]
    floor = math.ceil(min_healthy * desired / 100)
    if p.retire:
        assert len([i for i in in_service if i.instance_id not in p.drain]) >= min(floor, len(in_service))
        assert set(p.retire) <= stale
    # A surge never goes past desired + max_surge meant to serve.
    brought = (
        len(p.reclaim) + len([i for i in p.start if by_id[i].lifecycle is Lifecycle.POOL]) + sum(n for _, n in p.launch)
    )
    if brought > max(0, desired - len(service)):
        assert len(service) + brought <= desired + surge
    # Stale instances never get a pool seat; nothing is terminated twice.
    assert not set(p.to_pool) & stale and not set(p.retag_pool) & stale
    assert len(p.terminate) == len(set(p.terminate))
    assert set(p.discard) <= set(p.terminate) & stale


# --- the refresh's state machine --------------------------------------------------------------


def started(fleet: list[Instance], **prefs) -> Refresh:
    return new_refresh("2", "1", Preferences(**prefs), "deploy", fleet, T0)


def test_a_refresh_counts_what_it_must_replace_and_ends_when_nothing_is_stale():
    fleet = [svc("a", "1"), svc("b", "1"), pooled("p", "1")]
    refresh = started(fleet)
    assert (refresh.status, refresh.to_replace) == (RefreshStatus.IN_PROGRESS, 3)
    assert advance(refresh, fleet, NOW).event is None
    done = advance(refresh, [svc("a", "2"), svc("b", "2"), pooled("p", "2")], NOW)
    assert (done.event, done.refresh.status) == ("refresh-succeeded", RefreshStatus.SUCCESSFUL)


def test_checkpoints_pause_and_resume():
    refresh = started([], checkpoints=(50, 100), checkpoint_delay_seconds=600)
    half = [svc("a", "2"), svc("b", "1")]
    paused = advance(refresh, half, NOW)
    assert paused.event == "refresh-checkpoint" and paused.refresh.paused_until == NOW + timedelta(seconds=600)
    assert not rollout_of(paused.refresh, "2").replacing
    assert advance(paused.refresh, half, NOW + timedelta(seconds=599)).event is None
    resumed = advance(paused.refresh, half, NOW + timedelta(seconds=600))
    assert resumed.event == "refresh-resumed" and resumed.refresh.status is RefreshStatus.IN_PROGRESS


def test_an_alarm_or_a_failed_replacement_rolls_back_or_fails():
    fleet = [svc("a", "1"), svc("b", "2")]
    back = advance(started(fleet), fleet, NOW, alarms_in_alarm=["5xx"])
    assert back.event == "refresh-rolling-back"
    assert (back.refresh.target_version, back.refresh.rejected_version) == ("1", "2")
    assert back.refresh.to_replace == 1 and "5xx" in back.refresh.status_reason
    assert advance(back.refresh, fleet, NOW, alarms_in_alarm=["5xx"]).event is None  # rolling back goes on
    failed = advance(started(fleet, auto_rollback=False), fleet, NOW, failed=["b"])
    assert failed.refresh.status is RefreshStatus.FAILED and failed.refresh.failed_replacements == ("b",)
    first_deploy = new_refresh("2", None, Preferences(), "deploy", fleet, T0)
    assert advance(first_deploy, fleet, NOW, failed=["b"]).refresh.status is RefreshStatus.FAILED


def test_rolled_back_pins_the_old_version_until_another_deploy():
    fleet = [svc("a", "1")]
    back = rollback(started(fleet), fleet, NOW, "asked").refresh
    done = advance(back, fleet, NOW).refresh
    assert done.status is RefreshStatus.ROLLED_BACK and launch_version("2", done) == "1"
    assert not deploy_pending("2", done, fleet)  # the rejected version again: nothing to do
    assert deploy_pending("3", done, fleet)


def test_a_deploy_is_pending_only_for_a_new_version():
    fleet = [svc("a", "1")]
    assert not deploy_pending("1", None, fleet)  # first deploy: everything already matches
    assert deploy_pending("2", None, fleet)
    ended = replace(started(fleet), status=RefreshStatus.SUCCESSFUL)
    assert not deploy_pending("2", ended, fleet) and deploy_pending("3", ended, fleet)
    assert majority_version([svc("a", "1"), svc("b", "1"), svc("c", "3")], "2") == "1"


def test_cancel_ends_only_an_active_refresh():
    refresh = started([])
    assert cancel(refresh, NOW).refresh.status is RefreshStatus.CANCELLED
    assert cancel(None, NOW).event is None


def test_failed_replacements_are_the_target_versions_only():
    fleet = [svc("a", "1"), svc("b", "2")]
    assert failed_replacements(fleet, ["a", "b", "gone"], "2") == ["b"]


def test_progress_counts_old_and_new_in_service_and_in_the_pool():
    fleet = [svc("a", "1"), svc("b", "2"), pooled("p", "2"), pooled("q", "1")]
    got = progress(fleet, ROLL, NOW)
    assert (got.new_in_service, got.old_in_service, got.new_pool, got.old_pool, got.percent) == (1, 1, 1, 1, 50)
    between = progress(fleet, Rollout(version="2"), NOW)
    assert (between.old_in_service, between.remaining) == (1, 2)


def test_a_refresh_survives_the_state_table():
    refresh = started([svc("a", "1")], checkpoints=(50,), alarm_names=("x",))
    assert Refresh.from_json(refresh.to_json()) == refresh


def test_lifetime_makes_instances_stale_without_a_refresh():
    rollout = rollout_of(None, "1", max_lifetime_seconds=3000)
    assert rollout.stale(svc("a", "1", ago=3000), NOW)
    assert not rollout.stale(svc("b", "1", ago=2999), NOW)


@pytest.mark.parametrize(
    ("prefs", "problem"),
    [
        ({"min_healthy_percent": 101}, "min healthy percentage must be 0-100"),
        ({"max_surge": -1}, "max surge must be >= 0"),
        ({"max_surge": 0}, "can replace nothing"),
        ({"checkpoints": (50, 20)}, "checkpoints must be increasing"),
        ({"checkpoints": (0,)}, "checkpoints must be increasing"),
    ],
)
def test_inconsistent_preferences_are_named(prefs, problem):
    assert any(problem in p for p in Preferences(**prefs).problems())


def test_a_refresh_ends_only_once_its_retired_instances_are_gone():
    """Found in the twin: success while an old instance still drained let it back into the pool."""
    refresh = started([svc("a", "1"), svc("b", "1")])
    leaving = instance("a", lifecycle=Lifecycle.DRAINING, health=TargetHealth.DRAINING, version="1")
    assert advance(refresh, [leaving, svc("b", "2"), svc("c", "2")], NOW).event is None
    gone = replace(leaving, state="shutting-down")
    assert advance(refresh, [gone, svc("b", "2"), svc("c", "2")], NOW).event == "refresh-succeeded"


def test_a_surge_promotes_a_finished_warm_up_and_waits_for_one_on_its_way():
    fleet = [svc("a", "1"), svc("b", "1", zone="b")]
    promoted = plan([*fleet, warming("w", "2", ready=True)], 2, LIMITS, NOW, ROLL)
    assert promoted.reclaim == ("w",) and "w" in promoted.register and not promoted.launch
    # The promoted one is the one extra instance max_surge allows: no warm-up beside it.
    assert "w" not in promoted.to_pool and not promoted.launch_warming
    waiting = plan([*fleet, pooled("p", "2", state="stopping")], 2, LIMITS, NOW, ROLL)
    assert not waiting.launch and not waiting.start
    capacity = plan([svc("a", "1"), pooled("p", "2", state="stopping")], 2, LIMITS, NOW, ROLL)
    assert sum(n for _, n in capacity.launch) == 1  # a capacity need does not wait


def test_a_refresh_ends_only_once_the_pool_holds_its_seats_again():
    refresh = started([svc("a", "1")])
    fleet = [svc("a", "2"), warming("w", "2")]
    assert advance(refresh, fleet, NOW, refilling=True).event is None
    assert advance(refresh, fleet, NOW).event == "refresh-succeeded"


def test_a_surge_may_be_a_percentage_of_desired_rounded_up():
    from autoscaler.refresh import surge_values

    quarter = Preferences(**surge_values("25%"))
    assert [quarter.surge(d) for d in (1, 4, 5, 8)] == [1, 1, 2, 2] and quarter.surge_text == "25 %"
    assert Preferences(**surge_values(" 2 ")).surge(10) == 2
    assert any("can replace nothing" in p for p in Preferences(**surge_values("0%")).problems())
    with pytest.raises(ValueError, match=r"a count \(1\) or a percentage"):
        surge_values("a lot")
    rollout = replace(ROLL, preferences=Preferences(**surge_values("50%")))
    fleet = [svc(f"o{n}", "1", zone="ab"[n % 2]) for n in range(4)] + [pooled(f"p{n}", "2") for n in range(3)]
    p = plan(fleet, 4, replace(LIMITS, warm_pool_size=3), NOW, rollout)
    assert len(p.start) == 2  # 50 % of 4 beyond desired at once
