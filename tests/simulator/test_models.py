"""The twin's models of EC2, the target group, Lambda, and its modelled parameters."""

from __future__ import annotations

import io
import json
import logging
import random
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any

import pytest
import simpy

from simulator.balancer import Balancer
from simulator.deployment import FunctionSpec, HealthCheck
from simulator.ec2 import Ec2Model
from simulator.lambdas import LambdaModel, VirtualClock
from simulator.params import SPECS, ModelParams, Span
from simulator.traffic import TrafficEngine

pytestmark = pytest.mark.simulation

FIXED = ModelParams().with_overrides(
    {
        "launch_pending_seconds": 10, "start_pending_seconds": 8, "boot_seconds": 5, "install_seconds": 100,
        "worker_start_seconds": 3, "stop_seconds": 30, "terminate_seconds": 20, "ec2_consistency_seconds": 4,
        "registration_seconds": 6, "lambda_cold_seconds": 1, "lambda_warm_seconds": 0.01,
    }
)  # fmt: skip


def ec2_model(env: simpy.Environment, ready: list[str] | None = None) -> Ec2Model:
    traffic = TrafficEngine(random.Random(1), lambda _r: 0.5)
    sink = ready if ready is not None else []
    return Ec2Model(env, traffic, FIXED, random.Random(1), 1, sink.append, lambda _m: None)


# --- EC2 ---------------------------------------------------------------------------------------


def test_a_launch_passes_through_pending_and_installs_once():
    env = simpy.Environment()
    ready: list[str] = []
    model = ec2_model(env, ready)
    model.launched("i-1", "warming")
    machine = model.machines["i-1"]
    assert machine.state == "pending"
    env.run(until=9.9)
    assert machine.state == "pending"
    env.run(until=10.1)
    assert machine.state == "running"
    env.run(until=114.9)  # + 5 s boot + 100 s install
    assert not machine.worker_up and ready == []
    env.run(until=115.1)
    assert machine.worker_up and ready == ["i-1"]
    assert model.billed_seconds(115.0) == pytest.approx(105.0)  # only `running` is billed


def test_the_api_does_not_know_a_new_instance_for_a_few_seconds():
    env = simpy.Environment()
    model = ec2_model(env)
    model.launched("i-1", "service")
    assert model.unknown(["i-1", "i-old"]) == ["i-1"]
    env.run(until=4.1)
    assert model.unknown(["i-1"]) == []


def test_stop_and_start_take_time_and_refuse_the_wrong_state():
    env = simpy.Environment()
    model = ec2_model(env)
    model.launched("i-1", "service")
    assert model.refuse("stop", ["i-1"]) is not None  # still pending
    env.run(until=200)
    model.stopped("i-1")
    machine = model.machines["i-1"]
    assert (machine.state, machine.worker_up) == ("stopping", False)
    assert "can be started" in (model.refuse("start", ["i-1"]) or "")  # IncorrectInstanceState
    env.run(until=231)
    assert machine.state == "stopped"
    assert model.refuse("start", ["i-1"]) is None
    model.started("i-1")
    env.run(until=231 + 8 + 5 + 3 + 0.1)  # pending, boot, worker start (installed already)
    assert machine.state == "running" and machine.worker_up


def test_terminate_passes_through_shutting_down():
    env = simpy.Environment()
    model = ec2_model(env)
    model.launched("i-1", "service")
    env.run(until=50)
    model.terminated("i-1")
    assert model.machines["i-1"].state == "shutting-down"
    env.run(until=71)
    assert model.machines["i-1"].state == "terminated"
    assert model.refuse("terminate", ["i-1"]) is None  # terminating twice is harmless


def ready_times(order: list[tuple[str, str]], paired: str | None) -> dict[str, float]:
    """When each instance of ``order`` (id, lifecycle), launched 1 s apart, is ready: its draws
    from the modelled ranges (launch pending, boot and install vary)."""
    env = simpy.Environment()
    ranged = ModelParams().with_overrides({"ec2_consistency_seconds": 1})
    ready: dict[str, float] = {}
    model = Ec2Model(env, TrafficEngine(random.Random(1), lambda _r: 0.5), ranged, random.Random(1), 1,
                     lambda i: ready.setdefault(i, env.now), lambda _m: None, paired=paired)  # fmt: skip
    for k, (instance_id, lifecycle) in enumerate(order):
        if k:
            env.run(until=float(k))
        model.launched(instance_id, lifecycle)
    env.run(until=2000)
    return {i: ready[i] - k for k, (i, _) in enumerate(order)}


