"""Pre-forked, supervised HTTP worker.

Layout (one supervisor process, N worker processes, N = vCPUs by default)::

    client ──TCP──> supervisor (owns the listen socket, one event loop, never does CPU work)
                      ├── GET /ping  -> answered here, from the live state of the workers
                      ├── GET /stats -> counters for the local metric publisher (JSON)
                      ├── other      -> 404 / 405 / 400 answered here
                      └── GET /work  -> queued, then the accepted socket itself is handed
                                        (SCM_RIGHTS over a socketpair) to an *idle* worker,
                                        which burns the CPU and writes the response

The supervisor knows at every moment which worker is idle, which one is busy and since when, and
which one died, so:

* ``/ping`` never waits behind ``/work`` (the supervisor sleeps in ``select`` and the kernel
  wakes it at once), and it reflects real health: ``pong`` only while at least one worker
  process is alive and not stuck past the request timeout, 503 otherwise;
* work goes only to an idle worker (no request waits behind another one in a busy process while
  a sibling is idle, which a shared ``accept()`` cannot guarantee);
* a worker that crashes is replaced (its in-flight request gets a 502), a request that runs
  past ``--request-timeout`` gets a 504 and its worker is killed and replaced;
* a /work request that would wait longer than ``--queue-budget`` before a worker starts it is
  shed at once (503 with ``Retry-After``; ``worker.shedding``) instead of waiting to time out,
  and one that finds ``--max-queue`` requests queued is rejected (503 "queue full");
* SIGTERM (or SIGINT) drains: the listen socket is closed (new connections are refused),
  everything already accepted is finished, then the workers are stopped and the process exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import random
import selectors
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from worker import __version__
from worker.shedding import ServiceTimeEwma, backlog_seconds, expected_wait, retry_after_seconds, should_shed
from worker.work import burn

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

LOG = logging.getLogger("worker")

MAX_HEADER_BYTES = 8192
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def default_processes() -> int:
    """One process per vCPU this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Config:
    """Server settings; every field has a flag and a ``WORKER_*`` environment variable."""

    host: str = "127.0.0.1"
    port: int = 30001
    processes: int = 0  # 0 = one per vCPU
    work_min: float = 0.45
    work_max: float = 0.55
    request_timeout: float = 10.0
    header_timeout: float = 10.0
    drain_timeout: float = 30.0
    max_queue: int = 1024
    # Default 10 s: a shed request's client (or the load balancer's retry) can try elsewhere at
    # once, while an accepted one is answered within ~budget + service time (10.5 s), well inside
    # the ALB's default 60 s idle timeout and nginx's proxy_read_timeout (derived from this
    # budget and request_timeout: proxy_read_timeout()). Long enough that a burst of a few
    # seconds is queued, not shed: 10 s is 20 requests per vCPU at 0.5 s each.
    queue_budget: float = 10.0
    backlog: int = 512

    @property
    def worker_count(self) -> int:
        return self.processes if self.processes > 0 else default_processes()


def proxy_read_timeout(cfg: Config) -> int:
    """nginx's ``proxy_read_timeout`` for /work, in whole seconds, derived from this configuration.

    An accepted request waits about the budget, then runs until it is answered or killed at the
    request timeout; the wait is an estimate (the mean service time may rise after the request
    was queued), so the budget is counted twice. nginx must never give up first: its 504 would
    leave the worker burning CPU for a client that is gone.
    """
    return math.ceil(2 * cfg.queue_budget + cfg.request_timeout)


