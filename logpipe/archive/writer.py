"""Atomic Parquet parts that remember which source bytes they hold.

A part is written to a temporary name in its partition folder, fsynced, renamed into place and the
folder fsynced: readers see a whole file or none. Its footer metadata `logpipe.ranges` maps each
source id to the byte ranges [start, end) whose records (those of this partition) it holds; that
is how a restart after a crash recognises data it already wrote (see ledger.py). A logs part also
carries `logpipe.text_index`, a trigram summary of each row group's free text (see textindex.py),
and Parquet bloom filters on its identity columns (see `IDENTITY_BLOOM_COLUMNS`). A logs part
stores each `event_id` of the form `<source id>:<offset>` in short (see event_ids.py).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from logpipe.archive.event_ids import stored
from logpipe.archive.layout import DICTIONARY_COLUMNS, PART_SUFFIX, RANGES_METADATA_KEY, Partition, temp_path
from logpipe.archive.textindex import (
    INDEXED_COLUMNS,
    TEXT_INDEX_METADATA_KEY,
    Block,
    encode,
    summarise,
)
from logpipe.checkpoints import fsync_dir

if TYPE_CHECKING:
    import pyarrow as pa

Ranges = Mapping[str, list[tuple[int, int]]]

COMPRESSION = "zstd"
# Fresh parts are written at a cheap level: shipping writes every record once this way, and the
# small parts of a following agent are merged again soon. Level 2 writes as fast as level 1 (0.69
# against 0.68 CPU-seconds per million records, and `ship --once` no slower) and makes parts 1.6%
# smaller; level 3 is bigger than 2 on these columns, and from 5 on each level costs more CPU.
COMPRESSION_LEVEL = 2
# A merged part that compaction will not pick again (see compact.SETTLED_BYTES) is written once and
# kept for the archive's life: zstd level 9 makes it about a tenth smaller (most of it in `message`
# and `event_id`) for about 1.1 s more CPU per million records, once. Reading is no slower: zstd
# decodes every level alike, and there are fewer bytes (700k records read in 0.46 s, not 0.64).
# Higher levels save little more for several times the CPU (15: 4% smaller than 9, at 3x the
# time; 19: 8%, at 12x).
SETTLED_COMPRESSION_LEVEL = 9
# Row groups of 64k rows: large enough for scans to stay fast, small enough that writing one
# (compaction writes them one at a time) keeps the agent under its memory budget.
ROW_GROUP_ROWS = 64 * 1024
# Rows per text summary block (see textindex.py): a row group holds several, so a rare word's
# false positives cost a slice of a row group, not all of it.
TEXT_BLOCK_ROWS = 8 * 1024
# Encodings of the columns that are neither dictionary-encoded nor left plain (a part is about a
# quarter smaller with them, and no slower to write). Times and offsets grow through a part, so the
# deltas between rows pack into a few bits; user and session ids repeat over the lines of a
# request, so each shares its start, or all of itself, with the one before, which
# DELTA_BYTE_ARRAY does not store again.
COLUMN_ENCODINGS = {
    "ts": "DELTA_BINARY_PACKED",
    "received_at": "DELTA_BINARY_PACKED",
    "offset": "DELTA_BINARY_PACKED",
    "user_id": "DELTA_BYTE_ARRAY",
    "session_id": "DELTA_BYTE_ARRAY",
}
# Min/max statistics only where a query can skip row groups by them. For ids, messages and attrs
# every row group spans nearly the whole range, and computing them costs a sixth of the writing.
NO_STATISTICS_COLUMNS = frozenset(
    {
        "message",
        "message_key",
        "request_id",
        "user_id",
        "session_id",
        "trace_id",
        "path",
        "error",
        "attrs",
        "event_id",
        "detail",
        "raw",
    }
)


# Parquet's own bloom filter per row group on the ids a record is looked up by (a request's
# records, an error line's access line, a trace): DuckDB checks it for `=` and `IN` filters, and
# for the values a join feeds into a scan, and skips the row groups that cannot hold the value
# (an id's records sit in a few row groups; without statistics on ids every group is read).
# `user_id` and `session_id` are left out: a user's or a session's requests spread over most row
# groups, so a filter saves little, and each costs 0.25 bytes a record (16 KB per 64k rows).
IDENTITY_BLOOM_COLUMNS = ("request_id", "trace_id")
# 0.1: a 64k-row group of 13-18k distinct request ids takes a 16 KB filter (0.05 doubles it).
BLOOM_FALSE_POSITIVES = 0.1


def bloom_filters(first: pa.Table) -> dict[str, dict[str, float]]:
    """The bloom filter options of a part whose first row group is (or begins) `first`: each
    identity column with values, sized for that many distinct values per row group (a later,
    fuller group only sees more false positives; a small part gets a small filter)."""
    import pyarrow.compute as pc

    options: dict[str, dict[str, float]] = {}
    for name in IDENTITY_BLOOM_COLUMNS:
        if name not in first.column_names:
            continue
        distinct = int(pc.count_distinct(first.column(name).slice(0, ROW_GROUP_ROWS)).as_py())
        if distinct:
            options[name] = {"ndv": distinct, "fpp": BLOOM_FALSE_POSITIVES}
    return options


def part_name() -> str:
    return f"part-{time.time_ns() // 1_000_000}-{uuid.uuid4().hex[:12]}{PART_SUFFIX}"


def encode_ranges(ranges: Ranges) -> bytes:
    return orjson.dumps({k: [list(r) for r in v] for k, v in ranges.items()})


def decode_ranges(raw: bytes | None) -> dict[str, list[tuple[int, int]]]:
    if not raw:
        return {}
    doc = orjson.loads(raw)
    return {k: [(int(a), int(b)) for a, b in v] for k, v in doc.items()}


def text_blocks(group: pa.Table) -> list[Block | None]:
    """The text summaries of a row group's rows, one per TEXT_BLOCK_ROWS of them."""
    if group.num_rows == 0:
        return [summarise(group)]
    return [summarise(group.slice(at, TEXT_BLOCK_ROWS)) for at in range(0, group.num_rows, TEXT_BLOCK_ROWS)]


