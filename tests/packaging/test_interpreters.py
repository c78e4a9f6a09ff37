"""tools/find-python.sh and tools/on-python.sh: the Python versions `make test` runs on. On a
machine without one, a local run says so and carries on; under CI=true the run fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ABSENT = "2.5"  # no machine has it
HERE = f"{sys.version_info.major}.{sys.version_info.minor}"


def _run(*args: str, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run(["bash", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=60)


def test_find_python_prints_an_interpreter_of_the_version_asked() -> None:
    found = _run("tools/find-python.sh", HERE, ci=False)
    assert found.returncode == 0, found.stderr
    version = subprocess.run(
        [found.stdout.strip(), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == HERE
    assert _run("tools/find-python.sh", ABSENT, ci=False).returncode == 1


@pytest.mark.parametrize(("ci", "code", "verdict"), [(True, 1, "FAILED"), (False, 0, "SKIPPED")])
def test_a_missing_interpreter_fails_the_run_under_ci_and_is_skipped_outside_it(
    tmp_path: Path, ci: bool, code: int, verdict: str
) -> None:
    marker = tmp_path / "ran"
    result = _run(
        "tools/on-python.sh", ABSENT, ".venv-never", "requirements/dev.txt", "--", "touch", str(marker), ci=ci
    )
    assert result.returncode == code
    assert f"{verdict}: no Python {ABSENT} on this machine" in result.stderr
    assert not marker.exists()
    assert not (ROOT / ".venv-never").exists()


def test_outside_ci_the_fallback_venv_runs_the_command_instead(tmp_path: Path) -> None:
    fallback = Path(sys.prefix)  # the venv running these tests
    result = _run(
        "tools/on-python.sh", ABSENT, ".venv-never", "requirements/dev.txt", "--else-venv", str(fallback), "--",
        "python", "-c", "import sys; print(sys.prefix)",
        ci=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(fallback)
    assert f"no Python {ABSENT} on this machine" in result.stderr
