"""The same log shipped to the archive and to a real engine: every canned query answers the same.

One `logpipe ship --once --to es://…` run (a real process) writes both; then each canned query
runs on both backends with the same parameters. Rows must be equal, value for value, except
percentiles on OpenSearch, whose t-digest is an estimate (Elasticsearch's, at the compression
the template asks for, is exact at these group sizes): those are compared within 5%.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import esdata
import pytest

from logpipe.read.store import StoreChoice, open_store
from tests.support.cli import run_cli as logpipe
from tests.support.engines import count, make_prefix, target, wipe

pytestmark = pytest.mark.slow
LINES = 20_000


@pytest.fixture(scope="module")
def shipped(engine: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    name, url = engine
    prefix = make_prefix(f"equivalence-{name}")
    wipe(url, prefix)
    folder = tmp_path_factory.mktemp(f"eq-{name}")
    now = esdata.utc_now()
    objects = esdata.generate(now, LINES)
    esdata.write_log(folder / "app.log", objects)
    to = target(name, prefix)
    result = logpipe(
        "ship", "--once", str(folder / "app.log"), "--archive", str(folder / "archive"), "--to", to, "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    assert count(url, prefix) == LINES
    start = esdata.start_of_data(now)
    yield {
        "engine": name,
        "url": url,
        "to": to,
        "archive": folder / "archive",
        "start": start,
        "objects": objects,
        "prefix": prefix,
    }
    wipe(url, prefix)


def both(
    shipped: dict[str, Any], name: str, given: dict[str, object]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    archive_store = open_store(StoreChoice("archive", shipped["archive"]))
    engine_store = open_store(StoreChoice("es", es=shipped["to"]))
    try:
        archive, engine = archive_store.canned(name, given), engine_store.canned(name, given)
    finally:
        archive_store.close()
        engine_store.close()
    assert archive.columns == engine.columns
    assert archive.rows, f"{name} {given}: the archive answered nothing; the comparison would prove nothing"
    return archive.rows, engine.rows


def window(shipped: dict[str, Any], hours: float = 30, skip: float = 0) -> dict[str, object]:
    start: datetime = shipped["start"] + timedelta(hours=skip)
    return {"since": start.isoformat(), "until": (start + timedelta(hours=hours)).isoformat()}


def same_values(a: tuple[Any, ...], b: tuple[Any, ...], approximate: set[int], rel: float) -> bool:
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if i in approximate and isinstance(x, float) and isinstance(y, float):
            if not math.isclose(x, y, rel_tol=rel):
                return False
        elif isinstance(x, float) and isinstance(y, float):
            if not math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12):
                return False
        elif x != y:
            return False
    return True


@pytest.mark.parametrize("skip,hours,service", [(0, 30, None), (5, 6, None), (0, 30, "auth")])
def test_errors(shipped: dict[str, Any], skip: float, hours: float, service: str | None) -> None:
    given = {**window(shipped, hours, skip), **({"service": service} if service else {})}
    archive, engine = both(shipped, "errors", given)
    assert engine == archive


def expected_error_details(
    objects: list[dict[str, Any]], since: datetime, until: datetime
) -> dict[str, tuple[str, str | None]]:
    """message key -> (top_endpoints, sample_error) from the written objects, in plain Python.

    An error line's endpoint is its own path's template, else that of its request's last line
    with a path (within a day of the window); the key and template rules are re-derived here
    from their documented meaning (numbers masked; numeric path segments are `{id}`).
    """

    def ts(obj: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(obj["timestamp"].replace("Z", "+00:00"))

    def template(path: str) -> str:
        return "/".join("{id}" if part.isdigit() else part for part in path.split("/"))

    access: dict[str, tuple[datetime, str]] = {}
    for obj in objects:
        if "path" in obj and since - timedelta(days=1) <= ts(obj) < until + timedelta(days=1):
            seen = access.get(obj["request_id"])
            if seen is None or ts(obj) > seen[0]:
                access[obj["request_id"]] = (ts(obj), template(obj["path"]))
    endpoints: dict[str, Counter[str]] = defaultdict(Counter)
    stacks: dict[str, tuple[datetime, str | None]] = {}
    for obj in objects:
        if obj["level"] not in ("ERROR", "CRITICAL") or not since <= ts(obj) < until:
            continue
        key = re.sub(r"\d+", "<*>", obj["message"])
        endpoint = template(obj["path"]) if "path" in obj else access.get(obj["request_id"], (None, None))[1]
        endpoints[key].update([endpoint] if endpoint else [])
        if "exc_info" in obj and (key not in stacks or ts(obj) > stacks[key][0]):
            stacks[key] = (ts(obj), obj["exc_info"])
        stacks.setdefault(key, (datetime.min.replace(tzinfo=UTC), None))
    top = {
        k: ", ".join(f"{e} ({n})" for e, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:3])
        for k, c in endpoints.items()
    }
    return {k: (top.get(k, ""), stacks[k][1]) for k in stacks}


@pytest.mark.parametrize("skip,hours", [(0, 30), (5, 6)])
def test_errors_endpoints_and_stacks_match_plain_python(shipped: dict[str, Any], skip: float, hours: float) -> None:
    """Both backends fill an error line's endpoint from its request's access line, and show the
    group's latest stack trace, as computed from the log as it was written."""
    given = window(shipped, hours, skip)
    archive, engine = both(shipped, "errors", given)
    since, until = (datetime.fromisoformat(str(v)) for v in given.values())
    want = expected_error_details(shipped["objects"], since, until)
    assert any("(" in top for top, _ in want.values()) and any(stack for _, stack in want.values())
    for rows in (archive, engine):
        assert {r[0]: (r[5], r[7]) for r in rows} == want