def write_part(archive: Path, partition: Partition, table: pa.Table, ranges: Ranges, name: str | None = None) -> Path:
    """Write `table` as one new part of `partition`; returns its final path."""
    return write_part_tables(archive, partition, table.schema, [table], ranges, name)


def write_part_tables(
    archive: Path,
    partition: Partition,
    schema: pa.Schema,
    tables: Iterable[pa.Table],
    ranges: Ranges,
    name: str | None = None,
    *,
    compression_level: int = COMPRESSION_LEVEL,
) -> Path:
    """Write a stream of tables as one new part (one at a time in memory; compaction uses this).

    The rows keep the order they come in: readers rely on it (each row group's text summary
    describes the rows it holds, and a part's rows are in the order they were read)."""
    import pyarrow.parquet as pq

    folder = archive / partition.relpath()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / (name or part_name())
    tmp = temp_path(final)
    meta = dict(schema.metadata or {})
    meta[RANGES_METADATA_KEY] = encode_ranges(ranges)
    index = all(c in schema.names for c in INDEXED_COLUMNS)  # the logs table, not dead letters
    stream = iter(tables)
    first = next(stream, None)
    blooms = bloom_filters(first) if first is not None else {}
    try:
        with pq.ParquetWriter(
            tmp,
            schema.with_metadata(meta),
            compression=COMPRESSION,
            compression_level=compression_level,
            use_dictionary=[c for c in DICTIONARY_COLUMNS if c in schema.names],
            column_encoding={c: e for c, e in COLUMN_ENCODINGS.items() if c in schema.names},
            write_statistics=[c for c in schema.names if c not in NO_STATISTICS_COLUMNS],
            bloom_filter_options=blooms or None,
        ) as writer:
            blocks: list[Block | None] = []
            for whole in itertools.chain([first] if first is not None else [], stream):
                table = stored(whole)
                if table.num_rows == 0:
                    writer.write_table(table.replace_schema_metadata(meta), row_group_size=ROW_GROUP_ROWS)
                for start in range(0, table.num_rows, ROW_GROUP_ROWS):
                    # One row group at a time, so each has its own text summary (see textindex.py).
                    group = table.slice(start, ROW_GROUP_ROWS)
                    writer.write_table(group.replace_schema_metadata(meta), row_group_size=ROW_GROUP_ROWS)
                    if index:
                        blocks.extend(text_blocks(group))
            if index and all(b is not None for b in blocks):
                writer.add_key_value_metadata({TEXT_INDEX_METADATA_KEY: encode([b for b in blocks if b is not None])})
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        # pyarrow's write errors (a full disk) do not name the file: name it, and leave no
        # half-written temporary part behind.
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, os.strerror(exc.errno), str(tmp)) from exc
        raise
    os.replace(tmp, final)
    fsync_dir(folder)
    return final


def read_ranges(path: Path) -> dict[str, list[tuple[int, int]]]:
    """The source ranges recorded in a part's footer (empty for files logpipe did not write)."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return decode_ranges(meta.get(RANGES_METADATA_KEY))


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, with overlapping or touching ranges joined."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
