"""A part stores each `event_id` `<source id>:<offset>` in short (`<source id>:`, see
logpipe/archive/event_ids.py), and every reader still gives the whole id.

An archive of two sources: one shipped by this version with the real CLI (`ship --once`), whose
parts must hold the short form, and one whose parts hold whole ids, as every older version wrote
them (shipped the same way, then written again here with the whole ids put back). The expected
ids are computed here, independently: the source id from the agent's checkpoint (its first 16
characters, as event_ids name it), and the byte
offset of each line of the file. Every way out of the archive (`sql`, `search`, `tail`, `context`,
`export`, the notebook API's connection, the store's record lookup) must give exactly those ids,
before and after `archive compact` merges old and new parts into one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from logpipe.read.archive_store import ArchiveStore
from logpipe.read.filters import parse_filter
from tests.support.archive import checkpoints
from tests.support.cli import run_cli
from tests.support.records import write_records

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
LINES = 600
WINDOW = ("--since", (START - timedelta(hours=1)).isoformat(), "--until", (START + timedelta(hours=1)).isoformat())


def write_log(path: Path, first: int) -> None:
    recs: list[dict[str, Any]] = [
        {
            "timestamp": (START + timedelta(milliseconds=5 * seq)).isoformat(),
            "level": ("INFO", "INFO", "DEBUG", "ERROR")[seq % 4],
            "logger": "shop.web",
            "message": f"step {seq} of request {seq // 3}",
            "request_id": f"req-{seq // 3:06d}",
        }
        for seq in range(first, first + LINES)
    ]
    write_records(path, recs, mode="w")


def expected_ids(archive: Path, log: Path) -> set[str]:
    """`<source id>:<byte offset of the line>` of every line of `log`, the only file shipped into
    `archive`; an event_id names its source by the first 16 characters of the id."""
    (source_id,) = checkpoints(archive)
    source_id = source_id[:16]
    starts, at = [], 0
    for line in log.read_bytes().splitlines(keepends=True):
        starts.append(at)
        at += len(line)
    return {f"{source_id}:{start}" for start in starts}


def parts(archive: Path) -> list[Path]:
    return sorted(archive.glob("logs/**/part-*.parquet"))


def stored_ids(part: Path) -> list[str]:
    return [str(v) for v in pq.read_table(part, columns=["event_id"]).column("event_id").to_pylist()]


def as_old_parts(archive: Path, ids: set[str]) -> None:
    """Write each part of `archive` again with whole event_ids, as older versions stored them."""
    import pyarrow as pa

    for part in parts(archive):
        table = pq.read_table(part)
        at = table.schema.get_field_index("event_id")
        offsets = table.column("offset").to_pylist()
        whole = [f"{i}{off}" if i.endswith(":") else i for i, off in zip(stored_ids(part), offsets, strict=True)]
        assert set(whole) <= ids
        table = table.set_column(at, table.schema.field(at), pa.array(whole, pa.string()))
        pq.write_table(table, part, compression="zstd")  # the schema's metadata (ranges) is kept


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str], set[str]]:
    """An archive with old parts (whole ids) of one source and new parts of another, and the
    ids of the records of each."""
    tmp = tmp_path_factory.mktemp("ids")
    old_log, new_log = tmp / "old.log", tmp / "new.log"
    write_log(old_log, 0)
    write_log(new_log, LINES)
    old_archive, archive = tmp / "old-archive", tmp / "archive"
    for log, into in ((old_log, old_archive), (new_log, archive)):
        run = run_cli("ship", "--once", str(log), "--archive", str(into), "--no-progress")
        assert run.code == 0, run.err
    old_ids, new_ids = expected_ids(old_archive, old_log), expected_ids(archive, new_log)
    as_old_parts(old_archive, old_ids)
    for part in parts(old_archive):
        target = archive / part.relative_to(old_archive)
        target.parent.mkdir(parents=True, exist_ok=True)
        part.rename(target)
    return archive, old_ids, new_ids


def every_reader_gives(archive: Path, ids: set[str]) -> None:
    """Each way out of the archive gives exactly `ids`, each once."""
    run = run_cli("sql", "--archive", str(archive), "--format", "json", "SELECT event_id FROM logs")
    assert run.code == 0, run.err
    assert sorted(r["event_id"] for r in json.loads(run.out)) == sorted(ids)
    run = run_cli("search", "--archive", str(archive), "--format", "json", "--limit", "100000", *WINDOW[:2])
    assert run.code == 0, run.err
    assert sorted(r["event_id"] for r in json.loads(run.out)) == sorted(ids)
    run = run_cli("tail", "--archive", str(archive), "--format", "json", "-n", str(len(ids)))
    assert run.code == 0, run.err
    assert sorted(r["event_id"] for r in json.loads(run.out)) == sorted(ids)
    export = archive.parent / f"export-{len(list(archive.parent.iterdir()))}.parquet"
    run = run_cli("export", "--archive", str(archive), "--out", str(export), *WINDOW)
    assert run.code == 0, run.err
    assert sorted(pq.read_table(export).column("event_id").to_pylist()) == sorted(ids)
    # The notebook API's connection and the `logpipe sql` view are `open_archive`'s.
    from logpipe.archive.reader import open_archive

    con = open_archive(archive)
    # A filter on the id finds its record (the `logs` view compares the whole id).
    probe = sorted(ids)[:: len(ids) // 7]
    found = con.execute("SELECT event_id FROM logs WHERE list_contains(?, event_id)", [probe]).fetchall()
    assert sorted(r[0] for r in found) == probe
    con.close()
    store = ArchiveStore(archive)
    for event_id in probe:
        assert store.record(event_id)[_at("event_id")] == event_id
    # A request bounded in time reads its own narrowed `logs` (only the parts of its window).
    since = parse_filter(f"ts>={(START - timedelta(hours=1)).isoformat()}")
    assert sorted(r[_at("event_id")] for r in store.rows(since, limit=len(ids) + 1)) == sorted(ids)
    chosen = [(r[_at("ts")], r[_at("event_id")]) for r in store.rows(since, limit=5)]
    assert [r["event_id"] for r in store.records_by_ids(chosen)] == [e for _, e in chosen]
    event_id = probe[len(probe) // 2]
    run = run_cli("context", event_id, "--archive", str(archive), "--format", "json", "-n", "3")
    assert run.code == 0, run.err
    near = [r["event_id"] for r in json.loads(run.out)]
    assert event_id in near and set(near) <= ids


def _at(column: str) -> int:
    from logpipe.read.archive_search import RECORD_COLUMNS

    return RECORD_COLUMNS.index(column)


def test_new_parts_store_the_short_form_and_old_parts_the_whole_id(mixed: tuple[Path, set[str], set[str]]) -> None:
    archive, old_ids, new_ids = mixed
    (new_source,) = {i.rsplit(":", 1)[0] for i in new_ids}
    stored = {p: stored_ids(p) for p in parts(archive)}
    old = [i for ids in stored.values() for i in ids if i in old_ids]
    new = [i for ids in stored.values() for i in ids if i not in old_ids]
    assert sorted(old) == sorted(old_ids)
    assert new == [f"{new_source}:"] * len(new_ids)


def test_the_short_form_is_a_dictionary_of_one_value(mixed: tuple[Path, set[str], set[str]]) -> None:
    archive, old_ids, _ = mixed
    for part in parts(archive):
        if set(stored_ids(part)) & old_ids:
            continue
        meta = pq.ParquetFile(part).metadata
        column = meta.schema.names.index("event_id")
        for g in range(meta.num_row_groups):
            chunk = meta.row_group(g).column(column)
            assert chunk.has_dictionary_page and "RLE_DICTIONARY" in chunk.encodings, chunk
            # One value and its run of indices: a few dozen bytes, whatever the rows.
            assert chunk.total_compressed_size < 200, chunk


def test_every_reader_gives_the_whole_ids_of_old_and_new_parts(mixed: tuple[Path, set[str], set[str]]) -> None:
    archive, old_ids, new_ids = mixed
    every_reader_gives(archive, old_ids | new_ids)


def test_merging_old_and_new_parts_keeps_every_id(mixed: tuple[Path, set[str], set[str]], tmp_path: Path) -> None:
    import shutil

    archive, old_ids, new_ids = mixed
    copy = tmp_path / "archive"
    shutil.copytree(archive, copy)
    before = len(parts(copy))
    run = run_cli("archive", "compact", "--archive", str(copy), "--min-files", "2")
    assert run.code == 0, run.err
    assert len(parts(copy)) < before
    # The merge stores every id in short, the old parts' too.
    stored = [i for p in parts(copy) for i in stored_ids(p)]
    assert all(i.endswith(":") for i in stored) and len(stored) == len(old_ids | new_ids)
    every_reader_gives(copy, old_ids | new_ids)


def test_only_ids_naming_their_own_offset_are_shortened_and_all_read_back_whole() -> None:
    """Rows of many sources, negative offsets (an unterminated line), ids that do not end with
    their offset, nulls, and ids already short (compaction writes stored rows again)."""
    import random

    import pyarrow as pa

    from logpipe.archive.event_ids import SOURCES_PER_TABLE, restored, stored

    rng = random.Random(7)
    sources = [f"s{n}" for n in range(SOURCES_PER_TABLE + 4)] + ["a:b"]
    offsets: list[int | None] = []
    ids: list[str | None] = []
    for _ in range(4000):
        offset = rng.choice([rng.randint(0, 10**12), -rng.randint(1, 999)])
        source = rng.choice(sources)
        kind = rng.random()
        offsets.append(None if kind < 0.02 else offset)
        ids.append(
            None
            if kind < 0.04
            else f"{source}:{offset + 1}"
            if kind < 0.1
            else f"{source}:x{offset}"
            if kind < 0.15
            else f"{source}:"
            if kind < 0.2
            else f"{source}:{offset}"
        )
    table = pa.table({"offset": pa.array(offsets, pa.int64()), "event_id": pa.array(ids, pa.string())})
    short = stored(table)
    kept = short.column("event_id").to_pylist()
    for whole, offset, value in zip(ids, offsets, kept, strict=True):
        own = whole is not None and offset is not None and whole.endswith(f":{offset}") and not whole.endswith(":")
        if own and value != whole:
            assert whole is not None and value == whole.removesuffix(str(offset))
        else:
            assert value == whole
    # Every id is whole again, the short ones stored before included.
    assert restored(short).column("event_id").to_pylist() == restored(table).column("event_id").to_pylist()
    # Writing stored rows again (a merge) changes no id: a short one stays as it is.
    again = stored(short)
    assert restored(again).column("event_id").to_pylist() == restored(table).column("event_id").to_pylist()
    assert all(v == w for v, w in zip(again.column("event_id").to_pylist(), kept, strict=True) if w and w.endswith(":"))
    # The first SOURCES_PER_TABLE prefixes met are shortened whatever else the table holds.
    assert sum(1 for v in kept if v is not None and v.endswith(":")) > len(ids) // 2
