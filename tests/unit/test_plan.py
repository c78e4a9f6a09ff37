"""plan(): observed instances + desired capacity -> the actions, level-triggered and pure."""

from __future__ import annotations

from datetime import timedelta

import pytest
from autoscaler.model import Instance, Lifecycle, TargetHealth
from autoscaler.plan import Plan, PlanLimits, choose_victims, plan
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.builders import T0, instance, pool, serving

SUBNETS = ("subnet-a", "subnet-b", "subnet-c")
LIMITS = PlanLimits(
    subnet_ids=SUBNETS,
    warm_pool_size=2,
    health_grace_seconds=300,
    warmup_timeout_seconds=900,
    drain_timeout_seconds=330,
)
NOW = T0 + timedelta(hours=1)
AGO = 3600.0  # seconds after T0 that equal NOW


def limits(**overrides) -> PlanLimits:
    values = {f: getattr(LIMITS, f) for f in LIMITS.__dataclass_fields__}
    values.update(overrides)
    return PlanLimits(**values)


def at(seconds_before_now: float) -> float:
    """``since``/``launched`` offset for an event ``seconds_before_now`` before NOW."""
    return AGO - seconds_before_now


def ids(instances) -> set[str]:
    return {i.instance_id for i in instances}


def draining(instance_id: str, *, zone="a", state="running", health=TargetHealth.DRAINING, ready=True, ago=10.0):
    return instance(
        instance_id, state=state, lifecycle=Lifecycle.DRAINING, zone=zone, health=health, ready=ready, since=at(ago)
    )


def warming(instance_id: str, *, zone="a", state="running", ready=False, ago=60.0):
    return instance(instance_id, state=state, lifecycle=Lifecycle.WARMING, zone=zone, ready=ready, since=at(ago))


def launched(p: Plan) -> int:
    return sum(count for _, count in p.launch)


# --- converged ---------------------------------------------------------------------------------


def test_converged_fleet_with_warm_pool_plans_nothing():
    p = plan([*serving(2), *pool(2)], 2, LIMITS, NOW)
    assert p.empty, p.summary()


def test_spare_pool_only_accompanies_a_start():
    p = plan([*serving(1), *pool(3)], 2, limits(warm_pool_size=3), NOW)
    assert len(p.start) == 1
    assert set(p.spare_pool) == {"i-pool0", "i-pool1", "i-pool2"} - set(p.start)


def test_converged_fleet_without_pool_is_empty():
    p = plan(serving(3), 3, limits(warm_pool_size=0), NOW)
    assert p.empty
    assert p.summary() == {}


def test_terminated_instances_are_ignored():
    gone = [
        instance("i-dead", state="terminated", health=TargetHealth.UNUSED),
        instance("i-dying", state="shutting-down", lifecycle=Lifecycle.POOL),
    ]
    p = plan([*serving(2), *gone], 2, limits(warm_pool_size=0), NOW)
    assert p.empty


# --- scale-out -----------------------------------------------------------------------------------


def test_scale_out_starts_pool_instances_first():
    p = plan([*serving(1), *pool(2)], 3, LIMITS, NOW)
    assert set(p.start) == {"i-pool0", "i-pool1"}
    assert p.launch == ()
    assert p.spare_pool == ()
    # the pool is now empty: refill it
    assert sum(c for _, c in p.launch_warming) == 2


def test_scale_out_pool_start_is_az_balanced():
    fleet = [
        instance("i-a1", zone="a"),
        instance("i-a2", zone="a", launched=1),
        instance("i-b1", zone="b", launched=2),
        instance("p-a-old", state="stopped", lifecycle=Lifecycle.POOL, zone="a", launched=0),
        instance("p-a-new", state="stopped", lifecycle=Lifecycle.POOL, zone="a", launched=5),
        instance("p-b", state="stopped", lifecycle=Lifecycle.POOL, zone="b", launched=9),
        instance("p-c", state="stopped", lifecycle=Lifecycle.POOL, zone="c", launched=9),
    ]
    p = plan(fleet, 5, limits(warm_pool_size=2), NOW)
    # zones a=2, b=1, c=0: c first, then b, never the a pool instances
    assert p.start == ("p-c", "p-b")
    assert set(p.spare_pool) == {"p-a-old", "p-a-new"}


