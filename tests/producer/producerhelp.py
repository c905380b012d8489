"""Helpers for the producer tests: log through logpipe.logging, drive ASGI by hand."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import logpipe.logging as lplog


@contextlib.contextmanager
def logging_to(stream: io.TextIOBase | Any, **kw: Any) -> Iterator[logging.Handler]:
    """`logpipe.logging.setup(stream=…)` for the block; the root logger is restored afterwards."""
    root = logging.getLogger()
    level = root.level
    handler = lplog.setup(stream=stream, **kw)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(x) for x in buf.getvalue().splitlines()]


@dataclass
class Response:
    """What an ASGI server would have sent for one request."""

    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.messages[0]["headers"] if k == name]


def http_scope(
    method: str = "GET", path: str = "/", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "method": method, "path": path, "headers": headers or []}


async def call(app: Any, scope: dict[str, Any]) -> Response:
    """Call an ASGI app the way a server does, collecting what it sends."""
    response = Response()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        response.messages.append(message)

    await app(scope, receive, send)
    return response
