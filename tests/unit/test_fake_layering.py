"""One fake of AWS: the tests' support code and the twin share ``awsfake``, and only ``awsfake``
reaches into moto's private modules (a moto upgrade then breaks one place)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for top in ("awsfake", "functions", "simulator", "fleetctl", "worker", "benchmarks", "loadtest",
                         "tools", "tests") for p in sorted((ROOT / top).rglob("*.py"))]  # fmt: skip


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_awsfake_imports_moto_internals() -> None:
    offenders = {
        str(path.relative_to(ROOT)): private
        for path in SOURCES
        if not path.is_relative_to(ROOT / "awsfake")
        and (private := sorted(n for n in _imports(path) if n.startswith("moto.")))
    }
    assert offenders == {}, "moto's private modules are awsfake.moto_backends' business"


def test_the_tests_support_code_does_not_import_the_simulator() -> None:
    for path in sorted((ROOT / "tests" / "support").rglob("*.py")):
        assert not {n for n in _imports(path) if n == "simulator" or n.startswith("simulator.")}, path