def test_paired_draws_give_the_kth_instance_of_a_lifecycle_the_same_timings_whatever_came_between():
    """Two policies on one seed launch in different orders: with paired draws the second service
    instance boots and installs in the same time either way (common random numbers)."""
    alone = ready_times([("i-a", "service"), ("i-b", "service")], paired="7")
    refill_between = ready_times([("i-a", "service"), ("i-p", "warming"), ("i-b", "service")], paired="7")
    assert refill_between["i-a"] == pytest.approx(alone["i-a"])
    assert refill_between["i-b"] == pytest.approx(alone["i-b"])
    assert alone["i-a"] != alone["i-b"]  # each its own draws, not one figure for all
    shared = ready_times([("i-a", "service"), ("i-p", "warming"), ("i-b", "service")], paired=None)
    assert shared["i-b"] != ready_times([("i-a", "service"), ("i-b", "service")], paired=None)["i-b"]


# --- the target group --------------------------------------------------------------------------


def balancer(env: simpy.Environment, up: set[str], health: HealthCheck | None = None) -> tuple[Balancer, TrafficEngine]:
    traffic = TrafficEngine(random.Random(1), lambda _r: 0.5)
    for host in ("i-1", "i-2"):
        traffic.add_host(host, 1, 0.0).up = True
    check = health or HealthCheck(interval=5, healthy_threshold=2, unhealthy_threshold=2, deregistration_delay=30)
    return Balancer(env, traffic, check, FIXED, random.Random(1), up.__contains__, lambda: None), traffic


def test_a_registered_target_is_initial_until_registration_and_one_check_pass():
    env = simpy.Environment()
    lb, traffic = balancer(env, {"i-1"})
    lb.register("i-1", 30000)
    assert lb.state_of("i-1") == "initial"
    assert lb.describe(["i-1"])[0]["TargetHealth"]["Reason"] == "Elb.RegistrationInProgress"
    env.run(until=6.0)
    assert lb.state_of("i-1") == "initial"  # registration takes 6 s, then a check within 5 s
    env.run(until=11.1)
    assert lb.state_of("i-1") == "healthy"
    assert traffic.routable == ["i-1"]


def test_draining_waits_for_the_kept_alive_connection():
    env = simpy.Environment()
    lb, traffic = balancer(env, {"i-1", "i-2"})
    lb.register("i-1", 30000)
    lb.register("i-2", 30000)
    env.run(until=20)
    traffic._route(20.0, -1)  # a request on one of them, answered at 20.5
    traffic._route(20.0, -1)
    env.run(until=21)
    lb.deregister("i-1")
    assert lb.state_of("i-1") == "draining"
    assert traffic.routable == ["i-2"]
    env.run(until=50.5)  # the ALB's connection stays open (idle timeout 60 s): the full 30 s delay
    assert lb.state_of("i-1") == "draining"
    env.run(until=52)
    assert lb.state_of("i-1") == "unused"


def test_a_target_that_never_served_drains_at_once():
    env = simpy.Environment()
    lb, _ = balancer(env, {"i-1"})
    lb.register("i-1", 30000)
    env.run(until=20)
    lb.deregister("i-1")
    env.run(until=21.5)
    assert lb.state_of("i-1") == "unused"


def test_fail_open_when_no_target_is_healthy():
    env = simpy.Environment()
    lb, traffic = balancer(env, set())
    lb.register("i-1", 30000)
    lb.register("i-2", 30000)
    env.run(until=40)
    assert {lb.state_of("i-1"), lb.state_of("i-2")} == {"unhealthy"}
    assert traffic.routable == ["i-1", "i-2"]


# --- Lambda ------------------------------------------------------------------------------------


def lambda_model(env: simpy.Environment, timeout: float = 120.0) -> tuple[LambdaModel, FunctionSpec]:
    model = LambdaModel(env, FIXED, random.Random(1))
    spec = FunctionSpec("F", "fn", "arn:fn", "handlers.reconcile.handler", {}, None, (), (), timeout=timeout,
                        maximum_event_age=900)  # fmt: skip
    return model, spec


def test_invocations_interleave_at_their_waits():
    env = simpy.Environment()
    clock = VirtualClock(env, datetime(2026, 1, 1, tzinfo=UTC))
    model, spec = lambda_model(env)
    seen: list[tuple[str, float]] = []

    def handler(event: dict[str, Any]) -> str:
        seen.append((event["name"], env.now))
        clock.sleep(10)  # an API call, or waiting for the lease
        seen.append((event["name"], env.now))
        return event["name"]

    model.add(spec, handler)
    model.invoke_async("arn:fn", {"name": "a"})
    model.invoke_async("arn:fn", {"name": "b"}, delay=2.0)
    env.run(until=100)
    # b starts while a waits, and sees the world 2 s later; a resumes 10 s after it started.
    assert seen == [("a", 1.0), ("b", 3.0), ("a", 11.0), ("b", 13.0)]
    assert [r.cold for r in model.invocations] == [True, True]  # a was busy: b needed its own


