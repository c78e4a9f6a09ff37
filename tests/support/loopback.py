"""A fake service on a loopback port: an HTTP server in a daemon thread whose handler reaches
the fake through ``self.server.service``. FakeImds and FakeLayerService are such services."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

_S = TypeVar("_S", bound="LoopbackService")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, service: LoopbackService, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.service = service


def service_of(handler: BaseHTTPRequestHandler) -> Any:
    """The fake a request handler answers for."""
    return handler.server.service  # type: ignore[attr-defined]


class LoopbackService:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = _Server(self, handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self: _S) -> _S:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
