"""Local stand-ins for the AWS endpoints a worker host talks to, for tests and benchmarks.

* :class:`FakeImds` -- IMDSv2 on a loopback port: the session token (PUT), instance tags and an
  instance profile's credentials (fake values), the paths the metrics publisher and botocore's
  instance-metadata credential provider read. It records when each path was read.
* :func:`running_moto_server` -- a real ``moto_server`` process (the CloudWatch endpoint),
  optionally over TLS with a throw-away self-signed certificate (:func:`self_signed_cert`), so a
  client pays for the handshake and the encryption like it does against
  ``https://monitoring.<region>.amazonaws.com``.

Nothing here can reach AWS: every URL is 127.0.0.1 and every credential is made up.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import cast

from tests.helpers_worker import free_port, nginx_process, stop_process
from tests.support.loopback import LoopbackService, service_of

UTC = timezone.utc  # datetime.UTC is 3.11+: these tests also run on the hosts' Python 3.9

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class _ImdsHandler(BaseHTTPRequestHandler):
    def _imds(self) -> FakeImds:
        return cast("FakeImds", service_of(self))

    def do_PUT(self) -> None:
        if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self._send(400, b"")
            return
        self._send(200, FakeImds.TOKEN.encode())

    def do_GET(self) -> None:
        imds = self._imds()
        if self.headers.get("X-aws-ec2-metadata-token") != FakeImds.TOKEN:
            self._send(401, b"")  # IMDSv2 only, as the launch template requires
            return
        imds.record(self.path)
        body = imds.answer(self.path)
        self._send(200, body.encode()) if body is not None else self._send(404, b"")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class FakeImds(LoopbackService):
    """IMDSv2: token, ``tags/instance/<key>``, ``instance-id``, ``placement/region`` and
    instance-profile credentials."""

    TOKEN = "fake-imds-token"
    ROLE = "fleet-worker-instance-role"
    TAGS = "/latest/meta-data/tags/instance/"
    CREDENTIALS = "/latest/meta-data/iam/security-credentials/"

    INSTANCE_ID = "i-0123456789abcdef0"

    def __init__(self, tags: dict[str, str] | None = None, region: str = "eu-west-1") -> None:
        self.tags = dict(tags if tags is not None else {"AutoscalerLifecycle": "service"})
        self.region = region
        self.instance_id = self.INSTANCE_ID
        self._lock = threading.Lock()
        self._reads: list[tuple[float, str]] = []
        super().__init__(_ImdsHandler)

    def record(self, path: str) -> None:
        with self._lock:
            self._reads.append((time.monotonic(), path))

    def reads(self, path: str) -> list[float]:
        """``time.monotonic()`` of every GET of ``path`` so far."""
        with self._lock:
            return [at for at, read in self._reads if read == path]

    def answer(self, path: str) -> str | None:
        if path.startswith(self.TAGS):
            return self.tags.get(path[len(self.TAGS) :])
        if path == "/latest/meta-data/placement/region":
            return self.region
        if path == "/latest/meta-data/instance-id":
            return self.instance_id
        if path == self.CREDENTIALS:
            return self.ROLE
        if path == self.CREDENTIALS + self.ROLE:
            now = datetime.now(UTC)
            return json.dumps(
                {
                    "Code": "Success",
                    "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "Type": "AWS-HMAC",
                    "AccessKeyId": "ASIAFAKEFAKEFAKEFAKE",
                    "SecretAccessKey": "testing",
                    "Token": "testing",
                    # The documented lifetime of instance-profile credentials is hours: 6 h here.
                    "Expiration": (now + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            )
        return None


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A CA-capable self-signed RSA-2048 certificate for 127.0.0.1 and localhost: (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "endpoint.crt", directory / "endpoint.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@contextlib.contextmanager
def running_moto_server(log: Path, cert: tuple[Path, Path] | None = None) -> Iterator[str]:
    """``moto_server`` on a free loopback port (HTTPS with ``cert``); yields its URL."""
    if not MOTO_SERVER.exists():
        raise RuntimeError("moto_server missing: run `make venv`")
    port = free_port()
    argv = [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)]
    context: ssl.SSLContext | None = None
    if cert is not None:
        argv += ["-c", str(cert[0]), "-k", str(cert[1])]
        context = ssl.create_default_context(cafile=str(cert[0]))
    url = f"{'https' if cert else 'http'}://127.0.0.1:{port}"
    env = {**os.environ, **FAKE_CREDENTIALS}
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=sink, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1, context=context):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield url
    finally:
        stop_process(process)


@contextlib.contextmanager
def keepalive_tls_front(tmp: Path, upstream: str, cert: tuple[Path, Path]) -> Iterator[str]:
    """An HTTPS endpoint that keeps client connections open (nginx, ``keepalive_timeout 65s``),
    proxying to ``upstream``; yields its URL.

    ``moto_server`` (werkzeug) answers every request with ``Connection: close``, so a client of it
    opens a new TLS connection per call; in front of it, a client's connection is reused like a
    pooled connection to a real AWS endpoint that keeps it open between calls.
    """
    port = free_port()
    front = tmp / "tls-front"
    front.mkdir(parents=True, exist_ok=True)
    server = front / "server.conf"
    server.write_text(
        f"""
server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert[0]};
    ssl_certificate_key {cert[1]};
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_timeout 65s;
    location / {{
        proxy_pass {upstream};
        proxy_set_header Host $http_host;
        proxy_ssl_verify off;
    }}
}}
""",
        encoding="utf-8",
    )
    with nginx_process(front, server, port):
        yield f"https://127.0.0.1:{port}"