def test_interleaved_invocations_log_with_their_own_keys():
    """In Lambda each invocation has its own execution environment, hence its own logger keys;
    here they share one process, so a correlation id set by one must not label the other's lines."""
    from aws_lambda_powertools import Logger

    from simulator.lambdas import LoggerKeys

    env = simpy.Environment()
    clock = VirtualClock(env, datetime(2026, 1, 1, tzinfo=UTC))
    out = io.StringIO()
    logger = Logger(service="twin-test", level="INFO", logger_handler=logging.StreamHandler(out))
    model = LambdaModel(env, FIXED, random.Random(1), LoggerKeys(logger))
    _, spec = lambda_model(env)

    def handler(event: dict[str, Any]) -> None:
        logger.set_correlation_id(event["name"])
        clock.sleep(10)  # b starts, and sets its own id, while a waits
        logger.info("decided", extra={"run": event["name"]})

    model.add(spec, handler)
    model.invoke_async("arn:fn", {"name": "a"})
    model.invoke_async("arn:fn", {"name": "b"}, delay=2.0)
    env.run(until=100)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["run"], line["correlation_id"]) for line in lines] == [("a", "a"), ("b", "b")]


def test_an_invocation_past_its_timeout_is_stopped_where_it_is_and_retried():
    env = simpy.Environment()
    clock = VirtualClock(env, datetime(2026, 1, 1, tzinfo=UTC))
    model, spec = lambda_model(env, timeout=5)
    progress: list[str] = []

    def handler(event: dict[str, Any]) -> None:
        progress.append("started")
        try:
            clock.sleep(60)
            progress.append("woke")  # never: Lambda stopped it
        finally:
            progress.append("finally")
            clock.sleep(1)  # an API call in a finally block does not run either
            progress.append("after the call in finally")

    model.add(spec, handler)
    model.invoke_async("arn:fn", {})
    env.run(until=600)
    assert [r.error for r in model.invocations][:1] == ["Task timed out after 5 seconds"]
    assert len(model.invocations) == 3  # the first attempt and Lambda's two retries
    assert progress.count("woke") == 0 and progress.count("after the call in finally") == 0


def test_the_clock_sleeps_only_inside_an_invocation():
    env = simpy.Environment()
    clock = VirtualClock(env, datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(RuntimeError, match="inside an invocation"):
        clock.sleep(1)


# --- modelled parameters -----------------------------------------------------------------------


def test_every_parameter_has_a_range_and_a_source():
    names = {f.name for f in fields(ModelParams)} - {"vcpus"}
    assert names == set(SPECS)
    for name, spec in SPECS.items():
        assert spec.low <= spec.high, name
        assert len(spec.source) > 20, name
        default = getattr(ModelParams(), name)
        if isinstance(default, Span):
            assert (default.low, default.high) == (spec.low, spec.high), name
        else:
            assert spec.low <= default <= spec.high, name


def test_overrides_pin_or_set_a_range():
    params = ModelParams().with_overrides({"install_seconds": [100, 200], "request_overhead_ms": 3})
    assert params.install_seconds == Span(100, 200)
    assert params.request_overhead_ms == 3
    assert params.ranges({"request_overhead_ms": [1, 2]})["request_overhead_ms"] == (1, 2)
    with pytest.raises(ValueError, match="unknown model parameter"):
        ModelParams().with_overrides({"nope": 1})
    with pytest.raises(ValueError, match="low <= high"):
        ModelParams().with_overrides({"install_seconds": [200, 100]})


def test_drawn_parameters_stay_in_their_ranges_and_follow_the_seed():
    a = ModelParams().drawn(random.Random(5))
    b = ModelParams().drawn(random.Random(5))
    assert a == b
    for name, (low, high) in ModelParams().ranges().items():
        assert low <= getattr(a, name) <= high
    assert replace(a, vcpus=1) != ModelParams().drawn(random.Random(6))


def test_the_documented_parameter_table_is_the_code_s():
    from pathlib import Path

    from simulator.params import markdown_table

    doc = (Path(__file__).parents[2] / "docs" / "simulator.md").read_text(encoding="utf-8")
    documented = doc.split("<!-- params:begin -->\n", 1)[1].split("\n<!-- params:end -->", 1)[0]
    assert documented == markdown_table(), "regenerate with: python -m simulator params"
