"""Run the Locust file headless for four 3-second stages against a worker behind nginx.

Locust runs in a subprocess: importing it here would gevent-patch the pytest process.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers_worker import NGINX, REPO, worker_behind_nginx

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.mark.skipif(NGINX is None, reason="nginx not installed")
@pytest.mark.skipif(importlib.util.find_spec("locust") is None, reason="locust not installed")
def test_four_short_stages_through_nginx(tmp_path: Path) -> None:
    with worker_behind_nginx(tmp_path / "stack", processes=2) as (url, _worker):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(REPO / "loadtest/locustfile.py"),
                "--headless",
                "--host",
                url,
                "--csv",
                str(tmp_path / "run"),
                "--html",
                str(tmp_path / "run.html"),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            env={**os.environ, "LOADTEST_STAGE_SECONDS": "3", "LOADTEST_STAGES": "4"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    with (tmp_path / "run_stages.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["stage"]) for r in rows] == [1, 2, 3, 4]
    assert [int(r["users"]) for r in rows] == [1, 2, 3, 4]
    assert [int(r["users_observed"]) for r in rows] == [1, 2, 3, 4]
    assert [int(r["expected_instances"]) for r in rows] == [1, 1, 2, 2]
    assert all(int(r["failures"]) == 0 for r in rows)
    assert all(int(r["requests"]) > 0 for r in rows)
    assert float(rows[0]["p50_ms"]) >= 400  # a real /work: ~0.5 s of CPU
    assert (tmp_path / "run_stages.html").is_file()
    assert (tmp_path / "run.html").is_file()
    with (tmp_path / "run_stats.csv").open(encoding="utf-8") as fh:
        work = next(r for r in csv.DictReader(fh) if r["Name"] == "GET /work")
    assert int(work["Failure Count"]) == 0
