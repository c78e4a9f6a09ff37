"""Helpers shared by the worker, userdata and loadtest tests: real processes on free ports.

* :func:`running_worker` starts ``python -m worker`` on a free loopback port;
* :func:`install_sandbox` runs the launch template's user-data stub (rendered like Fn::Sub) as
  cloud-init would, against a local stand-in for the Lambda layer download with a zip of
  ``worker/`` as the layer; the stub verifies it and runs the ``bootstrap.sh`` it carries, which
  installs under a temporary root (sandbox mode);
* :func:`running_nginx` starts a real nginx (non-root friendly, single process by default)
  around the server block that bootstrap.sh wrote;
* :func:`worker_behind_nginx` chains the three: the stack's instance, in a temp dir;
* :func:`nginx_process` with ``layout="al2023"`` runs nginx as the host does (master + one
  worker per vCPU), :func:`publisher_from_unit` the CPU metric publisher as its unit says; the
  worker calibration (``python -m benchmarks.worker --calibrate``) measures the host on them.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fleet_template.cfn import load_template
from tests.support.lambda_layers import FakeLayerService, fake_aws_bin
from userdata.render import render, user_data

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "template.yaml"
BOOTSTRAP = REPO / "worker" / "bootstrap.sh"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

_PARAMETERS = load_template(TEMPLATE)["Parameters"]

# What the stub's Fn::Sub resolves, as a deployed stack with the template's defaults would (the
# panic line's two factors are the template's own defaults).
RENDER_VALUES = {
    "AWS::Region": "eu-west-1",
    "FleetName": "test-fleet",
    "WorkerLayerVersionArn": "arn:aws:lambda:eu-west-1:123456789012:layer:fleet-worker:7",
    "CpuMetricNamespace": "Autoscaler",
    "WorkerQueueBudgetSeconds": "10",
    "DemandTopicArn": "arn:aws:sns:eu-west-1:123456789012:autoscaler-DemandTopic-0123ABCD",
    "PanicThreshold": str(_PARAMETERS["PanicThreshold"]["Default"]),
    "CpuTarget": str(_PARAMETERS["CpuTarget"]["Default"]),
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 10.0, method: str = "GET") -> tuple[int, bytes]:
    """Status and body; HTTP errors are answers too."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def timed_get(host: str, port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes, float]:
    """One GET on a fresh connection: status, body, seconds."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - start
    finally:
        conn.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return True
        time.sleep(interval)
    return False


def pings(url: str) -> bool:
    status, body = http_get(url, timeout=2.0)
    return status == 200 and body == b"pong"


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return int(proc.returncode)


def child_pids(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


@dataclass
class RunningWorker:
    proc: subprocess.Popen[bytes]
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.contextmanager
def running_worker(
    processes: int = 2,
    work_min: float = 0.45,
    work_max: float = 0.55,
    request_timeout: float = 10.0,
    extra_args: tuple[str, ...] = (),
    argv: list[str] | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[RunningWorker]:
    """``python -m worker`` (or ``argv``) on a free port; stopped with SIGTERM on exit."""
    port = port or free_port()
    if argv is None:
        argv = [
            sys.executable,
            "-m",
            "worker",
            "--port",
            str(port),
            "--processes",
            str(processes),
            "--work-min",
            str(work_min),
            "--work-max",
            str(work_max),
            "--request-timeout",
            str(request_timeout),
            "--log-level",
            "WARNING",
            *extra_args,
        ]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    proc = subprocess.Popen(argv, cwd=REPO, env=full_env)
    worker = RunningWorker(proc=proc, host="127.0.0.1", port=port)
    try:
        if not wait_until(lambda: pings(f"{worker.url}/ping"), timeout=15):
            raise RuntimeError(f"worker did not answer /ping on {worker.url}")
        yield worker
    finally:
        stop_process(proc)


# -- userdata sandbox -------------------------------------------------------------------------


def make_worker_zip(dest: Path) -> Path:
    """The Lambda layer of ``ContentUri: worker/``: the package files at the zip's root."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((REPO / "worker").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(REPO / "worker").as_posix())
    return dest


def user_data_script(values: dict[str, str] | None = None) -> str:
    """The launch template's user-data stub, rendered like Fn::Sub with ``values``."""
    text, _variables = user_data(load_template(TEMPLATE))
    return render(text, RENDER_VALUES if values is None else values)


def bootstrap_args(values: dict[str, str] | None = None) -> list[str]:
    """The arguments the stub passes to bootstrap.sh, for ``values`` (default :data:`RENDER_VALUES`)."""
    v = RENDER_VALUES if values is None else values
    return [
        "--region",
        v["AWS::Region"],
        "--layer-arn",
        v["WorkerLayerVersionArn"],
        "--fleet-name",
        v["FleetName"],
        "--queue-budget",
        v["WorkerQueueBudgetSeconds"],
        "--metric-namespace",
        v["CpuMetricNamespace"],
        "--demand-topic-arn",
        v["DemandTopicArn"],
        "--panic-threshold",
        v["PanicThreshold"],
        "--cpu-target",
        v["CpuTarget"],
    ]


