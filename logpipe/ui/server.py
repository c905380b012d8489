"""Serving the page with uvicorn on one address (127.0.0.1 unless told otherwise)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

from logpipe.errors import UsageError
from logpipe.ui.backend import Backend

DEFAULT_BIND = "127.0.0.1:8080"


@dataclass(frozen=True, slots=True)
class Bind:
    host: str
    port: int

    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def parse_bind(text: str) -> Bind:
    """`HOST:PORT`, `:PORT` (127.0.0.1) or `PORT`; port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--bind wants HOST:PORT (e.g. 127.0.0.1:8080), not {text!r}")
    return Bind(host, int(port))


def listen(bind: Bind) -> tuple[socket.socket, Bind]:
    """A listening socket (bound before uvicorn starts, so port 0 has its real number at once)."""
    family = socket.AF_INET6 if ":" in bind.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bind.host, bind.port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {bind.host}:{bind.port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock, Bind(bind.host, sock.getsockname()[1])


def allowed_hosts(bind: Bind) -> list[str]:
    """Host header values the page answers to: the bound address and, on loopback, localhost."""
    hosts = (
        {bind.host, "127.0.0.1", "localhost", "[::1]"}
        if bind.host in ("127.0.0.1", "::1", "localhost")
        else {bind.host}
    )
    if bind.host in ("0.0.0.0", "::"):
        return ["*"]  # asked for every interface: any name that reaches it
    return sorted(hosts)


def serve(backend: Backend, bind: Bind, *, ready: Callable[[str], None]) -> None:
    """Serve until SIGINT/SIGTERM; `ready(url)` is called once the socket listens."""
    import uvicorn

    from logpipe.ui.app import create_app

    sock, bound = listen(bind)
    app = create_app(backend, hosts=allowed_hosts(bound))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    ready(bound.url())
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
