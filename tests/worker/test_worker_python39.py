"""The worker host runs Amazon Linux 2023's system Python, 3.9: the package must serve on it."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.helpers_worker import free_port, running_worker

pytestmark = pytest.mark.server


def _python39() -> str | None:
    """A working 3.9 interpreter (pyenv's shims may exist without a 3.9 selected)."""
    candidates = [*sorted(Path("/root/.pyenv/versions").glob("3.9*/bin/python3.9")), Path("/usr/bin/python3.9")]
    for candidate in candidates:
        if candidate.exists():
            probe = subprocess.run([candidate, "--version"], capture_output=True, text=True, check=False)
            if probe.returncode == 0 and probe.stdout.startswith("Python 3.9"):
                return str(candidate)
    return None


@pytest.mark.skipif(_python39() is None, reason="no Python 3.9 on this machine")
def test_worker_serves_on_python_3_9():
    python = _python39()
    assert python is not None
    port = free_port()
    argv = [python, "-m", "worker", "--port", str(port), "--processes", "1", "--log-level", "WARNING"]
    with (
        running_worker(argv=argv, port=port) as worker,
        urllib.request.urlopen(f"{worker.url}/work", timeout=10) as response,
    ):
        assert response.status == 200
        assert b"duration" in response.read()
