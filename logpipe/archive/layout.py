"""Where things live inside an archive folder. One place, so writer, reader and retention agree.

    <archive>/
      logs/day=YYYY-MM-DD/level=LEVEL/part-<unix_ms>-<uuid>.parquet   canonical records
      dead_letters/day=YYYY-MM-DD/part-<unix_ms>-<uuid>.parquet       rejected lines, verbatim
      state/checkpoints.json                                          source positions (default state dir)
      state/spool/                                                    stdin spooled to disk
      .lock                                                           held by the one writer

Partitions are hive-style so DuckDB and polars prune by `day` and `level` without opening files.
`day` is the UTC date of `ts`. A part is written as `.tmp-<name>.partial` and renamed: the
temporary name matches no reader's glob, and a writer that starts removes any left by a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

DEFAULT_ARCHIVE: Final = Path("logpipe-data")
LOGS_DIR: Final = "logs"
DEAD_LETTERS_DIR: Final = "dead_letters"
STATE_DIR: Final = "state"
LOCK_FILE: Final = ".lock"
COMPACT_LOCK_FILE: Final = ".compact.lock"
TMP_PREFIX: Final = ".tmp-"
PART_SUFFIX: Final = ".parquet"
RANGES_METADATA_KEY: Final = b"logpipe.ranges"

_PARTITION_RE: Final = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True, slots=True)
class Partition:
    """A (day, level) folder of the logs table; level is None for dead letters."""

    table: str
    day: date
    level: str | None = None

    def relpath(self) -> Path:
        path = Path(self.table) / f"day={self.day.isoformat()}"
        return path / f"level={self.level}" if self.level is not None else path


TMP_SUFFIX: Final = ".partial"


def temp_path(final: Path) -> Path:
    """Where a part is written before it is renamed to `final` (never matched by `*.parquet`)."""
    return final.with_name(f"{TMP_PREFIX}{final.name}{TMP_SUFFIX}")


def remove_temp_files(archive: Path, older_than_s: float | None = None) -> int:
    """Delete temporary parts a crashed writer left behind.

    With the exclusive lock every temporary part is stale; shared writers (`logpipe ingest`)
    only remove those older than `older_than_s`, which no live writer can still be writing.
    """
    import time

    cutoff = None if older_than_s is None else time.time() - older_than_s
    removed = 0
    for table in (LOGS_DIR, DEAD_LETTERS_DIR):
        root = archive / table
        if root.is_dir():
            for p in root.rglob(f"{TMP_PREFIX}*{TMP_SUFFIX}"):
                try:
                    if cutoff is not None and p.stat().st_mtime >= cutoff:
                        continue
                    p.unlink()
                    removed += 1
                except FileNotFoundError:
                    continue
    return removed


def logs_glob(archive: Path) -> str:
    return str(archive / LOGS_DIR / "day=*" / "level=*" / f"*{PART_SUFFIX}")


def dead_letters_glob(archive: Path) -> str:
    return str(archive / DEAD_LETTERS_DIR / "day=*" / f"*{PART_SUFFIX}")


def default_state_dir(archive: Path) -> Path:
    return archive / STATE_DIR


def parse_day_dir(name: str) -> date | None:
    """`day=2026-11-20` -> date(2026, 11, 20); anything else -> None (never ours to touch)."""
    match = _PARTITION_RE.match(name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def part_files(archive: Path) -> list[Path]:
    """Every finished data file of both tables (temporary files excluded)."""
    files: list[Path] = []
    for table in (LOGS_DIR, DEAD_LETTERS_DIR):
        root = archive / table
        if root.is_dir():
            files.extend(
                p for p in root.rglob(f"*{PART_SUFFIX}") if not p.name.startswith(TMP_PREFIX)
            )
    return sorted(files)
