"""The processor-sharing worker model against closed-loop mean-value analysis (shared notes)."""

from __future__ import annotations

import random

import pytest

from simulator.traffic import TrafficEngine
from simulator.workers import PSWorker

pytestmark = pytest.mark.simulation


def mva(n: int, service: float = 0.5, think: float = 1.0) -> tuple[float, float]:
    """Exact MVA for one queue (PS = FCFS in means for exponential; here a reference)."""
    queue = 0.0
    response = throughput = 0.0
    for k in range(1, n + 1):
        response = service * (1 + queue)
        throughput = k / (response + think)
        queue = throughput * response
    return throughput * service, response


@pytest.mark.parametrize(("clients", "notes_utilisation"), [(1, 0.33), (2, 0.60), (3, 0.79), (4, 0.90)])
def test_closed_loop_utilisation_matches_mva(clients: int, notes_utilisation: float):
    engine = TrafficEngine(random.Random(3))
    worker = engine.add_worker("i-1", 1)
    worker.up = True
    engine.set_routable(0.0, ["i-1"])
    engine.set_clients(0.0, clients, 1.0)
    horizon = 6000.0
    engine.advance_to(horizon)
    utilisation = worker.cpu_seconds(horizon) / horizon
    assert utilisation == pytest.approx(notes_utilisation, abs=0.025)
    assert utilisation == pytest.approx(mva(clients)[0], abs=0.03)


def test_processor_sharing_is_exact_for_two_jobs():
    worker = PSWorker(1)
    worker.up = True
    worker.add(0.0, 1.0, 0.0, 1)
    worker.add(0.0, 0.5, 0.0, 2)
    assert worker.next_completion() == pytest.approx(1.0)  # both at half speed: 0.5 of work takes 1 s
    assert worker.complete(1.0)[3] == 2
    assert worker.next_completion() == pytest.approx(1.5)  # the rest of job 1 at full speed
    assert worker.cpu_seconds(1.5) == pytest.approx(1.5)


def test_two_vcpus_serve_two_jobs_at_full_speed():
    worker = PSWorker(2)
    worker.add(0.0, 1.0, 0.0, 1)
    worker.add(0.0, 1.0, 0.0, 2)
    assert worker.next_completion() == pytest.approx(1.0)
    worker.add(0.0, 1.0, 0.0, 3)
    assert worker.next_completion() == pytest.approx(1.5)


def test_open_loop_rate_and_errors_without_targets():
    engine = TrafficEngine(random.Random(1))
    engine.set_rate(0.0, 2.0, 1000.0, 2.0)
    engine.advance_to(1000.0)
    assert len(engine.log.sent) == pytest.approx(2000, rel=0.1)
    assert all(latency < 0 for latency in engine.log.latency)  # 503: nothing registered


def test_worker_going_down_fails_requests_in_flight():
    engine = TrafficEngine(random.Random(1))
    worker = engine.add_worker("i-1", 1)
    worker.up = True
    engine.set_routable(0.0, ["i-1"])
    engine.set_clients(0.0, 2, 1.0)
    engine.advance_to(1.2)
    in_flight = worker.in_flight
    engine.set_worker_up(1.2, "i-1", False)
    assert worker.in_flight == 0
    assert sum(1 for latency in engine.log.latency if latency < 0) == in_flight
