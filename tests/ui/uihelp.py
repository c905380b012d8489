"""Helpers for tests/ui: `logpipe ui` as a real process, shipping a log, plain DuckDB answers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.archive import WHOLE_EVENT_ID
from tests.support.cli import LOGPIPE, ROOT
from tests.support.exdata import logpipe, write_log

CHROMIUM = os.environ.get("LOGPIPE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
URL_RE = re.compile(r"at (http://\S+/) ")


class Served:
    """One `logpipe ui` process and the URL it printed."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        cmd = [*LOGPIPE, "ui", "--bind", "127.0.0.1:0", *args]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
        )
        self.started: list[str] = []  # what it printed on stderr up to and with its URL
        self.url = self._wait_for_url()

    def _wait_for_url(self, timeout: float = 60) -> str:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        seen = self.started
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                if self.proc.poll() is not None:
                    raise AssertionError(f"logpipe ui exited {self.proc.returncode}: {''.join(seen)}")
                continue
            seen.append(line)
            match = URL_RE.search(line)
            if match:
                return match.group(1)
        raise AssertionError(f"logpipe ui printed no URL in {timeout}s: {''.join(seen)}")

    def get(self, path: str) -> tuple[int, Any]:
        """GET a URL of the server; (status, parsed JSON body)."""
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def ship(folder: Path, objects: list[dict[str, Any]]) -> Path:
    """Write `objects` as a JSON log in `folder` and ship it into `folder/archive`; the archive."""
    write_log(folder / "app.log", objects)
    result = logpipe("ship", "--once", str(folder / "app.log"), "--archive", str(folder / "archive"), "--no-progress")
    assert result.returncode == 0, result.stderr
    return folder / "archive"


def duck(archive: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """An independent answer: plain DuckDB over the archive's Parquet files (not logpipe's reader)."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        glob = str(archive / "logs" / "**" / "*.parquet")
        scan = f"read_parquet('{glob}', hive_partitioning = true)"
        con.execute(f"CREATE VIEW logs AS SELECT * REPLACE ({WHOLE_EVENT_ID} AS event_id) FROM {scan}")
        return [tuple(r) for r in con.execute(sql, params or []).fetchall()]
    finally:
        con.close()


def rendered(page: Any, view: str | None = None, timeout: float = 30_000) -> None:
    """Wait until the view has finished drawing (the shell sets data-rendered when it has)."""
    selector = f'main#view[data-rendered][data-view="{view}"]' if view else "main#view[data-rendered]"
    page.wait_for_selector(selector, state="attached", timeout=timeout)


def drawn(page: Any) -> str:
    """The shell's render counter now (data-rendered): pass it to `redrawn` after a click."""
    return page.get_attribute("main#view", "data-rendered") or ""


def redrawn(page: Any, before: str, view: str) -> None:
    """Wait until a render newer than `before` has finished drawing `view`."""
    page.wait_for_function(
        "([before, view]) => { const m = document.querySelector('main#view');"
        " return m.dataset.rendered && m.dataset.rendered !== before && m.dataset.view === view; }",
        arg=[before, view],
        timeout=30_000,
    )


def answers(served: dict[str, Any], path: str) -> tuple[Any, Any]:
    """GET `path` of the archive's server and of the engine's (`served["archive_server"]`,
    `served["es_server"]`); both must answer 200. (archive's body, engine's body)."""
    status, archive = served["archive_server"].get(path)
    assert status == 200, archive
    status, engine = served["es_server"].get(path)
    assert status == 200, engine
    return archive, engine
