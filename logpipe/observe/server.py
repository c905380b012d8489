"""The HTTP side of `--metrics-addr`: /metrics, /health and /ready, served from a daemon thread.

The standard library's threading server is enough: a scrape every few seconds and two probes.
Each request runs in its own short-lived thread and only reads snapshots, so shipping is not
slowed. /health and /ready answer JSON (`{"status": "ok"}`, or 503 with the reasons).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from logpipe.errors import UsageError


@dataclass(frozen=True)
class Endpoints:
    """What the server answers with; each callable is cheap and thread-safe."""

    metrics: Callable[[], tuple[bytes, str]]
    health: Callable[[], str | None]  # None when alive, else why not
    ready: Callable[[], list[str]]  # reasons the agent is not ready; empty when it is


def parse_addr(text: str) -> tuple[str, int]:
    """HOST:PORT (or [IPv6]:PORT, or :PORT for every interface) -> (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--metrics-addr expects HOST:PORT (like 127.0.0.1:9108), got {text!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    endpoints: Endpoints


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        endpoints = self.server.endpoints
        if path == "/metrics":
            body, content_type = endpoints.metrics()
            self._answer(200, body, content_type)
        elif path == "/health":
            why = endpoints.health()
            self._json(
                200 if why is None else 503,
                {"status": "ok"} if why is None else {"status": "unhealthy", "reasons": [why]},
            )
        elif path == "/ready":
            reasons = endpoints.ready()
            self._json(
                503 if reasons else 200, {"status": "not ready", "reasons": reasons} if reasons else {"status": "ok"}
            )
        elif path == "/":
            self._answer(200, b"logpipe: /metrics /health /ready\n", "text/plain; charset=utf-8")
        else:
            self._answer(404, b"not found: /metrics /health /ready\n", "text/plain; charset=utf-8")

    def _json(self, status: int, doc: dict[str, Any]) -> None:
        self._answer(status, json.dumps(doc).encode() + b"\n", "application/json")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would drown logpipe's own log: requests are not logged."""


class MetricsServer:
    """Serves the endpoints on (host, port) until `close`; port 0 picks a free one (see `.port`)."""

    def __init__(self, host: str, port: int, endpoints: Endpoints) -> None:
        server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6}) if ":" in host else _Server
        try:
            self._server = server_class((host, port), _Handler)
        except OSError as exc:
            raise UsageError(f"--metrics-addr {host}:{port}: cannot listen ({exc.strerror or exc})") from None
        self._server.endpoints = endpoints
        self.host = host
        self.port = int(self._server.server_address[1])
        # A short poll: shutdown() waits for the loop to notice, and the agent exits that much later.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="logpipe-metrics", daemon=True
        )

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