def http_response(
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    head: bool = False,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A complete HTTP/1.1 response that closes the connection."""
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "Cache-Control: no-store",
        f"Server: fleet-worker/{__version__}",
        *(f"{name}: {value}" for name, value in headers),
        "",
        "",
    ]
    return "\r\n".join(lines).encode("ascii") + (b"" if head else body)


def _json(status: int, payload: dict[str, object], headers: Sequence[tuple[str, str]] = ()) -> bytes:
    return http_response(status, json.dumps(payload).encode(), "application/json", headers=headers)


# --------------------------------------------------------------------------------------------
# Worker process
# --------------------------------------------------------------------------------------------


def _close_inherited_fds(keep: int) -> None:
    """Close every descriptor the fork copied (client sockets, listener, other channels)."""
    fd_dir = Path("/proc/self/fd")
    try:
        fds = [int(name.name) for name in fd_dir.iterdir()]
    except OSError:  # pragma: no cover - no /proc
        os.closerange(3, keep)
        os.closerange(keep + 1, 4096)
        return
    for fd in fds:
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def worker_loop(chan: socket.socket, cfg: Config) -> NoReturn:
    """Body of a worker process: receive a client socket, do the work, answer, repeat."""
    signal.set_wakeup_fd(-1)
    # A signal sent to the whole group (Ctrl-C, kill -TERM -pgid) must not cut a request short:
    # the supervisor drains, then closes the channel (a worker exits on EOF) or SIGKILLs.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _close_inherited_fds(chan.fileno())
    rng = random.Random()  # reseeded from os.urandom: forked copies must differ
    pid = os.getpid()
    while True:
        msg, fds, _flags, _addr = socket.recv_fds(chan, 16, 4)
        if not msg:  # supervisor gone
            os._exit(0)
        for fd in fds:
            conn = socket.socket(fileno=fd)
            try:
                target = rng.uniform(cfg.work_min, cfg.work_max)
                work = burn(target)
                payload: dict[str, object] = {
                    "result": work.result,
                    "iterations": work.iterations,
                    "duration": round(work.cpu_seconds, 6),
                    "wall": round(work.wall_seconds, 6),
                    "target": round(work.target_seconds, 6),
                    "pid": pid,
                }
                response = _json(200, payload)
            except Exception as exc:  # pragma: no cover - burn() does not raise
                response = _json(500, {"error": type(exc).__name__})
            try:
                conn.settimeout(5.0)
                conn.sendall(response)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # client went away; nothing to tell it
            finally:
                conn.close()
        chan.sendall(b"D")


# --------------------------------------------------------------------------------------------
# Supervisor
# --------------------------------------------------------------------------------------------


@dataclass
class _Proc:
    pid: int
    chan: socket.socket
    conn: socket.socket | None = None
    since: float = 0.0


@dataclass
class _Reading:
    conn: socket.socket
    deadline: float
    buf: bytes = b""


class Supervisor:
    """Owns the listen socket and the worker processes; see the module docstring."""

    def __init__(self, cfg: Config, listener: socket.socket) -> None:
        self.cfg = cfg
        self.listener: socket.socket | None = listener
        self.sel = selectors.DefaultSelector()
        self.procs: dict[int, _Proc] = {}
        self.idle: deque[_Proc] = deque()
        self.pending: deque[socket.socket] = deque()
        self.reading: dict[int, _Reading] = {}
        self.stop_requested = False
        self.draining = False
        self.drain_deadline = 0.0
        self.served = 0
        self.replaced = 0
        self.work_requests = 0  # /work requests that reached this host (the publisher's demand signal)
        self.rejected = 0  # 503 "queue full" (--max-queue)
        self.shed = 0  # 503 + Retry-After: expected wait over --queue-budget
        self.service_time = ServiceTimeEwma()
        self._wake_r, self._wake_w = socket.socketpair()

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> int:
        listener = self.listener
        assert listener is not None
        listener.setblocking(False)
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop_signal)
        signal.signal(signal.SIGCHLD, lambda _s, _f: None)  # wakes select via the wakeup fd
        self.sel.register(self._wake_r, selectors.EVENT_READ, self._drain_wakeups)
        self.sel.register(listener, selectors.EVENT_READ, self._accept)
        self._ensure_workers()
        host, port = listener.getsockname()[:2]
        LOG.info("listening on %s:%s with %d worker processes", host, port, self.cfg.worker_count)
        try:
            while True:
                for key, _mask in self.sel.select(self._select_timeout()):
                    callback: Callable[[], None] = key.data
                    callback()
                self._reap()
                now = time.monotonic()
                self._check_timeouts(now)
                if self.stop_requested and not self.draining:
                    self._begin_drain(now)
                if self.draining and (self._idle_everywhere() or now >= self.drain_deadline):
                    break
                self._ensure_workers()
                self._dispatch()
        finally:
            self._shutdown()
        LOG.info("stopped after %d /work requests", self.served)
        return 0

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_requested = True

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(512):
                pass
        except BlockingIOError:
            pass

    def _select_timeout(self) -> float:
        timeout = 0.5
        now = time.monotonic()
        for reading in self.reading.values():
            timeout = min(timeout, reading.deadline - now)
        for proc in self.procs.values():
            if proc.conn is not None:
                timeout = min(timeout, proc.since + self.cfg.request_timeout - now)
        if self.draining:
            timeout = min(timeout, self.drain_deadline - now)
        return max(0.0, timeout)

    def _begin_drain(self, now: float) -> None:
        self.draining = True
        self.drain_deadline = now + self.cfg.drain_timeout
        if self.listener is not None:
            self._accept()  # connections already established are served, new ones refused
            self.sel.unregister(self.listener)
            self.listener.close()
            self.listener = None
        LOG.info(
            "draining: %d in flight, %d queued, %d reading",
            sum(1 for p in self.procs.values() if p.conn is not None),
            len(self.pending),
            len(self.reading),
        )

    def _idle_everywhere(self) -> bool:
        busy = any(p.conn is not None for p in self.procs.values())
        return not busy and not self.pending and not self.reading

    def _shutdown(self) -> None:
        for reading in list(self.reading.values()):
            self._close_reading(reading)
        while self.pending:
            self._respond(self.pending.popleft(), _json(503, {"error": "shutting down"}))
        for proc in list(self.procs.values()):
            if proc.conn is not None:
                self._respond(proc.conn, _json(503, {"error": "shutting down"}))
                proc.conn = None
                self._kill(proc.pid, signal.SIGKILL)
            proc.chan.close()  # an idle worker exits on EOF
        deadline = time.monotonic() + 5.0
        while self.procs and time.monotonic() < deadline:
            self._reap(forget=True)
            time.sleep(0.01)
        for pid in list(self.procs):
            self._kill(pid, signal.SIGKILL)
        if self.listener is not None:
            self.listener.close()

    # -- workers -----------------------------------------------------------------------------

    def _ensure_workers(self) -> None:
        while not self.draining and len(self.procs) < self.cfg.worker_count:
            self._spawn()

    def _spawn(self) -> None:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, measured by the HTTP tests
            try:
                parent_end.close()
                worker_loop(child_end, self.cfg)
            finally:
                os._exit(1)
        child_end.close()
        proc = _Proc(pid=pid, chan=parent_end)
        self.procs[pid] = proc
        self.idle.append(proc)
        self.sel.register(parent_end, selectors.EVENT_READ, lambda: self._on_worker_message(proc))
        LOG.debug("worker %d started", pid)

    def _on_worker_message(self, proc: _Proc) -> None:
        try:
            data = proc.chan.recv(64)
        except OSError:
            data = b""
        if not data:
            self._worker_gone(proc, 502, "worker exited")
            return
        for _ in range(data.count(b"D")):
            if proc.conn is not None:
                proc.conn.close()  # the worker answered and shut the connection down
                proc.conn = None
                self.served += 1
                # Hand-over to "done", as the supervisor sees it: the burn plus what the machine's
                # other load took from it, which is what the queue behind it waits for.
                self.service_time.observe(time.monotonic() - proc.since)
            if proc.pid in self.procs and proc not in self.idle:
                self.idle.append(proc)

    def _worker_gone(self, proc: _Proc, status: int, reason: str) -> None:
        if self.procs.pop(proc.pid, None) is None:
            return
        if proc.conn is not None:
            self._respond(proc.conn, _json(status, {"error": reason}))
            proc.conn = None
        if proc in self.idle:
            self.idle.remove(proc)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(proc.chan)
        proc.chan.close()
        if self.draining or self.stop_requested:
            LOG.info("worker %d gone (%s) while stopping", proc.pid, reason)
        else:
            self.replaced += 1
            LOG.warning("worker %d gone (%s); replacing", proc.pid, reason)

    def _reap(self, forget: bool = False) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            proc = self.procs.get(pid)
            if proc is None:
                continue
            if forget:
                self.procs.pop(pid, None)
            else:
                self._worker_gone(proc, 502, f"worker exited with status {status}")

    def _check_timeouts(self, now: float) -> None:
        for proc in list(self.procs.values()):
            if proc.conn is not None and now - proc.since > self.cfg.request_timeout:
                LOG.warning("worker %d stuck for %.1f s; killing it", proc.pid, now - proc.since)
                self._kill(proc.pid, signal.SIGKILL)
                self._worker_gone(proc, 504, "request timed out")
        for reading in list(self.reading.values()):
            if now >= reading.deadline:
                self._close_reading(reading, _json(408, {"error": "request header timeout"}))

    @staticmethod
    def _kill(pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def _dispatch(self) -> None:
        while self.pending and self.idle:
            proc = self.idle.popleft()
            conn = self.pending.popleft()
            try:
                socket.send_fds(proc.chan, [b"W"], [conn.fileno()])
            except OSError:
                self.pending.appendleft(conn)
                self._kill(proc.pid, signal.SIGKILL)
                self._worker_gone(proc, 502, "worker channel broken")
                continue
            proc.conn = conn
            proc.since = time.monotonic()

    def stats(self) -> dict[str, object]:
        """Counters for the local metric publisher (nginx does not expose /stats).

        ``work_requests``, ``served``, ``rejected`` and ``shed`` are cumulative since the start
        (the publisher takes deltas); the rest describe this moment.
        """
        return {
            "healthy": self.healthy() and not self.draining,
            "work_requests": self.work_requests,
            "served": self.served,
            "rejected": self.rejected,
            "shed": self.shed,
            "in_flight": sum(1 for p in self.procs.values() if p.conn is not None),
            "queued": len(self.pending),
            "processes": len(self.procs),
            "mean_service_seconds": round(self.service_time.value, 6),
            "backlog_seconds": round(self._backlog_seconds(), 6),
        }

    def _backlog_seconds(self) -> float:
        return backlog_seconds(len(self.pending), self.service_time.value, len(self.procs))

    def _shed_response(self) -> bytes | None:
        """The 503 for a new /work request whose expected wait is over the budget, else None."""
        ahead, mean, processes = len(self.pending), self.service_time.value, len(self.procs)
        if not should_shed(ahead, mean, processes, self.cfg.queue_budget):
            return None
        retry_after = retry_after_seconds(ahead, mean, processes, self.cfg.queue_budget)
        payload: dict[str, object] = {
            "error": "over queue budget",
            "expected_wait": round(expected_wait(ahead, mean, processes), 3),
            "queue_budget": self.cfg.queue_budget,
            "retry_after": retry_after,
        }
        return _json(503, payload, headers=[("Retry-After", str(retry_after))])

    def healthy(self) -> bool:
        """At least one worker process is alive and not stuck past the request timeout."""
        now = time.monotonic()
        return any(proc.conn is None or now - proc.since <= self.cfg.request_timeout for proc in self.procs.values())

    # -- HTTP --------------------------------------------------------------------------------

    def _accept(self) -> None:
        if self.listener is None:
            return
        while True:
            try:
                conn, _addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: try again on the next loop
                LOG.warning("accept failed: %s", exc)
                return
            conn.setblocking(False)
            reading = _Reading(conn=conn, deadline=time.monotonic() + self.cfg.header_timeout)
            self.reading[conn.fileno()] = reading
            self.sel.register(conn, selectors.EVENT_READ, lambda r=reading: self._on_readable(r))

    def _close_reading(self, reading: _Reading, response: bytes | None = None) -> None:
        self.reading.pop(reading.conn.fileno(), None)
        self.sel.unregister(reading.conn)
        if response is None:
            reading.conn.close()
        else:
            self._respond(reading.conn, response)

    def _on_readable(self, reading: _Reading) -> None:
        try:
            chunk = reading.conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._close_reading(reading)
            return
        reading.buf += chunk
        if b"\r\n\r\n" not in reading.buf and b"\n\n" not in reading.buf:
            if len(reading.buf) > MAX_HEADER_BYTES:
                self._close_reading(reading, _json(431, {"error": "headers too large"}))
            return
        self._route(reading)

    def _route(self, reading: _Reading) -> None:
        request_line = reading.buf.split(b"\n", 1)[0].decode("latin-1").strip()
        parts = request_line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            self._close_reading(reading, _json(400, {"error": "bad request line"}))
            return
        method, target = parts[0], parts[1]
        path = target.split("?", 1)[0]
        if path == "/ping":
            if method not in ("GET", "HEAD"):
                self._close_reading(reading, _json(405, {"error": "method not allowed"}))
            elif self.draining:
                self._close_reading(reading, http_response(503, b"draining", head=method == "HEAD"))
            elif self.healthy():
                self._close_reading(reading, http_response(200, b"pong", head=method == "HEAD"))
            else:
                self._close_reading(reading, http_response(503, b"no healthy worker", head=method == "HEAD"))
        elif path == "/stats":
            if method != "GET":
                self._close_reading(reading, _json(405, {"error": "method not allowed"}))
            else:
                self._close_reading(reading, _json(200, self.stats()))
        elif path == "/work":
            self.work_requests += 1
            if method != "GET":
                self._close_reading(reading, _json(405, {"error": "method not allowed"}))
            elif len(self.pending) >= self.cfg.max_queue:
                self.rejected += 1
                self._close_reading(reading, _json(503, {"error": "queue full"}))
            elif (shed := self._shed_response()) is not None:
                self.shed += 1
                self._close_reading(reading, shed)
            else:
                self.reading.pop(reading.conn.fileno(), None)
                self.sel.unregister(reading.conn)
                reading.conn.setblocking(True)
                self.pending.append(reading.conn)
                self._dispatch()
        else:
            self._close_reading(reading, _json(404, {"error": "not found", "path": path}))

    @staticmethod
    def _respond(conn: socket.socket, response: bytes) -> None:
        try:
            conn.setblocking(True)
            conn.settimeout(1.0)
            conn.sendall(response)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            conn.close()


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker",
        description=(
            "Fleet worker: GET /work burns 0.45-0.55 s of CPU and answers JSON, GET /ping answers "
            "'pong' (even while every worker is busy). Every flag defaults to a WORKER_* env var."
        ),
    )
    parser.add_argument("--host", default=_env("WORKER_HOST", "127.0.0.1"), help="[WORKER_HOST]")
    parser.add_argument("--port", type=int, default=int(_env("WORKER_PORT", "30001")), help="[WORKER_PORT]")
    parser.add_argument(
        "--processes",
        type=int,
        default=int(_env("WORKER_PROCESSES", "0")),
        help="worker processes; 0 = one per vCPU [WORKER_PROCESSES]",
    )
    parser.add_argument(
        "--work-min",
        type=float,
        default=float(_env("WORKER_WORK_MIN", "0.45")),
        help="min CPU seconds per /work [WORKER_WORK_MIN]",
    )
    parser.add_argument(
        "--work-max",
        type=float,
        default=float(_env("WORKER_WORK_MAX", "0.55")),
        help="max CPU seconds per /work [WORKER_WORK_MAX]",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=float(_env("WORKER_REQUEST_TIMEOUT", "10")),
        help="kill a worker whose request runs longer (s) [WORKER_REQUEST_TIMEOUT]",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=float(_env("WORKER_DRAIN_TIMEOUT", "30")),
        help="max seconds to finish in-flight work on SIGTERM [WORKER_DRAIN_TIMEOUT]",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=int(_env("WORKER_MAX_QUEUE", "1024")),
        help="queued /work requests before 503 [WORKER_MAX_QUEUE]",
    )
    parser.add_argument(
        "--queue-budget",
        type=float,
        default=float(_env("WORKER_QUEUE_BUDGET", str(Config.queue_budget))),
        help="shed (503 + Retry-After) a /work whose expected wait exceeds this (s) [WORKER_QUEUE_BUDGET]",
    )
    parser.add_argument(
        "--print-proxy-read-timeout",
        action="store_true",
        help="print nginx's proxy_read_timeout for /work (s) for this configuration and exit",
    )
    parser.add_argument("--log-level", default=_env("WORKER_LOG_LEVEL", "INFO"), help="[WORKER_LOG_LEVEL]")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    if not 0 <= args.work_min <= args.work_max:
        raise SystemExit("need 0 <= --work-min <= --work-max")
    if args.request_timeout <= 0 or args.drain_timeout < 0:
        raise SystemExit("timeouts must be positive")
    if not args.queue_budget > 0:  # also refuses nan
        raise SystemExit(f"--queue-budget must be positive, got {args.queue_budget}")
    return Config(
        host=args.host,
        port=args.port,
        processes=args.processes,
        work_min=args.work_min,
        work_max=args.work_max,
        request_timeout=args.request_timeout,
        drain_timeout=args.drain_timeout,
        max_queue=args.max_queue,
        queue_budget=args.queue_budget,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    cfg = config_from_args(args)
    if args.print_proxy_read_timeout:
        print(proxy_read_timeout(cfg))
        return 0
    listener = socket.create_server((cfg.host, cfg.port), backlog=cfg.backlog)
    return Supervisor(cfg, listener).run()
