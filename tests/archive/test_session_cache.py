"""The long-lived read session's Parquet metadata cache is on where the queries run: in each
request's cursor, not only in the database the session built (a setting made without GLOBAL stays
with the connection that made it, and every footer was parsed again on each request)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from logpipe.read.archive_store import ArchiveStore
from tests.support.exdata import generate, logpipe, write_log


def test_every_requests_cursor_reads_footers_through_the_cache(tmp_path: Path) -> None:
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    write_log(log, generate(200, seed=2, start=datetime(2026, 11, 20, 9, tzinfo=UTC)))
    run = logpipe("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
    assert run.returncode == 0, run.stderr
    store = ArchiveStore(archive)
    for _ in range(2):  # the cursor of the first request and of one served by the same database
        with store.connection() as con:
            ((cached,),) = con.execute("SELECT current_setting('parquet_metadata_cache')").fetchall()
            ((rows,),) = con.execute("SELECT count(*) FROM logs").fetchall()
        assert cached is True
        assert rows == 200
    assert store.databases_built == 1
