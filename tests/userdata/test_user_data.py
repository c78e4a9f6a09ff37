"""The launch template's user-data stub, run as cloud-init runs it, in a sandbox: a fake ``aws``
answers GetLayerVersionByArn from a local layer service serving a real zip of ``worker/``, real
curl downloads it, the stub checks it against CodeSha256 and runs the layer's bootstrap.sh."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from fleet_template.cfn import load_template
from tests.helpers_worker import (
    RENDER_VALUES,
    make_worker_zip,
    run_user_data,
    sandbox_env,
    user_data_script,
)
from tests.support.lambda_layers import FakeLayerService, fake_aws_bin
from userdata.render import PLACEHOLDERS, placeholders, user_data

ROOT = Path(__file__).resolve().parents[2]
ARN = RENDER_VALUES["WorkerLayerVersionArn"]
STANDARD_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def _stub_text() -> str:
    return user_data(load_template(ROOT / "template.yaml"))[0]


def _layer(tmp_path: Path, bootstrap_marker: str | None = "bootstrap.sh from the layer") -> bytes:
    """A zip of worker/; its bootstrap.sh announces itself, so a test sees which copy ran."""
    source = make_worker_zip(tmp_path / "worker.zip").read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "bootstrap.sh":
                if bootstrap_marker is None:
                    continue
                data = data.replace(
                    b"set -euo pipefail\n", f"set -euo pipefail\necho '{bootstrap_marker}' >&2\n".encode(), 1
                )
            zout.writestr(item, data)
    return out.getvalue()


def _fakes(directory: Path) -> Path:
    """``sleep`` that only records its argument (retries without the wait) and ``dnf`` that
    records its command line; both log to files beside them."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("sleep", "dnf"):
        script = directory / name
        script.write_text(f'#!/bin/sh\necho "$*" >> "{directory}/{name}.log"\n', encoding="utf-8")
        script.chmod(0o755)
    return directory


def _log(directory: Path, name: str) -> list[str]:
    path = directory / f"{name}.log"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "tmpdir").mkdir(exist_ok=True)
    return {**sandbox_env(tmp_path / "root", 30000, 30001), "TMPDIR": str(tmp_path / "tmpdir")}


def test_stub_uses_its_placeholders_and_stays_small() -> None:
    text = _stub_text()
    assert placeholders(text) == set(PLACEHOLDERS)
    rendered = user_data_script()
    assert "${" not in rendered
    assert f"layer_arn='{ARN}'" in rendered
    # The longest values the template allows: a layer version ARN is at most 140 characters
    # (Lambda API reference), FleetName at most 40 (its AllowedPattern), a topic name 256 (SNS API
    # reference, "CreateTopic"), PanicThreshold and CpuTarget short numbers. EC2 allows 16 KB.
    longest = {
        "AWS::Region": "ap-southeast-5",
        "FleetName": "f" * 40,
        "WorkerLayerVersionArn": "arn:aws:lambda:ap-southeast-5:123456789012:layer:" + "x" * 80 + ":99999",
        "CpuMetricNamespace": "Autoscaler",
        "WorkerQueueBudgetSeconds": "3600",
        "DemandTopicArn": "arn:aws:sns:ap-southeast-5:123456789012:" + "t" * 256,
        "PanicThreshold": "1.125",
        "CpuTarget": "87.5",
    }
    assert len(longest["WorkerLayerVersionArn"]) <= 140
    assert len(user_data_script(longest).encode()) < 2560


def test_docs_state_the_stub_size() -> None:
    stack = (ROOT / "docs" / "stack.md").read_text(encoding="utf-8")
    stated = re.search(
        r"stub of (\d+) lines\s+\(([\d,]+) bytes as written; ([\d,]+) bytes rendered with the tests' values", stack
    )
    assert stated, "docs/stack.md states the stub's size"
    text = _stub_text()
    measured = (len(text.splitlines()), len(text.encode()), len(user_data_script().encode()))
    assert tuple(int(g.replace(",", "")) for g in stated.groups()) == measured


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_stub_is_shellcheck_clean(tmp_path: Path) -> None:
    raw = tmp_path / "raw.sh"
    raw.write_text(_stub_text(), encoding="utf-8")
    rendered = tmp_path / "rendered.sh"
    rendered.write_text(user_data_script(), encoding="utf-8")
    subprocess.run(["shellcheck", str(raw), str(rendered)], check=True)


def test_stub_verifies_the_layer_and_runs_its_bootstrap(tmp_path: Path) -> None:
    fakes = _fakes(tmp_path / "fakes")
    with FakeLayerService(ARN, _layer(tmp_path)) as service:
        result = run_user_data(tmp_path, service, _env(tmp_path), path=f"{fakes}:{os.environ['PATH']}")
    assert result.returncode == 0, result.stderr
    assert service.api_calls == [ARN]
    assert service.downloads == 1
    assert f"layer {ARN} verified" in result.stderr
    assert "bootstrap.sh from the layer" in result.stderr  # the layer's copy ran, not the repo's
    marker = tmp_path / "root/var/lib/fleet-worker/installed"
    assert marker.read_text() == ARN
    assert (tmp_path / "root/opt/fleet-worker/worker/__main__.py").is_file()
    unit = (tmp_path / "root/etc/systemd/system/fleet-metrics.service").read_text()
    assert f"Environment=FLEET_NAME={RENDER_VALUES['FleetName']}" in unit
    assert f"Environment=AWS_REGION={RENDER_VALUES['AWS::Region']}" in unit
    for name, value in (
        ("DEMAND_TOPIC_ARN", RENDER_VALUES["DemandTopicArn"]),
        ("PANIC_THRESHOLD", RENDER_VALUES["PanicThreshold"]),
        ("CPU_TARGET", RENDER_VALUES["CpuTarget"]),
    ):
        assert f"Environment={name}={value}\n" in unit, name
    assert _log(fakes, "dnf") == []  # aws, curl and unzip are there: nothing to install
    assert _log(fakes, "sleep") == []
    assert list((tmp_path / "tmpdir").iterdir()) == []  # the download is cleaned up


