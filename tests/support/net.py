"""Local ports for servers a test starts itself."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A local port nothing listens on now (bound, then released: a test that must not race
    another for it passes port 0 to the server and reads the port back instead)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
