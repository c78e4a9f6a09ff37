"""Locust file for the nine-stage acceptance scenario.

    locust -f loadtest/locustfile.py --headless --host http://<alb-dns>:30000 \
        --csv out/nine-stage --html out/nine-stage.html

Each user is one client of the scenario: ``GET /work``, wait for the answer, think 1 s, repeat.
:class:`NineStageShape` sets the number of clients per stage (1,2,3,4,3,2,2,1,0); stage length
``LOADTEST_STAGE_SECONDS`` (default 300), number of stages ``LOADTEST_STAGES`` (default 9).
Besides Locust's own ``--csv``/``--html`` output, a per-stage CSV (``<csv prefix>_stages.csv``
or ``LOADTEST_STAGE_CSV``) and HTML table (same name, ``.html``) list, per stage: users set,
users observed, expected instances, requests, failures, p50/p95 response time. Per-stage figures
are collected in the process that runs the shape: run standalone (not ``--processes``/workers).
"""

from __future__ import annotations

import csv
import html
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from locust import HttpUser, LoadTestShape, constant, events, task

from loadtest.stages import Stage, percentile, selected_stages, stage_at, stage_seconds

SPAWN_RATE = 10.0  # users per second when a stage changes the count
WORK_NAME = "GET /work"


@dataclass
class StageStats:
    stage: Stage
    users_observed: int | None = None
    requests: int = 0
    failures: int = 0
    response_ms: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        times = sorted(self.response_ms)
        p50 = percentile(times, 0.50)
        p95 = percentile(times, 0.95)
        return {
            "stage": self.stage.index,
            "users": self.stage.clients,
            "users_observed": "" if self.users_observed is None else self.users_observed,
            "expected_instances": self.stage.expected_instances,
            "requests": self.requests,
            "failures": self.failures,
            "p50_ms": "" if p50 is None else round(p50, 1),
            "p95_ms": "" if p95 is None else round(p95, 1),
        }


class Recorder:
    """Per-stage statistics, fed by the shape (stage changes, user counts) and request events."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stats: dict[int, StageStats] = {}
        self.current: int | None = None

    def enter(self, stage: Stage, users_now: int | None) -> None:
        with self.lock:
            self.current = stage.index
            stats = self.stats.setdefault(stage.index, StageStats(stage))
            if users_now is not None:
                stats.users_observed = users_now

    def request(self, response_time: float, failed: bool) -> None:
        with self.lock:
            if self.current is None:
                return
            stats = self.stats[self.current]
            stats.requests += 1
            stats.failures += int(failed)
            stats.response_ms.append(response_time)

    def rows(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self.stats[k].row() for k in sorted(self.stats)]

    def write(self, csv_path: Path) -> None:
        rows = self.rows()
        if not rows:
            return
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with csv_path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>" for row in rows
        )
        csv_path.with_suffix(".html").write_text(
            "<!doctype html><meta charset=utf-8><title>Nine-stage load test per stage</title>"
            f"<table border=1><tr>{head}</tr>{body}</table>\n",
            encoding="utf-8",
        )


RECORDER = Recorder()


class ScenarioClient(HttpUser):
    """One client: GET /work, wait for the answer, think one second."""

    wait_time = constant(1)

    @task
    def work(self) -> None:
        self.client.get("/work", name=WORK_NAME, timeout=60)


class NineStageShape(LoadTestShape):
    """Clients per stage from :data:`loadtest.stages.STAGES`."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.stages = selected_stages()
        self.length = stage_seconds()

    def tick(self) -> tuple[int, float] | None:
        stage = stage_at(
            self.get_run_time(),  # type: ignore[no-untyped-call]
            self.length,
            self.stages,
        )
        if stage is None:
            return None
        users_now = self.runner.user_count if self.runner is not None else None
        RECORDER.enter(stage, users_now)
        return stage.clients, SPAWN_RATE


def _on_request(response_time: float, exception: BaseException | None = None, **_kwargs: Any) -> None:
    RECORDER.request(response_time, exception is not None)


def _stage_csv_path(environment: Any) -> Path | None:
    explicit = os.environ.get("LOADTEST_STAGE_CSV")
    if explicit:
        return Path(explicit)
    prefix = getattr(getattr(environment, "parsed_options", None), "csv_prefix", None)
    return Path(f"{prefix}_stages.csv") if prefix else None


def _on_test_stop(environment: Any, **_kwargs: Any) -> None:
    path = _stage_csv_path(environment)
    if path is not None:
        RECORDER.write(path)


events.request.add_listener(_on_request)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_on_test_stop)  # type: ignore[no-untyped-call]
