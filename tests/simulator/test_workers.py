"""The worker model against the worker as built: processes per vCPU, a FIFO queue, timeouts, shedding."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from fleet_template.cfn import TemplateError
from simulator.deployment import QUEUE_BUDGET_PARAMETER, build_deployment, load_template, queue_budget_of
from simulator.traffic import BAD_GATEWAY, GATEWAY_TIMEOUT, OK_STATUS, UNAVAILABLE, TrafficEngine
from simulator.workers import QUEUE_BUDGET_SECONDS

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


# -- shedding by a time budget (worker/server.py --queue-budget) ------------------------------------


def test_a_request_whose_expected_wait_exceeds_the_budget_is_shed_at_once():
    traffic = engine(work=0.5)
    host = traffic.hosts["i-0"].host
    host.queue_budget = 2.0
    for _ in range(7):
        traffic._route(0.0, -1)
    # One runs; the expected wait of the next ones is (queued ahead + 1) x 0.5 s: 0.5, 1.0, 1.5,
    # 2.0 (not over the budget), then 2.5: the sixth and seventh are answered 503 at once.
    assert list(traffic.log.status) == [UNAVAILABLE, UNAVAILABLE]
    assert list(traffic.log.latency) == [0.0, 0.0]
    assert (host.budget_shed, host.rejected, host.shed, host.arrivals) == (2, 0, 2, 7)
    assert traffic.queued(0.0, "i-0") == 4
    traffic.advance_to(0.6)  # the first finished, the second started: room for one more
    traffic._route(0.6, -1)
    traffic._route(0.6, -1)
    assert host.budget_shed == 3
    traffic.advance_to(60.0)
    statuses = list(traffic.log.status)
    assert statuses.count(OK_STATUS) == 6 and statuses.count(UNAVAILABLE) == 3


def test_the_budget_is_shared_by_the_processes():
    traffic = engine(work=0.5, processes=2)
    host = traffic.hosts["i-0"].host
    host.queue_budget = 1.0
    for _ in range(7):
        traffic._route(0.0, -1)
    # Two run; queued ahead 0..3 wait 0.25..1.0 s (accepted), the seventh 1.25 s (shed).
    assert list(traffic.log.status) == [UNAVAILABLE]
    assert traffic.queued(0.0, "i-0") == 4


def test_a_full_queue_is_counted_apart_from_the_budget():
    traffic = engine(work=0.5)
    host = traffic.hosts["i-0"].host
    host.max_queue, host.queue_budget = 1, 0.9
    for _ in range(3):
        traffic._route(0.0, -1)  # runs; queued (wait 0.5 s); queue full (checked before the budget)
    assert (host.rejected, host.budget_shed) == (1, 0)
    host.max_queue = 5
    traffic._route(0.0, -1)  # one queued ahead: 1.0 s > 0.9 s
    assert (host.rejected, host.budget_shed, host.shed) == (1, 1, 2)


def test_the_mean_service_time_is_the_workers_moving_average_of_completed_requests():
    traffic = engine(work=1.0)
    host = traffic.hosts["i-0"].host
    assert host.mean_service == 0.5  # nominal before anything completed
    traffic._route(0.0, -1)
    traffic.advance_to(0.99)
    assert host.mean_service == 0.5  # measured on completion only
    for n in range(1, 31):
        traffic.advance_to(float(n))
        assert host.mean_service == pytest.approx(1.0 - 0.5 * 0.9**n)
        traffic._route(float(n), -1)
    # The estimate (0.98 s) drives the shedding: (10 queued ahead + 1) x 0.98 s > 10 s, where the
    # nominal 0.5 s would have queued 19.
    for _ in range(12):
        traffic._route(30.0, -1)
    assert traffic.queued(30.0, "i-0") == 10
    assert host.budget_shed == 2
    traffic.set_host_up(31.0, "i-0", False)
    assert host.mean_service == 0.5  # a restarted worker measures afresh


def test_a_request_the_client_gave_up_on_is_still_measured_and_still_queued():
    traffic = engine(work=3.0, timeout=4.0)
    host = traffic.hosts["i-0"].host
    for _ in range(3):
        traffic._route(0.0, -1)
    traffic.advance_to(5.0)  # the second and third timed out (504) but the worker still holds them
    assert list(traffic.log.status) == [OK_STATUS, GATEWAY_TIMEOUT, GATEWAY_TIMEOUT]
    assert traffic.queued(5.0, "i-0") == 1
    assert host.mean_service == pytest.approx(0.75)  # 0.5 + 0.1 x (3 - 0.5)
    traffic.advance_to(6.0)  # the second, its client gone, completes on the worker all the same
    assert host.mean_service == pytest.approx(0.975)  # 0.75 + 0.1 x (3 - 0.75)


# -- the budget reaches the hosts from the template --------------------------------------------------

ROOT = Path(__file__).parents[2]
SUPPLIED = {"VpcId": "vpc-twin", "SubnetIds": ["subnet-a", "subnet-b"]}


def test_the_hosts_budget_is_the_templates_parameter_else_the_workers_default():
    template = ROOT / "template.yaml"
    assert build_deployment(load_template(template, {}, SUPPLIED)).queue_budget == 10.0  # the template's default
    overridden = load_template(template, {QUEUE_BUDGET_PARAMETER: "2.5"}, SUPPLIED)
    assert build_deployment(overridden).queue_budget == 2.5
    with pytest.raises(TemplateError, match="WorkerQueueBudgetSeconds: '0' is below MinValue 1"):
        build_deployment(load_template(template, {QUEUE_BUDGET_PARAMETER: "0"}, SUPPLIED))
    # A template without the parameter deploys workers at their own default (worker/server.py),
    # and one whose parameter allows a budget the worker refuses is refused here too.
    assert queue_budget_of({}) == QUEUE_BUDGET_SECONDS == 10.0
    with pytest.raises(TemplateError, match="WorkerQueueBudgetSeconds must be a positive number of seconds, got '0'"):
        queue_budget_of({QUEUE_BUDGET_PARAMETER: "0"})


def test_the_engine_gives_its_hosts_the_budget():
    traffic = TrafficEngine(random.Random(1), lambda _r: 0.5, queue_budget=3.0)
    assert traffic.add_host("i-9", 2, 0.0).queue_budget == 3.0


@pytest.mark.parametrize("queued", [0, 1, 3, 19, 20, 21, 200])
@pytest.mark.parametrize("mean", [0.45, 0.5, 0.9])
@pytest.mark.parametrize("processes", [1, 2, 4])
def test_the_twins_worker_arithmetic_is_the_workers(queued: int, mean: float, processes: int):
    """The twin models worker/ (not an installed package, so not imported by the twin): the same
    constants, shedding rule, backlog and offered load, input by input."""
    from simulator import workers as twin
    from worker import metrics_publisher, shedding
    from worker.server import Config

    assert (Config.queue_budget, Config.max_queue) == (twin.QUEUE_BUDGET_SECONDS, twin.MAX_QUEUE)
    assert (twin.NOMINAL_SERVICE_SECONDS, twin.EWMA_ALPHA) == (shedding.NOMINAL_SERVICE_SECONDS, shedding.EWMA_ALPHA)
    for budget in (1.0, 4.0, 10.0):
        assert twin.should_shed(queued, mean, processes, budget) == shedding.should_shed(
            queued, mean, processes, budget
        )
    assert twin.backlog_seconds(queued, mean, processes) == shedding.backlog_seconds(queued, mean, processes)
    assert twin.offered_load_percent(queued, mean, 10.0, processes) == metrics_publisher.offered_load_percent(
        queued, mean, 10.0, processes
    )
    ours, theirs = twin.ServiceTimeEwma(), shedding.ServiceTimeEwma()
    for sample in (mean, 2 * mean, -1.0, 0.3):
        assert ours.observe(sample) == theirs.observe(sample)


@pytest.mark.parametrize("now", [0.0, 3.0, 5.0, 5.1, 9.999, 10.0, 1_767_225_612.25])
def test_the_twins_publisher_schedule_is_the_publishers(now: float):
    from simulator import workers as twin
    from worker import metrics_publisher

    assert twin.next_boundary(now, 10.0) == metrics_publisher.next_boundary(now, 10.0)
    assert twin.PUT_SPREAD_SHARE == metrics_publisher.PUT_SPREAD_SHARE
