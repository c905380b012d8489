"""What a source hands to the parse stage."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    last line had no newline and was taken anyway (end of input in `--once` mode). `spec` is
    the index of the configured source (`sources[i]`) whose globs found the file: it decides the
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
    spec: int = 0

    @property
    def size(self) -> int:
        return self.end - self.start
