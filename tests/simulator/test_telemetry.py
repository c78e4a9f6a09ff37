"""What each host publishes (worker/metrics_publisher.py): CPU, request rate, offered load, backlog
and shed requests, in one call every 10 s, with the fleet and the fleet + instance dimensions."""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from typing import Any

import pytest
import simpy

from awsfake.instances import Instance
from awsfake.metrics import MetricStore, metric_key
from simulator.ec2 import RUNNING, Ec2Model, Machine
from simulator.params import ModelParams
from simulator.telemetry import HostMetricNames, HostPublishers
from simulator.traffic import UNAVAILABLE, TrafficEngine

pytestmark = pytest.mark.simulation

Traffic = Generator[Any, Any, None]
NAMES = HostMetricNames("Autoscaler", "CPUUtilization", "RequestsPerMinute", "fleet")
HOST = "i-1"


def publishing(
    processes: int,
    work: Callable[[random.Random], float],
    traffic: Callable[[simpy.Environment, TrafficEngine], Traffic],
) -> tuple[simpy.Environment, TrafficEngine, MetricStore, Machine]:
    """One host in service from time 0, its publisher started then, and ``traffic`` as a process."""
    env = simpy.Environment()
    engine = TrafficEngine(random.Random(11), work)
    ec2 = Ec2Model(env, engine, ModelParams(), random.Random(1), processes, lambda _i: None, lambda _m: None)
    engine.add_host(HOST, processes, 0.0)
    engine.set_host_up(0.0, HOST, True)
    engine.set_routable(0.0, [HOST])
    machine = Machine(Instance(HOST, 0.0, state=RUNNING), "service", worker_up=True)
    store = MetricStore()
    HostPublishers(env, engine, ec2, store, ModelParams(), random.Random(2), NAMES).start(machine)
    env.process(traffic(env, engine))
    return env, engine, store, machine


def series(store: MetricStore, name: str, per_instance: bool = True) -> list[tuple[float, float, float]]:
    """(timestamp, value, visible at) of one metric."""
    dims = [("Fleet", "fleet"), ("InstanceId", HOST)] if per_instance else [("Fleet", "fleet")]
    s = store.series.get(metric_key("Autoscaler", name, dims))
    return [] if s is None else list(zip(s.times, s.values, s.visible, strict=True))


def test_offered_load_backlog_and_shed_in_the_same_publication_as_the_cpu():
    def burst(env: simpy.Environment, engine: TrafficEngine) -> Traffic:
        yield env.timeout(9.2)
        for _ in range(6):
            engine._route(9.2, -1)

    env, engine, store, _ = publishing(2, lambda _r: 0.5, burst)
    env.run(until=10.5)
    # At 10 s: two ran from 9.2 to 9.7, two run since 9.7, two wait: 2 x 0.5 s / 2 processes.
    assert series(store, "BacklogSeconds") == [(10.0, 0.5, pytest.approx(series(store, "CPUUtilization")[0][2]))]
    # The period's 6 arrivals x 0.5 s over 10 s of 2 processes.
    assert series(store, "OfferedLoad")[0][1] == pytest.approx(15.0)
    assert series(store, "RequestsPerMinute")[0][1] == pytest.approx(36.0)
    assert series(store, "ShedRequests")[0][1] == 0.0
    # One PutMetricData: every metric, both dimension sets, one timestamp, one visibility.
    stamps = {
        (t, visible)
        for name in ("CPUUtilization", "RequestsPerMinute", "OfferedLoad", "BacklogSeconds", "ShedRequests")
        for per_instance in (True, False)
        for t, _, visible in series(store, name, per_instance)
    }
    assert len(stamps) == 1
    assert engine.queued(10.5, HOST) == 0  # the last two started at 10.2 s: the reading was of 10 s