def test_scale_out_launches_the_rest_spread_across_subnets():
    p = plan([*serving(1, zones="a"), *pool(1, zones="a")], 6, limits(warm_pool_size=1), NOW)
    assert p.start == ("i-pool0",)
    # service: a=2 after the start; 4 launches fill b and c up to a's level
    assert dict(p.launch) == {"subnet-b": 2, "subnet-c": 2}
    assert launched(p) == 4


def test_scale_out_from_nothing_spreads_evenly():
    p = plan([], 6, limits(warm_pool_size=0), NOW)
    assert dict(p.launch) == {"subnet-a": 2, "subnet-b": 2, "subnet-c": 2}


def test_stopped_service_instance_is_restarted():
    stopped = instance("i-stopped", state="stopped", zone="b")
    p = plan([*serving(1), stopped], 2, limits(warm_pool_size=0), NOW)
    assert p.start == ("i-stopped",)
    assert p.launch == ()


def test_reclaim_draining_instance_before_the_pool():
    fleet = [*serving(1), draining("i-drain"), *pool(2)]
    p = plan(fleet, 2, LIMITS, NOW)
    assert p.reclaim == ("i-drain",)
    assert p.start == ()
    assert "i-drain" in p.register
    assert "i-drain" not in p.to_pool + p.terminate


def test_reclaim_then_pool_then_launch():
    fleet = [*serving(1), draining("i-drain"), *pool(1)]
    p = plan(fleet, 4, limits(warm_pool_size=1), NOW)
    assert p.reclaim == ("i-drain",)
    assert p.start == ("i-pool0",)
    assert launched(p) == 1


def test_stopped_draining_instance_is_not_reclaimed():
    p = plan([*serving(1), draining("i-drain", state="stopped")], 2, limits(warm_pool_size=1), NOW)
    assert p.reclaim == ()
    assert p.retag_pool == ("i-drain",)
    assert launched(p) == 1


# --- scale-in ------------------------------------------------------------------------------------


def test_scale_in_never_exceeds_the_excess():
    p = plan(serving(5), 3, limits(warm_pool_size=0), NOW)
    assert len(p.drain) == 2


def test_scale_in_takes_not_in_service_first():
    fleet = [*serving(3), instance("i-booting", state="pending", launched=0), instance("i-unhealthy",
             health=TargetHealth.UNHEALTHY, since=at(10))]  # fmt: skip
    p = plan(fleet, 3, limits(warm_pool_size=0), NOW)
    assert set(p.drain) == {"i-booting", "i-unhealthy"}


def test_scale_in_takes_from_the_zone_with_the_most_then_newest():
    fleet = [
        instance("a-old", zone="a", launched=0),
        instance("a-mid", zone="a", launched=10),
        instance("a-new", zone="a", launched=20),
        instance("b-old", zone="b", launched=0),
        instance("b-new", zone="b", launched=30),
        instance("c-1", zone="c", launched=40),
    ]
    p = plan(fleet, 3, limits(warm_pool_size=0), NOW)
    # a has 3: a-new; then a=2, b=2 tie -> newest of those: b-new; then a=2: a-mid
    assert p.drain == ("a-new", "b-new", "a-mid")


def test_scale_in_victims_are_not_registered():
    fleet = [*serving(2), instance("i-unused", health=TargetHealth.UNUSED, launched=99, since=at(10))]
    p = plan(fleet, 2, limits(warm_pool_size=0), NOW)
    assert p.drain == ("i-unused",)
    assert p.register == ()


def test_choose_victims_policy_directly():
    fleet = [
        instance("x", zone="a", launched=1),
        instance("y", zone="b", launched=2),
        instance("z", zone="b", state="pending", launched=0),
    ]
    assert [v.instance_id for v in choose_victims(fleet, 5)] == ["z", "y", "x"]
    assert choose_victims(fleet, 0) == []


def test_stopped_service_instance_chosen_as_victim_is_not_restarted():
    fleet = [*serving(1), instance("i-stopped", state="stopped", zone="b")]
    p = plan(fleet, 1, limits(warm_pool_size=0), NOW)
    assert p.drain == ("i-stopped",)
    assert "i-stopped" not in p.start


