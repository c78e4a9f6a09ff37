"""Local stand-ins for what the workers' user-data stub talks to, for tests and benchmarks.

* :class:`FakeLayerService` -- on a loopback port, Lambda's ``GetLayerVersionByArn`` for one
  layer version (``GET /2018-10-31/layers?find=LayerVersion&Arn=...``, the response shape of the
  Lambda API reference) and the archive at the ``Content.Location`` link it answers, like the
  presigned S3 link Lambda returns. ``CodeSha256`` is the base64 SHA-256 of the archive, as in the
  AWS CLI reference's ``get-layer-version`` example. Faults on demand: throttled API calls,
  failed downloads, and a download that differs from the archive the checksum describes.
* :func:`fake_aws_bin` -- a directory holding an ``aws`` command (``tests/support/fake_aws_cli.py``)
  that answers ``aws lambda get-layer-version-by-arn`` from that service.

Nothing here can reach AWS: every URL is 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import cast

from tests.support.loopback import LoopbackService, service_of

FAKE_AWS_CLI = Path(__file__).with_name("fake_aws_cli.py")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        service = cast("FakeLayerService", service_of(self))
        url = urllib.parse.urlsplit(self.path)
        if url.path == FakeLayerService.API_PATH:
            query = urllib.parse.parse_qs(url.query)
            status, headers, body = service.get_layer_version_by_arn(query.get("Arn", [""])[0])
        elif url.path.startswith(FakeLayerService.ARCHIVE_PATH):
            status, headers, body = service.download()
        else:
            status, headers, body = 404, {}, b""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class FakeLayerService(LoopbackService):
    """``GetLayerVersionByArn`` for ``layer_arn`` and the download of ``archive``.

    ``served`` replaces the bytes the download returns (the checksum still describes
    ``archive``); the first ``api_failures`` calls are throttled (429
    ``TooManyRequestsException``) and the first ``download_failures`` downloads fail (503).
    """

    API_PATH = "/2018-10-31/layers"
    ARCHIVE_PATH = "/snapshots/"

    def __init__(
        self,
        layer_arn: str,
        archive: bytes,
        *,
        served: bytes | None = None,
        api_failures: int = 0,
        download_failures: int = 0,
    ) -> None:
        self.layer_arn = layer_arn
        self.archive = archive
        self.served = archive if served is None else served
        self.api_failures = api_failures
        self.download_failures = download_failures
        self.api_calls: list[str] = []
        self.downloads = 0
        self._lock = threading.Lock()
        super().__init__(_Handler)

    @property
    def code_sha256(self) -> str:
        return base64.b64encode(hashlib.sha256(self.archive).digest()).decode()

    def get_layer_version_by_arn(self, arn: str) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.api_calls.append(arn)
            throttled = len(self.api_calls) <= self.api_failures
        if throttled:
            return _error(429, "TooManyRequestsException", "Rate exceeded")
        if arn != self.layer_arn:
            return _error(404, "ResourceNotFoundException", "The resource you requested does not exist.")
        layer_arn, _, version = arn.rpartition(":")
        name = layer_arn.rpartition(":")[2]
        location = (
            f"{self.url}{self.ARCHIVE_PATH}123456789012/{name}-4aaa2fbb-ff77-4b0a-ad92-5b78a716a96a"
            "?versionId=27iWyA73cCAYqyH&X-Amz-Expires=600&X-Amz-Signature=fake"
        )
        answer = {
            "Content": {"Location": location, "CodeSha256": self.code_sha256, "CodeSize": len(self.archive)},
            "LayerArn": layer_arn,
            "LayerVersionArn": arn,
            "Description": "Worker code and its boot script (bootstrap.sh) for the EC2 hosts",
            "CreatedDate": "2026-11-28T04:47:00.000+0000",
            "Version": int(version),
            "CompatibleArchitectures": ["arm64"],
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def download(self) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.downloads += 1
            failed = self.downloads <= self.download_failures
        if failed:
            body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            return 503, {"Content-Type": "application/xml"}, body
        return 200, {"Content-Type": "application/zip"}, self.served


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"Type": "User", "message": message}).encode()
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code}, body


def fake_aws_bin(directory: Path) -> Path:
    """``directory`` with an executable ``aws`` that runs :data:`FAKE_AWS_CLI`; put it first on PATH."""
    directory.mkdir(parents=True, exist_ok=True)
    aws = directory / "aws"
    aws.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(FAKE_AWS_CLI))} "$@"\n', encoding="utf-8"
    )
    aws.chmod(0o755)
    return directory
