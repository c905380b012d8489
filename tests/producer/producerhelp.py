"""Helpers for the producer tests: log through logpipe.logging, drive ASGI by hand, ship with the real CLI."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
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


def http_scope(method: str = "GET", path: str = "/", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
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


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_logpipe(*args: str, timeout: float = 120) -> Run:
    """The real CLI in a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "logpipe", *args],
        capture_output=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )
    return Run(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def archive_rows(archive: Path) -> list[dict[str, Any]]:
    """Every archived record, read from the Parquet files directly with DuckDB (not through logpipe)."""
    import duckdb

    files = [p for p in archive.glob("logs/**/*.parquet") if not p.name.startswith(".tmp-")]
    if not files:
        return []
    cur = duckdb.connect().execute(
        "SELECT * FROM read_parquet($1, hive_partitioning = true, union_by_name = true)",
        [str(archive / "logs" / "**" / "*.parquet")],
    )
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