# --- draining ------------------------------------------------------------------------------------


def test_draining_in_progress_is_left_alone():
    p = plan([*serving(1), draining("i-drain", ago=30)], 1, limits(warm_pool_size=1), NOW)
    assert "i-drain" not in p.to_pool + p.terminate
    assert p.launch_warming == ()  # it will most likely return to the pool


def test_a_scale_in_victim_holds_its_pool_seat():
    # The pool is short by one and an initialized instance is drained now: it will refill the pool
    # after draining, so no warm-up is launched (it would be terminated as surplus minutes later).
    p = plan(serving(2), 1, limits(warm_pool_size=1), NOW)
    assert len(p.drain) == 1
    assert p.launch_warming == ()


def test_pool_size_shrinks_with_the_fleet_under_a_prepared_capacity_bound():
    bounded = limits(warm_pool_size=2, max_prepared_capacity=3)
    assert [bounded.pool_size(d) for d in (0, 1, 2, 3, 4)] == [2, 2, 1, 0, 0]
    assert limits(warm_pool_size=2).pool_size(10) == 2  # no bound
    p = plan([*serving(2), *pool(2)], 2, bounded, NOW)
    assert len(p.terminate) == 1  # 2 serving + 1 in the pool = 3 prepared


def test_draining_finished_goes_to_pool_when_there_is_room():
    p = plan([*serving(1), draining("i-drain", health=TargetHealth.UNUSED)], 1, limits(warm_pool_size=1), NOW)
    assert p.to_pool == ("i-drain",)
    assert p.terminate == ()
    assert p.launch_warming == ()


def test_draining_finished_terminated_when_pool_full():
    fleet = [*serving(1), *pool(2), draining("i-drain", health=TargetHealth.UNUSED)]
    p = plan(fleet, 1, LIMITS, NOW)
    assert p.terminate == ("i-drain",)
    assert p.to_pool == ()


def test_draining_finished_but_not_ready_is_terminated():
    p = plan([*serving(1), draining("i-drain", health=TargetHealth.UNUSED, ready=False)], 1, LIMITS, NOW)
    assert p.terminate == ("i-drain",)


def test_drain_timeout():
    fleet = [*serving(1), draining("d-old", ago=331), draining("d-young", ago=329, zone="b")]
    p = plan(fleet, 1, limits(warm_pool_size=1), NOW)
    assert p.to_pool == ("d-old",)
    assert "d-young" not in p.to_pool + p.terminate


def test_two_finished_drains_fill_the_pool_then_terminate():
    fleet = [
        *serving(1),
        draining("d1", health=TargetHealth.UNUSED),
        draining("d2", health=TargetHealth.UNAVAILABLE),
        draining("d3", health=TargetHealth.UNUSED),
    ]
    p = plan(fleet, 1, LIMITS, NOW)
    assert p.to_pool == ("d1", "d2")
    assert p.terminate == ("d3",)


# --- warming and the pool ------------------------------------------------------------------------


def test_warming_ready_goes_to_pool():
    p = plan([*serving(1), *pool(1), warming("w1", ready=True)], 1, LIMITS, NOW)
    assert p.to_pool == ("w1",)
    assert p.launch_warming == ()


def test_warming_not_ready_in_time_is_waited_for():
    p = plan([*serving(1), *pool(1), warming("w1", ago=899)], 1, LIMITS, NOW)
    assert p.to_pool == p.terminate == ()
    assert p.launch_warming == ()


def test_warming_past_timeout_is_terminated_and_replaced():
    p = plan([*serving(1), *pool(1), warming("w1", ago=900)], 1, LIMITS, NOW)
    assert p.terminate == ("w1",)
    assert sum(c for _, c in p.launch_warming) == 1


def test_warming_ready_but_stopped_is_retagged():
    p = plan([*serving(1), *pool(1), warming("w1", state="stopped", ready=True)], 1, LIMITS, NOW)
    assert p.retag_pool == ("w1",)
    assert p.launch_warming == ()


def test_warming_ready_past_timeout_is_not_also_replaced():
    p = plan([*serving(1), *pool(1), warming("w1", ready=True, ago=1000)], 1, LIMITS, NOW)
    assert p.to_pool == ("w1",)
    assert p.launch_warming == ()