def run_user_data(
    tmp: Path,
    service: FakeLayerService,
    env: dict[str, str],
    path: str | None = None,
    aws: bool = True,
    values: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the rendered stub as cloud-init does (a file run by its ``#!``) against ``service``:
    ``AWS_ENDPOINT_URL_LAMBDA`` names it, and with ``aws`` a fake ``aws`` that asks it comes first
    on PATH; ``path`` is the rest of PATH (default: ours)."""
    tmp.mkdir(parents=True, exist_ok=True)
    script = tmp / "user-data"
    script.write_text(user_data_script(values), encoding="utf-8")
    script.chmod(0o700)
    rest = os.environ.get("PATH", "/usr/bin:/bin") if path is None else path
    full_env = {
        **os.environ,
        "PATH": f"{fake_aws_bin(tmp / 'fake-aws')}:{rest}" if aws else rest,
        "AWS_ENDPOINT_URL_LAMBDA": service.url,
        **env,
    }
    return subprocess.run([str(script)], env=full_env, capture_output=True, text=True, timeout=120, check=False)


@dataclass
class Sandbox:
    root: Path
    user_data: Path
    layer_zip: Path
    nginx_port: int
    worker_port: int
    output: str

    @property
    def worker_unit(self) -> Path:
        return self.root / "etc/systemd/system/fleet-worker.service"

    @property
    def publisher_unit(self) -> Path:
        return self.root / "etc/systemd/system/fleet-metrics.service"

    @property
    def nginx_conf(self) -> Path:
        return self.root / "etc/nginx/conf.d/fleet-worker.conf"

    @property
    def app_dir(self) -> Path:
        return self.root / "opt/fleet-worker"

    @property
    def marker(self) -> Path:
        return self.root / "var/lib/fleet-worker/installed"


def sandbox_env(root: Path, nginx_port: int, worker_port: int) -> dict[str, str]:
    """bootstrap.sh's sandbox settings: install under ``root``, skip what needs root or a host."""
    return {
        "BOOTSTRAP_ROOT": str(root),
        "BOOTSTRAP_SANDBOX": "1",
        "BOOTSTRAP_PYTHON": sys.executable,
        "BOOTSTRAP_NGINX_PORT": str(nginx_port),
        "BOOTSTRAP_WORKER_PORT": str(worker_port),
    }


def run_bootstrap(script: Path, env: dict[str, str], args: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run bootstrap.sh directly, as the stub does (``bash bootstrap.sh <args>``)."""
    argv = ["bash", str(script), *(bootstrap_args() if args is None else args)]
    return subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False)


def install_sandbox(
    tmp: Path, nginx_port: int | None = None, worker_port: int | None = None, values: dict[str, str] | None = None
) -> Sandbox:
    """The user-data stub, rendered with ``values`` (default :data:`RENDER_VALUES`), run against a
    local layer service serving a zip of ``worker/``: it verifies the layer and runs its
    bootstrap.sh, which installs under ``tmp/root``."""
    tmp.mkdir(parents=True, exist_ok=True)
    nginx_port = nginx_port or free_port()
    worker_port = worker_port or free_port()
    root = tmp / "root"
    layer_zip = make_worker_zip(tmp / "layer.zip")
    with FakeLayerService(RENDER_VALUES["WorkerLayerVersionArn"], layer_zip.read_bytes()) as service:
        result = run_user_data(tmp, service, sandbox_env(root, nginx_port, worker_port), values=values)
    if result.returncode != 0:
        raise RuntimeError(f"the user-data stub failed ({result.returncode}):\n{result.stderr}")
    return Sandbox(root, tmp / "user-data", layer_zip, nginx_port, worker_port, result.stderr)


def parse_unit(path: Path) -> tuple[dict[str, str], list[str], dict[str, list[str]]]:
    """``Environment=`` pairs, the ``ExecStart`` argv and every key's values of a unit file."""
    env: dict[str, str] = {}
    keys: dict[str, list[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "[")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        keys.setdefault(key, []).append(value)
        if key == "Environment":
            name, val = value.split("=", 1)
            env[name] = val
    return env, shlex.split(keys["ExecStart"][0]), keys


NginxLayout = Literal["test", "al2023"]


def nginx_main_conf(
    prefix: Path, server_conf: Path, layout: NginxLayout = "test", worker_processes: int | None = None
) -> str:
    """The ``nginx.conf`` around bootstrap.sh's server block, every path under ``prefix``.

    ``test``: one foreground process (cheap, enough to prove the proxying). ``al2023``: the
    process layout and http settings of the stock ``nginx.conf`` of the Fedora / Amazon Linux 2023
    nginx package (master + ``worker_processes auto``, ``access_log ... main``, ``sendfile``,
    ``tcp_nopush``, ``keepalive_timeout 65``, a default server), so CPU measured on it is the
    host's. Differences kept on purpose: the master stays in the foreground (systemd's
    ``Type=forking`` only daemonizes it), no ``user nginx`` (workers run as nginx's default
    user), the default server listens on a free port instead of :80, and ``worker_processes``
    (default ``auto``) can be set to what ``auto`` gives on a host with that many vCPUs (nginx
    counts the machine's CPUs, not the CPUs a pinned process may use).
    """
    temp_paths = "\n".join(
        f"    {kind}_temp_path {prefix}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    if layout == "test":
        return f"""
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {prefix}/access.log;
{temp_paths}
    include {server_conf};
}}
"""
    mime_types = Path("/etc/nginx/mime.types")
    return f"""
daemon off;
worker_processes {worker_processes or "auto"};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{
    worker_connections 1024;
}}
http {{
    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';
    access_log  {prefix}/access.log  main;
    sendfile            on;
    tcp_nopush          on;
    keepalive_timeout   65;
    types_hash_max_size 4096;
    {f"include {mime_types};" if mime_types.exists() else ""}
    default_type        application/octet-stream;
{temp_paths}
    include {server_conf};
    server {{
        listen       127.0.0.1:{free_port()};
        server_name  _;
        root         {prefix}/html;
    }}
}}
"""


@dataclass
class RunningNginx:
    proc: subprocess.Popen[bytes]
    url: str
    prefix: Path


@contextlib.contextmanager
def nginx_process(
    tmp: Path, server_conf: Path, port: int, layout: NginxLayout = "test", worker_processes: int | None = None
) -> Iterator[RunningNginx]:
    """A real nginx, its master in the foreground (our child), every path under ``tmp/nginx``."""
    if NGINX is None:
        raise RuntimeError("nginx is not installed")
    prefix = tmp / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_main_conf(prefix, server_conf, layout, worker_processes), encoding="utf-8")
    proc = subprocess.Popen([NGINX, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)])
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until(lambda: _port_open(port), timeout=10):
            raise RuntimeError(f"nginx did not listen on {port}: {(prefix / 'error.log').read_text()}")
        yield RunningNginx(proc, url, prefix)
    finally:
        stop_process(proc, signal.SIGQUIT)


@contextlib.contextmanager
def running_nginx(tmp: Path, server_conf: Path, port: int, layout: NginxLayout = "test") -> Iterator[str]:
    """:func:`nginx_process`, yielding its URL."""
    with nginx_process(tmp, server_conf, port, layout) as nginx:
        yield nginx.url


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def worker_from_unit(sandbox: Sandbox, extra_env: dict[str, str] | None = None) -> Iterator[RunningWorker]:
    """Start the worker exactly as the systemd unit says, from the unzipped layer."""
    env, argv, _keys = parse_unit(sandbox.worker_unit)
    env["PYTHONPATH"] = str(sandbox.app_dir)  # the unit's /opt/fleet-worker, under the root
    env.update(extra_env or {})
    with running_worker(argv=argv, env=env, port=sandbox.worker_port) as worker:
        yield worker


@contextlib.contextmanager
def publisher_from_unit(sandbox: Sandbox, extra_env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start the CPU metric publisher as its systemd unit says (``Environment=``, ``Nice=``,
    ``ExecStart``), from the unzipped layer, with systemd's small environment instead of ours.

    ``extra_env`` points it at local endpoints (``IMDS_URL``, ``AWS_ENDPOINT_URL_CLOUDWATCH``,
    ``AWS_EC2_METADATA_SERVICE_ENDPOINT``, ...); its output goes to ``log``.
    """
    env, argv, keys = parse_unit(sandbox.publisher_unit)
    env["PYTHONPATH"] = str(sandbox.app_dir)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **env, **extra_env}
    nice = keys.get("Nice", ["0"])[0]
    with log.open("wb") as sink:
        proc = subprocess.Popen(["nice", "-n", nice, *argv], cwd=sandbox.root, env=env, stdout=sink, stderr=sink)
    try:
        yield proc
    finally:
        stop_process(proc)


@contextlib.contextmanager
def worker_behind_nginx(tmp: Path, processes: int = 2) -> Iterator[tuple[str, RunningWorker]]:
    """The user-data install in a sandbox, its worker, and nginx in front: yields nginx's URL."""
    sandbox = install_sandbox(tmp)
    with (
        worker_from_unit(sandbox, {"WORKER_PROCESSES": str(processes)}) as worker,
        running_nginx(tmp, sandbox.nginx_conf, sandbox.nginx_port) as url,
    ):
        yield url, worker
