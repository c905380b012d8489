"""Reading an archive independently of logpipe: its Parquet files with DuckDB, its state as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

# The on-disk form of `event_id`, as documented in logpipe/archive/event_ids.py and written here
# again: an id `<source id>:<offset>` may be stored as `<source id>:` alone.
WHOLE_EVENT_ID = "CASE WHEN ends_with(event_id, ':') THEN event_id || CAST(\"offset\" AS VARCHAR) ELSE event_id END"


def whole_event_ids(ids: Sequence[str | None], offsets: Sequence[int | None]) -> list[str | None]:
    """Stored `event_id` values made whole again with their rows' offsets (the rule above, in Python)."""
    return [
        f"{i}{o}" if i is not None and i.endswith(":") and o is not None else i
        for i, o in zip(ids, offsets, strict=True)
    ]


def archive_rows(archive: Path, columns: Sequence[str] = ("*",), table: str = "logs") -> list[dict[str, Any]]:
    """Every row of `table`, read from the finished Parquet parts directly (not through logpipe's
    views), each `event_id` whole."""
    import duckdb

    pattern = str(archive / table / "**" / "*.parquet")
    files = [p for p in archive.glob(f"{table}/**/*.parquet") if not p.name.startswith(".tmp-")]
    if not files:
        return []
    con = duckdb.connect()
    select = ", ".join(c if c == "*" else '"' + c + '"' for c in columns)
    scan = "read_parquet($1, hive_partitioning = true, union_by_name = true)"
    if table == "logs":
        scan = f"(SELECT * REPLACE ({WHOLE_EVENT_ID} AS event_id) FROM {scan})"
    cur = con.execute(f"SELECT {select} FROM {scan}", [pattern])
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def archived_seqs(archive: Path, *, numbered_only: bool = False) -> list[int]:
    """The `seq` of every archived record (from attrs), duplicates included.

    A record without one is an error, unless `numbered_only` (files that also hold other lines).
    """
    attrs = (json.loads(r["attrs"]) for r in archive_rows(archive, ["attrs"]))
    return sorted(a["seq"] for a in attrs if not numbered_only or "seq" in a)


def checkpoints(archive: Path) -> dict[str, dict[str, Any]]:
    """The agent's committed checkpoint entries by source id (empty before the first commit)."""
    path = archive / "state" / "checkpoints.json"
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    sources: dict[str, dict[str, Any]] = doc.get("sources", {})
    return sources


def rewritten_in_small_groups(archive: Path, into: Path, rows: int, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Each of `archive`'s logs parts written again by the real writer into `into`, in row groups
    of `rows` rows (so a test sees what a large archive's many row groups let a read skip)."""
    from datetime import datetime

    import pyarrow.parquet as pq

    from logpipe.archive import writer
    from logpipe.archive.layout import Partition, walk_parts

    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", rows)
    out = []
    for part in walk_parts(archive, ("logs",)).parts:
        day = datetime.strptime(part.parent.parent.name.removeprefix("day="), "%Y-%m-%d").date()
        level = part.parent.name.removeprefix("level=")
        out.append(writer.write_part(into, Partition("logs", day, level), pq.read_table(part), {}))
    return out


def statements_run(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements the archive store runs from now on, in order (a spy on its `_run`)."""
    from logpipe.read import archive_store

    scans: list[str] = []
    real = archive_store._run

    def spy(con: Any, sql: str, values: Any) -> Any:
        scans.append(sql)
        return real(con, sql, values)

    monkeypatch.setattr(archive_store, "_run", spy)
    return scans
