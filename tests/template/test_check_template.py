"""tools/check-template.sh runs every check and fails at the end if one failed, instead of stopping
at the first (it runs under set -e). Exercised in a sandbox whose tools are stubs that log."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from tests.template.conftest import ROOT

SCRIPT = ROOT / "tools" / "check-template.sh"
VERSIONS = {"SAM_VERSION": "0.0.0-stub", "CHECKOV_VERSION": "0.0.0-stub"}


def _stub(path: Path, exit_code: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho "$(basename "$0") $*" >> "$CHECK_LOG"\nexit {exit_code}\n', encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _sandbox(tmp_path: Path, failing: str) -> Path:
    """The script's view of a checkout: its venvs already installed (stamps match), every tool
    a stub that logs its call; the one named ``failing`` exits 1."""
    (tmp_path / "tools").mkdir()
    shutil.copy(SCRIPT, tmp_path / "tools" / "check-template.sh")
    (tmp_path / "worker").mkdir()
    for venv, package in ((".venv-sam", "aws-sam-cli"), (".venv-checkov", "checkov")):
        version = VERSIONS["SAM_VERSION" if venv == ".venv-sam" else "CHECKOV_VERSION"]
        (tmp_path / venv).mkdir()
        (tmp_path / venv / ".stamp").write_text(f"{package}=={version}", encoding="utf-8")
    _stub(tmp_path / ".venv-sam" / "bin" / "python")
    tools = {
        "cfn-lint": tmp_path / ".venv-sam" / "bin" / "cfn-lint",
        "sam": tmp_path / ".venv-sam" / "bin" / "sam",
        "checkov": tmp_path / ".venv-checkov" / "bin" / "checkov",
    }
    _stub(tmp_path / ".venv-checkov" / "bin" / "python")
    for name, path in tools.items():
        _stub(path, 1 if name == failing else 0)
    return tmp_path


def _run(sandbox: Path) -> tuple[int, list[str], str]:
    log = sandbox / "calls.log"
    env = {**os.environ, **VERSIONS, "CHECK_LOG": str(log)}
    process = subprocess.run(
        ["bash", str(sandbox / "tools" / "check-template.sh")], env=env, capture_output=True, text=True, check=False
    )
    calls = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return process.returncode, [call.split()[0] for call in calls], process.stderr


def test_every_check_runs_when_all_pass(tmp_path):
    code, calls, _ = _run(_sandbox(tmp_path, failing=""))
    assert code == 0
    assert calls == ["cfn-lint", "sam", "checkov"]


def test_a_failed_lint_fails_the_run_but_the_other_checks_still_run(tmp_path):
    code, calls, stderr = _run(_sandbox(tmp_path, failing="cfn-lint"))
    assert code == 1
    assert calls == ["cfn-lint", "sam", "checkov"], stderr
    assert "check-template: FAILED" in stderr
