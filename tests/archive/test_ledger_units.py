"""logpipe/archive/ledger.py on its own: which re-read offsets the archive already holds.

Parts with known source ranges in their footers are written with the archive's writer; the
expected answer is computed here by brute force (is the offset inside a counted span of that
partition?) and compared with the ledger's mask.
"""

from __future__ import annotations

import os
import random
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from logpipe.archive.layout import Partition
from logpipe.archive.ledger import SCAN_SLACK_S, Ledger, partition_key
from logpipe.archive.writer import write_part
from logpipe.checkpoints import CheckpointStore

INFO = Partition("logs", date(2026, 11, 20), "INFO")
ERROR = Partition("logs", date(2026, 11, 20), "ERROR")
KEY = {INFO: "logs/day=2026-11-20/level=INFO", ERROR: "logs/day=2026-11-20/level=ERROR"}


def part(archive: Path, partition: Partition, ranges: dict[str, list[tuple[int, int]]], age_s: float = 0) -> Path:
    """A part holding only footer ranges (the ledger reads nothing else), `age_s` old."""
    path = write_part(archive, partition, pa.table({"offset": pa.array([0], pa.int64())}), ranges)
    if age_s:
        then = time.time() - age_s
        os.utime(path, (then, then))
    return path


def covered(spans: list[tuple[int, int]], floor: int, offsets: list[int]) -> list[bool]:
    """Brute force: inside a span that ends past the floor."""
    return [any(s <= o < e for s, e in spans if e > floor) for o in offsets]


def mask(ledger: Ledger, partition: Partition, source: str, offsets: list[int]) -> list[bool]:
    return [bool(x) for x in ledger.covers(KEY[partition], source, np.array(offsets, dtype=np.int64))]


def test_partition_key_names_the_folder(tmp_path: Path) -> None:
    assert partition_key(tmp_path, tmp_path / KEY[INFO] / "part-1.parquet") == KEY[INFO]
    assert partition_key(tmp_path, tmp_path / "dead_letters" / "day=2026-11-20" / "part-1.parquet") == "dead_letters"


@pytest.mark.parametrize("seed", range(4))
def test_covers_exactly_the_spans_written_to_that_partition(tmp_path: Path, seed: int) -> None:
    """No checkpoint file: every part counts, from offset 0. Random spans over several parts of
    two partitions, overlapping and touching; every offset in 0..2000 checked."""
    rng = random.Random(seed)
    written: dict[Partition, list[tuple[int, int]]] = {INFO: [], ERROR: []}
    for _ in range(8):
        partition = rng.choice([INFO, ERROR])
        spans = []
        for _ in range(rng.randint(1, 4)):
            start = rng.randrange(1900)
            spans.append((start, start + rng.randint(1, 120)))
        part(tmp_path, partition, {"src": spans, "other": [(0, 2000)]} if rng.random() < 0.3 else {"src": spans})
        written[partition].extend(spans)
    ledger = Ledger.load(tmp_path, CheckpointStore(tmp_path / "state"))
    offsets = list(range(2000))
    for partition in (INFO, ERROR):
        assert mask(ledger, partition, "src", offsets) == covered(written[partition], 0, offsets)
    assert mask(ledger, INFO, "unknown", offsets) == [False] * len(offsets)
    assert ledger.has_source("src") and not ledger.has_source("unknown")


def test_spans_below_the_checkpoint_are_forgotten(tmp_path: Path) -> None:
    """With a checkpoint at 500, only spans ending past 500 are kept (whole, as written)."""
    spans = [(0, 100), (100, 300), (450, 520), (600, 700), (900, 950)]
    part(tmp_path, INFO, {"src": spans})
    store = CheckpointStore(tmp_path / "state")
    store.advance("src", 500, "/app.log", 1, 1)
    store.commit()
    ledger = Ledger.load(tmp_path, store)
    offsets = list(range(1000))
    assert mask(ledger, INFO, "src", offsets) == covered(spans, 500, offsets)
    assert not ledger.needs_rescan("src", 500) and not ledger.needs_rescan("src", 800)
    assert ledger.needs_rescan("src", 499)


def test_ensure_reads_the_footers_again_from_below_the_floor(tmp_path: Path) -> None:
    spans = [(0, 100), (200, 300), (600, 700)]
    part(tmp_path, INFO, {"src": spans})
    store = CheckpointStore(tmp_path / "state")
    store.advance("src", 500, "/app.log", 1, 1)
    store.commit()
    ledger = Ledger.load(tmp_path, store)
    offsets = list(range(800))
    assert ledger.ensure(tmp_path, "src", 500) is False  # not below its floor: nothing read
    assert ledger.ensure(tmp_path, "src", 150) is True
    assert mask(ledger, INFO, "src", offsets) == covered(spans, 150, offsets)
    assert ledger.ensure(tmp_path, "src", 150) is False  # known from there now


def test_parts_older_than_the_source_do_not_count(tmp_path: Path) -> None:
    """A source's ranges come only from parts written since it was first seen (an older part of
    the same id is another file's, long gone, that started alike)."""
    part(tmp_path, INFO, {"src": [(0, 100)]}, age_s=SCAN_SLACK_S + 3600)
    part(tmp_path, INFO, {"src": [(200, 300)]})
    store = CheckpointStore(tmp_path / "state")
    store.advance("src", 0, "/app.log", 1, 1)  # created now
    store.commit()
    ledger = Ledger.load(tmp_path, store)
    offsets = list(range(400))
    assert mask(ledger, INFO, "src", offsets) == covered([(200, 300)], 0, offsets)


def test_a_source_without_a_checkpoint_counts_parts_since_the_last_commit(tmp_path: Path) -> None:
    """A new file (no checkpoint yet) keeps only parts written shortly before the last commit on."""
    part(tmp_path, INFO, {"new": [(0, 100)]}, age_s=SCAN_SLACK_S + 3600)
    part(tmp_path, INFO, {"new": [(100, 150)]}, age_s=SCAN_SLACK_S / 2)
    store = CheckpointStore(tmp_path / "state")
    store.advance("someone-else", 10, "/other.log", 1, 2)
    store.commit()  # the checkpoint file's mtime: now
    ledger = Ledger.load(tmp_path, store)
    offsets = list(range(200))
    assert mask(ledger, INFO, "new", offsets) == covered([(100, 150)], 0, offsets)


def test_an_empty_ledger_is_false_and_covers_nothing(tmp_path: Path) -> None:
    ledger = Ledger.load(tmp_path, CheckpointStore(tmp_path / "state"))
    assert not ledger
    assert mask(ledger, INFO, "src", [0, 1, 2]) == [False, False, False]
