"""The same searches, tails and contexts on real OpenSearch and Elasticsearch give the archive's rows.

One log is shipped once with `--to es://…` into a prefix of this test's own and into an archive;
each command runs through the real CLI on both backends and the JSON outputs must be equal,
row for row and column for column (and not empty, or the comparison would prove nothing).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.engines import count, make_prefix, target, wipe
from tests.support.exdata import generate, logpipe, ts_of, write_log

pytestmark = pytest.mark.slow
LINES = 2500


@pytest.fixture(scope="module")
def shipped(engine: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    name, url = engine
    prefix = make_prefix(f"explore-{name}")
    wipe(url, prefix)
    folder = tmp_path_factory.mktemp(f"explore-{name}")
    objects = generate(LINES, seed=9)
    write_log(folder / "app.log", objects)
    to = target(name, prefix)
    result = logpipe(
        "ship", "--once", str(folder / "app.log"), "--archive", str(folder / "archive"), "--to", to, "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    assert count(url, prefix) == LINES
    yield {"archive": str(folder / "archive"), "to": to, "start": ts_of(objects[0])}
    wipe(url, prefix)


def both(shipped: dict[str, Any], *args: str, allow_empty: bool = False) -> list[dict[str, Any]]:
    archive = logpipe(*args, "--archive", shipped["archive"], "--format", "json")
    engine = logpipe(*args, "--backend", "es", "--es", shipped["to"], "--format", "json")
    assert archive.returncode == 0, archive.stderr
    assert engine.returncode == 0, engine.stderr
    rows: list[dict[str, Any]] = json.loads(archive.stdout)
    assert allow_empty or rows, f"{args}: the archive answered nothing"
    assert json.loads(engine.stdout) == rows
    return rows


SEARCHES = [
    ["zanzibar"],
    ["QUOKKA", "--limit", "5"],
    ["narwhal"],
    ["level>=WARNING", "--where", "service=shop", "--limit", "300"],
    ["status>=500 method=POST"],
    ["status!=200", "duration_ms<100.5"],
    ["path~^/api/orders/[0-9]+$"],
    ["level=error", '"handling /health"'],
    ["attrs.ctx.shard=a", "attrs.ctx.attempt>=2", "attrs.region!~^e"],
    ["error~ValueError", "service!=auth", "--limit", "40"],
    ['message="step 0 handling /health for u3"'],
    ["--limit", "2000"],
]


@pytest.mark.parametrize("args", SEARCHES, ids=[" ".join(a) for a in SEARCHES])
def test_search(shipped: dict[str, Any], args: list[str]) -> None:
    both(shipped, "search", *args)


def test_search_window_and_nothing(shipped: dict[str, Any]) -> None:
    since = shipped["start"].isoformat()
    both(shipped, "search", "level=INFO", "--since", since, "--until", "30m", "--limit", "50")
    assert both(shipped, "search", "no-such-word-anywhere", allow_empty=True) == []


def test_tail(shipped: dict[str, Any]) -> None:
    rows = both(shipped, "tail", "-n", "25", "service=search", "level>=INFO")
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)


def test_context(shipped: dict[str, Any]) -> None:
    picked = both(shipped, "search", "level=ERROR", '"step 2"', "--limit", "3")
    for row in picked:
        rows = both(shipped, "context", row["event_id"], "-n", "5")
        assert [r["context"] for r in rows].count("match") == 1
        request = both(shipped, "search", f"request_id={row['request_id']}")
        assert {r["event_id"] for r in request} <= {r["event_id"] for r in rows}
    far = both(shipped, "context", picked[0]["event_id"], "-n", "0")  # only the request, then
    assert next(r["context"] for r in far) == "match" and any(r["context"] == "request" for r in far)