@pytest.mark.parametrize("buckets", [40, 24, 7])
def test_error_timeline(shipped: dict[str, Any], buckets: int) -> None:
    """Windows whose length in ms divides by the bucket count: the engine's buckets are exact."""
    archive, engine = both(shipped, "error_timeline", {**window(shipped, 28), "buckets": buckets})
    assert engine == archive
    assert sum(r[2] for r in archive) > 0


@pytest.mark.parametrize(
    "by,threshold,service", [("endpoint", "100ms", None), ("service", "0", None), ("endpoint", "1s", "shop")]
)
def test_slow(shipped: dict[str, Any], by: str, threshold: str, service: str | None) -> None:
    given = {**window(shipped), "by": by, "threshold": threshold, **({"service": service} if service else {})}
    archive, engine = both(shipped, "slow", given)
    assert [r[0] for r in engine] == [r[0] for r in archive]
    rel = 0.05 if shipped["engine"] == "opensearch" else 1e-9
    for a, e in zip(archive, engine, strict=True):
        assert same_values(a, e, approximate={2, 3, 4}, rel=rel), (a, e)


def test_journeys(shipped: dict[str, Any]) -> None:
    """Users, sessions and single requests; context-only-on-the-first-line requests included."""
    objects = shipped["objects"]
    session = next(o["session_id"] for o in objects[100:] if "session_id" in o)
    subjects = [
        {"user": "user-3"},
        {"user": "user-11"},
        {"session": session},
        {"request": objects[5000]["request_id"]},
        {"request": objects[7001]["request_id"]},
    ]
    for subject in subjects:
        archive, engine = both(shipped, "journey", {**subject, **window(shipped)})
        assert engine == archive, subject
    # A window that cuts requests in half answers the same too.
    archive, engine = both(shipped, "journey", {"user": "user-7", **window(shipped, 3, 10)})
    assert engine == archive


def test_export(shipped: dict[str, Any], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    since, until = window(shipped, 20, 4).values()
    a = logpipe(
        "export",
        "--since",
        str(since),
        "--until",
        str(until),
        "--level",
        "ERROR",
        "--level",
        "INFO",
        "--archive",
        str(shipped["archive"]),
        "--out",
        str(tmp_path / "a.parquet"),
    )
    b = logpipe(
        "export",
        "--since",
        str(since),
        "--until",
        str(until),
        "--level",
        "ERROR",
        "--level",
        "INFO",
        "--backend",
        "es",
        "--es",
        shipped["to"],
        "--out",
        str(tmp_path / "b.parquet"),
    )
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    left, right = pq.read_table(tmp_path / "a.parquet"), pq.read_table(tmp_path / "b.parquet")
    assert left.num_rows > 1000
    assert left.equals(right)


def test_cli_prints_the_same(shipped: dict[str, Any]) -> None:
    """Through the real CLI, one formatter for both backends: byte-identical CSV."""
    since, until = window(shipped).values()
    common = ("--since", str(since), "--until", str(until))
    for command in (
        ("errors", "--format", "csv"),
        ("errors", "--format", "table"),
        ("journey", "--user", "user-5", "--format", "csv"),
    ):
        a = logpipe("query", *command, *common, "--archive", str(shipped["archive"]))
        b = logpipe("query", *command, *common, "--backend", "es", "--es", shipped["to"])
        assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
        assert a.stdout == b.stdout
        assert a.stdout.count("\n") >= 4
