"""tools/check-template.sh runs every check and fails at the end if one failed, instead of stopping
at the first (it runs under set -e). Exercised in a sandbox whose tools are stubs that log."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from tests.template.conftest import ROOT

SCRIPT = ROOT / "tools" / "check-template.sh"
LOCKS = {".venv-sam": "sam.txt", ".venv-checkov": "checkov.txt"}


def _stub(path: Path, exit_code: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho "$(basename "$0") $*" >> "$CHECK_LOG"\nexit {exit_code}\n', encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _sandbox(tmp_path: Path, failing: str) -> Path:
    """The script's view of a checkout: its venvs already made from their locks (the stamps
    tools/venv.sh writes match), every tool a stub that logs its call; the one named ``failing``
    exits 1."""
    (tmp_path / "tools").mkdir()
    for script in ("check-template.sh", "venv.sh"):
        shutil.copy(ROOT / "tools" / script, tmp_path / "tools" / script)
    (tmp_path / "worker").mkdir()
    (tmp_path / "requirements").mkdir()
    for venv, lock in LOCKS.items():
        lock_file = tmp_path / "requirements" / lock
        lock_file.write_text(f"# {lock}, a stand-in\n", encoding="utf-8")
        digest = hashlib.sha256(lock_file.read_bytes()).hexdigest()
        (tmp_path / venv).mkdir()
        (tmp_path / venv / ".lock-stamp").write_text(f"{digest} {sys.version.split()[0]}", encoding="utf-8")
        _stub(tmp_path / venv / "bin" / "python")
    tools = {
        "cfn-lint": tmp_path / ".venv-sam" / "bin" / "cfn-lint",
        "sam": tmp_path / ".venv-sam" / "bin" / "sam",
        "checkov": tmp_path / ".venv-checkov" / "bin" / "checkov",
        "shellcheck": tmp_path / ".venv" / "bin" / "shellcheck",
    }
    for name, path in tools.items():
        _stub(path, 1 if name == failing else 0)
    return tmp_path


def _run(sandbox: Path) -> tuple[int, list[str], str]:
    log = sandbox / "calls.log"
    env = {**os.environ, "PYTHON": sys.executable, "CHECK_LOG": str(log)}
    process = subprocess.run(
        ["bash", str(sandbox / "tools" / "check-template.sh")], env=env, capture_output=True, text=True, check=False
    )
    calls = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return process.returncode, [call.split()[0] for call in calls], process.stderr


def test_every_check_runs_when_all_pass(tmp_path):
    code, calls, _ = _run(_sandbox(tmp_path, failing=""))
    assert code == 0
    assert calls == ["cfn-lint", "sam", "checkov", "shellcheck"]


def test_a_failed_lint_fails_the_run_but_the_other_checks_still_run(tmp_path):
    code, calls, stderr = _run(_sandbox(tmp_path, failing="cfn-lint"))
    assert code == 1
    assert calls == ["cfn-lint", "sam", "checkov", "shellcheck"], stderr
    assert "check-template: FAILED" in stderr


def test_shellcheck_comes_from_the_project_venv_and_a_finding_fails_the_run(tmp_path):
    code, calls, stderr = _run(_sandbox(tmp_path, failing="shellcheck"))
    assert code == 1
    assert calls == ["cfn-lint", "sam", "checkov", "shellcheck"], stderr
    assert "check-template: FAILED" in stderr
