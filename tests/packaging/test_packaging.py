"""What the project installs, and how its scripts find the code without editing ``sys.path``."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Lambda imports handlers.* from the function's code root (functions/); the hosts run worker/
# from its layer; tools/, userdata/ and benchmarks/ are the repository's scripts.
INSTALLED = {"autoscaler", "awsfake", "fleet_template", "fleetctl", "simulator"}


def _clean_checkout(dest: Path) -> Path:
    """The tracked files only, as a fresh clone has them (no build/ or egg-info left here)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def test_the_wheel_holds_only_the_projects_own_packages(tmp_path: Path) -> None:
    source = _clean_checkout(tmp_path / "src")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = zf.read(entry_points).decode()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == INSTALLED
    assert "fleetctl = fleetctl.cli:main" in scripts
    assert "functions/handlers/scale_out.py" not in names  # sanity: the wheel is not the Lambda zip


def _edits_sys_path(tree: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
        for node in ast.walk(tree)
    )


def test_benchmarks_import_as_modules_of_the_repository_without_touching_sys_path() -> None:
    scripts = sorted((ROOT / "benchmarks").glob("*.py"))
    assert [p.name for p in scripts if _edits_sys_path(ast.parse(p.read_text(encoding="utf-8")))] == []
    modules = ", ".join(f"benchmarks.{p.stem}" for p in scripts if p.stem != "__init__")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # As `make bench` runs them: `python -m benchmarks.<name>` from the root, nothing on PYTHONPATH.
    subprocess.run([sys.executable, "-c", f"import {modules}"], cwd=ROOT, env=env, check=True, timeout=120)
