"""What `make` installs comes from the lockfiles (requirements/*.txt, `make lock`), and the coverage
gate spans every package the project ships."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# A pin as uv writes it. A universal lock may pin a name twice, under exclusive markers
# (numpy for 3.11 and for 3.12 up).
PIN = re.compile(
    r"^([A-Za-z0-9][\w.-]*)==([^\s;]+)(?: ; [^\\\n]+)? \\\n"  # name==version [; marker] \
    r"(?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+",  # its hashes
    re.MULTILINE,
)


def _pins(lock: str) -> dict[str, list[str]]:
    text = (ROOT / "requirements" / lock).read_text(encoding="utf-8")
    pins: dict[str, list[str]] = {}
    for match in PIN.finditer(text):
        pins.setdefault(canonicalize_name(match[1]), []).append(match[2])
    # Every requirement line is such a pin: pip and uv refuse the file in hash-checking mode otherwise.
    assert sum(map(len, pins.values())) == len(re.findall(r"^[A-Za-z0-9]", text, re.MULTILINE)), lock
    return pins


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("dev.txt", [*PYPROJECT["project"]["dependencies"], *PYPROJECT["project"]["optional-dependencies"]["dev"]]),
        ("sam.txt", ["aws-sam-cli"]),
        ("checkov.txt", ["checkov"]),
        ("uv.txt", ["uv"]),
        ("worker-py39.txt", ["botocore", "boto3", "jmespath", "moto", "pytest", "pytest-timeout", "coverage"]),
    ],
)
def test_every_declared_requirement_is_pinned_with_hashes_at_an_allowed_version(
    lock: str, requirements: list[str]
) -> None:
    pins = _pins(lock)
    for line in requirements:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements/{lock}: run `make lock`"
        for version in pins[name]:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"requirements/{lock} pins {name}=={version}, outside {requirement.specifier}: run `make lock`"
            )


def test_the_template_tests_translate_with_the_samtranslator_sam_validate_uses() -> None:
    assert _pins("dev.txt")["aws-sam-translator"] == _pins("sam.txt")["aws-sam-translator"]


def test_the_coverage_gate_spans_every_shipped_package() -> None:
    run = PYPROJECT["tool"]["coverage"]["run"]
    # The Lambda code root, the hosts' worker, the wheel's packages besides the core, the load test.
    installed = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = {"functions", "worker", "loadtest"} | {name.rstrip("*") for name in installed} - {"autoscaler"}
    assert set(run["source"]) == shipped
    # What runs in the processes the tests start is measured too.
    assert "subprocess" in run["patch"]