def test_ready_warming_instance_terminated_when_the_pool_is_full():
    p = plan([*serving(1), *pool(2), warming("w1", ready=True)], 1, LIMITS, NOW)
    assert p.terminate == ("w1",)
    assert p.to_pool == ()


def test_initialized_instances_take_pool_seats_before_warm_ups_still_installing():
    fleet = [
        *serving(1),
        *pool(1),
        draining("d1", health=TargetHealth.UNUSED),
        warming("w-installing", zone="b", ago=60),
    ]
    p = plan(fleet, 1, LIMITS, NOW)
    assert p.to_pool == ("d1",)
    assert p.terminate == ("w-installing",)
    assert p.launch_warming == ()


def test_warm_ups_beyond_the_deficit_are_terminated():
    fleet = [*serving(1), warming("w1", ago=60), warming("w2", zone="b", ago=50), warming("w3", zone="c", ago=40)]
    p = plan(fleet, 1, LIMITS, NOW)
    assert len(p.terminate) == 1
    assert p.launch_warming == ()


def test_pool_deficit_launches_warming_spread_across_subnets():
    p = plan([*serving(2), *pool(1, zones="a")], 2, limits(warm_pool_size=4), NOW)
    assert dict(p.launch_warming) == {"subnet-b": 1, "subnet-c": 1, "subnet-a": 1}


def test_pool_excess_terminates_stopped_extras_by_termination_policy():
    extras = [
        instance("p-old", state="stopped", lifecycle=Lifecycle.POOL, zone="a", launched=0),
        instance("p-mid", state="stopped", lifecycle=Lifecycle.POOL, zone="a", launched=10),
        instance("p-new", state="stopped", lifecycle=Lifecycle.POOL, zone="b", launched=20),
    ]
    p = plan([*serving(1), *extras], 1, limits(warm_pool_size=1), NOW)
    # zone a has the most: its newest first, then the a/b tie goes to the newest
    assert p.terminate == ("p-mid", "p-new")
    assert p.spare_pool == ()  # spares only accompany a start
    assert p.launch_warming == ()


def test_pool_excess_never_terminates_a_pool_instance_that_is_not_stopped():
    extras = [
        instance("p-stopped", state="stopped", lifecycle=Lifecycle.POOL, zone="a", launched=0),
        instance("p-pending", state="pending", lifecycle=Lifecycle.POOL, zone="a", launched=30),
    ]
    p = plan([*serving(1), *extras], 1, limits(warm_pool_size=0), NOW)
    assert p.terminate == ("p-stopped",)


def test_running_pool_member_goes_back_to_sleep():
    p = plan([*serving(1), instance("p-run", lifecycle=Lifecycle.POOL, health=TargetHealth.UNUSED)], 1,
             limits(warm_pool_size=1), NOW)  # fmt: skip
    assert p.to_pool == ("p-run",)
    assert p.launch_warming == ()


# --- health --------------------------------------------------------------------------------------


def test_unhealthy_within_grace_is_kept():
    sick = instance("i-sick", health=TargetHealth.UNHEALTHY, since=at(299))
    p = plan([*serving(1), sick], 2, limits(warm_pool_size=0), NOW)
    assert p.replace == ()
    assert p.launch == ()


@pytest.mark.parametrize("health", [TargetHealth.UNHEALTHY, TargetHealth.INITIAL, TargetHealth.UNUSED])
def test_unhealthy_past_grace_is_replaced_with_a_launch(health):
    sick = instance("i-sick", health=health, since=at(300), zone="b")
    p = plan([*serving(1, zones="a"), sick], 2, limits(warm_pool_size=0), NOW)
    assert p.replace == ("i-sick",)
    assert launched(p) == 1
    assert "i-sick" not in p.register + p.drain


def test_unhealthy_past_grace_is_replaced_from_the_pool():
    sick = instance("i-sick", health=TargetHealth.UNHEALTHY, since=at(1000))
    p = plan([*serving(1), sick, *pool(2)], 2, LIMITS, NOW)
    assert p.replace == ("i-sick",)
    assert len(p.start) == 1
    assert p.launch == ()


