"""The archive sink (the default): the local Parquet archive, and every sink's dead letters.

    config   ArchiveConfig: the folder, shared or not, compaction
    encode   the tables the archive derives from records (partitions, dead letters); pure
    sink     ArchiveSink (and DeadLettersOnly for --no-archive), ArchiveLock
    health   is the folder writable

The layout, ledger, locks and compaction it writes with are in `logpipe.archive`, which the
query side reads too.
"""

from __future__ import annotations

from logpipe.sinks.archive.sink import (
    ArchiveLock,
    ArchiveSink,
    DeadLettersOnly,
    try_compaction_lock,
)

__all__ = ["ArchiveLock", "ArchiveSink", "DeadLettersOnly", "try_compaction_lock"]
