"""`search` and `tail` stream their output with bounded memory (#20 item 11).

An archive of 800,000 records of ~400 bytes is written with pyarrow; the real CLI prints all of
them (`search --limit 800000`, `tail -n 800000`) in each format while a wrapper process reads
the CLI's peak RSS from `getrusage(RUSAGE_CHILDREN)`. Before the fix the rows were gathered in a
list and DuckDB sorted them in memory (search 1.1 GB, tail 1.6 GB here); now a batch at a time is
printed and DuckDB sorts on disk past 256 MB. The output is checked too: every record, once, in
order, against the ids the test wrote.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.cli import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.fresh_interpreter]

RECORDS = 800_000
START = datetime(2026, 12, 1, tzinfo=UTC)
PEAK_MB = 700  # generous: the streaming CLI stays near 400 MB, the old one went past 1,000 MB

# Runs `python -m logpipe ARGS` with stdout to a file, then prints its peak RSS in KiB: a fresh
# process, so no earlier child of the test runner counts.
MEASURE = """
import resource, subprocess, sys
with open(sys.argv[1], "wb") as out:
    code = subprocess.run([sys.executable, "-m", "logpipe", *sys.argv[2:]], stdout=out).returncode
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def event_id(i: int) -> str:
    return f"ev{i:09d}"


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RECORDS records, one every 10 ms, in four parts; record i has event_id(i)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from logpipe.schema import COLUMN_NAMES, record_schema

    root = tmp_path_factory.mktemp("big")
    folder = root / "logs" / "day=2026-12-01" / "level=INFO"
    folder.mkdir(parents=True)
    per = RECORDS // 4
    for first in range(0, RECORDS, per):
        ids = range(first, first + per)
        columns: dict[str, list[object]] = {c: [None] * per for c in COLUMN_NAMES}
        columns["ts"] = [START + timedelta(milliseconds=10 * i) for i in ids]
        columns["level"] = ["INFO"] * per
        columns["service"] = ["shop"] * per
        columns["message"] = [f"request {i} handled for user u{i % 97}: " + "lorem ipsum " * 25 for i in ids]
        columns["event_id"] = [event_id(i) for i in ids]
        columns["source"] = ["gen.log"] * per
        columns["offset"] = [400 * i for i in ids]
        columns["attrs"] = [json.dumps({"n": i, "region": "eu"}) for i in ids]
        table = pa.Table.from_pydict(columns, schema=record_schema())
        pq.write_table(table, folder / f"part-{first}-{uuid.uuid4().hex}.parquet")
    return root


def peak_mb(out: Path, *args: str) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, str(out), *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    code, kib = proc.stdout.split()
    assert code == "0", proc.stderr
    return int(kib) // 1024


def test_search_streams_every_record_in_bounded_memory(big_archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "search.ndjson"
    peak = peak_mb(out, "search", "--archive", str(big_archive), "--limit", str(RECORDS), "--format", "ndjson")
    ids = [json.loads(line)["event_id"] for line in out.open()]
    assert ids == [event_id(i) for i in reversed(range(RECORDS))]  # newest first, each once
    assert peak < PEAK_MB, f"search used {peak} MB"


def test_tail_streams_every_record_in_bounded_memory(big_archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "tail.csv"
    peak = peak_mb(out, "tail", "--archive", str(big_archive), "-n", str(RECORDS), "--format", "csv")
    with out.open(newline="") as f:
        ids = [row["event_id"] for row in csv.DictReader(f)]
    assert ids == [event_id(i) for i in range(RECORDS)]  # oldest first, each once
    assert peak < PEAK_MB, f"tail used {peak} MB"


def test_a_streamed_table_is_one_line_a_record(big_archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "tail.txt"
    lines = 5_000  # five batches: the widths of the first, the day on every time
    assert peak_mb(out, "tail", "--archive", str(big_archive), "-n", str(lines)) < PEAK_MB
    text = out.read_text().splitlines()
    assert len(text) == 1 + lines
    first = START + timedelta(milliseconds=10 * (RECORDS - lines))
    assert text[1].startswith(first.strftime("%m-%d %H:%M:%S.000"))
    assert len({len(line) for line in text[1:]}) == 1  # every row cut to the same width
