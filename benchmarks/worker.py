"""Worker benchmark: /work throughput per vCPU and /ping latency while every /work slot is busy.

Two designs, measured in one run on the same machine with the same load:

* ``worker``   -- this repository's ``python -m worker`` (supervisor answers /ping, hands /work
                  to idle processes);
* ``baseline`` -- the 2013 prototype's design: N pre-forked processes, each a plain stdlib
                  ``HTTPServer`` serving /work and /ping synchronously on the shared socket.

Both run N = vCPU processes. ``2 x N`` closed-loop clients send /work back to back (no think
time) for ``--seconds``; meanwhile one client pings every 50 ms. Printed: completed /work per
second per vCPU, the physical limit per vCPU (1 / mean CPU seconds of a /work), their ratio,
the share of the vCPUs the server's processes actually got (utime+stime / wall / N: other load
on the machine lowers it, and the ratio with it), the useful fraction of that CPU (CPU seconds
of /work done / CPU seconds used), and /ping p50 / p99 / max.

    .venv/bin/python -m benchmarks.worker [--seconds 10] [--processes N]

``--calibrate`` measures instead the figures the twin is calibrated with, on the host stack as
``worker/bootstrap.sh`` sets it up (nginx + supervisor + worker processes + metrics
publisher): idle background CPU, CPU per /ping and per /work beyond the burn, service time
(see ``benchmarks/worker_calibration.py`` and docs/worker.md):

    .venv/bin/python -m benchmarks.worker --calibrate [--reps 5] [--json out/worker-calibration.json]

``--overload`` runs the host stack (nginx + worker, pinned to ``--vcpus``) under open-loop
arrivals at 3x what it serves and prints how it sheds (``benchmarks/worker_overload.py``)::

    .venv/bin/python -m benchmarks.worker --overload [--factor 3] [--warmup 20] [--seconds 60]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from worker.server import default_processes
from worker.work import burn

REPO = Path(__file__).resolve().parent.parent

# -- the 2013 prototype's design ----------------------------------------------------------------


class _PrototypeHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/ping":
            body, ctype = b"pong", "text/plain"
        elif self.path == "/work":
            work = burn(random.uniform(0.45, 0.55))
            body = json.dumps({"result": work.result, "duration": work.cpu_seconds}).encode()
            ctype = "application/json"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_baseline(port: int, processes: int) -> None:
    """N processes, each ``serve_forever`` on the one listening socket (the prototype's server.py)."""
    server = HTTPServer(("127.0.0.1", port), _PrototypeHandler)
    for _ in range(processes - 1):
        if os.fork() == 0:
            random.seed()
            server.serve_forever()
            os._exit(0)
    signal.signal(signal.SIGTERM, lambda *_: os.killpg(0, signal.SIGKILL))
    server.serve_forever()


# -- load -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ping(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if get(port, "/ping") == (200, b"pong"):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"no /ping on port {port}")


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its direct children (the server's processes)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    ticks = 0
    for each in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(port: int, processes: int, seconds: float, server_pid: int) -> dict[str, float]:
    stop = threading.Event()
    durations: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client() -> None:
        while not stop.is_set():
            try:
                status, body = get(port, "/work")
            except OSError:
                status, body = 0, b""
            with lock:
                if status == 200:
                    durations.append(float(json.loads(body)["duration"]))
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=client) for _ in range(2 * processes)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # every slot busy, a queue behind
    with lock:
        done_before = len(durations)
    start = time.perf_counter()
    cpu_start = tree_cpu_seconds(server_pid)
    pings: list[float] = []
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        get(port, "/ping")
        pings.append(time.perf_counter() - t0)
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    cpu_used = tree_cpu_seconds(server_pid) - cpu_start
    with lock:
        completed = len(durations) - done_before
        mean_work = statistics.fmean(durations)
    stop.set()
    for thread in threads:
        thread.join(30)
    pings.sort()
    per_vcpu = completed / elapsed / processes
    limit = 1.0 / mean_work
    return {
        "work_per_s_per_vcpu": per_vcpu,
        "limit_per_s_per_vcpu": limit,
        "ratio": per_vcpu / limit,
        "cpu_share": cpu_used / elapsed / processes,
        "useful_cpu": completed * mean_work / cpu_used if cpu_used > 0 else 0.0,
        "mean_work_s": mean_work,
        "ping_p50_ms": 1000 * pings[len(pings) // 2],
        "ping_p99_ms": 1000 * pings[min(len(pings) - 1, int(0.99 * len(pings)))],
        "ping_max_ms": 1000 * pings[-1],
        "pings": float(len(pings)),
        "errors": float(errors[0]),
    }


def run_design(name: str, processes: int, seconds: float) -> dict[str, float]:
    port = free_port()
    if name == "worker":
        argv = [sys.executable, "-m", "worker", "--port", str(port), "--processes", str(processes)]
        argv += ["--log-level", "WARNING"]
    else:
        argv = [sys.executable, "-m", "benchmarks.worker", "--serve-baseline", str(port), "--processes", str(processes)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(argv, cwd=REPO, env=env, start_new_session=True)
    try:
        wait_ping(port)
        return measure(port, processes, seconds, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--seconds", type=float, help="measured seconds per design (default 10; --overload: the window, default 60)"
    )
    parser.add_argument("--processes", type=int, default=default_processes(), help="processes (vCPUs)")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    calibration = parser.add_argument_group("calibration (--calibrate)")
    calibration.add_argument("--calibrate", action="store_true", help="measure the host's calibration figures")
    calibration.add_argument("--reps", type=int, default=5, help="repetitions of every measurement")
    calibration.add_argument("--quiet-seconds", type=float, default=20.0, help="no-traffic window (floor)")
    calibration.add_argument("--pings", type=int, default=1000, help="/ping requests per repetition")
    calibration.add_argument("--work-requests", type=int, default=60, help="/work requests per repetition and mode")
    calibration.add_argument("--idle-seconds", type=float, default=60.0, help="idle window (whole 10 s periods)")
    calibration.add_argument("--vcpus", type=int, default=1, help="vCPUs of the host (template: c7g.medium = 1)")
    calibration.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    overloaded = parser.add_argument_group(
        "overload (--overload; --seconds is the measured window, --vcpus the pinning)"
    )
    overloaded.add_argument("--overload", action="store_true", help="the host stack under open-loop overload")
    overloaded.add_argument("--factor", type=float, default=3.0, help="arrival rate / what the host serves")
    overloaded.add_argument("--warmup", type=float, default=20.0, help="seconds before the measured window")
    overloaded.add_argument("--seed", type=int, default=1, help="seed of the Poisson arrivals")
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline, args.processes)
        return 0
    if args.overload:
        from benchmarks.worker_overload import overload

        return overload(args.factor, args.warmup, args.seconds or 60.0, args.vcpus, 10.0, args.seed)
    if args.calibrate:
        from benchmarks.worker_calibration import Calibration, calibrate

        settings = Calibration(
            reps=args.reps,
            quiet_seconds=args.quiet_seconds,
            pings=args.pings,
            work_requests=args.work_requests,
            idle_seconds=args.idle_seconds,
            vcpus=args.vcpus,
        )
        calibrate(settings, args.json)
        return 0
    seconds = args.seconds or 10.0
    print(
        f"worker benchmark: {args.processes} processes on {os.cpu_count()} CPUs, "
        f"{2 * args.processes} saturating clients, {seconds:.0f} s per design"
    )
    header = f"{'design':<10}{'work/s/vCPU':>12}{'limit':>8}{'ratio':>8}{'mean work s':>13}"
    header += (
        f"{'cpu share':>11}{'useful cpu':>12}{'ping p50 ms':>13}{'ping p99 ms':>13}{'ping max ms':>13}{'errors':>8}"
    )
    print(header)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} (other processes skew the ratio)")
    for name in ("worker", "baseline"):
        r = run_design(name, args.processes, seconds)
        print(
            f"{name:<10}{r['work_per_s_per_vcpu']:>12.3f}{r['limit_per_s_per_vcpu']:>8.3f}{r['ratio']:>8.3f}"
            f"{r['mean_work_s']:>13.3f}{r['cpu_share']:>11.3f}{r['useful_cpu']:>12.3f}{r['ping_p50_ms']:>13.1f}{r['ping_p99_ms']:>13.1f}"
            f"{r['ping_max_ms']:>13.1f}{r['errors']:>8.0f}"
        )
    print(f"load average after:  {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