def test_grace_counts_from_launch_when_since_is_unknown():
    sick = instance("i-sick", health=TargetHealth.UNHEALTHY, launched=at(301))
    p = plan([*serving(1), sick], 2, limits(warm_pool_size=0), NOW)
    assert p.replace == ("i-sick",)


# --- registration --------------------------------------------------------------------------------


def test_register_lists_running_service_instances_not_in_the_target_group():
    fleet = [
        *serving(1),
        instance("i-new", health=TargetHealth.UNUSED, since=at(30)),
        instance("i-deregistered", health=TargetHealth.DRAINING, since=at(30)),
        instance("i-initial", health=TargetHealth.INITIAL, since=at(30)),
        instance("i-pending", state="pending", health=TargetHealth.UNUSED, since=at(30)),
    ]
    p = plan(fleet, 5, limits(warm_pool_size=0), NOW)
    assert set(p.register) == {"i-new", "i-deregistered"}


# --- properties ----------------------------------------------------------------------------------

STATES = {
    Lifecycle.SERVICE: ["running", "pending", "stopped", "stopping"],
    Lifecycle.POOL: ["stopped", "stopped", "running", "pending", "stopping"],
    Lifecycle.DRAINING: ["running", "stopped"],
    Lifecycle.WARMING: ["running", "pending", "stopped"],
}


@st.composite
def fleets(draw) -> list[Instance]:
    count = draw(st.integers(0, 12))
    result = []
    for n in range(count):
        lifecycle = draw(st.sampled_from(list(Lifecycle)))
        result.append(
            instance(
                f"i-{n:02d}",
                state=draw(st.sampled_from(STATES[lifecycle])),
                lifecycle=lifecycle,
                zone=draw(st.sampled_from("abc")),
                ready=draw(st.booleans()),
                health=draw(st.sampled_from(list(TargetHealth))),
                launched=draw(st.integers(0, 3600)),
                since=draw(st.one_of(st.none(), st.integers(0, 3600))),
            )
        )
    return result


@settings(max_examples=300, deadline=None)
@given(fleet=fleets(), desired=st.integers(0, 10), pool_size=st.integers(0, 3))
def test_plan_invariants(fleet, desired, pool_size):
    lim = limits(warm_pool_size=pool_size)
    p = plan(fleet, desired, lim, NOW)
    by_id = {i.instance_id: i for i in fleet}
    # only known, alive instances are acted on
    for name in ("reclaim", "start", "register", "drain", "replace", "to_pool", "terminate", "retag_pool"):
        for instance_id in getattr(p, name):
            assert by_id[instance_id].alive, (name, instance_id)
    # an instance is terminated at most once and never also kept
    assert len(p.terminate) == len(set(p.terminate))
    assert set(p.terminate).isdisjoint({*p.reclaim, *p.start, *p.to_pool, *p.register, *p.retag_pool})
    assert set(p.to_pool).isdisjoint({*p.start, *p.reclaim, *p.register})
    # serving capacity after the plan is exactly desired: reclaims, pool starts and launches fill the gap,
    # drains remove the excess, and never more than the excess
    service = [i for i in fleet if i.alive and i.lifecycle is Lifecycle.SERVICE and i.instance_id not in p.replace]
    pool_starts = [i for i in p.start if by_id[i].lifecycle is Lifecycle.POOL]
    after = len(service) + len(p.reclaim) + len(pool_starts) + launched(p) - len(p.drain)
    assert after == desired
    assert len(p.drain) <= max(0, len(service) - desired)
    assert not (p.drain and (p.reclaim or pool_starts or p.launch))
    assert all(subnet in lim.subnet_ids for subnet, _ in (*p.launch, *p.launch_warming))
    assert all(count > 0 for _, count in (*p.launch, *p.launch_warming))
    assert set(p.spare_pool).isdisjoint({*p.start, *p.terminate})


@settings(max_examples=200, deadline=None)
@given(fleet=fleets(), desired=st.integers(0, 10))
def test_plan_is_deterministic(fleet, desired):
    assert plan(fleet, desired, LIMITS, NOW) == plan(list(fleet), desired, LIMITS, NOW)
