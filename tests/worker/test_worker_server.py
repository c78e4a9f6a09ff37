"""The worker over real HTTP: a real ``python -m worker`` process on a free loopback port."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from tests.helpers_worker import (
    RunningWorker,
    child_pids,
    http_get,
    running_worker,
    timed_get,
    wait_until,
)
from worker.metrics_publisher import WorkerStats, read_stats
from worker.server import Config, build_parser, config_from_args, http_response, main, proxy_read_timeout
from worker.shedding import NOMINAL_SERVICE_SECONDS

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def worker() -> Iterator[RunningWorker]:
    with running_worker(processes=2) as running:
        yield running


def test_work_returns_result_and_measured_duration(worker: RunningWorker) -> None:
    status, body, elapsed = timed_get(worker.host, worker.port, "/work")
    assert status == 200
    payload = json.loads(body)
    assert isinstance(payload["result"], int)
    assert payload["iterations"] > 0
    assert 0.45 <= payload["target"] <= 0.55
    assert payload["target"] <= payload["duration"] <= payload["target"] + 0.05
    assert elapsed >= payload["duration"] * 0.9


def test_ping_404_and_405(worker: RunningWorker) -> None:
    assert http_get(f"{worker.url}/ping") == (200, b"pong")
    assert http_get(f"{worker.url}/ping?probe=alb")[1] == b"pong"
    assert http_get(f"{worker.url}/")[0] == 404
    assert http_get(f"{worker.url}/work/extra")[0] == 404
    assert http_get(f"{worker.url}/work", method="POST")[0] == 405


def test_stats_count_the_work_requests_that_arrived() -> None:
    with running_worker(processes=1) as worker:
        status, body = http_get(f"{worker.url}/stats")
        assert status == 200
        before = json.loads(body)
        assert before["healthy"] is True
        assert before["work_requests"] == 0
        assert before["mean_service_seconds"] == NOMINAL_SERVICE_SECONDS  # nothing measured yet
        assert before["shed"] == before["rejected"] == before["backlog_seconds"] == 0
        assert http_get(f"{worker.url}/work")[0] == 200
        assert http_get(f"{worker.url}/work", method="POST")[0] == 405  # arrived, refused: still demand

        def stats() -> dict[str, int]:
            return dict(json.loads(http_get(f"{worker.url}/stats")[1]))

        # The worker process answers the client, then tells the supervisor it is done: "served"
        # follows the answer by a moment ("work_requests", what the publisher sends, does not).
        assert wait_until(lambda: stats()["served"] == 1, timeout=5)
        after = stats()
        assert after["work_requests"] == 2
        assert after["served"] == 1
        assert after["in_flight"] == 0
        assert after["queued"] == 0
        assert after["processes"] == 1
        # One completion moved the average by alpha x (measured - 0.5): measured >= the 0.45 s
        # burn, and within the 10 s request timeout.
        assert 0.495 <= after["mean_service_seconds"] <= 0.5 + 0.1 * 9.5
        assert http_get(f"{worker.url}/stats", method="POST")[0] == 405
        # What the metric publisher reads.
        assert read_stats(f"{worker.url}/stats") == WorkerStats(
            healthy=True,
            work_requests=2,
            shed=0,
            rejected=0,
            queued=0,
            processes=1,
            mean_service_seconds=after["mean_service_seconds"],
        )


def _hammer(worker: RunningWorker, stop: threading.Event, statuses: list[int]) -> None:
    while not stop.is_set():
        status, _body, _elapsed = timed_get(worker.host, worker.port, "/work")
        statuses.append(status)


def test_ping_stays_fast_while_every_slot_is_busy(worker: RunningWorker) -> None:
    stop = threading.Event()
    statuses: list[int] = []
    clients = [threading.Thread(target=_hammer, args=(worker, stop, statuses)) for _ in range(4)]
    for client in clients:
        client.start()
    try:
        time.sleep(0.3)  # both processes busy, two requests queued
        latencies = []
        for _ in range(40):
            status, body, elapsed = timed_get(worker.host, worker.port, "/ping")
            assert (status, body) == (200, b"pong")
            latencies.append(elapsed)
            time.sleep(0.03)
    finally:
        stop.set()
        for client in clients:
            client.join(10)
    latencies.sort()
    assert latencies[-1] < 0.5, latencies  # the benchmark measures p99 ~ a few ms
    assert statuses and set(statuses) == {200}
    assert len(statuses) >= 4  # /work kept flowing while we pinged


def test_crashed_worker_is_replaced_and_in_flight_request_gets_502() -> None:
    with running_worker(processes=2, work_min=1.0, work_max=1.0) as worker:
        before = child_pids(worker.proc.pid)
        assert len(before) == 2
        os.kill(before[0], signal.SIGKILL)  # an idle one
        assert wait_until(lambda: len(set(child_pids(worker.proc.pid)) - {before[0]}) == 2, timeout=5)
        assert http_get(f"{worker.url}/ping") == (200, b"pong")

        results: list[tuple[int, bytes, float]] = []
        thread = threading.Thread(target=lambda: results.append(timed_get(worker.host, worker.port, "/work")))
        thread.start()
        time.sleep(0.3)
        for pid in child_pids(worker.proc.pid):
            os.kill(pid, signal.SIGKILL)  # the busy one among them
        thread.join(10)
        assert results[0][0] == 502
        assert wait_until(lambda: len(child_pids(worker.proc.pid)) == 2, timeout=5)
        status, body, _ = timed_get(worker.host, worker.port, "/work")
        assert status == 200
        assert json.loads(body)["pid"] in child_pids(worker.proc.pid)


def test_stuck_request_is_killed_after_the_timeout() -> None:
    with running_worker(processes=1, work_min=5.0, work_max=5.0, request_timeout=1.0) as worker:
        first = child_pids(worker.proc.pid)
        status, body, elapsed = timed_get(worker.host, worker.port, "/work")
        assert status == 504, body
        assert 0.9 <= elapsed < 3.0
        assert wait_until(lambda: child_pids(worker.proc.pid) not in ([], first), timeout=5)
        assert http_get(f"{worker.url}/ping") == (200, b"pong")


def test_sigterm_drains_in_flight_requests_then_exits() -> None:
    with running_worker(processes=2, work_min=1.0, work_max=1.0) as worker:
        results: list[tuple[int, bytes, float]] = []
        threads = [
            threading.Thread(target=lambda: results.append(timed_get(worker.host, worker.port, "/work")))
            for _ in range(3)  # two in flight, one queued
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        worker.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        with pytest.raises(ConnectionRefusedError):
            timed_get(worker.host, worker.port, "/ping", timeout=2)
        for thread in threads:
            thread.join(10)
        assert [r[0] for r in results] == [200, 200, 200]
        assert worker.proc.wait(10) == 0
        assert child_pids(worker.proc.pid) == []


def _burst(worker: RunningWorker, count: int) -> list[tuple[int, dict[str, str], bytes, float]]:
    """``count`` concurrent GET /work: status, headers, body, seconds of each."""
    results: list[tuple[int, dict[str, str], bytes, float]] = []
    lock = threading.Lock()
    start = threading.Barrier(count)

    def one() -> None:
        start.wait()
        began = time.perf_counter()
        conn = http.client.HTTPConnection(worker.host, worker.port, timeout=30)
        try:
            conn.request("GET", "/work")
            response = conn.getresponse()
            body = response.read()
            with lock:
                results.append((response.status, dict(response.getheaders()), body, time.perf_counter() - began))
        finally:
            conn.close()

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_overload_sheds_at_once_with_retry_after_while_accepted_requests_are_served() -> None:
    # One process, 0.3 s per /work, a 1.2 s budget: with the nominal 0.5 s mean, the queue takes
    # requests while (ahead + 1) x 0.5 <= 1.2, i.e. 2 queued behind the one in flight.
    with running_worker(processes=1, work_min=0.3, work_max=0.3, extra_args=("--queue-budget", "1.2")) as worker:
        results = _burst(worker, 16)
        statuses = sorted(r[0] for r in results)
        assert set(statuses) == {200, 503}, statuses
        served = [r for r in results if r[0] == 200]
        shed = [r for r in results if r[0] == 503]
        assert len(served) >= 3  # the one in flight and the queue within the budget
        assert shed
        for _status, headers, body, elapsed in shed:
            payload = json.loads(body)
            assert payload["error"] == "over queue budget"
            retry_after = int(headers["Retry-After"])
            assert retry_after >= 1
            assert payload["retry_after"] == retry_after
            assert payload["expected_wait"] > payload["queue_budget"] == 1.2
            assert elapsed < 2.0  # answered at once, not after the queue (sanity bound only)
        # Accepted requests waited their turn and got their work done.
        assert all(json.loads(body)["duration"] >= 0.3 for _s, _h, body, _e in served)

        def stats() -> dict[str, object]:
            return dict(json.loads(http_get(f"{worker.url}/stats")[1]))

        assert wait_until(lambda: stats()["served"] == len(served), timeout=10)
        after = stats()
        assert after["shed"] == len(shed)
        assert after["rejected"] == 0  # shed is counted apart from "queue full"
        assert after["work_requests"] == 16
        assert after["queued"] == after["backlog_seconds"] == 0
        assert float(after["mean_service_seconds"]) != NOMINAL_SERVICE_SECONDS  # type: ignore[arg-type]


def test_a_full_queue_is_rejected_and_counted_apart_from_shedding() -> None:
    with running_worker(
        processes=1, work_min=0.3, work_max=0.3, extra_args=("--max-queue", "1", "--queue-budget", "100")
    ) as worker:
        results = _burst(worker, 6)
        refused = [json.loads(r[2]) for r in results if r[0] == 503]
        assert refused
        assert {p["error"] for p in refused} == {"queue full"}
        assert all("Retry-After" not in r[1] for r in results if r[0] == 503)
        stats = json.loads(http_get(f"{worker.url}/stats")[1])
        assert stats["rejected"] == len(refused)
        assert stats["shed"] == 0


def test_cli_config_and_response_format() -> None:
    cfg = config_from_args(build_parser().parse_args(["--processes", "3", "--work-min", "0.1", "--work-max", "0.2"]))
    assert cfg == Config(processes=3, work_min=0.1, work_max=0.2)
    assert cfg.worker_count == 3
    assert Config().worker_count >= 1
    with pytest.raises(SystemExit):
        config_from_args(build_parser().parse_args(["--work-min", "1", "--work-max", "0.5"]))
    for budget in ("0", "-1", "nan"):
        with pytest.raises(SystemExit, match="queue-budget"):
            config_from_args(build_parser().parse_args(["--queue-budget", budget]))
    raw = http_response(200, b"pong", head=True)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"\r\n\r\n")
    assert b"Content-Length: 4" in raw
    shed = http_response(503, b"{}", headers=[("Retry-After", "3")])
    assert b"\r\nRetry-After: 3\r\n" in shed


def test_queue_budget_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKER_QUEUE_BUDGET", raising=False)
    assert config_from_args(build_parser().parse_args([])).queue_budget == Config.queue_budget == 10.0
    monkeypatch.setenv("WORKER_QUEUE_BUDGET", "2.5")
    assert config_from_args(build_parser().parse_args([])).queue_budget == 2.5
    assert config_from_args(build_parser().parse_args(["--queue-budget", "4"])).queue_budget == 4.0


def test_proxy_read_timeout_outlasts_the_budget_and_the_request_timeout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert proxy_read_timeout(Config()) == 30  # 2 x 10 s budget + 10 s request timeout
    assert proxy_read_timeout(Config(queue_budget=2.5, request_timeout=4.2)) == 10
    for cfg in (Config(), Config(queue_budget=0.1, request_timeout=0.1), Config(queue_budget=7.3, request_timeout=31)):
        assert proxy_read_timeout(cfg) >= cfg.queue_budget + cfg.request_timeout
    monkeypatch.setenv("WORKER_QUEUE_BUDGET", "5")
    monkeypatch.setenv("WORKER_REQUEST_TIMEOUT", "20")
    assert main(["--print-proxy-read-timeout"]) == 0  # what bootstrap.sh writes into nginx's config
    assert capsys.readouterr().out == "30\n"
