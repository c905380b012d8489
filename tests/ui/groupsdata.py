"""Data for the Errors, Patterns and Journey tests: the demo's realistic log, shipped for real.

`scripts/demo_log.py` (what `make demo` runs) writes a shop API's log through logpipe.logging:
users with sessions, requests whose early lines carry only the request_id, access lines with
method/path/status/duration, and errors with real tracebacks of several kinds. The tests ask
DuckDB over the Parquet files (`uihelp.duck`) what every answer should be.

Fixtures (import them into a test module): `groups_data` (the archive, the log), `groups_server`
(`logpipe ui` on it) and `groups_es` (the same log shipped to each engine, OpenSearch and Elasticsearch, and
into an archive of its own in one `ship --once`, both served).
"""

from __future__ import annotations

import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from uihelp import ROOT, Served, duck

from tests.support.engines import count, make_prefix, target, wipe
from tests.support.exdata import logpipe

LINES = 5000
HOURS = 3


def write_demo_log(path: Path, lines: int = LINES, seed: int = 11) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "demo_log.py"),
            "--out",
            str(path),
            "--lines",
            str(lines),
            "--seed",
            str(seed),
            "--hours",
            str(HOURS),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def middle_window(archive: Path) -> tuple[datetime, datetime]:
    """The middle third of the archive's time span, at whole seconds (a range neither end covers)."""
    ((first, last),) = duck(archive, "SELECT min(ts), max(ts) FROM logs")
    third = (last - first) / 3
    return (first + third).replace(microsecond=0), (last - third).replace(microsecond=0) + timedelta(seconds=1)


@pytest.fixture(scope="session")
def groups_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("groups")
    write_demo_log(folder / "app.log")
    result = logpipe("ship", "--once", str(folder / "app.log"), "--archive", str(folder / "archive"), "--no-progress")
    assert result.returncode == 0, result.stderr
    archive = folder / "archive"
    ((total,),) = duck(archive, "SELECT count(*) FROM logs")
    assert total == LINES or total > LINES * 0.9, total  # the generator writes whole requests
    return {"archive": archive, "log": folder / "app.log", "total": total}


@pytest.fixture(scope="session")
def groups_server(groups_data: dict[str, Any], serve: Callable[..., Served]) -> Served:
    return serve("--archive", str(groups_data["archive"]))


@pytest.fixture(scope="session")
def groups_es(
    groups_data: dict[str, Any],
    engine: tuple[str, str],
    serve: Callable[..., Served],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """The same log in an engine (OpenSearch, then Elasticsearch: tests/support/services.py's `engine`) and in an
    archive, from one `ship --once --archive A --to es://…`."""
    name, url = engine
    prefix = make_prefix(f"ui-groups-{name}")
    wipe(url, prefix)
    folder = tmp_path_factory.mktemp(f"groups-{name}")
    to = target(name, prefix)
    result = logpipe(
        "ship", "--once", str(groups_data["log"]), "--archive", str(folder / "archive"), "--to", to, "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    ((total,),) = duck(folder / "archive", "SELECT count(*) FROM logs")
    assert count(url, prefix) == total
    yield {
        "engine": name,
        "archive": folder / "archive",
        "to": to,
        "archive_server": serve("--archive", str(folder / "archive")),
        "es_server": serve("--backend", "es", "--es", to),
        "total": total,
    }
    wipe(url, prefix)


def after(page: Any, action: Callable[[], Any], timeout: float = 30_000) -> None:
    """Do `action` (a click, a key) and wait until the view it causes has been drawn.

    The shell numbers its renders in `main#view[data-rendered]`: a new number means the newest
    render has finished (an old one's attribute stays until then, so waiting for the attribute
    alone could read the page before the click took effect).
    """
    before = page.get_attribute("main#view", "data-rendered")
    action()
    page.wait_for_function(
        "b => { const v = document.querySelector('main#view').dataset.rendered; return v && v !== b; }",
        arg=before,
        timeout=timeout,
    )


def api(server: Served, path: str, **params: Any) -> Any:
    """GET /api/PATH with the parameters that are not None; the body of a 200 answer."""
    status, body = server.get(
        f"/api/{path}?{urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})}"
    )
    assert status == 200, body
    return body


def when(text: str) -> datetime:
    """An ISO 8601 time of the API (`…Z`) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
