"""Serving the page with uvicorn on one address (127.0.0.1 unless told otherwise)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from logpipe.errors import UsageError
from logpipe.read.store import Store
from logpipe.ui.access import Credentials, allowed_hosts

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


def serve(
    store: Store,
    bind: Bind,
    *,
    ready: Callable[[str], None],
    allow_hosts: Sequence[str] = (),
    credentials: Credentials | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; `ready(url)` is called once the socket listens.

    The Host allow-list holds on any address (see `access.allowed_hosts`), a wildcard bind too.
    """
    import uvicorn

    from logpipe.ui.app import create_app

    hosts = allowed_hosts(bind.host, allow_hosts)  # checked before the socket is taken
    sock, bound = listen(bind)
    app = create_app(store, hosts=hosts, credentials=credentials)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    ready(bound.url())
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