def test_offered_load_is_not_capped_at_100_and_shed_requests_add_up():
    """An open-loop rate of three times one vCPU's capacity (6/s of 0.5 s) reads ~300 %, while the
    CPU cannot pass 100 % and the budget keeps the backlog near 10 s: the rest is shed."""

    def overload(_env: simpy.Environment, engine: TrafficEngine) -> Traffic:
        engine.set_rate(0.0, 6.0, 600.0, 6.0)
        yield from ()

    env, engine, store, _ = publishing(1, lambda rng: rng.uniform(0.45, 0.55), overload)
    env.run(until=600.5)
    offered = [v for t, v, _ in series(store, "OfferedLoad") if t > 30]
    cpu = [v for t, v, _ in series(store, "CPUUtilization") if t > 30]
    backlog = [v for t, v, _ in series(store, "BacklogSeconds") if t > 30]
    shed = [v for _, v, _ in series(store, "ShedRequests")]
    assert sum(offered) / len(offered) == pytest.approx(300.0, rel=0.05)
    assert max(offered) > 250.0
    assert min(cpu) == pytest.approx(100.0)
    # Accepted only while (queued + 1) x mean <= 10 s, and refilled three times faster than served.
    assert all(8.5 <= b <= 10.0 for b in backlog)
    sent = list(engine.log.sent)
    refused = sum(1 for t, status in zip(sent, engine.log.status, strict=True) if status == UNAVAILABLE and t < 600.0)
    assert sum(shed) == refused == engine.hosts[HOST].host.shed
    assert sum(shed) / len(shed) == pytest.approx(40.0, rel=0.1)  # 60 arrive per period, 20 are served


def test_nothing_is_published_out_of_service():
    def idle(_env: simpy.Environment, _engine: TrafficEngine) -> Traffic:
        yield from ()

    env, _, store, machine = publishing(1, lambda _r: 0.5, idle)
    machine.lifecycle = "draining"
    env.run(until=30.5)
    assert store.series == {}


def test_every_host_measures_the_same_10_s_so_a_period_sums_what_arrived_in_it():
    """A load moving to a host whose services started 13 s after the first's. On schedules of
    their own, the period CloudWatch files at 30 s summed the first host's 20-30 s and the
    second's 23-33 s: 13 s of arrivals, the load that moved counted twice."""
    env = simpy.Environment()
    engine = TrafficEngine(random.Random(11), lambda _r: 0.1)
    ec2 = Ec2Model(env, engine, ModelParams(), random.Random(1), 1, lambda _i: None, lambda _m: None)
    store = MetricStore()
    publishers = HostPublishers(env, engine, ec2, store, ModelParams(), random.Random(2), NAMES)
    for host in ("i-1", "i-2"):
        engine.add_host(host, 1, 0.0)
        engine.set_host_up(0.0, host, True)
    engine.set_routable(0.0, ["i-1"])
    publishers.start(Machine(Instance("i-1", 0.0, state=RUNNING), "service", worker_up=True))

    def second_host(env: simpy.Environment) -> Traffic:
        yield env.timeout(13.0)
        publishers.start(Machine(Instance("i-2", 13.0, state=RUNNING), "service", worker_up=True))
        yield env.timeout(12.0)
        engine.set_routable(25.0, ["i-2"])

    def one_a_second(env: simpy.Environment) -> Traffic:
        yield env.timeout(0.5)
        while True:
            engine._route(env.now, -1)
            yield env.timeout(1.0)

    env.process(second_host(env))
    env.process(one_a_second(env))
    env.run(until=60.5)
    per_period: dict[float, float] = {}
    for host in ("i-1", "i-2"):
        key = metric_key("Autoscaler", "RequestsPerMinute", [("Fleet", "fleet"), ("InstanceId", host)])
        for t, value in zip(store.series[key].times, store.series[key].values, strict=True):
            period = t - t % 10.0  # where CloudWatch files a datapoint of a 10 s metric
            per_period[period] = per_period.get(period, 0.0) + value
    assert per_period == {t: pytest.approx(60.0) for t in (10.0, 20.0, 30.0, 40.0, 50.0, 60.0)}
