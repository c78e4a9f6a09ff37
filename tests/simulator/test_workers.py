"""The worker model against the worker as built: processes per vCPU, a FIFO queue, timeouts."""

from __future__ import annotations

import random

import pytest

from simulator.traffic import BAD_GATEWAY, GATEWAY_TIMEOUT, OK_STATUS, UNAVAILABLE, TrafficEngine

pytestmark = pytest.mark.simulation


def engine(work: float = 0.5, processes: int = 1, hosts: int = 1, timeout: float = 60.0,
           algorithm: str = "least_outstanding_requests", background: float = 0.0) -> TrafficEngine:  # fmt: skip
    traffic = TrafficEngine(random.Random(7), lambda _rng: work, 0.0, algorithm, timeout)
    ids = [f"i-{n}" for n in range(hosts)]
    for host_id in ids:
        traffic.add_host(host_id, processes, background).up = True
    traffic.set_routable(0.0, ids)
    return traffic


def test_one_process_serves_in_arrival_order():
    traffic = engine()
    traffic.set_rate(0.0, 0.0, 0.0, 0.0)
    for t in (0.0, 0.1, 0.2):
        traffic._route(t, -1)  # three open-loop arrivals
    traffic.advance_to(10.0)
    assert list(traffic.log.latency) == pytest.approx([0.5, 0.9, 1.3])  # each waits for the one before
    assert list(traffic.log.status) == [OK_STATUS] * 3


def test_two_processes_serve_two_at_once():
    traffic = engine(processes=2)
    for t in (0.0, 0.1, 0.2):
        traffic._route(t, -1)
    traffic.advance_to(10.0)
    assert sorted(traffic.log.latency) == pytest.approx([0.5, 0.5, 0.8])


def test_closed_loop_clients_synchronise_on_a_fifo_worker():
    """With 1 s think time, FIFO clients fall into step: 2 clients keep one vCPU ~67 % busy (not the
    ~60 % of processor sharing), 3 keep it ~99 % busy."""
    for clients, expected in ((1, 0.336), (2, 0.67), (3, 0.99)):
        traffic = TrafficEngine(random.Random(3), lambda rng: rng.uniform(0.45, 0.55))
        traffic.add_host("i-1", 1, 0.0).up = True
        traffic.set_routable(0.0, ["i-1"])
        traffic.set_clients(0.0, clients, 1.0)
        warm = traffic.busy_seconds(100.0, "i-1")
        busy = traffic.busy_seconds(6000.0, "i-1") - warm
        assert busy / 5900.0 == pytest.approx(expected, abs=0.02), clients


def test_a_request_the_load_balancer_gave_up_on_still_costs_the_worker():
    traffic = engine(work=3.0, timeout=4.0)
    for t in (0.0, 0.0):
        traffic._route(t, -1)
    traffic.advance_to(2.0)
    assert traffic.outstanding("i-0") == 2
    traffic.advance_to(20.0)
    assert list(traffic.log.status) == [OK_STATUS, GATEWAY_TIMEOUT]  # the second waited 3 s + 3 s > 4 s
    assert list(traffic.log.latency) == pytest.approx([3.0, 4.0])
    assert traffic.busy_seconds(20.0, "i-0") == pytest.approx(6.0)  # both were served in full
    assert traffic.outstanding("i-0") == 0


def test_a_worker_going_down_fails_what_it_holds():
    traffic = engine(work=2.0)
    for t in (0.0, 0.1):
        traffic._route(t, -1)
    traffic.set_host_up(1.0, "i-0", False)
    assert list(traffic.log.status) == [BAD_GATEWAY, BAD_GATEWAY]
    assert traffic.busy_seconds(5.0, "i-0") == pytest.approx(1.0)  # served only until it went down
    traffic._route(2.0, -1)
    assert list(traffic.log.status)[-1] == BAD_GATEWAY  # still routed, but nobody answers


def test_no_target_is_a_503():
    traffic = engine()
    traffic.set_routable(0.0, [])
    traffic._route(1.0, -1)
    assert list(traffic.log.status) == [UNAVAILABLE]


def test_a_full_queue_is_a_503():
    traffic = engine(work=100.0)
    host = traffic.hosts["i-0"].host
    host.max_queue = 2
    for t in range(4):
        traffic._route(float(t), -1)
    assert list(traffic.log.status) == [UNAVAILABLE]  # one served, two queued, the fourth refused
    assert host.arrivals == 4  # every one reached the host: the request-rate metric counts them


def test_least_outstanding_requests_spreads_and_breaks_ties_at_random():
    traffic = engine(work=10.0, hosts=3)
    for t in range(3):
        traffic._route(float(t) / 10, -1)
    assert sorted(traffic.outstanding(f"i-{n}") for n in range(3)) == [1, 1, 1]
    chosen = set()
    for seed in range(20):
        fresh = engine(hosts=3)
        fresh.rng = random.Random(seed)
        fresh._route(0.0, -1)
        chosen.add(next(h for h in fresh.hosts if fresh.outstanding(h)))
    assert len(chosen) > 1


def test_reported_cpu_includes_the_background_share():
    traffic = engine(background=0.02)
    host = traffic.hosts["i-0"].host
    assert host.cpu_percent(0.0, 10.0, 1) == pytest.approx(2.0)  # idle: the background alone
    assert host.cpu_percent(10.0, 10.0, 1) == pytest.approx(100.0)
    assert host.wall(0.49) == pytest.approx(0.5)  # the worker gets 98 % of the vCPU
