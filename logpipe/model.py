"""The data that flows from sources through parse to sinks: one module every stage imports.

    source --RawBatch--> parse (frame, unwrap, normalise, enrich) --Batch--> sinks --FlushResult

A RawBatch is bytes [start, end) of one source; a Batch is the same span as canonical records
(Arrow) and the lines that could not become records (Rejects). Nothing here does I/O or imports
a stage, so sources, parse and sinks depend on this module and never on each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True, slots=True)
class OversizedLine:
    """A line longer than the limit: skipped to its newline, only its head kept for the dead letter."""

    offset: int
    length: int
    head: bytes


@dataclass(frozen=True, slots=True)
class RawBatch:
    """Complete lines read from one source, `data` spans source bytes [start, end).

    `end` is where the source resumes after this batch is delivered. `unterminated` says the
    last line had no newline and was taken anyway (end of input in `--once` mode). `source_index`
    is the index of the configured source (`sources[i]`) whose globs found the file: it decides the
    labels and field names the records get.
    """

    source_id: str
    path: str
    start: int
    end: int
    data: bytes | memoryview
    read_time_us: int
    format_name: str
    unterminated: bool = False
    oversized: tuple[OversizedLine, ...] = field(default=())
    source_index: int = 0

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Reject:
    """One input line that cannot become a record, with why."""

    offset: int
    reason: str
    detail: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class Batch:
    """Canonical records and rejected lines from positions [start, end) of one source."""

    source_id: str
    path: str
    start: int
    end: int
    records: pa.Table
    rejects: tuple[Reject, ...]
    read_time_us: int
    # Where each record sits in the source, in the units of [start, end): the `offset` column
    # for files; Kafka offsets for `logpipe ingest` (records keep the agent's file offset).
    positions: pa.Array | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a buffered batch came from, so that a sink's dead letter names its source and position."""

    source_id: str
    path: str
    start: int
    end: int
    read_time_us: int

    @classmethod
    def of(cls, batch: Batch) -> Origin:
        return cls(batch.source_id, batch.path, batch.start, batch.end, batch.read_time_us)

    def dead_letters(self, rejects: list[Reject]) -> Batch:
        """A batch that carries only these rejects, for the archive's dead-letter table."""
        from logpipe.schema import record_schema

        empty = record_schema().empty_table()
        return Batch(self.source_id, self.path, self.start, self.end, empty, tuple(rejects), self.read_time_us)


@dataclass(frozen=True, slots=True)
class FlushResult:
    """What one flush made durable."""

    parts: int = 0
    records: int = 0
    dead_letters: int = 0
    duplicates_dropped: int = 0


@dataclass(frozen=True, slots=True)
class Position:
    """Where a source resumes once a batch is delivered: just past its last line (a file's byte
    offset, a Kafka partition's next offset). A source acknowledges positions only after every
    sink flushed the batches they end. A file's position also names the file it was read from
    (path, device, inode), so that its checkpoint finds the file again after a rotation.
    """

    source_id: str
    offset: int
    path: str = ""
    dev: int = 0
    ino: int = 0


@dataclass(frozen=True, slots=True)
class Missing:
    """Records of a batch that gave a canonical field no usable value, so a default stood in."""

    ts: int = 0  # no timestamp that parses (nor a container wrapper's): the reading time was used
    level: int = 0  # no level that names one: INFO was assumed
    message: int = 0
    unmatched: int = 0  # neither a timestamp nor a level: the profile matched nothing of the record

    def by_field(self) -> dict[str, int]:
        """The counts by canonical field name (`MISSING_FIELDS` in logpipe.parse.normalise)."""
        return {"ts": self.ts, "level": self.level, "message": self.message}


@dataclass(frozen=True, slots=True)
class ResolvedFormat:
    """A file's format as parse decided it (named, or detected from its first lines), for the file
    source: the profile's name, and where a batch may end (`final_line`: False for a line inside
    a container wrapper's group of partial lines; None when every line ends one)."""

    name: str
    final_line: Callable[[bytes], bool] | None = None


# How the file source learns a file's format without importing parse: the wiring passes
# `logpipe.parse.detect.resolve_format`. Called with the source's `--format` override (None or
# "auto": detect) and a function that reads up to that many of the file's first bytes (called only
# to detect).
FormatDetector = Callable[[str | None, Callable[[int], bytes]], ResolvedFormat]
