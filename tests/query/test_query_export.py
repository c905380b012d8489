"""`logpipe export` and `logpipe.export.export`: the extract's schema, window and levels."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from qdata import Generated, iso

from logpipe.errors import UsageError
from logpipe.export import EXPORT_SCHEMA_VERSION, METADATA_KEY, export
from logpipe.schema import record_schema


def _expected(gen: Generated, hours: float, levels: set[str] | None = None) -> list[str]:
    since = gen.now - timedelta(hours=hours)
    recs = [r for r in gen.records if since <= r["ts"] < gen.now and (levels is None or r["level"] in levels)]
    return [r["event_id"] for r in sorted(recs, key=lambda r: (r["ts"], r["event_id"]))]


class TestExport:
    def test_schema_is_the_canonical_record(self, generated: Generated, tmp_path: Path) -> None:
        """Exact column names, order and Arrow types; metadata names the schema version."""
        import pyarrow.parquet as pq

        result = export(
            generated.archive, tmp_path / "x.parquet", since=generated.now - timedelta(hours=48), until=generated.now
        )
        schema = pq.read_schema(result.path)
        assert schema.remove_metadata().equals(record_schema())
        meta = json.loads(schema.metadata[METADATA_KEY])
        assert meta["schema_version"] == EXPORT_SCHEMA_VERSION and meta["levels"] == []

    def test_rows_window_and_levels(self, generated: Generated, tmp_path: Path) -> None:
        import pyarrow.parquet as pq

        result = export(
            generated.archive,
            tmp_path,
            since=generated.now - timedelta(hours=10),
            until=generated.now,
            levels=["error", "CRITICAL"],
        )
        assert result.path == tmp_path / "logpipe-export.parquet"
        got = pq.read_table(result.path).column("event_id").to_pylist()
        assert got == _expected(generated, 10, {"ERROR", "CRITICAL"}) and result.rows == len(got)

    def test_values_survive_the_round_trip(self, generated: Generated, tmp_path: Path) -> None:
        import pyarrow.parquet as pq

        result = export(generated.archive, tmp_path / "all.parquet", since="30d")
        rows = {r["event_id"]: r for r in pq.read_table(result.path).to_pylist()}
        assert len(rows) == len(generated.records)
        for rec in generated.records[::25]:
            assert rows[rec["event_id"]] == rec

    def test_polars_duckdb_and_pandas_open_it(self, generated: Generated, tmp_path: Path) -> None:
        import duckdb
        import pandas as pd
        import polars as pl

        path = export(generated.archive, tmp_path / "e.parquet", since="30d").path
        n = len(generated.records)
        assert pl.read_parquet(path).height == n
        assert len(pd.read_parquet(path)) == n
        assert duckdb.sql(f"SELECT count(*) FROM '{path}'").fetchall() == [(n,)]

    def test_unknown_level(self, generated: Generated, tmp_path: Path) -> None:
        with pytest.raises(UsageError, match="unknown level 'LOUD'"):
            export(generated.archive, tmp_path / "x.parquet", levels=["LOUD"])


class TestExportCommand:
    def test_writes_and_reports(self, cli: Any, generated: Generated, tmp_path: Path) -> None:
        out = tmp_path / "w.parquet"
        res = cli(
            "export",
            "--archive",
            str(generated.archive),
            "--since",
            iso(generated.now - timedelta(hours=5)),
            "--until",
            iso(generated.now),
            "--level",
            "WARNING",
            "--out",
            str(out),
        )
        assert res.code == 0, res.err
        n = len(_expected(generated, 5, {"WARNING"}))
        assert res.out.strip() == f"wrote {n:,} records to {out}" and out.is_file()

    def test_empty_window_writes_nothing(self, cli: Any, generated: Generated, tmp_path: Path) -> None:
        out = tmp_path / "none.parquet"
        res = cli(
            "export",
            "--archive",
            str(generated.archive),
            "--since",
            "2001-01-01",
            "--until",
            "2001-02-01",
            "--out",
            str(out),
        )
        assert res.code == 1 and res.err.startswith("error: no records") and not out.exists()
        assert not list(tmp_path.iterdir())

    def test_bad_time(self, cli: Any, generated: Generated, tmp_path: Path) -> None:
        res = cli("export", "--archive", str(generated.archive), "--since", "soon")
        assert res.code == 2 and "bad time expression 'soon'" in res.err
