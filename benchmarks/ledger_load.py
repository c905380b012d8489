"""Start-up cost of the archive's ledger (every part's footer is read), beside a bare footer loop.

    .venv/bin/python benchmarks/ledger_load.py [--parts 10000] [--sources 50]

Writes an archive of PARTS small parts under benchmarks/.work/ (12 months x 28 days x 2 levels,
each part's footer naming one of SOURCES sources, as `write_part` writes them), commits a
checkpoint for every source, then times in the same run:

1. `Ledger.load`: what `logpipe ship` does at start-up (walk the parts, read each footer's
   ranges, keep those past the checkpoints).
2. bare loop: `pyarrow.parquet.read_schema` of every part, the least a reader of footers does.

Prints both, per part, and the ledger's ratio to the bare loop.
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import date
from pathlib import Path

WORK = Path(__file__).resolve().parent / ".work" / "ledger"


def main() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from logpipe.archive.layout import Partition, part_files
    from logpipe.archive.ledger import Ledger
    from logpipe.archive.writer import write_part
    from logpipe.checkpoints import CheckpointStore

    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", type=int, default=10_000)
    parser.add_argument("--sources", type=int, default=50)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    table = pa.table({"x": [1, 2, 3]})
    for i in range(args.parts):
        partition = Partition("logs", date(2026, 1 + i % 12, 1 + i % 28), ["INFO", "ERROR"][i % 2])
        write_part(WORK, partition, table, {f"src{i % args.sources}": [(i * 1000, i * 1000 + 900)]})
    checkpoints = CheckpointStore(WORK / "state")
    for s in range(args.sources):
        checkpoints.advance(f"src{s}", args.parts * 500, "/x", 0, 0)
    checkpoints.commit()

    start = time.perf_counter()
    Ledger.load(WORK, checkpoints)
    ledger_s = time.perf_counter() - start
    start = time.perf_counter()
    for part in part_files(WORK):
        pq.read_schema(part)
    bare_s = time.perf_counter() - start
    n = args.parts
    print(
        f"{n:,} parts: Ledger.load {ledger_s:.3f} s ({ledger_s / n * 1e3:.3f} ms/part); "
        f"bare footer loop {bare_s:.3f} s ({bare_s / n * 1e3:.3f} ms/part); ratio {ledger_s / bare_s:.2f}"
    )


if __name__ == "__main__":
    main()