def test_a_corrupted_download_is_rejected_by_the_checksum(tmp_path: Path) -> None:
    layer = _layer(tmp_path)
    middle = len(layer) // 2
    corrupted = layer[:middle] + bytes([layer[middle] ^ 0xFF]) + layer[middle + 1 :]
    fakes = _fakes(tmp_path / "fakes")
    with FakeLayerService(ARN, layer, served=corrupted) as service:
        result = run_user_data(tmp_path, service, _env(tmp_path), path=f"{fakes}:{os.environ['PATH']}")
    assert result.returncode != 0
    assert result.stderr.count("checksum mismatch") == 5, result.stderr
    assert f"could not fetch {ARN}" in result.stderr
    assert "FAILED (exit 1): worker not installed" in result.stderr
    assert (service.api_calls, service.downloads) == ([ARN] * 5, 5)  # a fresh link each attempt
    assert _log(fakes, "sleep") == ["5", "10", "15", "20"]
    assert "bootstrap.sh from the layer" not in result.stderr  # nothing was unzipped or run
    assert not (tmp_path / "root").exists()


def test_transient_failures_are_retried(tmp_path: Path) -> None:
    fakes = _fakes(tmp_path / "fakes")
    with FakeLayerService(ARN, _layer(tmp_path), api_failures=1, download_failures=1) as service:
        result = run_user_data(tmp_path, service, _env(tmp_path), path=f"{fakes}:{os.environ['PATH']}")
    assert result.returncode == 0, result.stderr
    assert "TooManyRequestsException" in result.stderr
    assert (len(service.api_calls), service.downloads) == (3, 2)
    assert _log(fakes, "sleep") == ["5", "10"]
    assert (tmp_path / "root/var/lib/fleet-worker/installed").read_text() == ARN


def test_only_missing_tools_are_installed(tmp_path: Path) -> None:
    """A host without the AWS CLI and unzip: the stub installs exactly those, with dnf."""
    farm = tmp_path / "path"
    farm.mkdir()
    hidden = {"aws", "unzip", "dnf", "sleep"}
    for directory in STANDARD_PATH:
        if Path(directory).is_dir():
            for tool in Path(directory).iterdir():
                if tool.name not in hidden and not (farm / tool.name).exists():
                    (farm / tool.name).symlink_to(tool)
    real_unzip = shutil.which("unzip")
    assert real_unzip is not None
    fake_aws = fake_aws_bin(tmp_path / "repo") / "aws"
    dnf = farm / "dnf"  # "installs" by linking the tool into the PATH
    dnf.write_text(
        f'#!/bin/sh\necho "$*" >> "{tmp_path}/dnf.log"\n'
        'for p in "$@"; do case $p in\n'
        f'  unzip) ln -s "{real_unzip}" "{farm}/unzip" ;;\n'
        f'  awscli-2) ln -s "{fake_aws}" "{farm}/aws" ;;\n'
        "esac; done\n",
        encoding="utf-8",
    )
    dnf.chmod(0o755)
    with FakeLayerService(ARN, _layer(tmp_path)) as service:
        result = run_user_data(tmp_path, service, _env(tmp_path), path=str(farm), aws=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dnf.log").read_text().splitlines() == ["install -y awscli-2 unzip"]
    assert "installing awscli-2 unzip" in result.stderr
    assert (tmp_path / "root/var/lib/fleet-worker/installed").read_text() == ARN


def test_a_layer_without_the_boot_script_fails_loudly(tmp_path: Path) -> None:
    with FakeLayerService(ARN, _layer(tmp_path, bootstrap_marker=None)) as service:
        result = run_user_data(tmp_path, service, _env(tmp_path))
    assert result.returncode != 0
    assert "FAILED" in result.stderr
    assert not (tmp_path / "root").exists()


def test_an_unknown_layer_fails_after_the_retries(tmp_path: Path) -> None:
    fakes = _fakes(tmp_path / "fakes")
    with FakeLayerService(ARN.replace(":7", ":8"), _layer(tmp_path)) as service:
        result = run_user_data(tmp_path, service, _env(tmp_path), path=f"{fakes}:{os.environ['PATH']}")
    assert result.returncode != 0
    assert result.stderr.count("ResourceNotFoundException") == 5
    assert service.downloads == 0
    assert "FAILED (exit 1)" in result.stderr


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_stub_with_the_real_aws_cli(tmp_path: Path) -> None:
    """The real CLI (its request, its --query and --output text) against the local service."""
    env = {
        **_env(tmp_path),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "absent"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "absent"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
    }
    with FakeLayerService(ARN, _layer(tmp_path)) as service:
        result = run_user_data(tmp_path, service, env, aws=False)
    assert result.returncode == 0, result.stderr
    assert service.api_calls == [ARN]
    assert "bootstrap.sh from the layer" in result.stderr
    assert (tmp_path / "root/var/lib/fleet-worker/installed").read_text() == ARN
